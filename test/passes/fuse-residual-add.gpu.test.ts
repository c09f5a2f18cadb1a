/**
 * fuse-residual-add: Add(MatMulBias(h, W, b), R) becomes MatMulBias(h, W, b, R), whose kernels add
 * R on store after any fused activation. Bundles with the fused node match onnxruntime on every
 * kernel variant that stores through the epilogue: the software profile's tiled kernel, the blocked
 * GEMM with K chunks (partial sums, then the reduction adds R), the split-K gemv, and the tiled
 * kernel's K chunks past the loop bound.
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

interface ResidualCase {
  rows: number[];
  k: number;
  /** the residual R = x2 (a second input), or = x itself when k equals n */
  residual: 'input' | 'same';
  relu?: boolean;
  residualFirst?: boolean;
  /** the product also read elsewhere: nothing may fuse */
  productIsOutput?: boolean;
}

function block(c: ResidualCase, n = c.residual === 'same' ? c.k : 24): ModelSpec {
  const r = c.residual === 'same' ? 'x' : 'r';
  const nodes: NodeSpec[] = [
    { opType: 'MatMul', inputs: ['x', 'w'], outputs: ['xw'] },
    { opType: 'Add', inputs: ['xw', 'b'], outputs: [c.relu ? 'pre' : 'lin'] },
    ...(c.relu ? [{ opType: 'Relu', inputs: ['pre'], outputs: ['lin'] }] : []),
    { opType: 'Add', inputs: c.residualFirst ? [r, 'lin'] : ['lin', r], outputs: ['y'] },
  ];
  return {
    opset: 13,
    inputs: [{ name: 'x', dtype: f32, shape: [...c.rows, c.k] }, ...(c.residual === 'input' ? [{ name: 'r', dtype: f32, shape: [...c.rows, n] }] : [])],
    outputs: [{ name: 'y', dtype: f32 }, ...(c.productIsOutput ? [{ name: 'lin', dtype: f32 }] : [])],
    initializers: [
      { name: 'w', dtype: f32, shape: [c.k, n], data: randomFloats(c.k * n, 3) },
      { name: 'b', dtype: f32, shape: [n], data: randomFloats(n, 4) },
    ],
    nodes,
  };
}

const nodesOf = (c: ResidualCase) => runPipeline(importOnnx(buildModel(block(c))), { limits: DEFAULT_LIMITS }).state.graph.nodes;
const opTypes = (c: ResidualCase) => nodesOf(c).map((n) => `${n.opType}${n.fusedActivation ? `+${n.fusedActivation.opType}` : ''}/${n.inputs.length}`);

describe('fuse-residual-add', () => {
  it('fuses the residual Add (either operand order) after the bias and the Relu', () => {
    expect(opTypes({ rows: [5], k: 16, residual: 'input', relu: true })).toEqual(['MatMulBias+Relu/4']);
    expect(opTypes({ rows: [5], k: 16, residual: 'input', residualFirst: true })).toEqual(['MatMulBias/4']);
  });
  it('keeps the Add when the Linear output has another reader', () => {
    expect(opTypes({ rows: [5], k: 16, residual: 'input', productIsOutput: true })).toEqual(['MatMulBias/3', 'Add/2']);
  });

  const cases: [string, ResidualCase, string | undefined][] = [
    ['software kernels, Relu before the residual', { rows: [2, 5], k: 16, residual: 'input', relu: true }, undefined],
    ['x + Linear(x): the residual is the MatMul\'s own input', { rows: [6], k: 32, residual: 'same' }, undefined],
    ['blocked GEMM with K chunks (real-GPU profile)', { rows: [70], k: 300, residual: 'input', relu: true }, 'h100-vulkan'],
    ['split-K gemv (real-GPU profile), chunked K', { rows: [1], k: 2100, residual: 'input' }, 'h100-vulkan'],
    ['tiled kernel with K chunks past the loop bound', { rows: [2], k: 17000, residual: 'input' }, undefined],
  ];
  for (const [name, c, profile] of cases) {
    it(`${name}: matches onnxruntime`, async () => {
      const tmp = tempDir('residual');
      const path = join(tmp.dir, 'model.onnx');
      writeFileSync(path, buildModel(block(c)));
      const bundle = await compileAndOpen(path, profile ? { profile: resolveProfile(profile) } : {});
      try {
        expect(opTypes(c)).toHaveLength(1);
        expect((await compareWithOrt(path, bundle)).violation).toBeLessThanOrEqual(1);
      } finally {
        bundle.close();
        tmp.cleanup();
      }
    }, 300_000);
  }
});
