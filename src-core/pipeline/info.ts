import type { ImageInfo } from '../image/types.ts';

/** JSON as qemu-img prints it: 4-space indentation, without our private `extra` field. */
export function infoJson(info: ImageInfo | ImageInfo[]): string {
  return JSON.stringify(info, (k, v) => (k === 'extra' ? undefined : v), 4);
}

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

/** 1.5 GiB, 64 KiB: what a person wants to read. */
export function humanSize(n: number): string {
  let v = n;
  let u = 0;
  while (v >= 1024 && u < UNITS.length - 1) {
    v /= 1024;
    u++;
  }
  return u === 0 ? `${n} B` : `${v.toFixed(v < 10 ? 2 : v < 100 ? 1 : 0).replace(/\.0+$/, '')} ${UNITS[u]}`;
}

/** Human-readable info, close to qemu-img's but ours to shape. */
export function formatInfoHuman(info: ImageInfo): string {
  const lines: string[] = [];
  const row = (k: string, v: unknown) => lines.push(`${k}: ${v}`);
  row('image', info.filename);
  row('file format', info.format);
  row('virtual size', `${humanSize(info['virtual-size'])} (${info['virtual-size']} bytes)`);
  if (info['actual-size'] !== undefined) row('disk size', humanSize(info['actual-size']));
  if (info['cluster-size']) row('cluster_size', info['cluster-size']);
  if (info.encrypted) row('encrypted', 'yes');
  if (info['backing-filename']) {
    row(
      'backing file',
      info['backing-filename'] +
        (info['full-backing-filename'] !== info['backing-filename'] ? ` (actual path: ${info['full-backing-filename']})` : ''),
    );
    if (info['backing-filename-format']) row('backing file format', info['backing-filename-format']);
  }
  if (info.snapshots?.length) {
    lines.push('Snapshot list:');
    lines.push('ID        TAG               VM SIZE                DATE     VM CLOCK     ICOUNT');
    for (const s of info.snapshots) {
      const date = localDateTime(s['date-sec']);
      const clock = `${pad(Math.floor(s['vm-clock-sec'] / 3600), 2)}:${pad(Math.floor(s['vm-clock-sec'] / 60) % 60, 2)}:${pad(s['vm-clock-sec'] % 60, 2)}.${pad(Math.floor(s['vm-clock-nsec'] / 1e6), 3)}`;
      lines.push(
        `${s.id.padEnd(10)}${s.name.padEnd(18)}${humanSize(s['vm-state-size']).padStart(7)} ${date} ${clock} ${String(s.icount ?? '').padStart(10)}`,
      );
    }
  }
  const fs = info['format-specific'];
  if (fs) {
    lines.push('Format specific information:');
    for (const [k, v] of Object.entries(fs.data)) nested(lines, k, v, '    ');
  }
  for (const [k, v] of Object.entries(info.extra ?? {})) row(k, typeof v === 'object' ? JSON.stringify(v) : v);
  if (info['dirty-flag']) row('dirty', 'yes (the image was not closed cleanly)');
  return lines.join('\n');
}

/** Nested values (e.g. a LUKS `encrypt` object with its key slots) as indented rows, as qemu-img shows them. */
function nested(lines: string[], key: string, v: unknown, indent: string): void {
  if (Array.isArray(v)) {
    lines.push(`${indent}${key}:`);
    v.forEach((item, i) => nested(lines, `[${i}]`, item, indent + '    '));
  } else if (v && typeof v === 'object') {
    lines.push(`${indent}${key}:`);
    for (const [k, x] of Object.entries(v)) nested(lines, k, x, indent + '    ');
  } else lines.push(`${indent}${key}: ${v}`);
}

const pad = (n: number, width: number) => String(n).padStart(width, '0');

/** "YYYY-MM-DD hh:mm:ss" in local time, as qemu-img prints snapshot dates (strftime, localtime). */
function localDateTime(sec: number): string {
  const d = new Date(sec * 1000);
  return `${d.getFullYear()}-${pad(d.getMonth() + 1, 2)}-${pad(d.getDate(), 2)} ${pad(d.getHours(), 2)}:${pad(d.getMinutes(), 2)}:${pad(d.getSeconds(), 2)}`;
}
