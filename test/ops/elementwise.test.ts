import { describe, expect, it } from 'vitest';
import {
  expectMatchesOrt, maxViolation, runNodeOnGpu, runNodeOnOrt, type HarnessInput, type SingleNodeCase,
} from '../harness/single-node.js';
import { buildModel, randomFloats, seededRandom, type AttrSpec } from '../../fixtures/onnx-builder.js';
import { runOrt } from '../harness/ort.js';
import { prepareKernels } from '../harness/gpu.js';
import { opFor } from '../../compiler/ops/index.js';
import { DEFAULT_LIMITS, type TargetLimits } from '../../compiler/target/limits.js';
import { type KernelSpec, type LowerTensor } from '../../compiler/kernel/types.js';
import { type LowerContext } from '../../compiler/ops/op.js';
import { makeConst } from '../../compiler/ir/tensor.js';
import { type Attrs, type ConstTensor, type DType, type FusedActivation, type Node } from '../../compiler/ir/types.js';
import { FlashmemError } from '../../compiler/errors.js';

const count = (shape: number[]) => shape.reduce((a, b) => a * b, 1);

function floats(shape: number[], seed: number, lo = -3, hi = 3): HarnessInput {
  return { dtype: 'float32', shape, data: randomFloats(count(shape), seed, lo, hi) };
}

/** integers in [lo, hi], never 0 when nonzero is set (divisors) */
function ints(shape: number[], seed: number, lo: number, hi: number, dtype: DType = 'int32', nonzero = false): HarnessInput {
  const rnd = seededRandom(seed);
  const data = Array.from({ length: count(shape) }, () => {
    const v = lo + Math.floor(rnd() * (hi - lo + 1));
    return nonzero && v === 0 ? hi : v;
  });
  return { dtype, shape, data };
}

function bools(shape: number[], seed: number): HarnessInput {
  return { ...ints(shape, seed, 0, 1), dtype: 'bool' };
}

/** IEEE binary16 bits to their value (independent of the compiler's rounding code) */
function halfBitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exp = (bits >> 10) & 0x1f;
  const mant = bits & 0x3ff;
  if (exp === 0x1f) return mant ? NaN : sign * Infinity;
  return exp === 0 ? sign * mant * 2 ** -24 : sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

const constant = (input: HarnessInput): HarnessInput => ({ ...input, constant: true });

/** GPU result of `gpuCase` against onnxruntime on `ortCase` (for legacy forms ORT cannot run). */
async function expectMatchesOrtCase(gpuCase: SingleNodeCase, ortCase: SingleNodeCase): Promise<void> {
  const [[gpu], [ref]] = await Promise.all([runNodeOnGpu(gpuCase), runNodeOnOrt(ortCase)]);
  expect(gpu!.type.shape).toEqual(ref!.dims);
  expect(maxViolation(gpu!.data, ref!.data)).toBeLessThanOrEqual(1);
}

function irAttrs(attrs: Record<string, number | string> = {}): Attrs {
  const out: Attrs = {};
  for (const [k, v] of Object.entries(attrs)) {
    out[k] = typeof v === 'string' ? { type: 'string', value: v } : Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
  }
  return out;
}

/** Constant folding (fold) of a node against onnxruntime. */
async function expectFoldMatchesOrt(c: SingleNodeCase): Promise<void> {
  const opset = c.opset ?? 17;
  const node: Node = {
    name: 'n', opType: c.opType, domain: '', inputs: c.inputs.map((_, i) => `in${i}`), outputs: ['out0'],
    attrs: irAttrs(c.attrs as Record<string, number | string>),
  };
  const consts = c.inputs.map((inp) => makeConst(inp.dtype, inp.shape, inp.data));
  const def = opFor(node, opset);
  const [folded] = def.fold!({ node, opset, inputs: consts, consts }, consts);
  const [ref] = await runNodeOnOrt(c);
  expect(folded!.shape).toEqual(ref!.dims);
  expect(folded!.dtype).toBe(c.outputs?.[0] ?? 'float32');
  expect(maxViolation(folded!.data, ref!.data, 1e-6, 1e-6)).toBeLessThanOrEqual(1);
}

function expectCode(fn: () => unknown, code: string): void {
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(FlashmemError);
    expect((e as FlashmemError).code).toBe(code);
    return;
  }
  throw new Error(`expected ${code}`);
}

