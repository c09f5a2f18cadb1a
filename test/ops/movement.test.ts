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

function nodeOf(c: SingleNodeCase): Node {
  return {
    name: 'node', opType: c.opType, domain: '', attrs: toIrAttrs(c.attrs),
    inputs: c.inputs.map((inp, i) => (inp.omitted ? '' : `in${i}`)),
    outputs: Array.from({ length: c.outputs?.length ?? 1 }, (_, i) => `out${i}`),
  };
}

/** inferTypes with the case's constant inputs known (runtime inputs unknown). */
function inferCase(c: SingleNodeCase): TensorType[] {
  const node = nodeOf(c);
  const consts = c.inputs.map((inp) => (inp.constant && !inp.omitted ? makeConst(inp.dtype, inp.shape, inp.data) : undefined));
  return opFor(node, c.opset ?? 17).inferTypes({ node, opset: c.opset ?? 17, inputs: c.inputs.map((i) => (i.omitted ? undefined : i)), consts });
}

/** fold with every input constant. */
function foldCase(c: SingleNodeCase, override: (ConstTensor | undefined)[] = []): ConstTensor[] {
  const node = nodeOf(c);
  const opset = c.opset ?? 17;
  const consts = c.inputs.map((inp, i) => override[i] ?? (inp.omitted ? undefined : makeConst(inp.dtype, inp.shape, inp.data)));
  const ctx = { node, opset, inputs: c.inputs.map((i, k) => (i.omitted ? undefined : consts[k])), consts };
  const def = opFor(node, opset);
  const types = def.inferTypes(ctx);
  const folded = def.fold!(ctx, consts);
  expect(folded.map((t) => [t.dtype, t.shape])).toEqual(types.map((t) => [t.dtype, t.shape]));
  return folded;
}

/** The CPU fold agrees with onnxruntime in dtype, shape and values. */
async function expectFoldMatchesOrt(c: SingleNodeCase, override: (ConstTensor | undefined)[] = []): Promise<void> {
  const folded = foldCase(c, override);
  const ref = await runNodeOnOrt(c);
  expect(folded.map((t) => t.shape)).toEqual(ref.map((r) => r.dims));
  expect(folded.map((t) => t.dtype)).toEqual(c.outputs ?? ['float32']);
  folded.forEach((t, i) => expect(maxViolation(t.data, ref[i]!.data, 1e-6, 1e-6)).toBeLessThanOrEqual(1));
}

/** GPU kernel and CPU fold both agree with onnxruntime. */
async function expectBoth(c: SingleNodeCase): Promise<void> {
  await expectMatchesOrt(c, 0, 0);
  await expectFoldMatchesOrt(c);
}

// ---- inputs

let seed = 1;
function floats(shape: number[]): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed++, -10, 10) };
}
function ints(shape: number[], dtype: DType = 'int64', constant = false): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype, shape, data: Array.from(randomFloats(n, seed++, -1000, 1000), Math.round), constant };
}
function consts(values: number[], dtype: DType = 'int64', shape = [values.length]): HarnessInput {
  return { dtype, shape, data: values, constant: true };
}
const omitted: HarnessInput = { dtype: 'int64', shape: [0], data: [], omitted: true };
const INT64_MAX_SAFE = 2 ** 63 - 1024; // INT64_MAX rounded to a double that survives BigInt conversion
const INT64_MIN = -(2 ** 63);

