import { describe, expect, it } from 'vitest';
import { expectMatchesOrt, maxViolation, runNodeOnOrt, type HarnessInput, type SingleNodeCase } from '../harness/single-node.js';
import { randomFloats, type AttrSpec } from '../../fixtures/onnx-builder.js';
import { findOp } from '../../compiler/ops/index.js';
import { makeConst } from '../../compiler/ir/tensor.js';
import type { Attrs, Node } from '../../compiler/ir/types.js';


let seed = 100;
function floats(shape: number[]): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed++, -5, 5) };
}

const omitted: HarnessInput = { dtype: 'float32', shape: [], data: [], omitted: true };
const emptyFloats: HarnessInput = { dtype: 'float32', shape: [0], data: [], constant: true };
const constFloats = (values: number[]): HarnessInput => ({ dtype: 'float32', shape: [values.length], data: values, constant: true });
const constInt64 = (values: number[]): HarnessInput => ({ dtype: 'int64', shape: [values.length], data: values, constant: true });

/** A Resize node in the input layout of its opset: [X, scales] (10), [X, roi, scales, sizes] (11+). */
function resize(opset: number, x: HarnessInput, target: { scales?: number[]; sizes?: number[] }, attrs: Record<string, AttrSpec> = {}): SingleNodeCase {
  if (opset < 11) return { opType: 'Resize', opset, attrs, inputs: [x, constFloats(target.scales!)] };
  // opset 11 requires roi and scales to be present (possibly empty); later opsets may omit them
  const absent = opset === 11 ? emptyFloats : omitted;
  const scales = target.scales ? constFloats(target.scales) : absent;
  const inputs = target.sizes ? [x, absent, scales, constInt64(target.sizes)] : [x, absent, scales];
  return { opType: 'Resize', opset, attrs, inputs };
}