function inferOnly(opType: string, opset: number, shapes: number[][], attrs: Record<string, number | string> = {}, dtype: DType = 'float32') {
  const node: Node = { name: 'bad', opType, domain: '', inputs: shapes.map((_, i) => `in${i}`), outputs: ['o'], attrs: irAttrs(attrs) };
  return opFor(node, opset).inferTypes({ node, opset, inputs: shapes.map((shape) => ({ dtype, shape })), consts: [] });
}

const BROADCAST_PATTERNS: [string, number[], number[]][] = [
  ['equal shapes', [2, 3, 4], [2, 3, 4]],
  ['rank-0 scalar', [2, 3, 4], []],
  ['one-element', [1], [2, 3, 4]],
  ['trailing axis', [2, 3, 4], [4]],
  ['middle axis', [2, 3, 4], [3, 1]],
  ['both sides broadcast', [2, 1, 4], [3, 1]],
  ['rank mismatch, leading', [5], [2, 3, 5]],
  ['outer and inner broadcast', [1, 3, 1], [2, 1, 4]],
];

describe('binary arithmetic with numpy broadcasting', () => {
  for (const opType of ['Add', 'Sub', 'Mul', 'Div']) {
    for (const [name, a, b] of BROADCAST_PATTERNS) {
      it(`${opType}: ${name}`, () => expectMatchesOrt({ opType, inputs: [floats(a, 1), floats(b, 2, 0.5, 3)] }));
    }
  }
  it('Add with a constant scalar (inlined literal)', () => expectMatchesOrt({ opType: 'Add', inputs: [floats([3, 5], 3), constant(floats([], 4))] }));
  it('Mul with a constant broadcast operand', () => expectMatchesOrt({ opType: 'Mul', inputs: [floats([2, 3, 4], 3), constant(floats([3, 1], 4))] }));
  it('Sub with a constant first operand', () => expectMatchesOrt({ opType: 'Sub', inputs: [constant(floats([1], 5)), floats([4, 2], 6)] }));
  it('Add float64', () => expectMatchesOrt({ opType: 'Add', inputs: [{ ...floats([2, 3], 7), dtype: 'float64' }, { ...floats([3], 8), dtype: 'float64' }], outputs: ['float64'] }));
  it('Pow, positive base, broadcast exponent', () => expectMatchesOrt({ opType: 'Pow', inputs: [floats([2, 3, 4], 9, 0.1, 3), floats([4], 10, -2, 3)] }));
  it('Pow, negative base with integral exponents and zero base', () =>
    expectMatchesOrt({
      opType: 'Pow',
      inputs: [{ dtype: 'float32', shape: [8], data: [-2, -2, -1.5, -3, 0, 0, 2, -0.5] }, { dtype: 'float32', shape: [8], data: [3, 2, 4, -1, 2, 0, 0, -3] }],
    }));
  for (const e of [2, 3, 0.5, -1, 1.7]) {
    it(`Pow by constant exponent ${e}`, () => expectMatchesOrt({ opType: 'Pow', inputs: [floats([3, 4], 11, 0.2, 3), constant({ dtype: 'float32', shape: [], data: [e] })] }));
  }
  it('Pow, float base with int64 exponent (opset 12+)', () =>
    expectMatchesOrt({ opType: 'Pow', opset: 13, inputs: [floats([6], 12, -2, 2), ints([6], 13, 0, 3, 'int64')] }));
  it('Mod fmod=1 with large quotients and negative operands', () =>
    expectMatchesOrt({ opType: 'Mod', attrs: { fmod: 1 }, inputs: [{ dtype: 'float32', shape: [5], data: [-8, 8, 7, -1e6, 5.5] }, { dtype: 'float32', shape: [5], data: [0.3, -0.3, -0.1, 0.7, 5.5] }] }));
  it('Mod fmod=1 on floats', () => expectMatchesOrt({ opType: 'Mod', attrs: { fmod: 1 }, inputs: [floats([3, 4], 14, -10, 10), floats([4], 15, 0.5, 3)] }));
});