describe('Concat', () => {
  it('axis 1, three inputs', () => expectBoth({ opType: 'Concat', opset: 13, attrs: { axis: 1 }, inputs: [floats([2, 3, 4]), floats([2, 1, 4]), floats([2, 2, 4])] }));
  it('negative axis, opset 11', () => expectBoth({ opType: 'Concat', opset: 11, attrs: { axis: -1 }, inputs: [floats([2, 3, 2]), floats([2, 3, 5])] }));
  it('int64 shape vectors, runtime and constant', () =>
    expectBoth({ opType: 'Concat', opset: 9, attrs: { axis: 0 }, inputs: [ints([2]), consts([-1, 7, 3])], outputs: ['int64'] }));
  it('an empty input and a single input', async () => {
    await expectBoth({ opType: 'Concat', opset: 13, attrs: { axis: 1 }, inputs: [floats([2, 0, 3]), floats([2, 2, 3])] });
    await expectBoth({ opType: 'Concat', opset: 13, attrs: { axis: 0 }, inputs: [floats([3, 2])] });
  });
  it('axis defaults to 1 before opset 4 and is required after', () => {
    const c: SingleNodeCase = { opType: 'Concat', opset: 1, inputs: [floats([2, 3]), floats([2, 4])] };
    expect(inferCase(c)[0]!.shape).toEqual([2, 7]);
    expectFlashmemError(() => inferCase({ ...c, opset: 4 }), 'FM_ONNX_INVALID', /"axis"/);
  });
  it('rejects mismatched shapes', () =>
    expectFlashmemError(() => inferCase({ opType: 'Concat', attrs: { axis: 0 }, inputs: [floats([2, 3]), floats([2, 4])] }), 'FM_SHAPE', /node "node" \(Concat\)/));
});

describe('Transpose', () => {
  it('default perm reverses the axes', () => expectBoth({ opType: 'Transpose', inputs: [floats([2, 3, 4])] }));
  it('NCHW -> NHWC (tiled, partial tiles)', () => expectBoth({ opType: 'Transpose', attrs: { perm: [0, 2, 3, 1] }, inputs: [floats([2, 19, 5, 7])] }));
  it('NHWC -> NCHW', () => expectBoth({ opType: 'Transpose', attrs: { perm: [0, 3, 1, 2] }, inputs: [floats([2, 5, 7, 3])] }));
  it('2-D matrix (tiled)', () => expectBoth({ opType: 'Transpose', opset: 6, attrs: { perm: [1, 0] }, inputs: [floats([37, 19])] }));
  it('outer axes swapped (generic kernel)', () => expectBoth({ opType: 'Transpose', attrs: { perm: [1, 0, 2] }, inputs: [floats([3, 4, 5])] }));
  it('pixel-shuffle 6-D perm', () => expectBoth({ opType: 'Transpose', opset: 9, attrs: { perm: [0, 1, 4, 2, 5, 3] }, inputs: [floats([1, 2, 2, 2, 3, 3])] }));
  it('int64 data', () => expectBoth({ opType: 'Transpose', attrs: { perm: [2, 0, 1] }, inputs: [ints([3, 2, 4])], outputs: ['int64'] }));
  it('identity perm with unit axes', () => expectBoth({ opType: 'Transpose', attrs: { perm: [1, 0, 2] }, inputs: [floats([1, 6, 5])] }));
  it('rejects a non-permutation', () =>
    expectFlashmemError(() => inferCase({ opType: 'Transpose', attrs: { perm: [0, 0, 1] }, inputs: [floats([2, 3, 4])] }), 'FM_SHAPE', /perm/));
});

