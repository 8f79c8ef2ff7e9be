import { useEffect, useRef } from 'react';
import type { AllocationSummary } from '../../../workers/protocol.ts';
import { humanSize, percent } from '../../units.ts';
import './style.css';

const COLUMNS = 64;
/** Colours per kind; the legend below uses the same CSS variables. */
const COLOURS = { data: '#2563eb', compressed: '#9333ea', backing: '#93c5fd', empty: '#e5e7eb' };

/**
 * The disk as a grid of cells, each filled from the bottom by the share of its bytes that hold
 * data or compressed data; grey is empty. Drawn from extents, without reading data.
 *
 * "Zero" and "unallocated" are one thing to a user — both read as zeros — and formats differ
 * only in which they record (a VDI marks zero blocks, a VMDK leaves grains unallocated), so
 * they share one colour. The map is of the whole chain, so data from a backing file is data;
 * only when the backing file was not dropped does "unallocated" mean "in the missing backing
 * file", and then it gets a colour of its own.
 */
export function AllocationMap({
  map,
  virtualSize,
  backingMissing,
}: {
  map: AllocationSummary;
  virtualSize: number;
  backingMissing: boolean;
}) {
  const canvas = useRef<HTMLCanvasElement>(null);
  const rows = Math.ceil(map.cells / COLUMNS);
  useEffect(() => {
    const c = canvas.current;
    const ctx = c?.getContext('2d');
    if (!c || !ctx) return;
    const dpr = window.devicePixelRatio || 1;
    const width = c.clientWidth || 640;
    const cell = width / COLUMNS;
    c.width = Math.round(width * dpr);
    c.height = Math.round(cell * rows * dpr);
    ctx.scale(dpr, dpr);
    const gap = Math.min(2, cell / 6);
    for (let i = 0; i < map.cells; i++) {
      const x = (i % COLUMNS) * cell;
      const y = Math.floor(i / COLUMNS) * cell;
      const s = cell - gap;
      ctx.fillStyle = COLOURS.empty;
      ctx.fillRect(x, y, s, s);
      let filled = 0;
      const layers = [
        ['data', map.data[i]!],
        ['compressed', map.compressed[i]!],
        ['backing', backingMissing ? map.unallocated[i]! : 0],
      ] as const;
      for (const [kind, share] of layers) {
        const h = s * share;
        if (h <= 0) continue;
        // Even a sliver of data should be visible.
        const hh = Math.max(h, 1.5);
        ctx.fillStyle = COLOURS[kind];
        ctx.fillRect(x, y + s - filled - hh, s, hh);
        filled += hh;
      }
    }
  }, [map, rows, backingMissing]);

  const t = map.totals;
  const legend = (
    [
      ['data', 'data', t.data],
      ['compressed', 'compressed data', t.compressed],
      ['backing', 'in the missing backing file', backingMissing ? t.unallocated : 0],
      ['empty', 'empty (reads as zeros)', t.zero + (backingMissing ? 0 : t.unallocated)],
    ] as [keyof typeof COLOURS, string, number][]
  ).filter(([, , n]) => n > 0);
  return (
    <figure className="allocation-map" data-testid="allocation-map">
      <figcaption>
        Where the data is — each square is {humanSize(Math.round(map.cellBytes))} of the disk
        {map.partial && ' (a very fragmented image: only the first part was scanned)'}
      </figcaption>
      <canvas
        ref={canvas}
        role="img"
        aria-label={`Allocation map: ${percent(t.data + t.compressed, virtualSize)} of the disk holds data`}
      />
      <ul className="allocation-map__legend">
        {legend.map(([kind, label, n]) => (
          <li key={kind}>
            <i style={{ background: COLOURS[kind] }} /> {label} <span className="muted">{humanSize(n)}</span>
          </li>
        ))}
        {map.fromBacking > 0 && <li className="muted">{humanSize(map.fromBacking)} of the data comes from the backing file</li>}
      </ul>
    </figure>
  );
}