describe('integer semantics', () => {
  for (const dtype of ['int32', 'int64'] as const) {
    for (const opType of ['Add', 'Sub', 'Mul']) {
      it(`${opType} ${dtype}`, () => expectMatchesOrt({ opType, inputs: [ints([3, 4], 1, -50, 50, dtype), ints([4], 2, -50, 50, dtype)], outputs: [dtype] }));
    }
    it(`Div ${dtype} truncates toward zero`, () =>
      expectMatchesOrt({ opType: 'Div', inputs: [ints([4, 5], 3, -40, 40, dtype), ints([5], 4, -7, 7, dtype, true)], outputs: [dtype] }));
    for (const fmod of [0, 1]) {
      it(`Mod ${dtype} fmod=${fmod} (sign of ${fmod ? 'dividend' : 'divisor'})`, () =>
        expectMatchesOrt({ opType: 'Mod', attrs: { fmod }, inputs: [ints([4, 5], 5, -40, 40, dtype), ints([5], 6, -7, 7, dtype, true)], outputs: [dtype] }));
    }
  }
  it('Pow int32 (negative exponents truncate like ONNX Runtime)', () =>
    expectMatchesOrt({
      opType: 'Pow', outputs: ['int32'],
      inputs: [{ dtype: 'int32', shape: [10], data: [-2, -1, 0, 1, 2, 3, -3, 2, -1, 4] }, { dtype: 'int32', shape: [10], data: [-1, -1, 2, -3, -2, 0, 3, 10, -2, 5] }],
    }));
  it('Pow int32 base, float exponent (opset 12+)', () =>
    expectMatchesOrt({ opType: 'Pow', opset: 13, outputs: ['int32'], inputs: [{ dtype: 'int32', shape: [4], data: [2, 3, -2, 5] }, { dtype: 'float32', shape: [4], data: [0.5, 2.5, 3, -1] }] }));
  it('Add with an inlined int64 constant', () => expectMatchesOrt({ opType: 'Add', inputs: [ints([5], 9, -9, 9, 'int64'), constant(ints([], 10, 3, 3, 'int64'))], outputs: ['int64'] }));
  it('Abs/Neg/Sign on int32', async () => {
    for (const opType of ['Abs', 'Neg', 'Sign']) await expectMatchesOrt({ opType, inputs: [ints([9], 11, -5, 5)], outputs: ['int32'] });
  });
});

describe('comparison and logic (bool outputs)', () => {
  for (const opType of ['Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']) {
    it(`${opType} float, broadcast`, () =>
      expectMatchesOrt({ opType, inputs: [ints([3, 4], 1, -2, 2, 'float32'), ints([4], 2, -2, 2, 'float32')], outputs: ['bool'] }));
    it(`${opType} int64`, () => expectMatchesOrt({ opType, inputs: [ints([2, 5], 3, -2, 2, 'int64'), ints([2, 1], 4, -2, 2, 'int64')], outputs: ['bool'] }));
  }
  it('Equal on bool', () => expectMatchesOrt({ opType: 'Equal', inputs: [bools([6], 5), bools([6], 6)], outputs: ['bool'] }));
  for (const opType of ['And', 'Or', 'Xor']) {
    it(`${opType} with broadcast`, () => expectMatchesOrt({ opType, inputs: [bools([3, 4], 7), bools([4], 8)], outputs: ['bool'] }));
  }
  it('Not', () => expectMatchesOrt({ opType: 'Not', inputs: [bools([7], 9)], outputs: ['bool'] }));
});

