import { describe, expect, it } from 'vitest';
import { expectMatchesOrt, maxViolation, runNodeOnOrt, type HarnessInput, type SingleNodeCase } from '../harness/single-node.js';
import { randomFloats, seededRandom } from '../../fixtures/onnx-builder.js';
import { findOp } from '../../compiler/ops/index.js';
import { makeConst } from '../../compiler/ir/tensor.js';
import type { Attrs, Node } from '../../compiler/ir/types.js';
import type { AttrSpec } from '../../fixtures/onnx-builder.js';


let seed = 1;
function floats(shape: number[], lo = -3, hi = 3): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed++, lo, hi) };
}

/** Small integers: ties are common, which exercises ArgMax's index rules. */
function ints(shape: number[], dtype: 'int32' | 'int64', lo: number, hi: number): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  const rnd = seededRandom(seed++);
  return { dtype, shape, data: Array.from({ length: n }, () => lo + Math.floor(rnd() * (hi - lo + 1))) };
}

const constInts = (values: number[], dtype: 'int32' | 'int64' = 'int64'): HarnessInput =>
  ({ dtype, shape: [values.length], data: values, constant: true });
const scalarInt = (value: number, dtype: 'int32' | 'int64' = 'int64'): HarnessInput =>
  ({ dtype, shape: [], data: [value], constant: true });
const omitted: HarnessInput = { dtype: 'int64', shape: [], data: [], omitted: true };

describe('Softmax / LogSoftmax match onnxruntime', () => {
  for (const opType of ['Softmax', 'LogSoftmax']) {
    it(`${opType} opset 11, default axis 1 (2-D coercion over [3,4])`, () =>
      expectMatchesOrt({ opType, opset: 11, inputs: [floats([2, 3, 4])] }));
    it(`${opType} opset 11, axis 2 of a 4-D input`, () =>
      expectMatchesOrt({ opType, opset: 11, attrs: { axis: 2 }, inputs: [floats([2, 3, 4, 5])] }));
    it(`${opType} opset 11, negative axis -3`, () =>
      expectMatchesOrt({ opType, opset: 11, attrs: { axis: -3 }, inputs: [floats([2, 3, 4, 5])] }));
    it(`${opType} opset 13, default axis -1`, () =>
      expectMatchesOrt({ opType, opset: 13, inputs: [floats([2, 3, 4])] }));
    it(`${opType} opset 13, strided axis 1 (no transpose)`, () =>
      expectMatchesOrt({ opType, opset: 13, attrs: { axis: 1 }, inputs: [floats([2, 3, 4, 5])] }));
    it(`${opType} opset 13, axis 0`, () =>
      expectMatchesOrt({ opType, opset: 13, attrs: { axis: 0 }, inputs: [floats([7, 3, 2])] }));
    it(`${opType} 1000 classes with large logits (workgroup per row, max subtraction)`, () =>
      expectMatchesOrt({ opType, opset: 13, inputs: [floats([3, 1000], -500, 500)] }));
    it(`${opType} long strided rows (tiles of neighbouring rows, no transpose)`, () =>
      expectMatchesOrt({ opType, opset: 13, attrs: { axis: 1 }, inputs: [floats([2, 600, 3], -40, 40)] }));
    it(`${opType} many short rows (one invocation per row)`, () =>
      expectMatchesOrt({ opType, opset: 13, inputs: [floats([4200, 8], -40, 40)] }));
    it(`${opType} strided rows, tiles of neighbouring rows`, () =>
      expectMatchesOrt({ opType, opset: 13, attrs: { axis: 1 }, inputs: [floats([2, 24, 1100], -40, 40)] }));
    it(`${opType} many strided rows, one invocation per row`, () =>
      expectMatchesOrt({ opType, opset: 13, attrs: { axis: 1 }, inputs: [floats([2, 40, 2100], -40, 40)] }));
    it(`${opType} short strided rows, one invocation per row`, () =>
      expectMatchesOrt({ opType, opset: 13, attrs: { axis: 1 }, inputs: [floats([3, 10, 1000], -40, 40)] }));
  }
  it('Softmax opset 6 (legacy axis attribute semantics)', () =>
    expectMatchesOrt({ opType: 'Softmax', opset: 6, attrs: { axis: 2 }, inputs: [floats([2, 3, 4, 2])] }));
  it('rejects an out-of-range axis naming the node', async () => {
    await expect(expectMatchesOrt({ opType: 'Softmax', opset: 13, attrs: { axis: 3 }, inputs: [floats([2, 3])] }))
      .rejects.toThrow(/FM_SHAPE.*"node".*axis 3/);
  });
});

