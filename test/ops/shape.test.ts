import { describe, expect, it } from 'vitest';
import { expectFlashmemError, expectMatchesOrt, toIrAttrs, maxViolation, runNodeOnOrt, type HarnessInput, type SingleNodeCase } from '../harness/single-node.js';
import { randomFloats, type AttrSpec } from '../../fixtures/onnx-builder.js';
import { opFor } from '../../compiler/ops/index.js';
import { makeConst } from '../../compiler/ir/tensor.js';
import { FlashmemError } from '../../compiler/errors.js';
import { DEFAULT_LIMITS } from '../../compiler/target/limits.js';
import { type LowerContext } from '../../compiler/ops/op.js';
import type { Attrs, ConstTensor, DType, Node, TensorType } from '../../compiler/ir/types.js';

// ---- helpers: run an OpDef's shape rule and fold on the CPU, exactly as the compiler's passes do

function nodeOf(c: SingleNodeCase, outputs?: string[]): Node {
  return {
    name: 'node', opType: c.opType, domain: '', attrs: toIrAttrs(c.attrs),
    inputs: c.inputs.map((inp, i) => (inp.omitted ? '' : `in${i}`)),
    outputs: outputs ?? Array.from({ length: c.outputs?.length ?? 1 }, (_, i) => `out${i}`),
  };
}

/** inferTypes with the case's constant inputs known (runtime inputs unknown). */
function inferCase(c: SingleNodeCase, outputs?: string[]): TensorType[] {
  const node = nodeOf(c, outputs);
  const consts = c.inputs.map((inp) => (inp.constant && !inp.omitted ? makeConst(inp.dtype, inp.shape, inp.data) : undefined));
  return opFor(node, c.opset ?? 17).inferTypes({ node, opset: c.opset ?? 17, inputs: c.inputs.map((i) => (i.omitted ? undefined : i)), consts });
}

/** fold with every input constant, or (onlyTypes) with input data unknown, as for Shape and Size. */
function foldCase(c: SingleNodeCase, onlyTypes = false): ConstTensor[] {
  const node = nodeOf(c);
  const opset = c.opset ?? 17;
  const consts = c.inputs.map((inp) => (inp.omitted || onlyTypes ? undefined : makeConst(inp.dtype, inp.shape, inp.data)));
  const ctx = { node, opset, inputs: c.inputs.map((i) => (i.omitted ? undefined : { dtype: i.dtype, shape: i.shape })), consts };
  const def = opFor(node, opset);
  if (onlyTypes) expect(def.foldNeedsOnlyTypes).toBe(true);
  const types = def.inferTypes(ctx);
  const folded = def.fold!(ctx, consts);
  expect(folded.map((t) => [t.dtype, t.shape])).toEqual(types.map((t) => [t.dtype, t.shape]));
  return folded;
}

/** The CPU fold agrees with onnxruntime in dtype, shape and values. */
async function expectFoldMatchesOrt(c: SingleNodeCase, onlyTypes = false): Promise<void> {
  const folded = foldCase(c, onlyTypes);
  const ref = await runNodeOnOrt(c);
  expect(folded.map((t) => t.shape)).toEqual(ref.map((r) => r.dims));
  expect(folded.map((t) => t.dtype)).toEqual(c.outputs ?? ['float32']);
  folded.forEach((t, i) => expect(maxViolation(t.data, ref[i]!.data, 1e-6, 1e-6)).toBeLessThanOrEqual(1));
}

/** Views: the harness checks the output shape against onnxruntime; fold is checked value by value. */
async function expectBoth(c: SingleNodeCase): Promise<void> {
  await expectMatchesOrt(c, 0, 0);
  await expectFoldMatchesOrt(c);
}

// ---- inputs

let seed = 100;
function floats(shape: number[]): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed++, -10, 10) };
}
function ints(shape: number[], dtype: DType = 'int64'): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, data: Array.from(randomFloats(n, seed++, -1000, 1000), Math.round) };
}
function consts(values: number[], dtype: DType = 'int64', shape = [values.length]): HarnessInput {
  return { dtype, shape, data: values, constant: true };
}

