/**
 * Binary arithmetic, comparison and logic with numpy broadcasting and the legacy opset < 7
 * `broadcast`/`axis` form.
 */
import { attrInt } from '../../ir/attrs.js';
import type { ConstTensor, DType, Node, TensorType } from '../../ir/types.js';
import { isFloat } from '../../ir/types.js';
import { describeNode } from '../../ir/graph.js';
import type { LowerTensor } from '../../kernel/types.js';
import { wgslType, type WgslScalar } from '../../kernel/wgsl.js';
import { fail } from '../../errors.js';
import type { OpDef } from '../op.js';
import { broadcastShapes, foldBroadcast } from './broadcast.js';
import { boolToI32, type Expr } from './helpers.js';
import { emitElementwise } from './kernel.js';
import { checkDtype, checkSameDtype, requireInputs, type DtypeClass } from './validate.js';


interface BinaryContext {
  node: Node;
  /** storage types of A and B (the output type follows A, or is i32 for bool results) */
  a: WgslScalar;
  b: WgslScalar;
  /** B's value when it is a one-element constant */
  bConst?: number;
}

interface BinaryOpImpl {
  result: 'same' | 'bool';
  accepts: DtypeClass;
  /** ops that had `broadcast`/`axis` attributes before opset 7 */
  legacyBroadcast: boolean;
  wgsl(a: string, b: string, c: BinaryContext): Expr;
  js(a: number, b: number, dtype: DType, node: Node): number;
}

function arithmetic(op: string, js: (a: number, b: number) => number): BinaryOpImpl {
  return { result: 'same', accepts: 'numeric', legacyBroadcast: true, wgsl: (a, b) => ({ code: `${a} ${op} ${b}` }), js };
}

function comparison(op: string, js: (a: number, b: number) => boolean, legacyBroadcast: boolean): BinaryOpImpl {
  return {
    result: 'bool', accepts: 'numeric-or-bool', legacyBroadcast,
    wgsl: (a, b) => ({ code: boolToI32(`${a} ${op} ${b}`) }),
    js: (a, b) => (js(a, b) ? 1 : 0),
  };
}

function logical(op: string, js: (a: boolean, b: boolean) => boolean): BinaryOpImpl {
  return {
    result: 'bool', accepts: 'bool', legacyBroadcast: true,
    wgsl: (a, b) => ({ code: boolToI32(`(${a} != 0) ${op} (${b} != 0)`) }),
    js: (a, b) => (js(a !== 0, b !== 0) ? 1 : 0),
  };
}

/** Pow by a constant small integer or half exponent, without exp2/log2. */
function powByConstant(a: string, e: number): string | undefined {
  switch (e) {
    case 0: return '1.0';
    case 1: return a;
    case 2: return `${a} * ${a}`;
    case 3: return `${a} * ${a} * ${a}`;
    case 4: return `(${a} * ${a}) * (${a} * ${a})`;
    case 0.5: return `sqrt(${a})`;
    case -0.5: return `inverseSqrt(${a})`;
    case -1: return `1.0 / ${a}`;
    case -2: return `1.0 / (${a} * ${a})`;
    default: return undefined;
  }
}

const powImpl: BinaryOpImpl = {
  result: 'same', accepts: 'numeric', legacyBroadcast: true,
  wgsl(a, b, c) {
    if (c.a === 'f32') {
      const special = c.bConst === undefined ? undefined : powByConstant(a, c.bConst);
      if (special) return { code: special };
      return { code: `fm_pow(${a}, ${c.b === 'f32' ? b : `f32(${b})`})`, helpers: ['fm_pow'] };
    }
    if (c.b === 'i32') return { code: `fm_ipow(${a}, ${b})`, helpers: ['fm_ipow'] };
    return { code: `i32(fm_pow(f32(${a}), ${b}))`, helpers: ['fm_pow'] };
  },
  // C pow: x^0 and 1^y are 1 even for NaN (JS ** gives NaN for 1 ** NaN)
  js: (a, b) => (b === 0 || a === 1 ? 1 : a ** b),
};

const modImpl: BinaryOpImpl = {
  result: 'same', accepts: 'numeric', legacyBroadcast: false,
  wgsl(a, b, c) {
    const fmod = attrInt(c.node, 'fmod', 0) === 1;
    // i32 % truncates like C fmod; f32 % loses the remainder when a / b rounds
    if (fmod) return c.a === 'i32' ? { code: `${a} % ${b}` } : { code: `fm_fmod(${a}, ${b})`, helpers: ['fm_fmod'] };
    return { code: `fm_imod(${a}, ${b})`, helpers: ['fm_imod'] };
  },
  js(a, b, _dtype, node) {
    const r = a % b;
    if (attrInt(node, 'fmod', 0) === 1) return r;
    return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
  },
};

export const BINARY_ARITHMETIC: Readonly<Record<string, BinaryOpImpl>> = {
  Add: arithmetic('+', (a, b) => a + b),
  Sub: arithmetic('-', (a, b) => a - b),
  Mul: arithmetic('*', (a, b) => a * b),
  // i32 division in WGSL truncates toward zero like ONNX Runtime's integer Div
  Div: { ...arithmetic('/', (a, b) => a / b), js: (a, b, dtype) => (isFloat(dtype) ? a / b : Math.trunc(a / b)) },
  Pow: powImpl,
  Mod: modImpl,
};

