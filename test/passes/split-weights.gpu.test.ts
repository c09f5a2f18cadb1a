/**
 * split-large-weights on WebGPU: models with every weight split give onnxruntime's outputs, a
 * streaming budget that a whole table exceeds becomes feasible, and gpt-neo-tiny with its
 * embedding and LM head split matches end to end. (The IR side: split-weights.test.ts.)
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serializeInline } from '../../fixtures/families/builder.js';
import { CONFIGS } from '../../fixtures/families/configs.js';
import { familyGraphs } from '../../fixtures/families/generate.js';
import { optimise } from '../../compiler/compile.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { runOrt } from '../harness/ort.js';
import { tempDir } from '../harness/paths.js';
import { maxViolation } from '../harness/single-node.js';
import { ids, largestBoundWeight, T, tiedModel, V, writeModel as writeModelIn } from './split-weights-models.js';

const tmp = tempDir('split-weights-gpu');
afterAll(() => tmp.cleanup());
const writeModel = (name: string, spec: Parameters<typeof writeModelIn>[2]) => writeModelIn(tmp.dir, name, spec);

describe('split-large-weights', () => {
  it('gives the outputs of onnxruntime with every weight split', async () => {
    const { path, bytes } = writeModel('tied-run', tiedModel());
    const bundle = await compileAndOpen(path, { maxWeightBytes: 2048 });
    try {
      const feed = ids(7, V, T);
      const outputs = await bundle.run({ ids: BigInt64Array.from(feed.map(BigInt)) });
      const ref = await runOrt(bytes, { ids: { dtype: 'int64', shape: [1, T], data: feed } });
      for (const name of ['logits', 'hidden']) {
        expect(maxViolation(Array.from(outputs[name] as Float32Array), Array.from(ref[name]!.data as Float32Array), 1e-4, 1e-4), name).toBeLessThanOrEqual(1);
      }
      // each Gather range and each Gemm column range is its own kernel
      expect(bundle.report.kernels).toBeGreaterThanOrEqual(4 + 4 + 3 + 4);
    } finally {
      bundle.close();
    }
  });

  it('makes a streaming budget feasible that a whole table exceeds', async () => {
    const { path, bytes } = writeModel('tied-stream', tiedModel());
    // with the 8 KiB staging ring and the readback buffer, the whole table (6400 B) needs 27888 B at
    // the LM head; in 1 KiB ranges the model needs 20976 B
    const budget = 24 * 1024;
    await expect(compileAndOpen(path, { strategy: 'stream', memoryBudget: budget, maxWeightBytes: 1 << 20 })).rejects.toMatchObject({ code: 'FM_BAD_ARGUMENT' });
    const bundle = await compileAndOpen(path, { strategy: 'stream', memoryBudget: budget, maxWeightBytes: 1024 });
    try {
      const feed = ids(9, V, T);
      const outputs = await bundle.run({ ids: BigInt64Array.from(feed.map(BigInt)) });
      const ref = await runOrt(bytes, { ids: { dtype: 'int64', shape: [1, T], data: feed } });
      expect(maxViolation(Array.from(outputs.logits as Float32Array), Array.from(ref.logits!.data as Float32Array), 1e-4, 1e-4)).toBeLessThanOrEqual(1);
      expect(bundle.session.stats().peakGpuBytes).toBeLessThanOrEqual(budget);
    } finally {
      bundle.close();
    }
  });

  it('gpt-neo-tiny with its embedding and LM head split matches onnxruntime', async () => {
    const cfg = CONFIGS['gpt-neo-tiny']!;
    if (cfg.family !== 'decoder') throw new Error('config');
    const graph = familyGraphs(cfg)[0]!;
    const bytes = serializeInline(graph);
    const path = join(tmp.dir, 'gpt-neo-tiny.onnx');
    writeFileSync(path, bytes);
    // wte is [256, 32] (32 KiB): 8 KiB splits it into 4 row / column ranges, and the MLP weights (16 KiB) into 2
    const maxWeightBytes = 8192;
    const { state } = optimise(path, { maxWeightBytes });
    expect(state.graph.nodes.filter((n) => n.opType === 'SplitGather')).toHaveLength(1);
    expect(state.graph.nodes.filter((n) => n.opType === 'SplitMatMul').length).toBeGreaterThan(1);
    expect(largestBoundWeight(state.program!)).toBeLessThanOrEqual(maxWeightBytes);
    const bundle = await compileAndOpen(path, { maxWeightBytes });
    try {
      const feed = ids(11, cfg.vocab, cfg.sequence);
      const outputs = await bundle.run({ input_ids: BigInt64Array.from(feed.map(BigInt)) });
      const ref = await runOrt(bytes, { input_ids: { dtype: 'int64', shape: [1, cfg.sequence], data: feed } });
      expect(maxViolation(Array.from(outputs.logits as Float32Array), Array.from(ref.logits!.data as Float32Array), 1e-3, 1e-3)).toBeLessThanOrEqual(1);
    } finally {
      bundle.close();
    }
  });
});