describe('Slice', () => {
  const x = floats([4, 5, 6]);
  it('opset 9 attributes (starts/ends/axes)', () =>
    expectBoth({ opType: 'Slice', opset: 9, attrs: { starts: [1, -4], ends: [3, 1000], axes: [0, 2] }, inputs: [x] }));
  it('opset 6 attributes without axes', () => expectBoth({ opType: 'Slice', opset: 6, attrs: { starts: [0, 1], ends: [1, -1] }, inputs: [x] }));
  it('opset 13 inputs with steps and negative axes', () =>
    expectBoth({ opType: 'Slice', opset: 13, inputs: [x, consts([0, 1]), consts([4, 6]), consts([-3, -1]), consts([2, 2])] }));
  it('negative steps with INT64 sentinels reverse an axis', () =>
    expectBoth({ opType: 'Slice', opset: 13, inputs: [x, consts([-1, INT64_MAX_SAFE]), consts([INT64_MIN, -4]), consts([1, 2]), consts([-1, -2])] }));
  it('negative step with clamped start', () =>
    expectBoth({ opType: 'Slice', opset: 11, inputs: [x, consts([100]), consts([0]), consts([2]), consts([-3])] }));
  it('INT64_MAX end, omitted axes, int64 data (opset 10)', () =>
    expectBoth({ opType: 'Slice', opset: 10, inputs: [ints([4, 5]), consts([1]), consts([INT64_MAX_SAFE]), omitted, omitted], outputs: ['int64'] }));
  it('int32 starts/ends with INT32_MAX', () =>
    expectBoth({ opType: 'Slice', opset: 13, inputs: [x, consts([-3, 2], 'int32'), consts([2 ** 31 - 1, -1], 'int32'), consts([2, 1], 'int32')] }));
  it('empty result', () => expectBoth({ opType: 'Slice', opset: 13, inputs: [x, consts([3]), consts([1]), consts([0])] }));
  it('fold clamps the exact INT64_MAX/INT64_MIN values the frontend produces', async () => {
    const c: SingleNodeCase = { opType: 'Slice', opset: 13, inputs: [x, consts([-2, 0]), consts([INT64_MIN, INT64_MAX_SAFE]), consts([1, 2]), consts([-1, 1])] };
    const exact = makeConst('int64', [2], [-9223372036854775808, 9223372036854775807]);
    await expectFoldMatchesOrt(c, [undefined, undefined, exact]);
  });
  it('runtime starts are rejected: shapes must be static', () =>
    expectFlashmemError(() => inferCase({ opType: 'Slice', opset: 13, inputs: [x, ints([1]), consts([2])] }), 'FM_SHAPE', /compile-time constant/));
  it('rejects a zero step', () =>
    expectFlashmemError(() => inferCase({ opType: 'Slice', opset: 13, inputs: [x, consts([0]), consts([2]), consts([0]), consts([0])] }), 'FM_SHAPE', /steps/));
});

describe('Split', () => {
  it('opset 6 split attribute (uneven)', () =>
    expectBoth({ opType: 'Split', opset: 6, attrs: { axis: 0, split: [2, 1] }, inputs: [floats([3, 4])], outputs: ['float32', 'float32'] }));
  it('opset 11 equal split on a negative axis', () =>
    expectBoth({ opType: 'Split', opset: 11, attrs: { axis: -1 }, inputs: [floats([2, 3, 6])], outputs: ['float32', 'float32', 'float32'] }));
  it('opset 13 split input', () =>
    expectBoth({ opType: 'Split', opset: 13, attrs: { axis: 1 }, inputs: [floats([2, 5, 3]), consts([1, 0, 4])], outputs: ['float32', 'float32', 'float32'] }));
  it('opset 18 num_outputs with a smaller last chunk, int64', () =>
    expectBoth({ opType: 'Split', opset: 18, attrs: { axis: 1, num_outputs: 3 }, inputs: [ints([2, 7])], outputs: ['int64', 'int64', 'int64'] }));
  it('split and num_outputs together are invalid', () =>
    expectFlashmemError(() => inferCase({ opType: 'Split', opset: 18, attrs: { num_outputs: 2 }, inputs: [floats([4]), consts([2, 2])], outputs: ['float32', 'float32'] }), 'FM_ONNX_INVALID'));
  it('rejects an uneven split without sizes', () =>
    expectFlashmemError(() => inferCase({ opType: 'Split', opset: 13, inputs: [floats([5])], outputs: ['float32', 'float32'] }), 'FM_SHAPE', /evenly/));
});