describe('Reshape', () => {
  const x = floats([2, 3, 4]);
  it('0 copies a dim and -1 is inferred (opset 13)', () => expectBoth({ opType: 'Reshape', opset: 13, inputs: [x, consts([0, -1])] }));
  it('opset 5 shape input, int64 data', () => expectBoth({ opType: 'Reshape', opset: 5, inputs: [ints([2, 6]), consts([3, -1, 2])], outputs: ['int64'] }));
  it('allowzero keeps a literal 0 (opset 14)', () =>
    expectBoth({ opType: 'Reshape', opset: 14, attrs: { allowzero: 1 }, inputs: [floats([0, 3]), consts([3, 0])] }));
  it('shape attribute before opset 5', () => {
    const types = inferCase({ opType: 'Reshape', opset: 4, attrs: { shape: [4, 0, -1] }, inputs: [x] });
    expect(types).toEqual(inferCase({ opType: 'Reshape', opset: 5, inputs: [x, consts([4, 0, -1])] }));
    expect(types[0]!.shape).toEqual([4, 3, 2]);
  });
  it('a runtime shape is rejected: shapes must be static', () =>
    expectFlashmemError(() => inferCase({ opType: 'Reshape', inputs: [x, ints([2])] }), 'FM_SHAPE', /node "node" \(Reshape\).*compile-time constant.*static shapes/));
  it('element count mismatch and double -1', () => {
    expectFlashmemError(() => inferCase({ opType: 'Reshape', inputs: [x, consts([5, -1])] }), 'FM_SHAPE', /-1/);
    expectFlashmemError(() => inferCase({ opType: 'Reshape', inputs: [x, consts([-1, -1])] }), 'FM_SHAPE', /more than one -1/);
    expectFlashmemError(() => inferCase({ opType: 'Reshape', inputs: [x, consts([5, 5])] }), 'FM_SHAPE', /24 elements/);
  });
});

describe('Flatten', () => {
  const x = floats([2, 3, 4, 5]);
  it('default axis 1 (opset 9)', () => expectBoth({ opType: 'Flatten', opset: 9, inputs: [x] }));
  it('axis 0 and axis = rank', async () => {
    await expectBoth({ opType: 'Flatten', opset: 9, attrs: { axis: 0 }, inputs: [x] });
    await expectBoth({ opType: 'Flatten', opset: 13, attrs: { axis: 4 }, inputs: [x] });
  });
  it('negative axis (opset 13), int64', () => expectBoth({ opType: 'Flatten', opset: 13, attrs: { axis: -2 }, inputs: [ints([2, 3, 4])], outputs: ['int64'] }));
  it('axis out of range', () => expectFlashmemError(() => inferCase({ opType: 'Flatten', attrs: { axis: 5 }, inputs: [x] }), 'FM_SHAPE', /axis 5/));
});

describe('Squeeze / Unsqueeze', () => {
  const x = floats([1, 3, 1, 2]);
  it('Squeeze axes attribute (opset 6)', () => expectBoth({ opType: 'Squeeze', opset: 6, attrs: { axes: [0] }, inputs: [x] }));
  it('Squeeze negative axes attribute (opset 11)', () => expectBoth({ opType: 'Squeeze', opset: 11, attrs: { axes: [-2, 0] }, inputs: [x] }));
  it('Squeeze axes input (opset 13)', () => expectBoth({ opType: 'Squeeze', opset: 13, inputs: [x, consts([2])] }));
  it('Squeeze without axes removes every unit dim', () => expectBoth({ opType: 'Squeeze', opset: 13, inputs: [ints([1, 3, 1, 2])], outputs: ['int64'] }));
  it('Squeeze of a non-unit axis', () =>
    expectFlashmemError(() => inferCase({ opType: 'Squeeze', opset: 13, inputs: [x, consts([1])] }), 'FM_SHAPE', /size is 3/));
  it('Unsqueeze axes attribute (opset 9)', () => expectBoth({ opType: 'Unsqueeze', opset: 9, attrs: { axes: [0, 3] }, inputs: [floats([3, 4])] }));
  it('Unsqueeze negative axes attribute (opset 11)', () => expectBoth({ opType: 'Unsqueeze', opset: 11, attrs: { axes: [-1] }, inputs: [floats([3, 4])] }));
  it('Unsqueeze axes input (opset 13), int64 scalar', () =>
    expectBoth({ opType: 'Unsqueeze', opset: 13, inputs: [consts([7], 'int64', []), consts([0])], outputs: ['int64'] }));
  it('Unsqueeze axes input with negative axes', () => expectBoth({ opType: 'Unsqueeze', opset: 13, inputs: [floats([3, 4]), consts([1, -1])] }));
  it('Unsqueeze with repeated axes', () =>
    expectFlashmemError(() => inferCase({ opType: 'Unsqueeze', opset: 13, inputs: [floats([3]), consts([0, -3])] }), 'FM_SHAPE', /repeat/));
});

