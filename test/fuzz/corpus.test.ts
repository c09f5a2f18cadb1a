/**
 * The fuzz regression suite: every committed corpus entry (fuzz/corpus/) and every saved crasher
 * (fuzz/crashers/) compiles to exactly the FlashmemError its sidecar names, mentioning the
 * offending node or tensor (or compiles, where the sidecar says `"ok": true`); entries marked
 * `knownCrash` are skipped with their reason printed. A short fuzz run with a fixed seed then
 * must find no crasher, and the executor's watchdog must report a hang as one.
 */
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { expectationMismatch, listCases, loadCase, runCase, type CaseFile } from '../../fuzz/cases.js';
import { Executor, fastTmpRoot } from '../../fuzz/exec.js';
import { formatStats, runFuzz } from '../../fuzz/fuzz.js';
import { CASES } from '../../fuzz/make-corpus.js';
import { CORPUS_DIR, FUZZ_DIR } from '../../fuzz/seeds.js';
import { buildModel } from '../../fixtures/onnx-builder.js';

const tmp = fastTmpRoot('flashmemc-fuzz-test-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

function regressionTests(cases: CaseFile[]) {
  for (const c of cases) {
    if (c.sidecar.knownCrash) {
      it.skip(`${c.name} (known crash, not fixed yet: ${c.sidecar.reason ?? 'see its sidecar'})`, () => {});
      console.warn(`[fuzz corpus] SKIPPED ${c.name}: knownCrash — ${c.sidecar.reason ?? 'see its sidecar'}`);
      continue;
    }
    it(c.name, () => {
      const result = runCase(tmp, c.name, loadCase(c));
      expect(expectationMismatch(c.sidecar, result), `${path.relative(FUZZ_DIR, c.onnxPath)} (${c.sidecar.category ?? c.sidecar.crash?.name ?? ''})`).toBeUndefined();
    });
  }
}

describe('fuzz corpus', () => {
  const corpus = listCases(CORPUS_DIR);

  it('holds every case make-corpus.ts builds, within the size limits', () => {
    expect(corpus.map((c) => c.name).sort()).toEqual(CASES.map((c) => c.name).sort());
    const sizes = corpus.map((c) => loadCase(c).model.length);
    expect(Math.max(...sizes)).toBeLessThan(64 * 1024);
    expect(sizes.reduce((a, b) => a + b, 0)).toBeLessThan(1024 * 1024);
    for (const c of corpus) expect(c.sidecar.code ?? c.sidecar.ok, `${c.name} sidecar`).toBeTruthy();
  });

  it('is what make-corpus.ts builds today (regenerate with `npx tsx fuzz/make-corpus.ts`)', () => {
    for (const c of CASES) {
      const committed = corpus.find((k) => k.name === c.name)!;
      expect(Buffer.from(loadCase(committed).model).equals(Buffer.from(c.build().model)), `${c.name}.onnx`).toBe(true);
      expect({ code: committed.sidecar.code, mentions: committed.sidecar.mentions, ok: committed.sidecar.ok }, `${c.name}.expect.json`)
        .toEqual({ code: c.expect.code, mentions: c.expect.mentions, ok: c.expect.ok });
    }
  });

  regressionTests(corpus);
});

describe('fuzz crashers', () => {
  const crashers = listCases(path.join(FUZZ_DIR, 'crashers'));
  if (crashers.length === 0) it('(none saved)', () => {});
  regressionTests(crashers);
});

describe('fuzzer', () => {
  it('finds no crasher in 1000 executions with a fixed seed', async () => {
    const stats = await runFuzz({ seed: 20240611, maxExecs: 1000, seconds: 100, conformance: false, outDir: undefined });
    expect(stats.executions).toBe(1000);
    expect(stats.crashers, formatStats(stats)).toEqual([]);
    // the mutants reach past the parser: some compile, some fail in shape inference
    expect(stats.outcomes.ok ?? 0).toBeGreaterThan(0);
    expect(stats.outcomes.FM_SHAPE ?? 0).toBeGreaterThan(0);
  }, 120_000);

  it('reports an execution over the time limit as a hang and recovers', async () => {
    // ConstantOfShape of 2^24 elements folds on the host: far longer than 1 ms
    const slow = buildModel({
      inputs: [], outputs: [{ name: 'y', dtype: 'float32' }],
      initializers: [{ name: 's', dtype: 'int64', shape: [1], data: [2 ** 24] }],
      nodes: [{ opType: 'ConstantOfShape', inputs: ['s'], outputs: ['y'] }],
    });
    const exec = new Executor({ timeoutMs: 1 });
    try {
      const r = await exec.run({ model: slow, files: [] });
      expect(r.outcome).toMatchObject({ kind: 'crash', reason: 'hang' });
      exec.timeoutMs = 10_000;
      const again = await exec.run({ model: new Uint8Array([1, 2, 3]), files: [] });
      expect(again.outcome).toMatchObject({ kind: 'error', code: 'FM_ONNX_PARSE' });
      expect(exec.restarts).toBe(1);
    } finally {
      await exec.close();
    }
  }, 60_000);
});