describe('Pad', () => {
  const x = floats([2, 3, 4]);
  it('opset 6 constant mode with value (pads attribute)', () =>
    expectBoth({ opType: 'Pad', opset: 6, attrs: { mode: 'constant', pads: [0, 1, 2, 1, 0, 3], value: { float: 1.5 } }, inputs: [x] }));
  it('opset 2 reflect', () => expectBoth({ opType: 'Pad', opset: 2, attrs: { mode: 'reflect', pads: [0, 0, 2, 1, 0, 1, 2, 3] }, inputs: [floats([1, 2, 3, 4])] }));
  it('opset 9 edge', () => expectBoth({ opType: 'Pad', opset: 9, attrs: { mode: 'edge', pads: [1, 2, 0, 0, 1, 3] }, inputs: [x] }));
  it('opset 11 inputs: pads and constant_value, negative pads crop', () =>
    expectBoth({ opType: 'Pad', opset: 11, inputs: [x, consts([1, -1, 2, -1, 1, -1]), consts([-2.5], 'float32', [])] }));
  it('opset 13 reflect without constant_value', () =>
    expectBoth({ opType: 'Pad', opset: 13, attrs: { mode: 'reflect' }, inputs: [x, consts([0, 2, 3, 0, 1, 3])] }));
  it('opset 18 axes input, negative axis', () =>
    expectBoth({ opType: 'Pad', opset: 18, inputs: [x, consts([1, 2, 0, 1]), consts([4], 'float32', []), consts([0, -1])] }));
  it('opset 19 wrap', () => expectBoth({ opType: 'Pad', opset: 19, attrs: { mode: 'wrap' }, inputs: [x, consts([1, 2, 3, 0, 2, 4])] }));
  it('int64 data, constant mode', () =>
    expectBoth({ opType: 'Pad', opset: 13, inputs: [ints([3, 2]), consts([1, 0, 0, 2]), consts([7], 'int64', [])], outputs: ['int64'] }));
  it('opset 1 "paddings" attribute equals opset 2 "pads"', () => {
    const attrs = { mode: 'edge', value: { float: 0 } };
    const v1 = inferCase({ opType: 'Pad', opset: 1, attrs: { ...attrs, paddings: [1, 0, 2, 0, 1, 3] }, inputs: [x] });
    expect(v1).toEqual(inferCase({ opType: 'Pad', opset: 2, attrs: { ...attrs, pads: [1, 0, 2, 0, 1, 3] }, inputs: [x] }));
    expect(v1[0]!.shape).toEqual([3, 4, 9]);
  });
  it('wrap is rejected before opset 19', () =>
    expectFlashmemError(() => inferCase({ opType: 'Pad', opset: 18, attrs: { mode: 'wrap' }, inputs: [x, consts([0, 0, 1, 0, 0, 1])] }), 'FM_UNSUPPORTED_OP', /wrap/));
});

describe('Gather', () => {
  const table = floats([6, 4]);
  it('embedding lookup: runtime int64 indices with negatives', () =>
    expectBoth({ opType: 'Gather', opset: 6, inputs: [{ ...table, constant: true }, { dtype: 'int64', shape: [2, 3], data: [0, 5, -1, 2, -6, 3] }] }));
  it('axis 1 with constant int32 indices', () =>
    expectBoth({ opType: 'Gather', opset: 13, attrs: { axis: 1 }, inputs: [floats([2, 5, 3]), consts([4, -5, 1, 1], 'int32', [2, 2])] }));
  it('negative axis, scalar index', () =>
    expectBoth({ opType: 'Gather', opset: 13, attrs: { axis: -1 }, inputs: [floats([2, 3, 4]), consts([-2], 'int64', [])] }));
  it('int64 data (shape arithmetic)', () =>
    expectBoth({ opType: 'Gather', opset: 11, attrs: { axis: 0 }, inputs: [consts([1, 3, 224, 224]), consts([2, 3], 'int64', [2])], outputs: ['int64'] }));
  it('out-of-range constant index', () =>
    expectFlashmemError(() => inferCase({ opType: 'Gather', inputs: [table, consts([6])] }), 'FM_SHAPE', /index 6/));
});

describe('GatherElements', () => {
  it('axis 1 with negative indices', () =>
    expectBoth({ opType: 'GatherElements', opset: 13, attrs: { axis: 1 }, inputs: [floats([3, 4]), { dtype: 'int64', shape: [3, 2], data: [0, 3, -1, 2, 1, -4] }] }));
  it('axis 0, indices smaller than data, negative axis', () =>
    expectBoth({ opType: 'GatherElements', opset: 11, attrs: { axis: -3 }, inputs: [floats([3, 4, 2]), consts([2, 0, 1, 1, -1, 0], 'int64', [1, 3, 2])] }));
});