const image = (): HarnessInput => floats([1, 2, 4, 5]);
const SCALES = { up: [1, 1, 2, 3], down: [1, 1, 0.5, 0.6], fractional: [1, 1, 1.7, 0.8] };
const COORDINATE_MODES = ['half_pixel', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn'];

describe('Resize nearest matches onnxruntime', () => {
  for (const coordinate of COORDINATE_MODES) {
    for (const nearest of ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil']) {
      for (const [name, scales] of Object.entries(SCALES)) {
        it(`${coordinate} / ${nearest} / ${name}`, () =>
          expectMatchesOrt(resize(13, image(), { scales }, { mode: 'nearest', coordinate_transformation_mode: coordinate, nearest_mode: nearest })));
      }
    }
  }
  it('scales of 1 copy the input', () => expectMatchesOrt(resize(13, image(), { scales: [1, 1, 1, 1] })));
  it('sizes input (opset 13)', () => expectMatchesOrt(resize(13, image(), { sizes: [1, 2, 7, 3] })));
  it('empty scales + sizes (opset 11)', () => expectMatchesOrt(resize(11, image(), { sizes: [1, 2, 9, 2] }, { coordinate_transformation_mode: 'asymmetric' })));
  it('int32 input', () =>
    expectMatchesOrt({ ...resize(13, { dtype: 'int32', shape: [1, 2, 3, 3], data: Array.from({ length: 18 }, (_, i) => i * 7 - 40) }, { scales: [1, 1, 2.5, 1.5] }), outputs: ['int32'] }));
  it('Resize-10 (asymmetric, legacy rounding) up and down', async () => {
    await expectMatchesOrt(resize(10, image(), { scales: [1, 1, 2, 1.5] }));
    await expectMatchesOrt(resize(10, image(), { scales: [1, 1, 0.5, 0.6] }));
  });
});

describe('Resize linear matches onnxruntime', () => {
  for (const coordinate of COORDINATE_MODES) {
    for (const [name, scales] of Object.entries(SCALES)) {
      it(`${coordinate} / ${name}`, () =>
        expectMatchesOrt(resize(13, image(), { scales }, { mode: 'linear', coordinate_transformation_mode: coordinate })));
    }
  }
  it('2-D input', () => expectMatchesOrt(resize(13, floats([5, 6]), { scales: [1.5, 0.7] }, { mode: 'linear' })));
  it('trilinear over a 5-D input', () =>
    expectMatchesOrt(resize(13, floats([1, 2, 3, 4, 5]), { scales: [1, 1, 2, 0.5, 1.4] }, { mode: 'linear', coordinate_transformation_mode: 'align_corners' })));
  it('NHWC layout (outermost and innermost scales 1)', () =>
    expectMatchesOrt(resize(13, floats([1, 4, 5, 3]), { scales: [1, 2, 1.5, 1] }, { mode: 'linear' })));
  it('sizes input, opset 11', () => expectMatchesOrt(resize(11, image(), { sizes: [1, 2, 3, 11] }, { mode: 'linear' })));
  it('Resize-10 linear', () => expectMatchesOrt(resize(10, image(), { scales: [1, 1, 2, 2.5] }, { mode: 'linear' })));
});

describe('Resize cubic matches onnxruntime', () => {
  for (const coordinate of COORDINATE_MODES) {
    for (const [name, scales] of Object.entries(SCALES)) {
      it(`${coordinate} / ${name}`, () =>
        expectMatchesOrt(resize(13, image(), { scales }, { mode: 'cubic', coordinate_transformation_mode: coordinate })));
    }
  }
  it('cubic_coeff_a -0.5 with exclude_outside', () =>
    expectMatchesOrt(resize(13, image(), { scales: [1, 1, 1.6, 2] }, { mode: 'cubic', cubic_coeff_a: -0.5, exclude_outside: 1 })));
  it('exclude_outside when downsampling', () =>
    expectMatchesOrt(resize(13, floats([1, 1, 9, 8]), { scales: [1, 1, 0.4, 0.75] }, { mode: 'cubic', exclude_outside: 1 })));
});

describe('Resize opset 18 / 19 features match onnxruntime', () => {
  it('axes attribute with scales for those axes only', () =>
    expectMatchesOrt(resize(18, image(), { scales: [1.5, 2] }, { mode: 'linear', axes: [2, 3] })));
  it('negative axes with sizes', () =>
    expectMatchesOrt(resize(18, image(), { sizes: [3, 7] }, { mode: 'nearest', axes: [-1, -2] })));
  for (const policy of ['not_larger', 'not_smaller']) {
    it(`keep_aspect_ratio_policy ${policy}`, () =>
      expectMatchesOrt(resize(18, image(), { sizes: [7, 13] }, { mode: 'linear', axes: [2, 3], keep_aspect_ratio_policy: policy })));
  }
  it('half_pixel_symmetric (opset 19)', () =>
    expectMatchesOrt(resize(19, floats([1, 1, 5, 7]), { scales: [1, 1, 1.7, 0.6] }, { mode: 'linear', coordinate_transformation_mode: 'half_pixel_symmetric' })));
  it('antialias=0 is accepted', () => expectMatchesOrt(resize(18, image(), { scales: [1, 1, 0.5, 0.5] }, { mode: 'linear', antialias: 0 })));
});

describe('Upsample matches onnxruntime', () => {
  it('opset 7, scales attribute, nearest', () =>
    expectMatchesOrt({ opType: 'Upsample', opset: 7, attrs: { scales: { floats: [1, 1, 2, 3] } }, inputs: [image()] }));
  it('opset 7, scales attribute, linear', () =>
    expectMatchesOrt({ opType: 'Upsample', opset: 7, attrs: { mode: 'linear', scales: { floats: [1, 1, 2, 1.5] } }, inputs: [image()] }));
  it('opset 9, scales input, nearest and linear', async () => {
    await expectMatchesOrt({ opType: 'Upsample', opset: 9, inputs: [image(), constFloats([1, 1, 3, 2])] });
    await expectMatchesOrt({ opType: 'Upsample', opset: 9, attrs: { mode: 'linear' }, inputs: [image(), constFloats([1, 1, 2.5, 2])] });
  });
});

describe('Resize reports what it cannot compile', () => {
  it('antialias=1', async () => {
    await expect(expectMatchesOrt(resize(18, image(), { scales: [1, 1, 0.5, 0.5] }, { mode: 'linear', antialias: 1 })))
      .rejects.toThrow(/FM_UNSUPPORTED_OP.*"node".*antialias/);
  });
  it('tf_crop_and_resize', async () => {
    await expect(expectMatchesOrt(resize(13, image(), { scales: [1, 1, 2, 2] }, { coordinate_transformation_mode: 'tf_crop_and_resize' })))
      .rejects.toThrow(/FM_UNSUPPORTED_OP.*tf_crop_and_resize/);
  });
  it('scales known only at run time', async () => {
    const c = resize(13, image(), { scales: [1, 1, 2, 2] });
    c.inputs[2] = { ...c.inputs[2]!, constant: false };
    await expect(expectMatchesOrt(c)).rejects.toThrow(/FM_UNSUPPORTED_OP.*scales input must be a compile-time constant/);
  });
  it('a scales count that does not match the rank', async () => {
    await expect(expectMatchesOrt(resize(13, image(), { scales: [2, 2] }))).rejects.toThrow(/FM_SHAPE.*2 values but 4 axes/);
  });
});

describe('Resize fold() matches onnxruntime', () => {
  async function expectFoldMatches(c: SingleNodeCase): Promise<void> {
    const node: Node = { name: 'node', opType: c.opType, domain: '', inputs: c.inputs.map((inp, i) => (inp.omitted ? '' : `in${i}`)), outputs: ['out0'], attrs: irAttrs(c.attrs ?? {}) };
    const consts = c.inputs.map((inp) => (inp.omitted ? undefined : makeConst(inp.dtype, inp.shape, inp.data)));
    const types = c.inputs.map((inp) => (inp.omitted ? undefined : { dtype: inp.dtype, shape: inp.shape }));
    const [folded] = findOp(c.opType)!.fold!({ node, opset: c.opset ?? 17, inputs: types, consts }, consts);
    const [ref] = await runNodeOnOrt(c);
    expect(folded!.shape).toEqual(ref!.dims);
    expect(maxViolation(folded!.data, ref!.data)).toBeLessThanOrEqual(1);
  }
  function irAttrs(attrs: Record<string, AttrSpec>): Attrs {
    return Object.fromEntries(Object.entries(attrs).map(([k, v]) => [k, typeof v === 'string' ? { type: 'string', value: v } : { type: 'float', value: v as number }])) as Attrs;
  }
  it('nearest, linear and cubic', async () => {
    await expectFoldMatches(resize(13, image(), { scales: [1, 1, 1.7, 0.8] }, { mode: 'nearest', nearest_mode: 'ceil' }));
    await expectFoldMatches(resize(13, image(), { sizes: [1, 2, 3, 8] }, { mode: 'linear', coordinate_transformation_mode: 'align_corners' }));
    await expectFoldMatches(resize(13, image(), { scales: [1, 1, 2, 0.6] }, { mode: 'cubic' }));
  });
});
