import { useEffect, useRef } from 'react';
import type { AllocationSummary } from '../../../workers/protocol.ts';
import { humanSize, percent } from '../../units.ts';
import './style.css';

const COLUMNS = 64;
/** Colours per kind; the legend below uses the same CSS variables. */
const COLOURS = { data: '#2563eb', compressed: '#9333ea', zero: '#5eead4', unallocated: '#e5e7eb' };

/**
 * The disk as a grid of cells, each filled from the bottom by the share of its bytes that hold
 * data, compressed data or zeros; grey is unallocated. Drawn from extents, without reading data.
 */
export function AllocationMap({ map, virtualSize }: { map: AllocationSummary; virtualSize: number }) {
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
      ctx.fillStyle = COLOURS.unallocated;
      ctx.fillRect(x, y, s, s);
      let filled = 0;
      for (const kind of ['data', 'compressed', 'zero'] as const) {
        const h = s * map[kind][i]!;
        if (h <= 0) continue;
        // Even a sliver of data should be visible.
        const hh = Math.max(h, kind === 'zero' ? 0 : 1.5);
        ctx.fillStyle = COLOURS[kind];
        ctx.fillRect(x, y + s - filled - hh, s, hh);
        filled += hh;
      }
    }
  }, [map, rows]);

  const t = map.totals;
  const legend: [keyof typeof COLOURS, string, number][] = [
    ['data', 'data', t.data],
    ['compressed', 'compressed data', t.compressed],
    ['zero', 'reads as zeros', t.zero],
    ['unallocated', 'unallocated', t.unallocated],
  ];
  return (
    <figure className="allocation-map" data-testid="allocation-map">
      <figcaption>
        Where the data is — each square is {humanSize(Math.round(map.cellBytes))} of the disk
        {map.partial && ' (a very fragmented image: only the first part was scanned)'}
      </figcaption>
      <canvas ref={canvas} role="img" aria-label={`Allocation map: ${percent(t.data + t.compressed, virtualSize)} of the disk holds data`} />
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