const REDUCE_OPS = [
  'ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd',
  'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp',
] as const;

/** ReduceLogSum needs positive sums; ReduceProd values near 1 keep products finite. */
function reduceInput(opType: string, shape: number[]): HarnessInput {
  if (opType === 'ReduceLogSum') return floats(shape, 0.1, 2);
  if (opType === 'ReduceProd') return floats(shape, 0.8, 1.2);
  return floats(shape);
}

/** A Reduce* case with `axes` as attribute (before the op's axes-input opset) or constant input. */
function reduceCase(opType: string, opset: number, shape: number[], axes: number[] | undefined, attrs: Record<string, AttrSpec> = {}): SingleNodeCase {
  const axesAsInput = opset >= (opType === 'ReduceSum' ? 13 : 18);
  const x = reduceInput(opType, shape);
  if (!axesAsInput) return { opType, opset, attrs: axes ? { ...attrs, axes } : attrs, inputs: [x] };
  return { opType, opset, attrs, inputs: axes ? [x, constInts(axes)] : [x] };
}

describe('Reduce* match onnxruntime', () => {
  for (const opType of REDUCE_OPS) {
    it(`${opType} opset 11, axes [1], keepdims`, () => expectMatchesOrt(reduceCase(opType, 11, [2, 5, 3], [1])));
    it(`${opType} opset 13, non-adjacent axes [0, 2], keepdims 0`, () =>
      expectMatchesOrt(reduceCase(opType, 13, [3, 4, 5, 2], [0, 2], { keepdims: 0 })));
    it(`${opType} opset 18, axes input with negative axes [-1, -3]`, () =>
      expectMatchesOrt(reduceCase(opType, 18, [3, 4, 5, 2], [-1, -3])));
    it(`${opType} default: all axes`, () => expectMatchesOrt(reduceCase(opType, 13, [4, 3, 5], undefined)));
    it(`${opType} long contiguous rows (workgroup tree reduction)`, () =>
      expectMatchesOrt(reduceCase(opType, 13, [3, 3000], [1])));
  }
  it('ReduceMean over H, W of NCHW (global average pooling shape)', () =>
    expectMatchesOrt(reduceCase('ReduceMean', 13, [2, 64, 7, 7], [2, 3])));
  it('ReduceMax over a long strided axis 0 (few rows)', () =>
    expectMatchesOrt(reduceCase('ReduceMax', 13, [3000, 3], [0])));
  it('ReduceSum over axis 0 with many outputs (coalesced serial rows)', () =>
    expectMatchesOrt(reduceCase('ReduceSum', 13, [30, 5000], [0])));
  it('ReduceSum of many short rows', () => expectMatchesOrt(reduceCase('ReduceSum', 13, [5000, 6], [1])));
  it('ReduceSum to a scalar over 20000 elements', () => expectMatchesOrt(reduceCase('ReduceSum', 13, [20000], undefined, { keepdims: 0 })));
  it('ReduceLogSumExp stays finite for large inputs', () =>
    expectMatchesOrt({ opType: 'ReduceLogSumExp', opset: 13, attrs: { axes: [1] }, inputs: [floats([3, 700], 100, 400)] }));
  it('ReduceSum opset 13 with omitted axes reduces everything', () =>
    expectMatchesOrt({ opType: 'ReduceSum', opset: 13, inputs: [floats([3, 4]), omitted] }));
  it('ReduceSum noop_with_empty_axes passes the input through', () =>
    expectMatchesOrt({ opType: 'ReduceSum', opset: 13, attrs: { noop_with_empty_axes: 1 }, inputs: [floats([3, 4]), constInts([])] }));
  it('ReduceMean opset 18 noop_with_empty_axes with axes omitted', () =>
    expectMatchesOrt({ opType: 'ReduceMean', opset: 18, attrs: { noop_with_empty_axes: 1 }, inputs: [floats([3, 4])] }));
  for (const [opType, dtype, lo, hi] of [
    ['ReduceSum', 'int32', -50, 50], ['ReduceSum', 'int64', -50, 50], ['ReduceProd', 'int64', 1, 4],
    ['ReduceMax', 'int32', -100, 100], ['ReduceMin', 'int64', -100, 100], ['ReduceSumSquare', 'int32', -9, 9],
  ] as const) {
    it(`${opType} on ${dtype}`, () =>
      expectMatchesOrt({ ...reduceCase(opType, 13, [3, 4, 5], [0, 2]), inputs: reduceCase(opType, 13, [3, 4, 5], [0, 2]).inputs.map((inp, i) => (i === 0 ? ints([3, 4, 5], dtype, lo, hi) : inp)), outputs: [dtype] }));
  }
  it('rejects a repeated axis', async () => {
    await expect(expectMatchesOrt(reduceCase('ReduceMean', 13, [2, 3], [1, -1]))).rejects.toThrow(/FM_SHAPE.*axis 1 twice/);
  });
  it('rejects a non-constant axes input', async () => {
    const c: SingleNodeCase = { opType: 'ReduceSum', opset: 13, inputs: [floats([2, 3]), { dtype: 'int64', shape: [1], data: [1] }] };
    await expect(expectMatchesOrt(c)).rejects.toThrow(/FM_UNSUPPORTED_OP.*axes input must be a compile-time constant/);
  });
});

