/**
 * split-large-weights: constant weights over --max-weight-bytes become several constants
 * (MatMul/Gemm column ranges, Gather row ranges) whose kernels write one output in place. Checked
 * on small shapes forced to split against onnxruntime, on a tied embedding + LM head (GPT style),
 * under a streaming budget that is infeasible without splitting, and on gpt-neo-tiny end to end.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel, randomFloats, seededRandom, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { serializeInline } from '../../fixtures/families/builder.js';
import { CONFIGS } from '../../fixtures/families/configs.js';
import { familyGraphs } from '../../fixtures/families/generate.js';
import { optimise } from '../../compiler/compile.js';
import { FlashmemError } from '../../compiler/errors.js';
import { DEFAULT_LIMITS } from '../../compiler/ops/op.js';
import { defaultMaxWeightBytes, rangeBoundaries, splitLargeWeights } from '../../compiler/passes/split-weights.js';
import { lazyConstant, isLazyConstant } from '../../compiler/codegen/lazy-constant.js';
import { layoutShards } from '../../compiler/schedule/weights.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { runOrt } from '../harness/ort.js';
import { tempDir } from '../harness/paths.js';
import { maxViolation } from '../harness/single-node.js';

const tmp = tempDir('split-weights');
afterAll(() => tmp.cleanup());

const V = 100, H = 16, T = 6, INNER = 70;

/**
 * GPT in miniature: a tied table [V, H] read by Gather (embedding) and by Gemm transB (LM head,
 * with alpha, beta and a bias), a MatMul [H, INNER] + bias + Relu, a MatMul [INNER, H].
 */
function tiedModel(): ModelSpec {
  return {
    opset: 17,
    inputs: [{ name: 'ids', dtype: 'int64', shape: [1, T] }],
    outputs: [{ name: 'logits', dtype: 'float32', shape: [T, V] }, { name: 'hidden', dtype: 'float32', shape: [T, INNER] }],
    initializers: [
      { name: 'wte', dtype: 'float32', shape: [V, H], data: randomFloats(V * H, 1) },
      { name: 'w1', dtype: 'float32', shape: [H, INNER], data: randomFloats(H * INNER, 2) },
      { name: 'b1', dtype: 'float32', shape: [INNER], data: randomFloats(INNER, 3) },
      { name: 'w2', dtype: 'float32', shape: [INNER, H], data: randomFloats(INNER * H, 4) },
      { name: 'bias', dtype: 'float32', shape: [V], data: randomFloats(V, 5) },
      { name: 'flat', dtype: 'int64', shape: [2], data: [T, H] },
    ],
    nodes: [
      { opType: 'Gather', inputs: ['wte', 'ids'], outputs: ['emb'], attrs: { axis: 0 } },
      { opType: 'Reshape', inputs: ['emb', 'flat'], outputs: ['h'] },
      { opType: 'MatMul', inputs: ['h', 'w1'], outputs: ['m1'] },
      { opType: 'Add', inputs: ['m1', 'b1'], outputs: ['a1'] },
      { opType: 'Relu', inputs: ['a1'], outputs: ['hidden'] },
      { opType: 'MatMul', inputs: ['hidden', 'w2'], outputs: ['h2'] },
      { opType: 'Gemm', inputs: ['h2', 'wte', 'bias'], outputs: ['logits'], attrs: { transB: 1, alpha: 0.5, beta: { float: 2 } } },
    ],
  };
}

function writeModel(name: string, spec: ModelSpec): { path: string; bytes: Uint8Array } {
  const bytes = buildModel(spec);
  const path = join(tmp.dir, `${name}.onnx`);
  writeFileSync(path, bytes);
  return { path, bytes };
}

function ids(seed: number, vocab: number, length: number): number[] {
  const r = seededRandom(seed);
  // both ends of the table: the first and last row ranges are exercised
  return Array.from({ length }, (_, i) => (i === 0 ? 0 : i === 1 ? vocab - 1 : Math.floor(r() * vocab)));
}

/** Bytes of the largest weight a kernel binds. */
function largestBoundWeight(program: NonNullable<ReturnType<typeof optimise>['state']['program']>): number {
  const bound = new Set(program.kernels.flatMap((k) => k.bindings));
  return Math.max(...[...program.tensors.values()].filter((t) => t.role === 'weight' && bound.has(t.id)).map((t) => t.bytes));
}