describe('Where, PRelu, variadic', () => {
  it('Where with three-way broadcast', () =>
    expectMatchesOrt({ opType: 'Where', inputs: [bools([3, 1], 1), floats([1, 4], 2), floats([2, 1, 1], 3)] }));
  it('Where on int64', () => expectMatchesOrt({ opType: 'Where', inputs: [bools([5], 4), ints([5], 5, -9, 9, 'int64'), ints([], 6, 7, 7, 'int64')], outputs: ['int64'] }));
  it('PRelu with per-channel slope [C,1,1]', () => expectMatchesOrt({ opType: 'PRelu', opset: 9, inputs: [floats([2, 3, 4, 5], 7), constant(floats([3, 1, 1], 8, 0, 0.5))] }));
  it('PRelu with scalar slope', () => expectMatchesOrt({ opType: 'PRelu', opset: 9, inputs: [floats([2, 3, 4], 9), floats([1], 10, 0, 0.5)] }));
  it('PRelu opset 6: a [C] slope applies per channel', () =>
    expectMatchesOrtCase(
      { opType: 'PRelu', opset: 6, inputs: [floats([2, 3, 4], 11), constant(floats([3], 12, 0, 0.5))] },
      { opType: 'PRelu', opset: 9, inputs: [floats([2, 3, 4], 11), constant({ ...floats([3], 12, 0, 0.5), shape: [3, 1] })] },
    ));
  for (const opType of ['Sum', 'Mean', 'Max', 'Min']) {
    it(`${opType} of three broadcast inputs`, () => expectMatchesOrt({ opType, inputs: [floats([2, 3, 4], 1), floats([4], 2), floats([3, 1], 3)] }));
    it(`${opType} of nine inputs (chained kernels)`, () => expectMatchesOrt({ opType, inputs: Array.from({ length: 9 }, (_, i) => floats(i % 2 ? [3] : [2, 3], 20 + i)) }));
  }
  it('Sum of one input', () => expectMatchesOrt({ opType: 'Sum', inputs: [floats([5], 4)] }));
  it('Max of int32 inputs (opset 12+)', () => expectMatchesOrt({ opType: 'Max', opset: 13, inputs: [ints([6], 5, -9, 9), ints([6], 6, -9, 9)], outputs: ['int32'] }));
  it('Max opset 6 (equal shapes)', () => expectMatchesOrt({ opType: 'Max', opset: 6, inputs: [floats([3, 4], 7), floats([3, 4], 8)] }));
});

describe('legacy opset < 7 broadcast attributes', () => {
  // onnxruntime runs no opset-6 Add/Sub/Mul/Div/Pow: the reference is opset 7 with B reshaped to match
  const legacy = (opType: string, attrs: Record<string, number>, a: number[], b: number[], bAligned: number[]) =>
    expectMatchesOrtCase(
      { opType, opset: 6, attrs, inputs: [floats(a, 1), floats(b, 2, 0.5, 2)] },
      { opType, opset: 7, inputs: [floats(a, 1), { ...floats(b, 2, 0.5, 2), shape: bAligned }] },
    );
  it('Add broadcast=1 axis=1', () => legacy('Add', { broadcast: 1, axis: 1 }, [2, 3, 4, 5], [3, 4], [3, 4, 1]));
  it('Add broadcast=1 axis=0', () => legacy('Add', { broadcast: 1, axis: 0 }, [2, 3], [2], [2, 1]));
  it('Sub broadcast=1, suffix alignment', () => legacy('Sub', { broadcast: 1 }, [2, 3, 4], [4], [4]));
  it('Mul broadcast=1, scalar B', () => legacy('Mul', { broadcast: 1 }, [2, 3], [], []));
  it('Div broadcast=0, equal shapes', () => legacy('Div', {}, [2, 3], [2, 3], [2, 3]));
  it('Pow broadcast=1 axis=1', () =>
    expectMatchesOrtCase(
      { opType: 'Pow', opset: 6, attrs: { broadcast: 1, axis: 1 }, inputs: [floats([2, 3, 2], 3, 0.5, 2), floats([3], 4, -1, 2)] },
      { opType: 'Pow', opset: 7, inputs: [floats([2, 3, 2], 3, 0.5, 2), { ...floats([3], 4, -1, 2), shape: [3, 1] }] },
    ));
  it('rejects mismatched shapes without broadcast=1', () => expectCode(() => inferOnly('Add', 6, [[2, 3], [3]]), 'FM_SHAPE'));
  it('rejects B that does not fit at axis', () => expectCode(() => inferOnly('Add', 6, [[2, 3], [2]], { broadcast: 1, axis: 1 }), 'FM_SHAPE'));
});