export const BINARY_PREDICATES: Readonly<Record<string, BinaryOpImpl>> = {
  Equal: comparison('==', (a, b) => a === b, true),
  Less: comparison('<', (a, b) => a < b, true),
  Greater: comparison('>', (a, b) => a > b, true),
  LessOrEqual: comparison('<=', (a, b) => a <= b, false),
  GreaterOrEqual: comparison('>=', (a, b) => a >= b, false),
  And: logical('&&', (a, b) => a && b),
  Or: logical('||', (a, b) => a || b),
  Xor: logical('!=', (a, b) => a !== b),
};

/**
 * Before opset 7, binary ops broadcast only with broadcast=1: B's shape then matches a
 * contiguous run of A's axes starting at `axis` (default: A's trailing axes). Returns B's shape
 * padded with 1s so that numpy broadcasting reproduces that alignment.
 */
function legacyAlignedShape(node: Node, a: readonly number[], b: readonly number[]): number[] {
  const enabled = attrInt(node, 'broadcast', 0) === 1;
  if (!enabled) {
    if (a.length !== b.length || a.some((d, k) => d !== b[k])) {
      fail('FM_SHAPE', `${describeNode(node)}: input shapes [${a}] and [${b}] differ and broadcast=0 (opset < 7 broadcasts only ` +
        `with broadcast=1); set broadcast=1 or convert the model to opset >= 7`);
    }
    return [...b];
  }
  let axis = attrInt(node, 'axis', a.length - b.length);
  if (axis < 0) axis += a.length;
  if (axis < 0 || axis + b.length > a.length) {
    fail('FM_SHAPE', `${describeNode(node)}: axis=${attrInt(node, 'axis')} cannot place B [${b}] inside A [${a}]`);
  }
  b.forEach((d, k) => {
    if (d !== 1 && d !== a[axis + k]) {
      fail('FM_SHAPE', `${describeNode(node)}: B [${b}] does not match A [${a}] at axis ${axis} (broadcast=1, opset < 7)`);
    }
  });
  return [...new Array<number>(axis).fill(1), ...b, ...new Array<number>(a.length - axis - b.length).fill(1)];
}

interface BinaryPlan {
  outType: TensorType;
  shapes: [number[], number[]];
}

function planBinary(impl: BinaryOpImpl, node: Node, opset: number, inputs: readonly (TensorType | undefined)[]): BinaryPlan {
  const [a, b] = requireInputs(node, inputs, 2);
  if (!(node.opType === 'Pow' && opset >= 12)) checkSameDtype(node, [a!, b!]);
  checkDtype(node, a!.dtype, impl.accepts);
  checkDtype(node, b!.dtype, impl.accepts);
  if (node.opType === 'Mod' && isFloat(a!.dtype) && attrInt(node, 'fmod', 0) !== 1) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: floating-point Mod requires fmod=1 (got fmod=${attrInt(node, 'fmod', 0)})`);
  }
  const shapes: [number[], number[]] = impl.legacyBroadcast && opset < 7
    ? [[...a!.shape], legacyAlignedShape(node, a!.shape, b!.shape)]
    : [[...a!.shape], [...b!.shape]];
  const shape = broadcastShapes(node, shapes);
  return { outType: { dtype: impl.result === 'bool' ? 'bool' : a!.dtype, shape }, shapes };
}

export function binaryFamily(table: Readonly<Record<string, BinaryOpImpl>>, fusesActivation: boolean): OpDef {
  const implOf = (node: Node): BinaryOpImpl => table[node.opType]!;
  return {
    opTypes: Object.keys(table),
    costClass: 'elementwise',
    fusesActivation,
    inferTypes: (ctx) => [planBinary(implOf(ctx.node), ctx.node, ctx.opset, ctx.inputs).outType],
    fold(ctx, inputs) {
      const impl = implOf(ctx.node);
      const plan = planBinary(impl, ctx.node, ctx.opset, ctx.inputs);
      const [a, b] = inputs as ConstTensor[];
      const operands = [{ shape: plan.shapes[0], data: a!.data }, { shape: plan.shapes[1], data: b!.data }];
      return [foldBroadcast(plan.outType.dtype, plan.outType.shape, operands, ([x, y]) => impl.js(x!, y!, a!.dtype, ctx.node))];
    },
    lower(ctx) {
      const impl = implOf(ctx.node);
      const plan = planBinary(impl, ctx.node, ctx.opset, ctx.inputs.map((t) => t?.type));
      const [a, b] = ctx.inputs as LowerTensor[];
      const bc: BinaryContext = {
        node: ctx.node, a: wgslType(a!.type.dtype), b: wgslType(b!.type.dtype),
        bConst: b!.data?.data.length === 1 ? b!.data.data[0] : undefined,
      };
      emitElementwise(ctx, {
        label: ctx.node.opType.toLowerCase(),
        operands: [{ tensor: a!, shape: plan.shapes[0] }, { tensor: b!, shape: plan.shapes[1] }],
        output: ctx.outputs[0]!,
        expr: ([x, y]) => impl.wgsl(x!, y!, bc),
        activation: fusesActivation ? ctx.activation : undefined,
      });
    },
  };
}
