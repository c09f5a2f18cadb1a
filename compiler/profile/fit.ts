/**
 * Least-squares fits for the device profile. Kernel latencies span orders of magnitude, so fits
 * minimise relative error (each residual divided by the measured value), and coefficients are
 * constrained to be non-negative (a negative fixed cost or per-byte cost is noise, and would make
 * small kernels predict negative latency). With at most a handful of coefficients the
 * non-negative problem is solved exactly by trying every subset of free coefficients.
 */
import type { ErrorSummary } from '../../schemas/profile.js';

export interface Sample {
  /** feature values, one per coefficient */
  x: readonly number[];
  /** measured value (> 0) */
  y: number;
}

/** argmin_c sum_i ((x_i . c - y_i) / y_i)^2 subject to c >= 0. `free[j] = false` pins c_j to 0. */
export function fitNonNegativeRelative(samples: readonly Sample[], free: readonly boolean[] = []): number[] {
  const dims = samples[0]?.x.length ?? 0;
  const candidates = [...Array(dims).keys()].filter((j) => free[j] !== false);
  let best: { c: number[]; loss: number } = { c: new Array<number>(dims).fill(0), loss: lossOf(samples, new Array<number>(dims).fill(0)) };
  // every subset of candidate coefficients, solved unconstrained; keep the best non-negative solution
  for (let mask = 1; mask < 1 << candidates.length; mask++) {
    const active = candidates.filter((_, i) => mask & (1 << i));
    const solved = solveWeighted(samples, active);
    if (!solved || solved.some((v) => v < 0)) continue;
    const c = new Array<number>(dims).fill(0);
    active.forEach((j, i) => (c[j] = solved[i]!));
    const loss = lossOf(samples, c);
    if (loss < best.loss) best = { c, loss };
  }
  return best.c;
}

/**
 * fitNonNegativeRelative, then once more without the samples whose relative residual is far out
 * (over 3x the median residual and over 30%): on a shared CPU a single kernel's timing can be
 * inflated by other processes for the whole of its batches. At most a quarter of the samples are
 * dropped, and never below one more sample than coefficients.
 */
export function fitRobustRelative(samples: readonly Sample[], free: readonly boolean[] = []): number[] {
  const first = fitNonNegativeRelative(samples, free);
  const residuals = samples.map((p) => Math.abs(dot(p.x, first) - p.y) / p.y);
  const cutoff = Math.max(0.3, 3 * median(residuals));
  const coefficients = free.length ? free.filter((f) => f !== false).length : samples[0]?.x.length ?? 0;
  const maxDrop = Math.min(Math.floor(samples.length / 4), samples.length - coefficients - 1);
  const worst = residuals.map((r, i) => ({ r, i })).filter((e) => e.r > cutoff).sort((a, b) => b.r - a.r).slice(0, Math.max(0, maxDrop));
  if (worst.length === 0) return first;
  const dropped = new Set(worst.map((e) => e.i));
  return fitNonNegativeRelative(samples.filter((_, i) => !dropped.has(i)), free);
}

function lossOf(samples: readonly Sample[], c: readonly number[]): number {
  return samples.reduce((s, p) => s + ((dot(p.x, c) - p.y) / p.y) ** 2, 0);
}

const dot = (a: readonly number[], b: readonly number[]) => a.reduce((s, v, i) => s + v * b[i]!, 0);

/** Normal equations of the relative-error problem on columns `active`, scaled for conditioning; undefined if singular. */
function solveWeighted(samples: readonly Sample[], active: readonly number[]): number[] | undefined {
  const n = active.length;
  // column scales: features differ by many orders of magnitude (bytes vs flops vs 1)
  const scale = active.map((j) => Math.max(...samples.map((p) => Math.abs(p.x[j]! / p.y))) || 1);
  const a = Array.from({ length: n }, () => new Array<number>(n + 1).fill(0));
  for (const p of samples) {
    const row = active.map((j, i) => p.x[j]! / p.y / scale[i]!);
    for (let r = 0; r < n; r++) {
      for (let c = 0; c < n; c++) a[r]![c]! += row[r]! * row[c]!;
      a[r]![n]! += row[r]!; // target y/y = 1
    }
  }
  const z = gaussianElimination(a);
  return z?.map((v, i) => v / scale[i]!);
}

/** Solves the augmented n x (n+1) system in place with partial pivoting; undefined if singular. */
export function gaussianElimination(a: number[][]): number[] | undefined {
  const n = a.length;
  for (let col = 0; col < n; col++) {
    let pivot = col;
    for (let r = col + 1; r < n; r++) if (Math.abs(a[r]![col]!) > Math.abs(a[pivot]![col]!)) pivot = r;
    if (Math.abs(a[pivot]![col]!) < 1e-12) return undefined;
    [a[col], a[pivot]] = [a[pivot]!, a[col]!];
    for (let r = 0; r < n; r++) {
      if (r === col) continue;
      const f = a[r]![col]! / a[col]![col]!;
      for (let c = col; c <= n; c++) a[r]![c]! -= f * a[col]![c]!;
    }
  }
  return a.map((row, i) => row[n]! / row[i]!);
}

export function errorSummary(pairs: readonly { predicted: number; measured: number }[]): ErrorSummary {
  const errors = pairs.map((p) => Math.abs(p.predicted - p.measured) / p.measured);
  return {
    count: errors.length,
    meanAbsRelError: round(errors.length ? errors.reduce((s, e) => s + e, 0) / errors.length : 0),
    maxAbsRelError: round(errors.length ? Math.max(...errors) : 0),
  };
}

/** Rounds to 4 significant digits: profiles stay readable and diffs small. */
export function round(v: number, digits = 4): number {
  return v === 0 || !Number.isFinite(v) ? v : Number(v.toPrecision(digits));
}

export function median(values: readonly number[]): number {
  const s = [...values].sort((a, b) => a - b);
  const mid = s.length >> 1;
  return s.length % 2 ? s[mid]! : (s[mid - 1]! + s[mid]!) / 2;
}
