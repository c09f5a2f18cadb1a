import { describe, expect, it } from 'vitest';
import { buildModel, randomFloats, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { importOnnx } from '../../compiler/frontend/onnx.js';
import { selectWeightLayouts } from '../../compiler/passes/select-weight-layout.js';
import { DEFAULT_LIMITS, type KernelChoices } from '../../compiler/target/limits.js';

const f32 = 'float32' as const;

function matmulGraph(M: number, K: number, N: number) {
  const spec: ModelSpec = {
    opset: 13,
    inputs: [{ name: 'x', dtype: f32, shape: [M, K] }],
    outputs: [{ name: 'y', dtype: f32 }],
    initializers: [{ name: 'w', dtype: f32, shape: [K, N], data: randomFloats(K * N, 1) }],
    nodes: [{ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }],
  };
  return importOnnx(buildModel(spec));
}

const GPU: KernelChoices = { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: 1024 };
const costs = { matmul: { textureOverBuffer: 0.5 } };

describe('weight layout selection with a real-GPU profile', () => {
  const decide = (M: number, K: number, N: number, kernelChoices?: KernelChoices) =>
    [...selectWeightLayouts(matmulGraph(M, K, N), { mode: 'auto', costs, limits: DEFAULT_LIMITS, kernelChoices }).values()][0]!;

  it('the profile ratio picks the texture when the buffer kernel is the register-tiled one', () => {
    expect(decide(128, 64, 96).layout).toBe('texture');
    expect(decide(128, 64, 96, { gemv: 'tiled', gemm: 'tiled' }).layout).toBe('texture');
    // 8 rows: neither a blocked GEMM nor a gemv, so the ratio still applies
    expect(decide(8, 300, 96, GPU).layout).toBe('texture');
  });

  it('keeps buffers where the blocked GEMM or the split-K gemv runs, whatever the measured ratio', () => {
    const blocked = decide(128, 64, 96, GPU);
    expect(blocked.layout).toBe('buffer');
    expect(blocked.reason).toMatch(/workgroup-tiled/);
    expect(decide(1, 300, 96, GPU).layout).toBe('buffer');
    expect(decide(1, 100, 96, GPU).layout).toBe('texture');
  });
});