describe('ArgMax / ArgMin match onnxruntime', () => {
  for (const opType of ['ArgMax', 'ArgMin']) {
    it(`${opType} axis 1, keepdims`, () =>
      expectMatchesOrt({ opType, opset: 13, attrs: { axis: 1 }, inputs: [floats([3, 7, 4])], outputs: ['int64'] }));
    it(`${opType} axis -1, keepdims 0`, () =>
      expectMatchesOrt({ opType, opset: 13, attrs: { axis: -1, keepdims: 0 }, inputs: [floats([3, 7, 4])], outputs: ['int64'] }));
    it(`${opType} default axis 0 (opset 11)`, () =>
      expectMatchesOrt({ opType, opset: 11, inputs: [floats([5, 6])], outputs: ['int64'] }));
    for (const selectLast of [0, 1]) {
      it(`${opType} ties, select_last_index ${selectLast}, short rows`, () =>
        expectMatchesOrt({ opType, opset: 13, attrs: { axis: 1, select_last_index: selectLast }, inputs: [ints([6, 9, 3], 'int32', 0, 3)], outputs: ['int64'] }));
      it(`${opType} ties, select_last_index ${selectLast}, long rows (tree combine)`, () =>
        expectMatchesOrt({ opType, opset: 13, attrs: { axis: -1, select_last_index: selectLast }, inputs: [ints([3, 2000], 'int32', -5, 5)], outputs: ['int64'] }));
      it(`${opType} ties, select_last_index ${selectLast}, long strided rows`, () =>
        expectMatchesOrt({ opType, opset: 13, attrs: { axis: 0, select_last_index: selectLast }, inputs: [ints([1500, 2], 'int64', -5, 5)], outputs: ['int64'] }));
    }
  }
});

