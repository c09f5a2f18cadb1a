/**
 * Memory over time from a schedule: weight and staging buffers are resident for the whole run;
 * the compiler records the bytes live in the activation arena (activations and streamed weights)
 * during each dispatch. The SVG stacks the three per dispatch.
 */
import type { ModelSchedule } from '../../schemas/schedule.js';

export interface MemoryPoint {
  step: number;
  weights: number;
  staging: number;
  /** live bytes in lifetime arenas: activations and streamed weights */
  live: number;
}

export function memoryOverTime(schedule: ModelSchedule): MemoryPoint[] {
  const resident = (role: string) => schedule.buffers.reduce((s, b) => s + (b.role === role ? b.size : 0), 0);
  const live = schedule.liveArenaBytes ?? [];
  return (live.length > 0 ? live : [resident('activations')]).map((bytes, step) => ({
    // weight textures are resident too (2.5D layout): counted with the resident weights
    step, weights: resident('weights') + textureBytes(schedule), staging: resident('staging'), live: bytes,
  }));
}

export function memoryChartSvg(title: string, points: MemoryPoint[], budgetBytes?: number): string {
  const width = 900, height = 360, left = 70, bottom = 40, top = 30, right = 20;
  const total = (p: MemoryPoint) => p.weights + p.staging + p.live;
  const maxY = Math.max(budgetBytes ?? 0, ...points.map(total), 1);
  const x = (i: number) => left + ((width - left - right) * i) / Math.max(1, points.length - 1);
  const y = (v: number) => height - bottom - ((height - top - bottom) * v) / maxY;
  const band = (lower: (p: MemoryPoint) => number, upper: (p: MemoryPoint) => number, color: string, label: string) => {
    const up = points.map((p, i) => `${x(i).toFixed(1)},${y(upper(p)).toFixed(1)}`);
    const down = points.map((p, i) => `${x(i).toFixed(1)},${y(lower(p)).toFixed(1)}`).reverse();
    return `<polygon points="${[...up, ...down].join(' ')}" fill="${color}" fill-opacity="0.75"><title>${label}</title></polygon>`;
  };
  const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;
  const escape = (s: string) => s.replace(/[<>&"]/g, (c) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', '"': '&quot;' })[c]!);
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${left - 6}" y="${y(f * maxY) + 4}" text-anchor="end" font-size="11">${mib(f * maxY)}</text>`);
  const budget = budgetBytes === undefined ? '' : `<line x1="${left}" x2="${width - right}" y1="${y(budgetBytes)}" y2="${y(budgetBytes)}" stroke="#c00" stroke-dasharray="6 4"/><text x="${width - right}" y="${y(budgetBytes) - 4}" text-anchor="end" font-size="11" fill="#c00">budget ${mib(budgetBytes)}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<text x="${left}" y="18" font-size="14">${escape(title)}</text>
${band(() => 0, (p) => p.weights, '#4e79a7', 'resident weights')}
${band((p) => p.weights, (p) => p.weights + p.staging, '#f28e2b', 'staging ring')}
${band((p) => p.weights + p.staging, total, '#59a14f', 'activations and streamed weights')}
${budget}
${ticks.join('\n')}
<text x="${(left + width) / 2}" y="${height - 8}" text-anchor="middle" font-size="12">kernel (dispatch) index</text>
<rect x="${left}" y="${top}" width="12" height="12" fill="#4e79a7"/><text x="${left + 16}" y="${top + 10}" font-size="11">resident weights</text>
<rect x="${left + 130}" y="${top}" width="12" height="12" fill="#f28e2b"/><text x="${left + 146}" y="${top + 10}" font-size="11">staging ring</text>
<rect x="${left + 240}" y="${top}" width="12" height="12" fill="#59a14f"/><text x="${left + 256}" y="${top + 10}" font-size="11">activations + streamed weights</text>
</svg>
`;
}

/** bytes of a schedule's weight textures (rgba32float: 16 per texel) */
export function textureBytes(schedule: ModelSchedule): number {
  return (schedule.textures ?? []).reduce((s, t) => s + t.width * t.height * t.layers * 16, 0);
}