describe('unary math', () => {
  const x = floats([2, 3, 5], 1, -4, 4);
  const positive = floats([2, 3, 5], 2, 0.05, 5);
  const unit = floats([2, 3, 5], 3, -0.95, 0.95);
  for (const [opType, input] of [
    ['Abs', x], ['Neg', x], ['Sign', x], ['Sqrt', positive], ['Exp', x], ['Log', positive], ['Reciprocal', positive],
    ['Floor', x], ['Ceil', x], ['Sin', x], ['Cos', x], ['Tan', unit], ['Asin', unit], ['Acos', unit], ['Atan', x],
    ['Sinh', x], ['Cosh', x], ['Asinh', x], ['Acosh', floats([7], 4, 1, 5)], ['Atanh', unit],
  ] as const) {
    it(opType, () => expectMatchesOrt({ opType, inputs: [input] }));
  }
  it('Round: half to even', () =>
    expectMatchesOrt({ opType: 'Round', inputs: [{ dtype: 'float32', shape: [10], data: [0.5, 1.5, 2.5, -0.5, -1.5, -2.5, 2.4, 2.6, -3.7, 7] }] }));
  it('Erf is accurate to 1e-6 over the whole line', () =>
    expectMatchesOrt({ opType: 'Erf', inputs: [{ dtype: 'float32', shape: [401], data: Array.from({ length: 401 }, (_, i) => (i - 200) / 40) }] }, 0, 1e-6));
  it('Gelu (exact)', () => expectMatchesOrt({ opType: 'Gelu', opset: 20, inputs: [x] }, 1e-5, 1e-6));
  it('Gelu (tanh)', () => expectMatchesOrt({ opType: 'Gelu', opset: 20, attrs: { approximate: 'tanh' }, inputs: [x] }, 1e-5, 1e-6));
  it('Shrink', () => expectMatchesOrt({ opType: 'Shrink', attrs: { lambd: 1.5, bias: 0.25 }, inputs: [x] }));
  it('Shrink on int32', () => expectMatchesOrt({ opType: 'Shrink', attrs: { lambd: { float: 1.5 }, bias: { float: 0.5 } }, inputs: [ints([9], 5, -4, 4)], outputs: ['int32'] }));
  const special = { dtype: 'float32' as const, shape: [6], data: [NaN, Infinity, -Infinity, 0, -1.5, 3e38] };
  it('IsNaN', () => expectMatchesOrt({ opType: 'IsNaN', inputs: [special], outputs: ['bool'] }));
  for (const attrs of [{}, { detect_negative: 0 }, { detect_positive: 0 }] as Record<string, AttrSpec>[]) {
    it(`IsInf ${JSON.stringify(attrs)}`, () => expectMatchesOrt({ opType: 'IsInf', attrs, inputs: [special], outputs: ['bool'] }));
  }
  it('rejects integer input to Sqrt', () => expectCode(() => inferOnly('Sqrt', 13, [[2]], {}, 'int32'), 'FM_DTYPE'));
});

describe('Cast', () => {
  const x = { dtype: 'float32' as const, shape: [8], data: [-2.7, -0.5, 0, 0.4, 1.5, 2.9, 300.25, -129.5] };
  const codes: Record<string, number> = { float32: 1, uint8: 2, int8: 3, int16: 5, int32: 6, int64: 7, bool: 9, float16: 10, float64: 11 };
  for (const to of ['int32', 'int64', 'bool', 'float64'] as const) {
    it(`float32 -> ${to}`, () => expectMatchesOrt({ opType: 'Cast', attrs: { to: codes[to]! }, inputs: [x], outputs: [to] }));
  }
  it('float32 -> float16 rounds to half precision (ties to even, overflow to inf)', async () => {
    const c: SingleNodeCase = {
      opType: 'Cast', attrs: { to: codes.float16! }, outputs: ['float16'],
      inputs: [{ dtype: 'float32', shape: [8], data: [4 / 3, 2049, 2051, 1e5, -7e4, 65519, 1e-6, -0.1] }],
    };
    const [[gpu], [ref]] = await Promise.all([runNodeOnGpu(c), runNodeOnOrt(c)]);
    // onnxruntime-node hands float16 back as raw bits
    expect(Array.from(gpu!.data)).toEqual(ref!.data.map(halfBitsToNumber));
  });
  for (const to of ['uint8', 'int8', 'int16', 'float32', 'bool'] as const) {
    it(`int32 -> ${to}`, () => expectMatchesOrt({ opType: 'Cast', attrs: { to: codes[to]! }, inputs: [ints([9], 1, -300, 300)], outputs: [to] }));
  }
  it('bool -> float32', () => expectMatchesOrt({ opType: 'Cast', attrs: { to: 1 }, inputs: [bools([6], 2)] }));
  it('int64 -> int32', () => expectMatchesOrt({ opType: 'Cast', attrs: { to: 6 }, inputs: [ints([6], 3, -1000, 1000, 'int64')], outputs: ['int32'] }));
  it('CastLike', () => expectMatchesOrt({ opType: 'CastLike', opset: 15, inputs: [x, ints([1], 4, 0, 0)], outputs: ['int32'] }));
  it('rejects a cast to string', () => expectCode(() => inferOnly('Cast', 13, [[2]], { to: 8 }), 'FM_UNSUPPORTED_OP'));
});

