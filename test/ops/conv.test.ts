import { afterEach, describe, expect, it } from 'vitest';
import { expectMatchesOrt, maxViolation, runNodeOnGpu, runNodeOnOrt, type HarnessInput, type SingleNodeCase } from '../harness/single-node.js';
import { randomFloats } from '../../fixtures/onnx-builder.js';
import { convOp, convTransposeOp, lowerConvWithTiles, type ConvTiles } from '../../compiler/ops/conv/index.js';
import type { FusedActivation } from '../../compiler/ir/types.js';
import type { OpDef } from '../../compiler/ops/op.js';
import type { KernelChoices } from '../../compiler/target/limits.js';

let seed = 1;
function tensor(shape: number[], options: { constant?: boolean; lo?: number; hi?: number } = {}): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed++, options.lo ?? -1, options.hi ?? 1), constant: options.constant };
}
const weights = (shape: number[]) => tensor(shape, { constant: true });

function conv(x: number[], w: number[], attrs: SingleNodeCase['attrs'] = {}, bias = true, opset = 13): SingleNodeCase {
  const inputs = [tensor(x), weights(w)];
  if (bias) inputs.push(weights([w[0]!]));
  return { opType: 'Conv', opset, attrs, inputs };
}

function convTranspose(x: number[], w: number[], attrs: SingleNodeCase['attrs'] = {}, bias = true, opset = 13): SingleNodeCase {
  const group = typeof attrs.group === 'number' ? attrs.group : 1;
  const inputs = [tensor(x), weights(w)];
  if (bias) inputs.push(weights([w[1]! * group]));
  return { opType: 'ConvTranspose', opset, attrs, inputs };
}

/**
 * Runs `c` on the GPU with `activation` fused into the op's kernel (the harness has no fusion,
 * so the op's lowering is wrapped to see ctx.activation) and compares with onnxruntime's
 * unfused output passed through `reference`.
 */
async function expectFusedMatches(def: OpDef, c: SingleNodeCase, activation: FusedActivation, reference: (v: number) => number): Promise<void> {
  const original = def.lower!;
  (def as { lower: OpDef['lower'] }).lower = (ctx) => original.call(def, { ...ctx, activation });
  try {
    const [gpu] = await runNodeOnGpu(c);
    const [ref] = await runNodeOnOrt(c);
    const expected = ref!.data.map(reference);
    expect(gpu!.type.shape).toEqual(ref!.dims);
    expect(maxViolation(gpu!.data, expected)).toBeLessThanOrEqual(1);
    // the activation really changed something, so the check above is not vacuous
    expect(maxViolation(ref!.data, expected)).toBeGreaterThan(1);
  } finally {
    (def as { lower: OpDef['lower'] }).lower = original;
  }
}

/** Runs `c` through the harness with Conv lowered at explicit tile sizes (the ones heavy layers pick). */
async function expectTilesMatch(c: SingleNodeCase, tiles: ConvTiles): Promise<void> {
  const original = convOp.lower!;
  (convOp as { lower: OpDef['lower'] }).lower = (ctx) => lowerConvWithTiles(ctx, tiles);
  try {
    await expectMatchesOrt(c);
  } finally {
    (convOp as { lower: OpDef['lower'] }).lower = original;
  }
}

afterEach(() => { seed = 1; });

