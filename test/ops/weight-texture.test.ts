/**
 * Conv / MatMul / Gemm with weights in the 2.5D texture layout (rgba32float texture_2d_array):
 * the texture kernel variants against onnxruntime-node, texel packing, array-layer spill and
 * fallback to buffers when the texture does not fit the target.
 */
import { describe, expect, it } from 'vitest';
import { expectMatchesOrt, runNodeOnGpu, type GpuRunOptions, type HarnessInput, type SingleNodeCase } from '../harness/single-node.js';
import { randomFloats } from '../../fixtures/onnx-builder.js';
import { DEFAULT_LIMITS } from '../../compiler/target/limits.js';
import { type KernelSpec } from '../../compiler/kernel/types.js';
import { packTexels, textureShapeFor } from '../../compiler/kernel/texture-layout.js';

let seed = 100;
function tensor(shape: number[], constant = false): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed++, -1, 1), constant };
}

function conv(x: number[], w: number[], attrs: SingleNodeCase['attrs'] = {}, bias = true): SingleNodeCase {
  return { opType: 'Conv', opset: 13, attrs, inputs: [tensor(x), tensor(w, true), ...(bias ? [tensor([w[0]!], true)] : [])] };
}

/** Runs `c` with the texture layout against onnxruntime and returns the kernels lowering emitted. */
async function expectTextureMatches(c: SingleNodeCase, options: GpuRunOptions = {}): Promise<KernelSpec[]> {
  let kernels: KernelSpec[] = [];
  await expectMatchesOrt(c, 1e-3, 1e-3, { weightLayout: 'texture', ...options, onKernels: (k) => { kernels = [...k]; } });
  return kernels;
}

function texturesBound(kernels: readonly KernelSpec[]): number {
  return kernels.flatMap((k) => k.bindings).filter((b) => b.texture).length;
}

describe('texture layout: Conv', () => {
  const cases: [string, SingleNodeCase][] = [
    ['3x3 pad 1 with bias', conv([1, 8, 10, 10], [16, 8, 3, 3], { pads: [1, 1, 1, 1] })],
    ['1x1 (reduction of input channels only)', conv([1, 16, 7, 7], [8, 16, 1, 1], {}, false)],
    ['reduction not a multiple of 4 (3 channels x 3x3)', conv([2, 3, 9, 9], [5, 3, 3, 3], { pads: [1, 1, 1, 1] })],
    ['stride 2, dilation 2, asymmetric pads', conv([1, 4, 13, 11], [6, 4, 3, 3], { strides: [2, 2], dilations: [2, 2], pads: [0, 1, 2, 1] })],
    ['groups (2) and depthwise-like (8)', conv([1, 8, 9, 9], [6, 4, 3, 3], { group: 2, pads: [1, 1, 1, 1] })],
    ['depthwise stride 2', conv([1, 8, 9, 9], [8, 1, 3, 3], { group: 8, strides: [2, 2], pads: [1, 1, 1, 1] })],
    ['1-D', conv([1, 4, 20], [6, 4, 5], { pads: [2, 2] })],
    ['3-D', conv([1, 2, 5, 6, 6], [4, 2, 3, 3, 3], { pads: [1, 1, 1, 1, 1, 1] })],
  ];
  for (const [name, c] of cases) {
    it(name, async () => {
      const kernels = await expectTextureMatches(c);
      expect(texturesBound(kernels), 'the texture variant ran').toBe(1);
      expect(kernels[0]!.wgsl).toContain('texture_2d_array<f32>');
    });
  }

  it('with a fused activation', async () => {
    const c = conv([1, 4, 6, 6], [8, 4, 3, 3], { pads: [1, 1, 1, 1] });
    const [tex] = await runNodeOnGpu(c, { weightLayout: 'texture' });
    const [buf] = await runNodeOnGpu(c, { weightLayout: 'buffer' });
    // same math, different summation order
    for (let i = 0; i < buf!.data.length; i++) expect(Math.abs(tex!.data[i]! - buf!.data[i]!)).toBeLessThan(1e-4);
  });

  it('rows spill into array layers beyond the height limit', async () => {
    const limits = { ...DEFAULT_LIMITS, maxTextureDimension2D: 16 };
    const kernels = await expectTextureMatches(conv([1, 4, 6, 6], [40, 4, 3, 3], { pads: [1, 1, 1, 1] }), { limits });
    const texture = kernels[0]!.bindings.find((b) => b.texture)!.texture!;
    expect(texture).toEqual({ width: 9, height: 16, layers: 3 });
  });

  it('falls back to the buffer kernel when a row is wider than the target allows', async () => {
    const limits = { ...DEFAULT_LIMITS, maxTextureDimension2D: 8 };
    const kernels = await expectTextureMatches(conv([1, 8, 6, 6], [4, 8, 3, 3], { pads: [1, 1, 1, 1] }), { limits });
    expect(texturesBound(kernels)).toBe(0);
  });
});

