/**
 * fuse-matmul-bias: MatMul + Add(constant per-column bias) becomes one MatMulBias node whose
 * kernels add the bias on store (a following Relu folds in too); other Adds stay. Bundles with the
 * fused node match onnxruntime, on the software profile's kernels and on a real GPU profile's
 * (blocked GEMM with K chunks, split-K gemv).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, randomFloats, type ModelSpec, type NodeSpec } from '../../fixtures/onnx-builder.js';
import { importOnnx } from '../../compiler/frontend/onnx.js';
import { runPipeline } from '../../compiler/passes/pipeline.js';
import { DEFAULT_LIMITS } from '../../compiler/target/limits.js';
import { resolveProfile } from '../../compiler/profile/load.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { compareWithOrt } from '../harness/reference.js';
import { tempDir } from '../harness/paths.js';

const f32 = 'float32' as const;

interface LinearCase { rows: number[]; k: number; n: number; biasShape: number[]; biasFirst?: boolean; relu?: boolean; productIsOutput?: boolean }

function linear(c: LinearCase): ModelSpec {
  const nodes: NodeSpec[] = [
    { opType: 'MatMul', inputs: ['x', 'w'], outputs: ['xw'] },
    { opType: 'Add', inputs: c.biasFirst ? ['b', 'xw'] : ['xw', 'b'], outputs: [c.relu ? 'pre' : 'y'] },
  ];
  if (c.relu) nodes.push({ opType: 'Relu', inputs: ['pre'], outputs: ['y'] });
  return {
    opset: 13,
    inputs: [{ name: 'x', dtype: f32, shape: [...c.rows, c.k] }],
    outputs: [{ name: 'y', dtype: f32 }, ...(c.productIsOutput ? [{ name: 'xw', dtype: f32 }] : [])],
    initializers: [
      { name: 'w', dtype: f32, shape: [c.k, c.n], data: randomFloats(c.k * c.n, 3) },
      { name: 'b', dtype: f32, shape: c.biasShape, data: randomFloats(c.biasShape.reduce((a, d) => a * d, 1), 4) },
    ],
    nodes,
  };
}

const opTypes = (c: LinearCase) =>
  runPipeline(importOnnx(buildModel(linear(c))), { limits: DEFAULT_LIMITS }).state.graph.nodes.map((n) => (n.fusedActivation ? `${n.opType}+${n.fusedActivation.opType}` : n.opType));

describe('fuse-matmul-bias', () => {
  it('fuses MatMul + bias (either operand order, [N] or [1, N]) and then the Relu', () => {
    expect(opTypes({ rows: [2, 5], k: 16, n: 24, biasShape: [24], relu: true })).toEqual(['MatMulBias+Relu']);
    expect(opTypes({ rows: [5], k: 16, n: 24, biasShape: [1, 24], biasFirst: true })).toEqual(['MatMulBias']);
  });

  it('keeps the Add when the product has another reader or the bias varies by row', () => {
    expect(opTypes({ rows: [5], k: 16, n: 24, biasShape: [24], productIsOutput: true })).toEqual(['MatMul', 'Add']);
    expect(opTypes({ rows: [5], k: 16, n: 24, biasShape: [5, 24] })).toEqual(['MatMul', 'Add']);
  });

  const cases: [string, LinearCase, string | undefined][] = [
    ['3-D input, Relu, software kernels', { rows: [2, 5], k: 16, n: 24, biasShape: [24], relu: true }, undefined],
    ['blocked GEMM with K chunks (real-GPU profile)', { rows: [70], k: 300, n: 66, biasShape: [66], relu: true }, 'h100-vulkan'],
    ['split-K gemv (real-GPU profile), bias first', { rows: [1], k: 600, n: 40, biasShape: [1, 40], biasFirst: true }, 'h100-vulkan'],
  ];
  for (const [name, c, profile] of cases) {
    it(`${name}: matches onnxruntime`, async () => {
      const tmp = tempDir('matmul-bias');
      const path = join(tmp.dir, 'model.onnx');
      writeFileSync(path, buildModel(linear(c)));
      const bundle = await compileAndOpen(path, profile ? { profile: resolveProfile(profile) } : {});
      try {
        expect(opTypes(c)[0]).toMatch(/^MatMulBias/);
        expect((await compareWithOrt(path, bundle)).violation).toBeLessThanOrEqual(1);
      } finally {
        bundle.close();
        tmp.cleanup();
      }
    }, 300_000);
  }
});
