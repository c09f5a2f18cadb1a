/**
 * Memory over time from a schedule: resident weights (buffers and 2.5D textures, and decoder
 * state) and the staging ring are allocated for the whole run; the compiler records the bytes
 * live in the activation arena during each dispatch, which holds activations and, while they
 * stream, streamed weights. The streamed share is read back from the run's uploads
 * (report/streamed-loads.ts: each weight from the kernel that loads it to its last use, as the
 * load plan places it); the rest of the arena's live bytes are activations. The SVG stacks the
 * four per dispatch, against the budget.
 */
import type { ModelSchedule } from '../../schemas/schedule.js';
import { escapeHtml } from './report/html.js';
import { streamedBytesPerKernel } from './report/streamed-loads.js';

export interface MemoryPoint {
  step: number;
  /** weight buffers, weight textures and decoder state: resident for the whole run */
  resident: number;
  staging: number;
  /** streamed weights in the arena during this kernel */
  streamed: number;
  /** the rest of the arena's live bytes */
  activations: number;
}

export function memoryOverTime(schedule: ModelSchedule): MemoryPoint[] {
  const allocated = (role: string) => schedule.buffers.reduce((s, b) => s + (b.role === role ? b.size : 0), 0);
  const recorded = schedule.liveArenaBytes ?? [];
  // bundles without the per-dispatch record: the whole arena, as one point
  const live = recorded.length > 0 ? recorded : [allocated('activations')];
  const streamed = recorded.length > 0 ? streamedBytesPerKernel(schedule, live.length) : live.map(() => 0);
  const resident = allocated('weights') + allocated('state') + textureBytes(schedule);
  return live.map((bytes, step) => {
    const inArena = Math.min(bytes, streamed[step]!);
    return { step, resident, staging: allocated('staging'), streamed: inArena, activations: bytes - inArena };
  });
}

export const MEMORY_BANDS = [
  { key: 'resident', label: 'resident weights', color: '#4e79a7' },
  { key: 'staging', label: 'staging ring', color: '#f28e2b' },
  { key: 'streamed', label: 'streamed weights', color: '#e15759' },
  { key: 'activations', label: 'activations', color: '#59a14f' },
] as const;

const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;
const total = (p: MemoryPoint) => p.resident + p.staging + p.streamed + p.activations;

export function memoryChartSvg(title: string, points: MemoryPoint[], budgetBytes?: number): string {
  // the title and the legend sit above the plot (top), clear of a budget line at the plot's top
  const width = 900, height = 380, left = 70, bottom = 40, top = 52, right = 20, legendY = 26;
  const maxY = Math.max(budgetBytes ?? 0, ...points.map(total), 1);
  // one column per dispatch: memory is constant while a kernel runs
  const x = (i: number) => left + ((width - left - right) * i) / Math.max(1, points.length);
  const y = (v: number) => height - bottom - ((height - top - bottom) * v) / maxY;
  const steps = (value: (p: MemoryPoint) => number) => points.flatMap((p, i) => [`${x(i).toFixed(1)},${y(value(p)).toFixed(1)}`, `${x(i + 1).toFixed(1)},${y(value(p)).toFixed(1)}`]);
  // a band that holds nothing at any step (no ring when preloading, nothing streamed) is left out
  const drawn = MEMORY_BANDS.filter((band) => points.some((p) => p[band.key] > 0));
  const below = (index: number) => (p: MemoryPoint) => drawn.slice(0, index).reduce((s, b) => s + p[b.key], 0);
  const bands = drawn.map((band, i) => {
    const points = [...steps(below(i + 1)), ...steps(below(i)).reverse()];
    return `<polygon class="band-${band.key}" points="${points.join(' ')}" fill="${band.color}" fill-opacity="0.75"><title>${band.label}</title></polygon>`;
  });
  const legend = drawn.map((band, i) => `<rect x="${left + 150 * i}" y="${legendY}" width="12" height="12" fill="${band.color}"/><text x="${left + 150 * i + 16}" y="${legendY + 10}" font-size="11">${band.label}</text>`);
  // small bundles' axes in KiB: five ticks of "0.00 MiB" say nothing
  const tick = maxY >= 1048576 ? mib : (b: number) => `${(b / 1024).toFixed(1)} KiB`;
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${left - 6}" y="${y(f * maxY) + 4}" text-anchor="end" font-size="11">${tick(f * maxY)}</text>`);
  const budget = budgetBytes === undefined ? '' : `<line class="budget" x1="${left}" x2="${width - right}" y1="${y(budgetBytes)}" y2="${y(budgetBytes)}" stroke="#c00" stroke-dasharray="6 4"/><text class="budget-label" x="${width - right}" y="${y(budgetBytes) - 4}" text-anchor="end" font-size="11" fill="#c00">budget ${mib(budgetBytes)}${maxY < 1048576 ? ` (${tick(budgetBytes)})` : ''}</text>`;
  return `<svg xmlns="http://www.w3.org/2000/svg" class="memory-chart" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" role="img" aria-label="GPU memory over the run">
<text x="${left}" y="18" font-size="14">${escapeHtml(title)}</text>
${bands.join('\n')}
${budget}
${ticks.join('\n')}
<text x="${(left + width) / 2}" y="${height - 8}" text-anchor="middle" font-size="12">kernel (dispatch) index</text>
${legend.join('\n')}
</svg>
`;
}

/** bytes of a schedule's weight textures (rgba32float: 16 per texel) */
export function textureBytes(schedule: ModelSchedule): number {
  return (schedule.textures ?? []).reduce((s, t) => s + t.width * t.height * t.layers * 16, 0);
}
