/**
 * Unary math and predicates.
 */
import { attrFloat, attrInt } from '../../ir/attrs.js';
import type { Node, TensorType } from '../../ir/types.js';
import { describeNode } from '../../ir/graph.js';
import { erfHost, geluErfWgsl, geluHost, geluTanhWgsl } from '../../kernel/math.js';
import { lit, wgslType, type WgslScalar } from '../../kernel/wgsl.js';
import { fail } from '../../errors.js';
import { geluApproximation } from '../activation.js';
import type { OpDef } from '../op.js';
import { constOf } from './dtypes.js';
import { boolToI32, type Expr, type HelperName } from './helpers.js';
import { emitElementwise } from './kernel.js';
import { checkDtype, requireInputs, type DtypeClass } from './validate.js';


interface UnaryContext {
  node: Node;
  t: WgslScalar;
}

interface UnaryOpImpl {
  accepts: DtypeClass;
  result: 'same' | 'bool';
  wgsl(x: string, c: UnaryContext): Expr;
  js(x: number, node: Node): number;
  /** minimum opset where the op exists (older models fail clearly) */
  since?: number;
}

function floatMath(fn: string, js: (x: number) => number): UnaryOpImpl {
  return { accepts: 'float', result: 'same', wgsl: (x) => ({ code: `${fn}(${x})` }), js };
}

function helperMath(fn: HelperName, js: (x: number) => number): UnaryOpImpl {
  return { accepts: 'float', result: 'same', wgsl: (x) => ({ code: `${fn}(${x})`, helpers: [fn] }), js };
}

