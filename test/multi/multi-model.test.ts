/**
 * Multi-model bundles: several models in one bundle sharing GPU memory under one budget, with a
 * declared call sequence planned jointly. Every model's outputs equal those of its own
 * single-model bundle, whichever plan serves the call, and the measured peak stays within the budget.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writePipelineModels } from '../../fixtures/models/pipeline.js';
import { randomInputs } from '../../compiler/cli/inputs.js';
import { openBundle, type RuntimeSession } from '../../compiler/cli/bundle-session.js';
import { keepAlive, testDevice } from '../harness/gpu.js';
import { parseModelInputs } from '../../compiler/cli/compile-command.js';
import { compileMultiContents } from '../../compiler/compile-multi.js';
import { FlashmemError } from '../../compiler/errors.js';
import type { Manifest } from '../../schemas/manifest.js';
import type { Schedule } from '../../schemas/schedule.js';
import type { CallStats } from '../../runtime-template/runtime.js';
import { compileMultiOffThread, compileOffThread } from '../harness/compile-run.js';
import { tempDir } from '../harness/paths.js';

const KIB = 1024;

async function expectFlashmemError(fn: () => Promise<unknown>, code: string, pattern: RegExp): Promise<void> {
  await expect(fn()).rejects.toSatisfy((e: unknown) => e instanceof FlashmemError && e.code === code && pattern.test(e.message));
}
const BUDGET = 600 * KIB;
const SEQUENCE = ['det', 'cls', 'rec', 'cls'];

describe('multi-model bundles', () => {
  const tmp = tempDir('multi');
  let paths: ReturnType<typeof writePipelineModels>;
  const models = () => [
    { path: paths.detector, name: 'det' }, { path: paths.classifier, name: 'cls' }, { path: paths.recogniser, name: 'rec' },
  ];
  /** outputs of each model's own preload bundle, by model name */
  const expected = new Map<string, Record<string, Float32Array>>();
  const inputsOf = (manifest: Manifest, name: string, seed = 7) => randomInputs(manifest.models.find((m) => m.name === name)!, seed);

  beforeAll(async () => {
    paths = writePipelineModels(join(tmp.dir, 'models'));
    for (const m of models()) {
      const dir = join(tmp.dir, `single-${m.name}`);
      await compileOffThread(m.path, dir, { modelName: m.name });
      const { session, manifest } = await openBundle(dir, { device: await testDevice() });
      try {
        expected.set(m.name, await keepAlive(session.run(inputsOf(manifest, m.name))) as Record<string, Float32Array>);
      } finally {
        session.dispose();
      }
    }
  }, 300_000);

  afterAll(() => tmp.cleanup());

  async function open(dir: string): Promise<{ session: RuntimeSession; manifest: Manifest }> {
    return openBundle(dir, { device: await testDevice() });
  }

  async function expectRunMatches(session: RuntimeSession, manifest: Manifest, name: string): Promise<void> {
    const actual = await keepAlive(session.run(name, inputsOf(manifest, name)));
    for (const [output, values] of Object.entries(expected.get(name)!)) {
      const got = actual[output] as Float32Array;
      expect(got.length).toBe(values.length);
      values.forEach((v, i) => expect(Math.abs(got[i]! - v), `${name}.${output}[${i}]`).toBeLessThanOrEqual(1e-5 + 1e-4 * Math.abs(v)));
    }
  }

  it('a streamed bundle with a declared sequence: same outputs as the single-model bundles in and out of order, peak within a budget below the weights', async () => {
    const dir = join(tmp.dir, 'stream');
    const report = await compileMultiOffThread(models(), dir, { memoryBudget: BUDGET, sequence: SEQUENCE });
    const weightBytes = report.models.reduce((s, m) => s + m.weightBytes, 0);
    expect(BUDGET).toBeLessThan(weightBytes);
    expect(report.plannedPeakBytes).toBeLessThanOrEqual(BUDGET);
    const { session, manifest } = await open(dir);
    try {
      // two passes in the declared order, then calls out of order, then the declared order again
      const order = [...SEQUENCE, ...SEQUENCE, 'rec', 'det', 'rec', ...SEQUENCE];
      for (const name of order) await expectRunMatches(session, manifest, name);
      const stats = session.stats();
      const calls = (stats.calls as CallStats[]).map((c) => `${c.model}:${c.plan}${c.sequenceCall ?? ''}`);
      expect(calls).toEqual([
        'det:sequence0', 'cls:sequence1', 'rec:sequence2', 'cls:sequence3', 'det:sequence0', 'cls:sequence1', 'rec:sequence2', 'cls:sequence3',
        'rec:entry', 'det:sequence0', 'rec:entry', 'det:sequence0', 'cls:sequence1', 'rec:sequence2', 'cls:sequence3',
      ]);
      // an out-of-order call makes its own plan resident first; back in order, the sequence's
      expect((stats.calls as CallStats[])[8]!.reloaded).toBe(true);
      expect((stats.calls as CallStats[])[9]!.reloaded).toBe(true);
      expect((stats.calls as CallStats[])[1]!.reloaded).toBe(false);
      expect(stats.peakGpuBytes, 'measured peak GPU bytes over the whole sequence').toBeLessThanOrEqual(BUDGET);
      expect(stats.peakGpuBytes).toBe(stats.plannedPeakGpuBytes);
    } finally {
      session.dispose();
    }
  }, 300_000);

  it('the joint plan carries the next model\'s weights in the previous model\'s kernels', async () => {
    const { contents } = await compileMultiContents(models(), { memoryBudget: BUDGET, sequence: SEQUENCE });
    const sequence = contents.schedule.sequence!;
    expect(sequence.calls.map((c) => c.model)).toEqual(SEQUENCE);
    // a call stages (uploads) weights that the following call's kernels use
    const uploadedIn = (call: number) => new Set(sequence.calls[call]!.run.flatMap((s) => (s.op === 'upload' || s.op === 'copy' ? [s.weight] : [])));
    const crossing = [0, 1, 2].some((call) => [...uploadedIn(call)].some((w) => w.startsWith(`${call + 1}/`)));
    expect(crossing).toBe(true);
    // activations of different models share the arena: it is smaller than the sum of the models' arenas
    const arena = (buffers: { role: string; size: number }[]) => buffers.filter((b) => b.role === 'activations').reduce((s, b) => s + b.size, 0);
    expect(arena(sequence.buffers)).toBeLessThan(contents.schedule.models.reduce((s, m) => s + arena(m.buffers), 0));
  }, 120_000);

  it('preload: models reload on switch in shared memory and still give their own outputs', async () => {
    const dir = join(tmp.dir, 'preload');
    const report = await compileMultiOffThread(models(), dir, {});
    expect(report.strategy).toBe('preload');
    const { session, manifest } = await open(dir);
    try {
      for (const name of ['det', 'cls', 'cls', 'rec', 'det']) await expectRunMatches(session, manifest, name);
      const calls = session.stats().calls as CallStats[];
      expect(calls.map((c) => c.reloaded)).toEqual([false, true, false, true, true]);
      expect(calls.every((c) => c.plan === 'entry')).toBe(true);
      expect(session.stats().peakGpuBytes).toBe(session.stats().plannedPeakGpuBytes);
    } finally {
      session.dispose();
    }
  }, 300_000);

  it('identical weights across models are stored once', async () => {
    const one = await compileMultiContents([{ path: paths.classifier, name: 'a' }]);
    const two = await compileMultiContents([{ path: paths.classifier, name: 'a' }, { path: paths.classifier, name: 'b' }]);
    const bytes = (c: typeof one) => c.contents.shards.reduce((s, shard) => s + shard.size, 0);
    expect(bytes(two)).toBe(bytes(one));
    expect(two.contents.models.map((m) => m.name)).toEqual(['a', 'b']);
  });

  it('refuses bad model lists and sequences with a clear error', async () => {
    await expectFlashmemError(() => compileMultiContents([{ path: paths.detector, name: 'x' }, { path: paths.classifier, name: 'x' }]), 'FM_BAD_ARGUMENT', /two models are named "x"/);
    await expectFlashmemError(() => compileMultiContents(models(), { memoryBudget: BUDGET, sequence: ['det', 'nope'] }), 'FM_BAD_ARGUMENT', /"nope", which is not among the compiled models/);
    await expectFlashmemError(() => compileMultiContents(models(), { sequence: ['det'] }), 'FM_BAD_ARGUMENT', /--sequence plans streaming across models/);
    await expectFlashmemError(() => compileMultiContents([{ path: paths.detector, name: 'a b' }]), 'FM_BAD_ARGUMENT', /model name "a b"/);
  });

  it('an unqualified --input-shape applies to the models that have that input; one no model has is refused with every model\'s inputs', async () => {
    // only the detector has "image": the classifier must not be asked to fix it
    const [det, cls] = parseModelInputs([`${paths.detector}=det`, `${paths.classifier}=cls`], ['image=1x3x64x64']);
    const compiled = await compileMultiContents([det!, cls!]);
    expect(compiled.contents.models.map((m) => m.name)).toEqual(['det', 'cls']);
    const [det2, cls2] = parseModelInputs([`${paths.detector}=det`, `${paths.classifier}=cls`], ['zz:x=1x2']);
    await expectFlashmemError(() => compileMultiContents([det2!, cls2!]), 'FM_BAD_ARGUMENT', /"zz:x", which is no model's input .*"det": "image"; "cls": "crop"/);
  });

  it('errors from one model name it, and budget errors name the budget the user gave', async () => {
    await expectFlashmemError(() => compileMultiContents([{ path: paths.detector, name: 'det', inputShapes: { image: [1, 3, 60, 64] } }, { path: paths.classifier, name: 'cls' }]),
      'FM_BAD_ARGUMENT', /^FM_BAD_ARGUMENT: model "det" \(.*detector\.onnx\): input shape \[1, 3, 60, 64\] for "image"/);
    await expectFlashmemError(() => compileMultiContents(models(), { memoryBudget: 32 * KIB }), 'FM_BAD_ARGUMENT', /model "det" does not fit the memory budget of 32768 bytes, which leaves it \d+ bytes .*smallest feasible budget/);
    await expectFlashmemError(() => compileMultiContents(models(), { memoryBudget: 64 }), 'FM_BAD_ARGUMENT', /a memory budget of 64 bytes does not even hold the models' output readback buffers \(\d+ bytes\)/);
  });

  it('a tampered sequence (calls not following its models) is refused by the runtime', async () => {
    const dir = join(tmp.dir, 'tampered');
    await compileMultiOffThread(models(), dir, { memoryBudget: BUDGET, sequence: SEQUENCE });
    const schedulePath = join(dir, 'schedule.json');
    const schedule = JSON.parse(readFileSync(schedulePath, 'utf8')) as Schedule;
    schedule.sequence!.models[1] = 'rec';
    writeFileSync(schedulePath, JSON.stringify(schedule));
    // re-sign the schedule so that only the cross-reference check can catch it
    const manifestPath = join(dir, 'manifest.json');
    const manifest = JSON.parse(readFileSync(manifestPath, 'utf8')) as Manifest;
    const { createHash } = await import('node:crypto');
    const bytes = readFileSync(schedulePath);
    Object.assign(manifest.files.find((f) => f.path === 'schedule.json')!, { size: bytes.length, sha256: createHash('sha256').update(bytes).digest('hex') });
    writeFileSync(manifestPath, JSON.stringify(manifest));
    await expect(open(dir)).rejects.toSatisfy((e: unknown) => (e as { code?: string }).code === 'FM_BUNDLE_INVALID' && /calls do not follow sequence.models/.test((e as Error).message));
  }, 120_000);
});

describe('multi-model CLI arguments', () => {
  it('names models by file stem or path=name, and scopes --input-shape by model', () => {
    // 'input:0' has a colon but names no model: a shared shape for an input of that name
    const inputs = parseModelInputs(['m/a.onnx', 'n/b.onnx=second'], ['x=1x3', 'second:x=2x4', 'input:0=5']);
    expect(inputs).toEqual([
      { path: 'm/a.onnx', name: 'a', inputShapes: {}, sharedInputShapes: { x: [1, 3], 'input:0': [5] } },
      { path: 'n/b.onnx', name: 'second', inputShapes: { x: [2, 4] }, sharedInputShapes: { x: [1, 3], 'input:0': [5] } },
    ]);
  });

  it('rejects malformed shapes', () => {
    expect(() => parseModelInputs(['a.onnx'], ['a:x=1xq'])).toThrow(FlashmemError);
  });
});