describe('Identity / Dropout', () => {
  it('Identity', async () => {
    await expectBoth({ opType: 'Identity', inputs: [floats([2, 3])] });
    await expectBoth({ opType: 'Identity', inputs: [ints([4])], outputs: ['int64'] });
  });
  it('Dropout with ratio attribute (opset 9)', () => expectBoth({ opType: 'Dropout', opset: 9, attrs: { ratio: 0.5 }, inputs: [floats([2, 5])] }));
  it('Dropout with ratio and training_mode=false inputs (opset 13)', () =>
    expectBoth({ opType: 'Dropout', opset: 13, inputs: [floats([2, 5]), consts([0.3], 'float32', []), consts([0], 'bool', [])] }));
  it('a used mask output is unsupported', () =>
    expectFlashmemError(() => inferCase({ opType: 'Dropout', opset: 9, inputs: [floats([2])] }, ['y', 'mask']), 'FM_UNSUPPORTED_OP', /mask/));
  it('an empty mask output name is fine', () => expect(inferCase({ opType: 'Dropout', opset: 9, inputs: [floats([2])] }, ['y', ''])[0]!.shape).toEqual([2]));
  it('training mode is unsupported', () =>
    expectFlashmemError(() => inferCase({ opType: 'Dropout', opset: 13, inputs: [floats([2]), consts([0.5], 'float32', []), consts([1], 'bool', [])] }), 'FM_UNSUPPORTED_OP', /training_mode/));
});

describe('Shape / Size', () => {
  const x = floats([2, 3, 4, 5]);
  it('Shape folds from types alone', () => expectFoldMatchesOrt({ opType: 'Shape', opset: 13, inputs: [x], outputs: ['int64'] }, true));
  it('Shape start/end (opset 15), negative and out-of-range', async () => {
    await expectFoldMatchesOrt({ opType: 'Shape', opset: 15, attrs: { start: 1, end: -1 }, inputs: [x], outputs: ['int64'] }, true);
    await expectFoldMatchesOrt({ opType: 'Shape', opset: 15, attrs: { start: -10 }, inputs: [x], outputs: ['int64'] }, true);
    await expectFoldMatchesOrt({ opType: 'Shape', opset: 15, attrs: { start: 3, end: 1 }, inputs: [x], outputs: ['int64'] }, true);
  });
  it('Size folds from types alone', () => expectFoldMatchesOrt({ opType: 'Size', opset: 13, inputs: [x], outputs: ['int64'] }, true));
  it('Shape has no kernel: lowering names the node', () => {
    const node = nodeOf({ opType: 'Shape', inputs: [x] });
    const ctx = { node, opset: 17, inputs: [{ id: 'a', type: x }], outputs: [{ id: 'b', type: { dtype: 'int64', shape: [4] } }], limits: DEFAULT_LIMITS } as unknown as LowerContext;
    expectFlashmemError(() => opFor(node, 17).lower!(ctx), 'FM_UNSUPPORTED_OP', /node "node" \(Shape\).*static/);
  });
});