describe('constant folding matches onnxruntime', () => {
  const shape = { dtype: 'int64' as const, shape: [4], data: [1, 3, 224, 224] };
  it('int64 shape arithmetic: Mul, Div, Mod, Sub', async () => {
    await expectFoldMatchesOrt({ opType: 'Mul', inputs: [shape, { dtype: 'int64', shape: [], data: [-3] }], outputs: ['int64'] });
    await expectFoldMatchesOrt({ opType: 'Div', inputs: [ints([6], 1, -50, 50, 'int64'), ints([6], 2, -7, 7, 'int64', true)], outputs: ['int64'] });
    await expectFoldMatchesOrt({ opType: 'Mod', inputs: [ints([6], 3, -50, 50, 'int64'), ints([6], 4, -7, 7, 'int64', true)], outputs: ['int64'] });
    await expectFoldMatchesOrt({ opType: 'Sub', inputs: [shape, { dtype: 'int64', shape: [1], data: [1] }], outputs: ['int64'] });
  });
  it('Equal + Where + Cast on shapes', async () => {
    await expectFoldMatchesOrt({ opType: 'Equal', inputs: [shape, { dtype: 'int64', shape: [], data: [224] }], outputs: ['bool'] });
    await expectFoldMatchesOrt({ opType: 'Where', inputs: [bools([4], 5), shape, { dtype: 'int64', shape: [], data: [-1] }], outputs: ['int64'] });
    await expectFoldMatchesOrt({ opType: 'Cast', attrs: { to: 1 }, inputs: [shape], outputs: ['float32'] });
    await expectFoldMatchesOrt({ opType: 'Cast', attrs: { to: 7 }, inputs: [{ dtype: 'float32', shape: [4], data: [-2.5, 2.5, 7.9, -0.1] }], outputs: ['int64'] });
    await expectFoldMatchesOrt({ opType: 'Cast', attrs: { to: 2 }, inputs: [ints([5], 6, -300, 300)], outputs: ['uint8'] });
  });
  it('float ops with broadcasting', async () => {
    await expectFoldMatchesOrt({ opType: 'Add', inputs: [floats([2, 1, 4], 1), floats([3, 1], 2)] });
    await expectFoldMatchesOrt({ opType: 'Pow', inputs: [floats([3], 3, -2, 2), { dtype: 'float32', shape: [3], data: [2, 3, 0.5] }] });
    await expectFoldMatchesOrt({ opType: 'Max', opset: 13, inputs: [floats([2, 3], 4), floats([3], 5), floats([2, 1], 6)] });
    await expectFoldMatchesOrt({ opType: 'Mean', inputs: [floats([2, 3], 7), floats([3], 8)] });
    await expectFoldMatchesOrt({ opType: 'PRelu', opset: 9, inputs: [floats([2, 3], 9), floats([3], 10)] });
  });
  it('unary math', async () => {
    for (const opType of ['Neg', 'Abs', 'Floor', 'Ceil', 'Round', 'Sign', 'Exp', 'Erf']) {
      await expectFoldMatchesOrt({ opType, inputs: [floats([9], 11, -3, 3)] });
    }
    await expectFoldMatchesOrt({ opType: 'Sqrt', inputs: [floats([5], 12, 0, 9)] });
    await expectFoldMatchesOrt({ opType: 'Gelu', opset: 20, inputs: [floats([5], 13)] });
  });
  it('Cast to float16 folds to the nearest half (ties to even)', async () => {
    const c: SingleNodeCase = {
      opType: 'Cast', attrs: { to: 10 }, outputs: ['float16'],
      inputs: [{ dtype: 'float32', shape: [9], data: [4 / 3, 2049, 2051, 1e5, -7e4, 65519, 1e-6, -0.1, 3e-5] }],
    };
    const node: Node = { name: 'n', opType: 'Cast', domain: '', inputs: ['x'], outputs: ['y'], attrs: irAttrs({ to: 10 }) };
    const x = makeConst('float32', [9], c.inputs[0]!.data);
    const [y] = opFor(node, 17).fold!({ node, opset: 17, inputs: [x], consts: [x] }, [x]);
    const [ref] = await runNodeOnOrt(c);
    expect(Array.from(y!.data)).toEqual(ref!.data.map(halfBitsToNumber));
  });
  it('legacy opset-6 broadcast folds like its opset-7 equivalent', async () => {
    const node: Node = { name: 'n', opType: 'Add', domain: '', inputs: ['a', 'b'], outputs: ['y'], attrs: irAttrs({ broadcast: 1, axis: 0 }) };
    const a = makeConst('float32', [2, 3], [1, 2, 3, 4, 5, 6]);
    const b = makeConst('float32', [2], [10, 20]);
    const [y] = opFor(node, 6).fold!({ node, opset: 6, inputs: [a, b], consts: [a, b] }, [a, b]);
    expect(Array.from(y!.data)).toEqual([11, 12, 13, 24, 25, 26]);
  });
});

