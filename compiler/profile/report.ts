/** Human-readable summary of a device profile: the fit per class and the held-out error. */
import { PROFILED_CLASSES, type DeviceProfile, type ErrorSummary } from '../../schemas/profile.js';

const pct = (v: number) => `${(v * 100).toFixed(1)}%`;
const err = (e: ErrorSummary) => `${pct(e.meanAbsRelError)} / ${pct(e.maxAbsRelError)} (n=${e.count})`;

export function formatProfile(p: DeviceProfile): string {
  const header = ['class', 'fixed us', 'us/MB', 'us/GFLOP', 'carry us/MB', 'threshold', 'capacity B/us', 'fit n', 'held-out error mean / max'];
  const rows = PROFILED_CLASSES.map((cls) => {
    const c = p.classes[cls];
    return [
      cls, c.latency.fixedUs.toFixed(2), (c.latency.perByteUs * 1e6).toFixed(1), (c.latency.perFlopUs * 1e9).toFixed(1),
      (c.carryUsPerByte * 1e6).toFixed(1), `+${pct(c.thresholdRatio)}`, c.capacityBytesPerUs.toFixed(1), String(c.fitSamples), err(c.heldOut),
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (cells: string[]) => `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
  return [
    `device profile ${p.name}: ${p.device.description || p.device.device} (${p.device.backend}), measured ${p.measuredAt}${p.method.quick ? ' (quick)' : ''}`,
    `latency model: t_us = fixed + perByte * bytes + perFlop * flops; capacity = threshold * t_us / carry cost per byte`,
    line(header),
    line(widths.map((w) => '-'.repeat(w))),
    ...rows.map(line),
    `held-out kernels: latency error mean ${pct(p.heldOut.meanAbsRelError)}, max ${pct(p.heldOut.maxAbsRelError)} over ${p.heldOut.count} kernels; ` +
      `while carrying: mean ${pct(p.heldOutCarried.meanAbsRelError)}, max ${pct(p.heldOutCarried.maxAbsRelError)} over ${p.heldOutCarried.count}`,
    `upload (queue.writeBuffer): ${(p.uploadBytesPerMs / 1e6).toFixed(2)} GB/s`,
    ...(p.copies ? [`mapped copies (--stream-path copies): ${(p.copies.bytesPerMs / 1e6).toFixed(2)} GB/s, ${(p.copies.overheadMs * 1000).toFixed(1)} us per copy between dispatches`] : []),
    ...(p.layoutCost ? [`layout cost (texture / buffer): ${JSON.stringify(p.layoutCost)}`] : []),
  ].join('\n');
}