describe('Constant', () => {
  it('value tensor (float and int64)', async () => {
    await expectFoldMatchesOrt({ opType: 'Constant', opset: 9, attrs: { value: { tensor: { dtype: 'float32', shape: [2, 3], data: [1, 2.5, -3, 4, 5, 6] } } }, inputs: [] });
    await expectFoldMatchesOrt({ opType: 'Constant', opset: 9, attrs: { value: { tensor: { dtype: 'int64', shape: [3], data: [1, -2, 3] } } }, inputs: [], outputs: ['int64'] });
  });
  it('value_float / value_floats / value_int / value_ints (opset 12)', async () => {
    await expectFoldMatchesOrt({ opType: 'Constant', opset: 12, attrs: { value_float: { float: 2 } }, inputs: [] });
    await expectFoldMatchesOrt({ opType: 'Constant', opset: 12, attrs: { value_floats: { floats: [1, 2.5] } }, inputs: [] });
    await expectFoldMatchesOrt({ opType: 'Constant', opset: 12, attrs: { value_int: -7 }, inputs: [], outputs: ['int64'] });
    await expectFoldMatchesOrt({ opType: 'Constant', opset: 12, attrs: { value_ints: [3, 1, 4] }, inputs: [], outputs: ['int64'] });
  });
  it('sparse_value is unsupported and a value is required', () => {
    const node: Node = { name: 'c', opType: 'Constant', domain: '', inputs: [], outputs: ['y'], attrs: { sparse_value: { type: 'graph' } } };
    expectFlashmemError(() => opFor(node, 12).inferTypes({ node, opset: 12, inputs: [], consts: [] }), 'FM_UNSUPPORTED_OP', /sparse_value/);
    const empty: Node = { ...node, attrs: {} };
    expectFlashmemError(() => opFor(empty, 12).inferTypes({ node: empty, opset: 12, inputs: [], consts: [] }), 'FM_ONNX_INVALID', /exactly one/);
  });
});

describe('ConstantOfShape', () => {
  it('default float 0 (kernel and fold)', () => expectBoth({ opType: 'ConstantOfShape', opset: 9, inputs: [consts([2, 3])] }));
  it('int64 value', () =>
    expectBoth({ opType: 'ConstantOfShape', opset: 9, attrs: { value: { tensor: { dtype: 'int64', shape: [1], data: [-5] } } }, inputs: [consts([4])], outputs: ['int64'] }));
  it('float value, scalar output from an empty shape', () =>
    expectBoth({ opType: 'ConstantOfShape', opset: 9, attrs: { value: { tensor: { dtype: 'float32', shape: [1], data: [1.25] } } }, inputs: [consts([])] }));
  it('int32 value, zero-sized output', () =>
    expectBoth({ opType: 'ConstantOfShape', opset: 9, attrs: { value: { tensor: { dtype: 'int32', shape: [1], data: [3] } } }, inputs: [consts([2, 0])], outputs: ['int32'] }));
  it('a runtime shape is rejected', () => expectFlashmemError(() => inferCase({ opType: 'ConstantOfShape', inputs: [ints([2])] }), 'FM_SHAPE', /compile-time constant/));
});

describe('Range', () => {
  it('float', () => expectBoth({ opType: 'Range', opset: 11, inputs: [consts([0.5], 'float32', []), consts([3.2], 'float32', []), consts([0.25], 'float32', [])] }));
  it('int64 with a negative delta', () =>
    expectBoth({ opType: 'Range', opset: 11, inputs: [consts([10], 'int64', []), consts([-3], 'int64', []), consts([-4], 'int64', [])], outputs: ['int64'] }));
  it('int32, empty', () =>
    expectBoth({ opType: 'Range', opset: 11, inputs: [consts([5], 'int32', []), consts([2], 'int32', []), consts([1], 'int32', [])], outputs: ['int32'] }));
  it('delta 0 and runtime start are rejected', () => {
    expectFlashmemError(() => inferCase({ opType: 'Range', inputs: [consts([0], 'int64', []), consts([3], 'int64', []), consts([0], 'int64', [])] }), 'FM_SHAPE', /delta/);
    expectFlashmemError(() => inferCase({ opType: 'Range', inputs: [ints([], 'int64'), consts([3], 'int64', []), consts([1], 'int64', [])] }), 'FM_SHAPE', /start/);
  });
});