// ---------------------------------------------------------------------------------------------
// A minimal kernel runner like the harness's, with what the harness cannot vary: target limits,
// a fused activation, and repeated dispatches for timing.
// ---------------------------------------------------------------------------------------------

interface LowerOptions {
  limits?: Partial<TargetLimits>;
  activation?: FusedActivation;
}

interface Lowered {
  kernels: KernelSpec[];
  inputs: (LowerTensor | undefined)[];
  outputs: LowerTensor[];
}

function lowerCase(c: SingleNodeCase, options: LowerOptions = {}): Lowered {
  const opset = c.opset ?? 17;
  const node: Node = {
    name: 'node', opType: c.opType, domain: '', inputs: c.inputs.map((_, i) => `in${i}`), outputs: ['out0'],
    attrs: irAttrs(c.attrs as Record<string, number | string>), fusedActivation: options.activation,
  };
  const def = opFor(node, opset);
  const consts: (ConstTensor | undefined)[] = c.inputs.map((inp) => (inp.constant ? makeConst(inp.dtype, inp.shape, inp.data) : undefined));
  const types = c.inputs.map((inp) => ({ dtype: inp.dtype, shape: inp.shape }));
  const [outType] = def.inferTypes({ node, opset, inputs: types, consts });
  const inputs = c.inputs.map((_, i) => ({ id: `in${i}`, type: types[i]!, data: consts[i] }));
  const outputs = [{ id: 'out0', type: outType! }];
  const kernels: KernelSpec[] = [];
  let scratchCount = 0;
  const ctx: LowerContext = {
    node, opset, inputs, outputs, activation: options.activation, limits: { ...DEFAULT_LIMITS, ...options.limits },
    kernel: (k) => kernels.push(k),
    constant: () => { throw new Error('elementwise ops register no derived constants'); },
    scratch: (label, type) => ({ id: `scratch${scratchCount++}_${label}`, type }),
  };
  def.lower!(ctx);
  return { kernels, inputs, outputs };
}

async function runLowered(c: SingleNodeCase, options: LowerOptions = {}) {
  const lowered = lowerCase(c, options);
  const uploads = lowered.inputs.flatMap((t, i) => (t ? [{ tensor: t, data: c.inputs[i]!.data }] : []));
  const gpu = await prepareKernels(lowered.kernels, uploads);
  try {
    return { lowered, data: (await gpu.run(lowered.outputs))[0]! };
  } finally {
    gpu.destroy();
  }
}

/** onnxruntime on the node followed by the activation node, as the fusion pass found them. */
async function ortWithActivation(c: SingleNodeCase, act: { opType: string; attrs?: Record<string, AttrSpec> }) {
  const model = buildModel({
    opset: c.opset ?? 17,
    inputs: c.inputs.flatMap((inp, i) => (inp.constant ? [] : [{ name: `in${i}`, dtype: inp.dtype, shape: inp.shape }])),
    outputs: [{ name: 'y', dtype: c.outputs?.[0] ?? 'float32' }],
    initializers: c.inputs.flatMap((inp, i) => (inp.constant ? [{ name: `in${i}`, dtype: inp.dtype, shape: inp.shape, data: inp.data }] : [])),
    nodes: [
      { opType: c.opType, inputs: c.inputs.map((_, i) => `in${i}`), outputs: ['t'], attrs: c.attrs },
      { opType: act.opType, inputs: ['t'], outputs: ['y'], attrs: act.attrs },
    ],
  });
  const feeds = Object.fromEntries(c.inputs.flatMap((inp, i) => (inp.constant ? [] : [[`in${i}`, inp]])));
  const out = await runOrt(model, feeds);
  return Array.from(out.y!.data as ArrayLike<number | bigint>, Number);
}

