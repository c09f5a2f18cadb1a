/** Models and helpers of the split-large-weights tests (split-weights.test.ts, split-weights.gpu.test.ts). */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { buildModel, randomFloats, seededRandom, type ModelSpec } from '../../fixtures/onnx-builder.js';
import type { optimise } from '../../compiler/compile.js';

export const V = 100, H = 16, T = 6, INNER = 70;

/**
 * GPT in miniature: a tied table [V, H] read by Gather (embedding) and by Gemm transB (LM head,
 * with alpha, beta and a bias), a MatMul [H, INNER] + bias + Relu, a MatMul [INNER, H].
 */
export function tiedModel(): ModelSpec {
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

export function writeModel(dir: string, name: string, spec: ModelSpec): { path: string; bytes: Uint8Array } {
  const bytes = buildModel(spec);
  const path = join(dir, `${name}.onnx`);
  writeFileSync(path, bytes);
  return { path, bytes };
}

export function ids(seed: number, vocab: number, length: number): number[] {
  const r = seededRandom(seed);
  // both ends of the table: the first and last row ranges are exercised
  return Array.from({ length }, (_, i) => (i === 0 ? 0 : i === 1 ? vocab - 1 : Math.floor(r() * vocab)));
}

/** Bytes of the largest weight a kernel binds. */
export function largestBoundWeight(program: NonNullable<ReturnType<typeof optimise>['state']['program']>): number {
  const bound = new Set(program.kernels.flatMap((k) => k.bindings));
  return Math.max(...[...program.tensors.values()].filter((t) => t.role === 'weight' && bound.has(t.id)).map((t) => t.bytes));
}
