/**
 * The bundle fuzzer itself (verification only, no GPU): a short run with a fixed seed over the
 * fixture bundles finds no crasher and reaches both verdicts, and a planted bug (a verifier that
 * throws a plain TypeError) is reported as a crasher, so this test can fail.
 */
import { describe, expect, it } from 'vitest';
import { formatBundleStats, runBundleFuzz } from '../../fuzz/bundle-fuzz.js';
import { bundleCrashSignature, classifyBundleError } from '../../fuzz/bundle-exec.js';

describe('bundle fuzzer', () => {
  it('finds no crasher in 300 executions with a fixed seed', async () => {
    const stats = await runBundleFuzz({ seed: 20261203, maxExecs: 300, seconds: 240, quickSeeds: true, outDir: undefined, schemaRate: 0.5 });
    expect(stats.executions).toBe(300);
    expect(stats.crashers, formatBundleStats(stats)).toEqual([]);
    // the mutants reach every verdict: accepted, malformed, out of bounds, tampered
    expect(stats.outcomes.ok ?? 0).toBeGreaterThan(0);
    expect(stats.outcomes.FM_BUNDLE_INVALID ?? 0).toBeGreaterThan(0);
    expect(stats.outcomes.FM_BUNDLE_BOUNDS ?? 0).toBeGreaterThan(0);
    expect(stats.outcomes.FM_BUNDLE_HASH ?? 0).toBeGreaterThan(0);
  }, 300_000);

  it('reports a planted bug (a plain TypeError from the verifier) as a crasher', async () => {
    const planted = `async (dir) => { if (dir.length > 0) throw new TypeError('planted: cannot read properties of undefined'); }`;
    const stats = await runBundleFuzz({ seed: 1, maxExecs: 5, seconds: 60, quickSeeds: true, outDir: undefined, planted, minimizeBudget: 2 });
    expect(stats.crashers.length, formatBundleStats(stats)).toBe(1);
    expect(stats.crashers[0]!.outcome).toMatchObject({ kind: 'crash', reason: 'exception', name: 'TypeError' });
    expect(stats.outcomes['crash:exception']).toBe(5);
  }, 120_000);

  it('classifies FM_* errors as expected, engine errors and FM_* errors wrapping them as crashes', () => {
    const fm = Object.assign(new Error('FM_BUNDLE_INVALID: bad'), { name: 'FlashmemRuntimeError', code: 'FM_BUNDLE_INVALID' });
    expect(classifyBundleError(fm)).toMatchObject({ kind: 'error', code: 'FM_BUNDLE_INVALID' });
    expect(classifyBundleError(new TypeError('x is undefined'))).toMatchObject({ kind: 'crash', reason: 'exception' });
    const wrapped = Object.assign(new Error('FM_WEBGPU: preparing the bundle failed', { cause: new TypeError('no overload matched') }), { name: 'FlashmemRuntimeError', code: 'FM_WEBGPU' });
    expect(classifyBundleError(wrapped)).toMatchObject({ kind: 'crash', reason: 'internal', name: 'TypeError' });
    const json = Object.assign(new Error('FM_BUNDLE_INVALID: manifest.json is not valid UTF-8 JSON: Unexpected token', { cause: new SyntaxError('Unexpected token') }), { name: 'FlashmemError', code: 'FM_BUNDLE_INVALID' });
    expect(classifyBundleError(json)).toMatchObject({ kind: 'error', code: 'FM_BUNDLE_INVALID' });
    expect(bundleCrashSignature({ kind: 'crash', reason: 'hang', name: 'Hang', message: 'no result after 10 ms' })).toBe('hang');
  });
});