describe('lowering with fused activations and target limits', () => {
  it('Add with fused Relu', async () => {
    const c: SingleNodeCase = { opType: 'Add', inputs: [floats([3, 4], 1), floats([4], 2)] };
    const [{ data }, ref] = await Promise.all([runLowered(c, { activation: { opType: 'Relu', attrs: {} } }), ortWithActivation(c, { opType: 'Relu' })]);
    expect(ref.filter((v) => v === 0).length).toBeGreaterThan(0);
    expect(maxViolation(data, ref)).toBeLessThanOrEqual(1);
  });
  it('Mul with fused LeakyRelu', async () => {
    const c: SingleNodeCase = { opType: 'Mul', inputs: [floats([2, 5], 3), constant(floats([5], 4))] };
    const [{ data }, ref] = await Promise.all([
      runLowered(c, { activation: { opType: 'LeakyRelu', attrs: { alpha: { type: 'float', value: 0.1 } } } }),
      ortWithActivation(c, { opType: 'LeakyRelu', attrs: { alpha: { float: 0.1 } } }),
    ]);
    expect(maxViolation(data, ref)).toBeLessThanOrEqual(1);
  });
  it('int32 Sub with fused Relu (opset 14)', async () => {
    const c: SingleNodeCase = { opType: 'Sub', opset: 14, inputs: [ints([8], 5, -9, 9), ints([8], 6, -9, 9)], outputs: ['int32'] };
    const [{ data }, ref] = await Promise.all([runLowered(c, { activation: { opType: 'Relu', attrs: {} } }), ortWithActivation(c, { opType: 'Relu' })]);
    expect(Array.from(data)).toEqual(ref);
  });
  it('Mean of five inputs chained under a 4-buffer limit (fused activation only on the last kernel)', async () => {
    const c: SingleNodeCase = { opType: 'Mean', inputs: Array.from({ length: 5 }, (_, i) => floats([2, 3], 30 + i)) };
    const [{ lowered, data }, ref] = await Promise.all([
      runLowered(c, { limits: { maxStorageBuffersPerShaderStage: 4 }, activation: { opType: 'Relu', attrs: {} } }),
      ortWithActivation(c, { opType: 'Relu' }),
    ]);
    expect(lowered.kernels.length).toBe(2);
    for (const k of lowered.kernels) expect(k.bindings.length).toBeLessThanOrEqual(4);
    expect(lowered.kernels.map((k) => k.wgsl.includes('max('))).toEqual([false, true]);
    expect(maxViolation(data, ref)).toBeLessThanOrEqual(1);
  });
  it('inlines one-element constants as literals instead of binding them', () => {
    const lowered = lowerCase({ opType: 'Add', inputs: [floats([4, 4], 7), constant({ dtype: 'float32', shape: [1, 1], data: [2.5] })] });
    expect(lowered.kernels[0]!.bindings.map((t) => t.id)).toEqual(['in0', 'out0']);
    expect(lowered.kernels[0]!.wgsl).toContain('f32(2.50000000)');
  });
  it('reads equal-shape operands without index arithmetic', () => {
    const { wgsl } = lowerCase({ opType: 'Mul', inputs: [floats([3, 5], 8), floats([3, 5], 9)] }).kernels[0]!;
    expect(wgsl).toContain('x0[i]');
    expect(wgsl).toContain('x1[i]');
    expect(wgsl).not.toContain('%');
  });
  it('fails with FM_LIMIT when a tensor exceeds maxStorageBufferBindingSize', () => {
    expectCode(() => lowerCase({ opType: 'Add', inputs: [floats([64, 64], 10), floats([64], 11)] }, { limits: { maxStorageBufferBindingSize: 4096 } }), 'FM_LIMIT');
  });
  it('emits no model or node names into WGSL', () => {
    const { kernels } = lowerCase({ opType: 'Where', inputs: [bools([2, 1], 12), floats([3], 13), floats([2, 3], 14)] });
    for (const k of kernels) expect(k.wgsl).not.toMatch(/node|in0|out0/);
  });
});