describe('CumSum matches onnxruntime', () => {
  for (const [exclusive, reverse] of [[0, 0], [1, 0], [0, 1], [1, 1]]) {
    const attrs = { exclusive, reverse };
    it(`axis 1, exclusive ${exclusive}, reverse ${reverse}`, () =>
      expectMatchesOrt({ opType: 'CumSum', opset: 14, attrs, inputs: [floats([3, 5, 4]), scalarInt(1)] }));
    it(`long last axis (workgroup scan), exclusive ${exclusive}, reverse ${reverse}`, () =>
      expectMatchesOrt({ opType: 'CumSum', opset: 14, attrs, inputs: [floats([2, 1000], 0, 1), scalarInt(-1, 'int32')] }, 1e-3, 2e-3));
  }
  it('axis 0 of many interleaved lines', () =>
    expectMatchesOrt({ opType: 'CumSum', opset: 11, inputs: [floats([70, 1200]), scalarInt(0)] }, 1e-3, 2e-3));
  it('int32 input', () =>
    expectMatchesOrt({ opType: 'CumSum', opset: 14, attrs: { reverse: 1 }, inputs: [ints([4, 300], 'int32', -20, 20), scalarInt(1)], outputs: ['int32'] }));
});

/** Constant folding (CPU) must agree with onnxruntime as well. */
describe('fold() matches onnxruntime', () => {
  async function expectFoldMatches(c: SingleNodeCase): Promise<void> {
    const node: Node = { name: 'node', opType: c.opType, domain: '', inputs: c.inputs.map((inp, i) => (inp.omitted ? '' : `in${i}`)), outputs: ['out0'], attrs: irAttrs(c.attrs ?? {}) };
    const def = findOp(c.opType)!;
    const consts = c.inputs.map((inp) => (inp.omitted ? undefined : makeConst(inp.dtype, inp.shape, inp.data)));
    const types = c.inputs.map((inp) => (inp.omitted ? undefined : { dtype: inp.dtype, shape: inp.shape }));
    const ctx = { node, opset: c.opset ?? 17, inputs: types, consts };
    const [folded] = def.fold!(ctx, consts);
    const [ref] = await runNodeOnOrt(c);
    expect(folded!.shape).toEqual(ref!.dims);
    expect(folded!.dtype).toBe(def.inferTypes(ctx)[0]!.dtype);
    expect(maxViolation(folded!.data, ref!.data)).toBeLessThanOrEqual(1);
  }
  function irAttrs(attrs: Record<string, AttrSpec>): Attrs {
    return Object.fromEntries(Object.entries(attrs).map(([k, v]) =>
      [k, Array.isArray(v) ? { type: 'ints', value: v as number[] } : { type: 'int', value: v as number }])) as Attrs;
  }
  it('ReduceProd of an int64 shape tensor', () =>
    expectFoldMatches({ opType: 'ReduceProd', opset: 13, attrs: { keepdims: 0 }, inputs: [{ dtype: 'int64', shape: [3], data: [2, 3, 7] }], outputs: ['int64'] }));
  for (const opType of REDUCE_OPS) {
    it(`${opType} over axes [0, 2]`, () => expectFoldMatches(reduceCase(opType, 13, [3, 4, 2], [0, 2])));
  }
  it('Softmax opset 11 and LogSoftmax opset 13', async () => {
    await expectFoldMatches({ opType: 'Softmax', opset: 11, inputs: [floats([2, 3, 4])] });
    await expectFoldMatches({ opType: 'LogSoftmax', opset: 13, attrs: { axis: 1 }, inputs: [floats([2, 3, 4])] });
  });
  it('ArgMax with ties and select_last_index', () =>
    expectFoldMatches({ opType: 'ArgMax', opset: 13, attrs: { axis: 1, select_last_index: 1 }, inputs: [ints([4, 6], 'int64', 0, 2)], outputs: ['int64'] }));
  it('CumSum exclusive reverse', () =>
    expectFoldMatches({ opType: 'CumSum', opset: 14, attrs: { exclusive: 1, reverse: 1 }, inputs: [floats([3, 4]), scalarInt(0)] }));
});