it('GatherElements rejects indices larger than data outside the axis', () =>
  expectFlashmemError(() => inferCase({ opType: 'GatherElements', attrs: { axis: 0 }, inputs: [floats([3, 2]), consts([0, 0, 0], 'int64', [1, 3])] }), 'FM_SHAPE', /fit inside/));

describe('Tile', () => {
  it('opset 9 repeats', () => expectBoth({ opType: 'Tile', opset: 9, inputs: [floats([2, 1, 3]), consts([2, 3, 1])] }));
  it('int64 data, zero and unit repeats', async () => {
    await expectBoth({ opType: 'Tile', opset: 13, inputs: [ints([2, 3]), consts([3, 2])], outputs: ['int64'] });
    await expectBoth({ opType: 'Tile', opset: 13, inputs: [ints([2, 3]), consts([0, 2])], outputs: ['int64'] });
  });
  it('opset 1 (tiles/axis inputs) is unsupported', () =>
    expectFlashmemError(() => inferCase({ opType: 'Tile', opset: 1, inputs: [floats([2]), consts([2]), consts([0])] }), 'FM_UNSUPPORTED_OP', /opset 6/));
  it('runtime repeats are rejected', () => expectFlashmemError(() => inferCase({ opType: 'Tile', inputs: [floats([2]), ints([1])] }), 'FM_SHAPE'));
});

describe('Expand', () => {
  const x = floats([1, 3, 1]);
  it('same rank', () => expectBoth({ opType: 'Expand', opset: 9, inputs: [x, consts([2, 3, 4])] }));
  it('shape of lower rank (bidirectional)', () => expectBoth({ opType: 'Expand', opset: 9, inputs: [x, consts([3, 1])] }));
  it('shape of higher rank', () => expectBoth({ opType: 'Expand', opset: 13, inputs: [x, consts([2, 1, 3, 3])] }));
  it('int64 data', () => expectBoth({ opType: 'Expand', opset: 13, inputs: [ints([3, 1]), consts([2, 3, 2])], outputs: ['int64'] }));
  it('incompatible shapes', () => expectFlashmemError(() => inferCase({ opType: 'Expand', inputs: [x, consts([2, 4, 1])] }), 'FM_SHAPE', /broadcast/));
});

describe('DepthToSpace / SpaceToDepth', () => {
  const x = floats([2, 8, 3, 2]);
  it('DepthToSpace DCR (opset 11 default)', () => expectBoth({ opType: 'DepthToSpace', opset: 11, attrs: { blocksize: 2 }, inputs: [x] }));
  it('DepthToSpace CRD', () => expectBoth({ opType: 'DepthToSpace', opset: 13, attrs: { blocksize: 2, mode: 'CRD' }, inputs: [x] }));
  it('DepthToSpace opset 1 is DCR', () => expectBoth({ opType: 'DepthToSpace', opset: 1, attrs: { blocksize: 2 }, inputs: [x] }));
  it('SpaceToDepth', () => expectBoth({ opType: 'SpaceToDepth', opset: 13, attrs: { blocksize: 2 }, inputs: [floats([1, 3, 4, 6])] }));
  it('rejects channels not divisible by blocksize²', () =>
    expectFlashmemError(() => inferCase({ opType: 'DepthToSpace', attrs: { blocksize: 3 }, inputs: [x] }), 'FM_SHAPE', /divisible/));
});

describe('target limits', () => {
  it('a tensor larger than one storage binding fails with FM_LIMIT', () => {
    const c: SingleNodeCase = { opType: 'Transpose', inputs: [floats([8, 8])] };
    const node = nodeOf(c);
    const type = { dtype: 'float32' as const, shape: [8, 8] };
    const ctx = {
      node, opset: 17, inputs: [{ id: 'x', type }], outputs: [{ id: 'y', type }],
      limits: { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 128 },
      kernel: () => { throw new Error('no kernel expected'); },
    } as unknown as LowerContext;
    expectFlashmemError(() => opFor(node, 17).lower!(ctx), 'FM_LIMIT', /256 bytes.*maxStorageBufferBindingSize/);
  });
});
