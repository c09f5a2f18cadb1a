/** The profile's fit math on synthetic data: known models are recovered, errors are summarised. */
import { describe, expect, it } from 'vitest';
import { errorSummary, fitNonNegativeRelative, fitRobustRelative, gaussianElimination, median } from '../../compiler/profile/fit.js';
import { fitCarryCost, fitClass, type KernelSample } from '../../compiler/profile/run.js';

/** t_us = 20 + 0.0002 * bytes + 3e-5 * flops, sampled over sizes like the profiler's sweep */
const TRUE = [20, 2e-4, 3e-5];
const features = [[1, 4096, 1e5], [1, 65536, 8e5], [1, 3e5, 6e6], [1, 1e6, 5e7], [1, 4e6, 1e8], [1, 1.2e7, 9e8]];
const exact = features.map((x) => ({ x, y: x.reduce((s, v, i) => s + v * TRUE[i]!, 0) }));

describe('least-squares fits', () => {
  it('recovers a known linear latency model exactly from noiseless samples', () => {
    const c = fitNonNegativeRelative(exact);
    c.forEach((v, i) => expect(Math.abs(v / TRUE[i]! - 1)).toBeLessThan(1e-9));
    for (const p of exact) expect(Math.abs(c.reduce((s, v, i) => s + v * p.x[i]!, 0) - p.y) / p.y).toBeLessThan(1e-9);
  });

  it('recovers the model within the noise from samples with ±5% multiplicative noise', () => {
    const noisy = exact.map((p, i) => ({ x: p.x, y: p.y * (1 + (i % 2 ? 0.05 : -0.05)) }));
    const c = fitNonNegativeRelative(noisy);
    expect(c[1]! / TRUE[1]!).toBeGreaterThan(0.8);
    expect(c[1]! / TRUE[1]!).toBeLessThan(1.2);
    expect(c[2]! / TRUE[2]!).toBeGreaterThan(0.8);
    expect(c[2]! / TRUE[2]!).toBeLessThan(1.2);
  });

  it('keeps coefficients non-negative: data implying a negative fixed cost gives 0, not a negative value', () => {
    // y = 5e-4 * bytes - 10: the unconstrained fit has fixed = -10
    const samples = [1e5, 2e5, 4e5, 8e5].map((b) => ({ x: [1, b], y: 5e-4 * b - 10 }));
    const c = fitNonNegativeRelative(samples);
    expect(c[0]).toBe(0);
    expect(c[1]).toBeGreaterThan(4e-4);
  });

  it('pins coefficients that are not free to 0', () => {
    const c = fitNonNegativeRelative(exact, [true, true, false]);
    expect(c[2]).toBe(0);
    expect(c[1]).toBeGreaterThan(0);
  });

  it('drops a sample inflated by outside load before the final fit', () => {
    const samples = [...exact, { x: [1, 2e6, 2e7], y: 10 * (20 + 2e-4 * 2e6 + 3e-5 * 2e7) }];
    const plain = fitNonNegativeRelative(samples);
    const robust = fitRobustRelative(samples);
    expect(Math.abs(robust[1]! - TRUE[1]!)).toBeLessThan(Math.abs(plain[1]! - TRUE[1]!));
    expect(robust[1]! / TRUE[1]!).toBeCloseTo(1, 6);
  });

  it('solves linear systems with pivoting and reports singular ones', () => {
    expect(gaussianElimination([[0, 2, 4], [3, 0, 6]])).toEqual([2, 2]);
    expect(gaussianElimination([[1, 2, 3], [2, 4, 6]])).toBeUndefined();
  });
});

describe('carry cost and class fit', () => {
  const sample = (bytes: number, us: number, carryUsPerByte: number, heldOut = false): KernelSample => ({
    op: 'Add', costClass: 'elementwise', size: String(bytes), label: 'add', heldOut,
    features: { bytes, flops: 0 }, us,
    carried: [0.5, 2, 6].map((f) => ({ bytes: f * bytes, us: us + carryUsPerByte * f * bytes })),
  });

  it('recovers the extra time per carried byte, robust to one disturbed timing', () => {
    const samples = [sample(1e5, 30, 5e-4), sample(1e6, 250, 5e-4), sample(4e6, 900, 5e-4)];
    expect(fitCarryCost(samples)).toBeCloseTo(5e-4, 12);
    samples[1]!.carried[0]!.us *= 20;
    expect(fitCarryCost(samples)).toBeCloseTo(5e-4, 12);
  });

  it('fits a class on kernels not held out and reports the held-out error; capacity = threshold / carry cost', () => {
    const t = (b: number) => 10 + 2e-4 * b;
    const samples = [1e5, 3e5, 1e6, 3e6].map((b, i) => sample(b, t(b), 4e-4, i === 1));
    samples[1]!.us *= 1.1; // the held-out kernel measured 10% slower than the model: the reported error says so
    const c = fitClass('elementwise', samples);
    expect(c.fitSamples).toBe(3);
    expect(c.latency.fixedUs).toBeCloseTo(10, 2);
    expect(c.latency.perByteUs).toBeCloseTo(2e-4, 8);
    expect(c.latency.perFlopUs).toBe(0);
    expect(c.carryUsPerByte).toBeCloseTo(4e-4, 10);
    expect(c.thresholdRatio).toBe(3);
    expect(c.capacityBytesPerUs).toBeCloseTo(3 / 4e-4, 3);
    expect(c.heldOut.count).toBe(1);
    expect(c.heldOut.meanAbsRelError).toBeCloseTo(0.1 / 1.1, 3);
  });

  it('summarises absolute relative errors', () => {
    const s = errorSummary([{ predicted: 110, measured: 100 }, { predicted: 70, measured: 100 }, { predicted: 50, measured: 50 }]);
    expect(s).toEqual({ count: 3, meanAbsRelError: 0.1333, maxAbsRelError: 0.3 });
    expect(median([5, 1, 3, 2])).toBe(2.5);
  });
});