describe('texture layout: MatMul and Gemm', () => {
  const cases: [string, SingleNodeCase][] = [
    ['MatMul [6,12] x [12,10]', { opType: 'MatMul', inputs: [tensor([6, 12]), tensor([12, 10], true)] }],
    ['MatMul K not a multiple of 4', { opType: 'MatMul', inputs: [tensor([5, 7]), tensor([7, 9], true)] }],
    ['MatMul batched A, shared B', { opType: 'MatMul', inputs: [tensor([2, 3, 5, 16]), tensor([16, 8], true)] }],
    ['MatMul gemv', { opType: 'MatMul', inputs: [tensor([1, 64]), tensor([64, 33], true)] }],
    ['Gemm transB with bias', { opType: 'Gemm', attrs: { transB: 1 }, inputs: [tensor([3, 20]), tensor([10, 20], true), tensor([10], true)] }],
    ['Gemm transA, alpha, beta', { opType: 'Gemm', attrs: { transA: 1, alpha: 0.5, beta: { float: 2 } }, inputs: [tensor([8, 4]), tensor([8, 6], true), tensor([1, 6], true)] }],
  ];
  for (const [name, c] of cases) {
    it(name, async () => {
      const kernels = await expectTextureMatches(c);
      expect(texturesBound(kernels), 'the texture variant ran').toBe(1);
    });
  }

  it('a runtime B keeps the buffer kernel', async () => {
    const kernels = await expectTextureMatches({ opType: 'MatMul', inputs: [tensor([4, 8]), tensor([8, 4])] });
    expect(texturesBound(kernels)).toBe(0);
  });
});

describe('texel packing', () => {
  it('puts 4 consecutive reduction values in a texel, pads rows, spills rows into layers', () => {
    const shape = textureShapeFor(5, 6, { ...DEFAULT_LIMITS, maxTextureDimension2D: 2 });
    expect(shape).toEqual({ width: 2, height: 2, layers: 3 });
    const texels = packTexels(shape as { width: number; height: number; layers: number }, 5, 6, (row, r) => row * 10 + r + 1);
    expect(texels.length).toBe(3 * 2 * 2 * 4);
    // row 0: values 1..6 then two zeros of padding
    expect(Array.from(texels.subarray(0, 8))).toEqual([1, 2, 3, 4, 5, 6, 0, 0]);
    // row 4 is layer 2, y 0; row 5 (absent) is zero
    expect(Array.from(texels.subarray(32, 40))).toEqual([41, 42, 43, 44, 45, 46, 0, 0]);
    expect(Array.from(texels.subarray(40, 48)).every((v) => v === 0)).toBe(true);
  });

  it('refuses shapes beyond the layer limit', () => {
    expect(textureShapeFor(100, 4, { ...DEFAULT_LIMITS, maxTextureDimension2D: 4, maxTextureArrayLayers: 8 })).toHaveProperty('unfit');
  });
});