/** Round half to even (WGSL round() has the same rule). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

function shrinkAttrs(node: Node): { lambd: number; bias: number } {
  return { lambd: attrFloat(node, 'lambd', 0.5), bias: attrFloat(node, 'bias', 0) };
}

export const UNARY_MATH: Readonly<Record<string, UnaryOpImpl>> = {
  Abs: { accepts: 'numeric', result: 'same', wgsl: (x) => ({ code: `abs(${x})` }), js: Math.abs },
  Neg: { accepts: 'numeric', result: 'same', wgsl: (x) => ({ code: `-(${x})` }), js: (x) => -x },
  Sign: {
    accepts: 'numeric', result: 'same',
    // sign(NaN) is NaN in ONNX Runtime, 0 on llvmpipe
    wgsl: (x, c) => (c.t === 'i32' ? { code: `sign(${x})` } : { code: `select(sign(${x}), ${x}, fm_is_nan(${x}))`, helpers: ['fm_is_nan'] }),
    js: (x) => (Number.isNaN(x) ? NaN : Math.sign(x)),
  },
  Sqrt: floatMath('sqrt', Math.sqrt),
  Exp: floatMath('exp', Math.exp),
  Log: floatMath('log', Math.log),
  Reciprocal: { accepts: 'float', result: 'same', wgsl: (x) => ({ code: `1.0 / ${x}` }), js: (x) => 1 / x },
  Floor: floatMath('floor', Math.floor),
  Ceil: floatMath('ceil', Math.ceil),
  Round: { ...floatMath('round', roundHalfEven), since: 11 },
  Sin: { ...floatMath('sin', Math.sin), since: 7 },
  Cos: { ...floatMath('cos', Math.cos), since: 7 },
  Tan: { ...floatMath('tan', Math.tan), since: 7 },
  Asin: { ...floatMath('asin', Math.asin), since: 7 },
  Acos: { ...floatMath('acos', Math.acos), since: 7 },
  Atan: { ...floatMath('atan', Math.atan), since: 7 },
  Sinh: { ...floatMath('sinh', Math.sinh), since: 9 },
  Cosh: { ...floatMath('cosh', Math.cosh), since: 9 },
  Asinh: { ...helperMath('fm_asinh', Math.asinh), since: 9 },
  Acosh: { ...helperMath('fm_acosh', Math.acosh), since: 9 },
  Atanh: { ...floatMath('atanh', Math.atanh), since: 9 },
  Erf: { ...helperMath('fm_erf', erfHost), since: 9 },
  Gelu: {
    accepts: 'float', result: 'same', since: 20,
    wgsl: (x, c) => (geluApproximation(c.node.attrs, describeNode(c.node)) === 'none'
      ? { code: geluErfWgsl(x, (arg) => `fm_erf(${arg})`), helpers: ['fm_erf'] }
      : { code: geluTanhWgsl(x) }),
    js: (x, node) => geluHost(x, geluApproximation(node.attrs, describeNode(node))),
  },
  Shrink: {
    accepts: 'numeric', result: 'same', since: 9,
    wgsl(x, c) {
      const { lambd, bias } = shrinkAttrs(c.node);
      // lambd and bias are floats even for integer X: compare and shift in f32, then truncate
      const v = c.t === 'f32' ? x : `f32(${x})`;
      const l = lit(lambd, 'f32');
      const b = lit(bias, 'f32');
      const shrunk = `select(select(0.0, ${v} - ${b}, ${v} > ${l}), ${v} + ${b}, ${v} < -(${l}))`;
      return { code: c.t === 'f32' ? shrunk : `i32(${shrunk})` };
    },
    js(x, node) {
      const { lambd, bias } = shrinkAttrs(node);
      return x < -lambd ? x + bias : x > lambd ? x - bias : 0;
    },
  },
};

export const UNARY_PREDICATES: Readonly<Record<string, UnaryOpImpl>> = {
  IsNaN: { accepts: 'float', result: 'bool', since: 9, wgsl: (x) => ({ code: boolToI32(`fm_is_nan(${x})`), helpers: ['fm_is_nan'] }), js: (x) => (Number.isNaN(x) ? 1 : 0) },
  IsInf: {
    accepts: 'float', result: 'bool', since: 10,
    wgsl(x, c) {
      const neg = attrInt(c.node, 'detect_negative', 1) === 1;
      const pos = attrInt(c.node, 'detect_positive', 1) === 1;
      const sides = neg && pos ? 'true' : neg ? `${x} < 0.0` : pos ? `${x} > 0.0` : 'false';
      return { code: boolToI32(`fm_is_inf(${x}) && (${sides})`), helpers: ['fm_is_inf'] };
    },
    js(x, node) {
      const neg = attrInt(node, 'detect_negative', 1) === 1;
      const pos = attrInt(node, 'detect_positive', 1) === 1;
      return (x === Infinity && pos) || (x === -Infinity && neg) ? 1 : 0;
    },
  },
  Not: { accepts: 'bool', result: 'bool', wgsl: (x) => ({ code: boolToI32(`${x} == 0`) }), js: (x) => (x === 0 ? 1 : 0) },
};

function planUnary(impl: UnaryOpImpl, node: Node, opset: number, inputs: readonly (TensorType | undefined)[]): TensorType {
  if (impl.since !== undefined && opset < impl.since) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: ${node.opType} does not exist before opset ${impl.since} (model opset ${opset})`);
  }
  const [x] = requireInputs(node, inputs, 1);
  checkDtype(node, x!.dtype, impl.accepts);
  return { dtype: impl.result === 'bool' ? 'bool' : x!.dtype, shape: [...x!.shape] };
}

export function unaryFamily(table: Readonly<Record<string, UnaryOpImpl>>, fusesActivation: boolean): OpDef {
  const implOf = (node: Node): UnaryOpImpl => table[node.opType]!;
  return {
    opTypes: Object.keys(table),
    costClass: 'elementwise',
    fusesActivation,
    inferTypes: (ctx) => [planUnary(implOf(ctx.node), ctx.node, ctx.opset, ctx.inputs)],
    fold(ctx, inputs) {
      const impl = implOf(ctx.node);
      const out = planUnary(impl, ctx.node, ctx.opset, ctx.inputs);
      const x = inputs[0]!;
      return [constOf(out.dtype, out.shape, (i) => impl.js(x.data[i]!, ctx.node))];
    },
    lower(ctx) {
      const impl = implOf(ctx.node);
      planUnary(impl, ctx.node, ctx.opset, ctx.inputs.map((t) => t?.type));
      const x = ctx.inputs[0]!;
      const uc: UnaryContext = { node: ctx.node, t: wgslType(x.type.dtype) };
      emitElementwise(ctx, {
        label: ctx.node.opType.toLowerCase(),
        operands: [{ tensor: x, shape: x.type.shape }],
        output: ctx.outputs[0]!,
        expr: ([v]) => impl.wgsl(v!, uc),
        activation: fusesActivation ? ctx.activation : undefined,
      });
    },
  };
}
