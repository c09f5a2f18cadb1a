/**
 * Reductions longer than llvmpipe lets one invocation loop (65,535 trips in all: kernel/limits.ts
 * MAX_LOOP_TRIPS) are split across invocations and still match onnxruntime: MatMul and Gemm with
 * K = 70,000 (other dimensions tiny). Operands are multiples of 1/4 in [-1, 1], so every sum is
 * exact in f32 whatever the order of additions: a truncated loop cannot hide in the tolerance.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, seededRandom, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { runOrt } from '../harness/ort.js';
import { maxViolation, expectFlashmemError } from '../harness/single-node.js';
import { tempDir } from '../harness/paths.js';
import { compileToContents } from '../../compiler/compile.js';

const K = 70_000;

function quarters(n: number, seed: number): Float32Array {
  const random = seededRandom(seed);
  return Float32Array.from({ length: n }, () => (Math.floor(random() * 9) - 4) / 4);
}

const f32 = (name: string, shape: number[]) => ({ name, dtype: 'float32' as const, shape });

interface Case { spec: ModelSpec; feeds: Record<string, { shape: number[]; data: Float32Array }> }

const CASES: Record<string, Case> = {
  'MatMul [2, K] x constant [K, 3]': {
    spec: {
      inputs: [f32('a', [2, K])], outputs: [f32('y', [2, 3])],
      initializers: [{ name: 'b', dtype: 'float32', shape: [K, 3], data: quarters(K * 3, 2) }],
      nodes: [{ opType: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
    },
    feeds: { a: { shape: [2, K], data: quarters(2 * K, 1) } },
  },
  'MatMul [1, K] x runtime [K, 5] (gemv)': {
    spec: { inputs: [f32('a', [1, K]), f32('b', [K, 5])], outputs: [f32('y', [1, 5])], nodes: [{ opType: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }] },
    feeds: { a: { shape: [1, K], data: quarters(K, 3) }, b: { shape: [K, 5], data: quarters(K * 5, 4) } },
  },
  'Gemm transB, alpha, beta, bias and Relu': {
    spec: {
      inputs: [f32('a', [3, K])], outputs: [f32('y', [3, 2])],
      initializers: [
        { name: 'b', dtype: 'float32', shape: [2, K], data: quarters(2 * K, 6) },
        { name: 'c', dtype: 'float32', shape: [2], data: [0.5, -0.25] },
      ],
      nodes: [
        { opType: 'Gemm', inputs: ['a', 'b', 'c'], outputs: ['g'], attrs: { transB: 1, alpha: { float: 0.5 }, beta: { float: 2 } } },
        { opType: 'Relu', inputs: ['g'], outputs: ['y'] },
      ],
    },
    feeds: { a: { shape: [3, K], data: quarters(3 * K, 5) } },
  },
};

describe('reductions longer than one invocation may loop', () => {
  for (const [name, { spec, feeds }] of Object.entries(CASES)) {
    it(`${name} with K = ${K} matches onnxruntime`, async () => {
      const tmp = tempDir('long-k');
      const path = join(tmp.dir, 'model.onnx');
      const model = buildModel({ opset: 17, ...spec });
      writeFileSync(path, model);
      const bundle = await compileAndOpen(path);
      try {
        const outputs = await bundle.run(Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, v.data])));
        const reference = await runOrt(model, Object.fromEntries(Object.entries(feeds).map(([k, v]) => [k, { dtype: 'float32', ...v }])));
        const expected = Array.from(reference.y!.data as Float32Array);
        expect(expected.some((v) => Math.abs(v) > 1)).toBe(true);
        expect(maxViolation(Array.from(outputs.y as Float32Array), expected, 1e-5, 1e-5)).toBeLessThanOrEqual(1);
      } finally {
        bundle.close();
        tmp.cleanup();
      }
    }, 120_000);
  }
});

describe('loops that cannot be split yet are refused, never truncated', () => {
  it('a Conv whose invocations would loop over 8,192 channels x 3x3 taps is FM_LIMIT naming the node', () => {
    const tmp = tempDir('long-conv');
    const path = join(tmp.dir, 'model.onnx');
    writeFileSync(path, buildModel({
      opset: 17, inputs: [f32('x', [1, 8192, 3, 3])], outputs: [f32('y', [1, 1, 1, 1])],
      initializers: [{ name: 'w', dtype: 'float32', shape: [1, 8192, 3, 3], data: quarters(8192 * 9, 7) }],
      nodes: [{ opType: 'Conv', inputs: ['x', 'w'], outputs: ['y'], name: 'wide_conv' }],
    }));
    try {
      expectFlashmemError(() => compileToContents(path), 'FM_LIMIT', /wide_conv.*loop iterations in one invocation/);
    } finally {
      tmp.cleanup();
    }
  });
});