describe('Conv matches onnxruntime', () => {
  it('2-D 3x3, pads, bias, channel count not a multiple of the tile', () =>
    expectMatchesOrt(conv([1, 5, 9, 11], [7, 5, 3, 3], { pads: [1, 1, 1, 1] })));
  it('batch 2, strides, asymmetric pads, dilations, no bias', () =>
    expectMatchesOrt(conv([2, 6, 13, 10], [12, 6, 3, 2], { strides: [2, 1], pads: [0, 1, 2, 1], dilations: [2, 1] }, false)));
  it('many output channels (16-channel tiles), 7x7 stride 2 first layer', () =>
    expectMatchesOrt(conv([1, 3, 23, 21], [32, 3, 7, 7], { strides: [2, 2], pads: [3, 3, 3, 3], kernel_shape: [7, 7] })));
  it('group 2 (AlexNet style)', () =>
    expectMatchesOrt(conv([1, 8, 7, 7], [10, 4, 3, 3], { group: 2, pads: [1, 1, 1, 1] })));
  it('group 3 with 1x1 kernels (ShuffleNet style)', () =>
    expectMatchesOrt(conv([1, 12, 6, 6], [24, 4, 1, 1], { group: 3 })));
  it('depthwise', () =>
    expectMatchesOrt(conv([1, 6, 9, 9], [6, 1, 3, 3], { group: 6, pads: [1, 1, 1, 1] })));
  it('depthwise with channel multiplier 2 and stride 2', () =>
    expectMatchesOrt(conv([1, 5, 10, 9], [10, 1, 3, 3], { group: 5, pads: [1, 1, 1, 1], strides: [2, 2] })));
  it('pointwise 1x1 (vec4 GEMM path), pixel count not a multiple of the tile', () =>
    expectMatchesOrt(conv([2, 16, 6, 6], [24, 16, 1, 1])));
  it('1x1 over 7x7 (pixel count not divisible by 4)', () =>
    expectMatchesOrt(conv([1, 20, 7, 7], [9, 20, 1, 1])));
  it('1x1 stride 2 (ResNet downsample)', () =>
    expectMatchesOrt(conv([1, 8, 9, 9], [16, 8, 1, 1], { strides: [2, 2] })));
  for (const autoPad of ['SAME_UPPER', 'SAME_LOWER', 'VALID'] as const) {
    it(`auto_pad ${autoPad} with stride 2 on an odd input`, () =>
      expectMatchesOrt(conv([1, 3, 9, 8], [4, 3, 4, 3], { auto_pad: autoPad, strides: [2, 2] })));
  }
  it('auto_pad SAME_LOWER, stride 1, even kernel', () =>
    expectMatchesOrt(conv([1, 2, 7, 8], [3, 2, 4, 2], { auto_pad: 'SAME_LOWER' })));
  it('1-D', () => expectMatchesOrt(conv([2, 4, 17], [6, 4, 5], { strides: [2], pads: [2, 1] })));
  it('3-D', () => expectMatchesOrt(conv([1, 3, 5, 6, 7], [4, 3, 3, 2, 3], { strides: [1, 2, 1], pads: [1, 0, 1, 1, 1, 0] })));
  it('weights and bias as runtime tensors (packed on the GPU)', () =>
    expectMatchesOrt({ opType: 'Conv', attrs: { pads: [1, 0, 1, 0], group: 2 }, inputs: [tensor([1, 4, 6, 5]), tensor([6, 2, 3, 2]), tensor([6])] }));
  it('16-channel x 8-pixel tiles (heavy layers), channels not a multiple of 16', () =>
    expectTilesMatch(conv([1, 6, 10, 16], [20, 6, 3, 3], { pads: [1, 1, 1, 1] }), { ocTile: 16, pxTile: 8 }));
  it('8-channel x 16-pixel pointwise tiles (heavy layers)', () =>
    expectTilesMatch(conv([1, 12, 6, 10], [16, 12, 1, 1]), { ocTile: 8, pxTile: 16 }));
  it('opset 1 model', () => expectMatchesOrt(conv([1, 2, 5, 5], [3, 2, 3, 3], { pads: [1, 1, 1, 1] }, true, 1)));
  it('applies a fused activation to every stored output', () =>
    expectFusedMatches(convOp, conv([1, 5, 6, 7], [9, 5, 3, 3], { pads: [1, 1, 1, 1] }), { opType: 'Relu', attrs: {} }, (v) => Math.max(v, 0)));
  it('applies a fused activation with vec4 stores (row length divisible by 4)', () =>
    expectFusedMatches(convOp, conv([1, 4, 8, 8], [8, 4, 3, 3], { pads: [1, 1, 1, 1] }), { opType: 'Sigmoid', attrs: {} }, (v) => 1 / (1 + Math.exp(-v))));
  it('applies a fused activation in the pointwise kernel', () =>
    expectFusedMatches(convOp, conv([1, 8, 4, 4], [8, 8, 1, 1]), { opType: 'Clip', attrs: { min: { type: 'float', value: -0.2 }, max: { type: 'float', value: 0.3 } } }, (v) => Math.min(0.3, Math.max(-0.2, v))));
});

