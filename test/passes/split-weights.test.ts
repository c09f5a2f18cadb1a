/**
 * split-large-weights: constant weights over --max-weight-bytes become several constants
 * (MatMul/Gemm column ranges, Gather row ranges) whose kernels write one output in place. Checked
 * on the IR of a tied embedding + LM head (GPT style). No GPU: split-weights.gpu.test.ts runs the
 * split models against onnxruntime, under a streaming budget infeasible without splitting, and
 * gpt-neo-tiny end to end.
 */
import { afterAll, describe, expect, it } from 'vitest';
import { optimise } from '../../compiler/compile.js';
import { FlashmemError } from '../../compiler/errors.js';
import { DEFAULT_LIMITS } from '../../compiler/target/limits.js';
import { defaultMaxWeightBytes, rangeBoundaries, splitLargeWeights } from '../../compiler/passes/split-weights.js';
import { lazyConstant, isLazyConstant } from '../../compiler/ir/lazy-constant.js';
import { layoutShards } from '../../compiler/schedule/weights.js';
import { tempDir } from '../harness/paths.js';
import { largestBoundWeight, tiedModel, writeModel as writeModelIn } from './split-weights-models.js';

const tmp = tempDir('split-weights');
afterAll(() => tmp.cleanup());
const writeModel = (name: string, spec: Parameters<typeof writeModelIn>[2]) => writeModelIn(tmp.dir, name, spec);

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