describe('range boundaries', () => {
  it('splits into equal ranges of whole 32-unit panels within the bound', () => {
    // 100 columns of 64 B under 2048 B: 32 columns per range
    expect(rangeBoundaries(100, 64, 2048)).toEqual([32, 64, 96]);
    // fits whole
    expect(rangeBoundaries(100, 64, 6400)).toEqual([]);
    // fewer than 32 units fit: aligned to minAlign
    expect(rangeBoundaries(16, 280, 2048, 4)).toEqual([4, 8, 12]);
    // not even minAlign units fit: left whole (lowering or the planner reports it)
    expect(rangeBoundaries(16, 1024, 2048, 4)).toEqual([]);
    // GPT-Neo 125M's wte (50257 rows of 3 KiB) under a quarter of 60 MiB
    const b = rangeBoundaries(50257, 768 * 4, 15 * 1048576);
    const widths = [...b, 50257].map((x, i) => x - (b[i - 1] ?? 0));
    expect(Math.max(...widths) * 768 * 4).toBeLessThanOrEqual(15 * 1048576);
    expect(widths.slice(0, -1).every((w) => w === widths[0] && w % 32 === 0)).toBe(true);
  });

  it('defaults to the binding limit, and a quarter of the budget when streaming', () => {
    expect(defaultMaxWeightBytes(DEFAULT_LIMITS)).toBe(DEFAULT_LIMITS.maxStorageBufferBindingSize);
    expect(defaultMaxWeightBytes(DEFAULT_LIMITS, 60 * 1048576)).toBe(15 * 1048576);
    expect(defaultMaxWeightBytes({ ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 1 << 20 }, 60 * 1048576)).toBe(1 << 20);
  });

  it('refuses a non-positive bound', () => {
    const graph = { name: 'g', opset: 17, inputs: [], outputs: [], values: new Map(), nodes: [] };
    expect(() => splitLargeWeights(graph, 0)).toThrow(FlashmemError);
  });
});

describe('lazy constants', () => {
  it('recompute on every read, and shard layout computes each once per pass', () => {
    let computed = 0;
    const t = lazyConstant('float32', [4], () => {
      computed++;
      return new Float32Array([1, 2, 3, 4]);
    });
    expect(isLazyConstant(t)).toBe(true);
    // 16-byte shards: a 16-byte weight at offset 8 spans two shards
    const layout = layoutShards([{ id: 'a', data: { dtype: 'float32', shape: [2], data: new Float32Array([9, 9]) } }, { id: 't', data: t }], 16);
    expect(computed).toBe(1); // hashed
    const bytes = layout.shards.flatMap((s) => [...s.pieces()].flatMap((p) => [...p]));
    expect(computed).toBe(2); // written once although it spans two shards
    expect(new Float32Array(Uint8Array.from(bytes).buffer)).toEqual(new Float32Array([9, 9, 1, 2, 3, 4]));
  });
});

describe('split-large-weights', () => {
  it('rewrites MatMul, Gemm transB and Gather on a tied table into per-range weights no larger than the bound', () => {
    const { path } = writeModel('tied-ir', tiedModel());
    const { state } = optimise(path, { maxWeightBytes: 2048 });
    const ops = state.graph.nodes.map((n) => n.opType);
    expect(ops.filter((o) => o === 'SplitMatMul')).toHaveLength(3);
    expect(ops).toContain('SplitGather');
    const gemm = state.graph.nodes.find((n) => n.attrs.op?.type === 'string' && n.attrs.op.value === 'Gemm')!;
    expect(gemm.attrs.column_splits).toEqual({ type: 'ints', value: [32, 64, 96] });
    expect(largestBoundWeight(state.program!)).toBeLessThanOrEqual(2048);
    // without the bound nothing is split
    const whole = optimise(path, {});
    expect(whole.state.graph.nodes.some((n) => n.opType.startsWith('Split'))).toBe(false);
    expect(largestBoundWeight(whole.state.program!)).toBeGreaterThan(2048);
  });

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

describe('compile progress', () => {
  it('names the phase and the shard bytes written', async () => {
    const { progressText, progressBar } = await import('../../compiler/cli/progress.js');
    expect(progressText({ phase: 'pass', pass: 'split-large-weights', index: 9, count: 12 }, 1500)).toMatch(/pass 10\/12 split-large-weights 1\.5 s/);
    expect(progressText({ phase: 'write', doneBytes: 512 * 1048576, totalBytes: 1024 * 1048576 }, 0)).toMatch(/^\[#{12}\.{12}\] writing shards 512 MiB \/ 1024 MiB/);
    // nothing on a non-TTY stream or with --quiet
    expect(progressBar({ isTTY: false } as NodeJS.WriteStream, false)).toBeUndefined();
    expect(progressBar({ isTTY: true } as NodeJS.WriteStream, true)).toBeUndefined();
  });
});