describe('Conv as an implicit GEMM (real-GPU profiles) matches onnxruntime', () => {
  const BLOCKED: KernelChoices = { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: 64 };
  /** runs `c` with the blocked kernel choices and returns the labels of the kernels it ran */
  async function implicit(c: SingleNodeCase): Promise<string[]> {
    let labels: string[] = [];
    await expectMatchesOrt(c, 1e-3, 1e-3, { kernelChoices: BLOCKED, onKernels: (ks) => { labels = ks.map((k) => k.label); } });
    return labels;
  }
  it('3x3, pads, bias; K (5 x 9) not a multiple of 4 and channels not of the block', async () =>
    expect(await implicit(conv([1, 5, 9, 11], [20, 5, 3, 3], { pads: [1, 1, 1, 1] }))).toEqual(['conv2d_3x3_igemm']));
  it('batch 2, strides, asymmetric pads, dilations, no bias', async () =>
    expect(await implicit(conv([2, 6, 13, 10], [24, 6, 3, 2], { strides: [2, 1], pads: [0, 1, 2, 1], dilations: [2, 1] }, false))).toEqual(['conv2d_3x2_igemm']));
  it('K split across workgroups (partial sums, then the epilogue)', async () =>
    expect(await implicit(conv([1, 64, 8, 8], [32, 64, 3, 3], { pads: [1, 1, 1, 1] }))).toEqual(['conv2d_3x3_igemm', 'conv2d_3x3_igemm_sum']));
  it('pointwise 1x1 read in place as vec4 (36 pixels)', async () => {
    let wgsl = '';
    await expectMatchesOrt(conv([1, 16, 6, 6], [24, 16, 1, 1]), 1e-3, 1e-3, { kernelChoices: BLOCKED, onKernels: (ks) => { wgsl = ks[0]!.wgsl; } });
    expect(wgsl).toMatch(/var<storage, read(_write)?> b: array<vec4<f32>>/);
  });
  it('pointwise 1x1 over 7x7 (scalar pixels)', async () =>
    expect(await implicit(conv([1, 20, 7, 7], [32, 20, 1, 1]))).toEqual(['conv2d_1x1_igemm']));
  it('1x1 stride 2 (ResNet downsample) goes through im2col', async () =>
    expect(await implicit(conv([1, 16, 9, 9], [32, 16, 1, 1], { strides: [2, 2] }))).toEqual(['conv2d_1x1_igemm']));
  it('1-D and 3-D', async () => {
    expect(await implicit(conv([2, 4, 40], [16, 4, 5], { strides: [2], pads: [2, 1] }))).toEqual(['conv1d_5_igemm']);
    expect(await implicit(conv([1, 3, 5, 6, 7], [16, 3, 3, 2, 3], { strides: [1, 2, 1], pads: [1, 0, 1, 1, 1, 0] }))).toEqual(['conv3d_3x2x3_igemm']);
  });
  it('runtime weights', async () =>
    expect(await implicit({ opType: 'Conv', opset: 13, attrs: { pads: [1, 1, 1, 1] }, inputs: [tensor([1, 4, 6, 6]), tensor([16, 4, 3, 3]), tensor([16])] })).toEqual(['conv2d_3x3_igemm']));
  it('grouped convs and tiny outputs keep the direct kernels', async () => {
    expect(await implicit(conv([1, 8, 7, 7], [16, 4, 3, 3], { group: 2, pads: [1, 1, 1, 1] }))).not.toContain('conv2d_3x3_igemm');
    expect(await implicit(conv([1, 5, 9, 11], [7, 5, 3, 3], { pads: [1, 1, 1, 1] }))).not.toContain('conv2d_3x3_igemm');
  });
  it('applies a fused activation in the epilogue', async () => {
    const relu: FusedActivation = { opType: 'Relu', attrs: {} };
    const original = convOp.lower!;
    (convOp as { lower: OpDef['lower'] }).lower = (ctx) => original.call(convOp, { ...ctx, activation: relu });
    try {
      const c = conv([1, 6, 8, 8], [16, 6, 3, 3], { pads: [1, 1, 1, 1] });
      const [gpu] = await runNodeOnGpu(c, { kernelChoices: BLOCKED });
      const [ref] = await runNodeOnOrt(c);
      expect(maxViolation(gpu!.data, ref!.data.map((v) => Math.max(0, v)))).toBeLessThanOrEqual(1);
      expect(ref!.data.some((v) => v < 0)).toBe(true);
    } finally {
      (convOp as { lower: OpDef['lower'] }).lower = original;
    }
  });
});

describe('Conv shape errors', () => {
  const shapeOf = (c: SingleNodeCase) => () => convOp.inferTypes({
    node: { name: 'conv0', opType: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attrs: Object.fromEntries(Object.entries(c.attrs ?? {}).map(([k, v]) => [k, Array.isArray(v) ? { type: 'ints', value: v as number[] } : { type: 'int', value: v as number }])) },
    opset: 13, inputs: c.inputs.map((i) => ({ dtype: i.dtype, shape: i.shape })), consts: [],
  });
  it('rejects mismatched channels', () => expect(shapeOf(conv([1, 5, 8, 8], [4, 3, 3, 3], {}, false))).toThrow(/FM_SHAPE.*"conv0".*5 channels/));
  it('rejects kernel_shape that disagrees with W', () => expect(shapeOf(conv([1, 3, 8, 8], [4, 3, 3, 3], { kernel_shape: [5, 5] }, false))).toThrow(/FM_SHAPE.*kernel_shape/));
  it('rejects 4 spatial axes', () => expect(shapeOf(conv([1, 1, 3, 3, 3, 3], [1, 1, 1, 1, 1, 1], {}, false))).toThrow(/FM_UNSUPPORTED_OP/));
  it('rejects a kernel larger than the padded input', () => expect(shapeOf(conv([1, 1, 3, 3], [1, 1, 5, 5], {}, false))).toThrow(/FM_SHAPE/));
  it('rejects pads of the wrong length', () => expect(shapeOf(conv([1, 1, 5, 5], [1, 1, 3, 3], { pads: [1, 1] }, false))).toThrow(/FM_ONNX_INVALID.*pads/));
});

describe('ConvTranspose matches onnxruntime', () => {
  it('stride 2, pads, output_padding, bias', () =>
    expectMatchesOrt(convTranspose([1, 4, 5, 6], [4, 3, 3, 3], { strides: [2, 2], pads: [1, 1, 1, 1], output_padding: [1, 1] })));
  it('group 2, dilation 2, no bias', () =>
    expectMatchesOrt(convTranspose([1, 4, 5, 5], [4, 2, 3, 3], { group: 2, dilations: [2, 2] }, false)));
  it('stride 3 with asymmetric pads (PyTorch export attribute set)', () =>
    expectMatchesOrt(convTranspose([2, 3, 4, 3], [3, 5, 3, 2], { strides: [3, 2], pads: [1, 0, 0, 1], dilations: [1, 1], group: 1, kernel_shape: [3, 2], output_padding: [0, 1] })));
  it('output_shape smaller than the full extent (pads derived)', () =>
    expectMatchesOrt(convTranspose([1, 2, 4, 4], [2, 3, 3, 3], { strides: [2, 2], output_shape: [8, 7] })));
  it('output_shape larger than the full extent', () =>
    expectMatchesOrt(convTranspose([1, 2, 4, 4], [2, 3, 3, 3], { strides: [2, 2], output_shape: [9, 10] })));
  for (const autoPad of ['SAME_UPPER', 'SAME_LOWER'] as const) {
    it(`auto_pad ${autoPad}`, () => expectMatchesOrt(convTranspose([1, 2, 3, 4], [2, 2, 4, 3], { strides: [2, 2], auto_pad: autoPad })));
  }
  it('1-D', () => expectMatchesOrt(convTranspose([1, 3, 7], [3, 2, 4], { strides: [3] })));
  it('3-D', () => expectMatchesOrt(convTranspose([1, 2, 3, 4, 3], [2, 2, 2, 3, 2], { strides: [2, 1, 2] })));
  it('runtime weights', () =>
    expectMatchesOrt({ opType: 'ConvTranspose', attrs: { strides: [2, 2] }, inputs: [tensor([1, 3, 4, 4]), tensor([3, 5, 2, 2])] }));
  it('applies a fused activation', () =>
    expectFusedMatches(convTransposeOp, convTranspose([1, 2, 3, 3], [2, 3, 3, 3], { strides: [2, 2] }), { opType: 'LeakyRelu', attrs: { alpha: { type: 'float', value: 0.1 } } }, (v) => (v >= 0 ? v : 0.1 * v)));
});
