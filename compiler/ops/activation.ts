/**
 * Unary activations (Relu, Sigmoid, Clip, ...). Each is both a standalone elementwise kernel
 * and an expression that producer kernels (Conv, Gemm, MatMul, binary ops) apply when the
 * activation-fusion pass folds the activation into them.
 */
import { attrFloat } from '../ir/attrs.js';
import type { Attrs, ConstTensor, FusedActivation, Node } from '../ir/types.js';
import { grid1D, lit, wgslType } from '../kernel/wgsl.js';
import type { LowerTensor } from '../kernel/types.js';
import { numElements } from '../ir/types.js';
import { erfWgslExpression, geluErfWgsl, geluHost, geluTanhWgsl, type GeluApproximation } from '../kernel/math.js';
import { kernel } from '../kernel/builder.js';
import type { LowerContext, OpDef } from './op.js';
import { fail, quoteName } from '../errors.js';
import { FUSED_DOMAIN } from './domains.js';
import { describeNode } from '../ir/graph.js';

type ActivationImpl = {
  /** WGSL f32 expression of `x` */
  wgsl(x: string, attrs: ActivationAttrs): string;
  /** JS reference used by constant folding */
  js(x: number, attrs: ActivationAttrs): number;
};

type ActivationAttrs = { alpha: number; beta: number; gamma: number; min: number; max: number };

const selu = { alpha: 1.67326319217681884765625, gamma: 1.05070102214813232421875 };

const ACTIVATIONS: Record<string, ActivationImpl> = {
  Relu: { wgsl: (x) => `max(${x}, 0.0)`, js: (x) => Math.max(x, 0) },
  LeakyRelu: {
    wgsl: (x, a) => `select(${x} * ${lit(a.alpha, 'f32')}, ${x}, ${x} >= 0.0)`,
    js: (x, a) => (x >= 0 ? x : x * a.alpha),
  },
  Elu: {
    wgsl: (x, a) => `select(${lit(a.alpha, 'f32')} * (exp(${x}) - 1.0), ${x}, ${x} >= 0.0)`,
    js: (x, a) => (x >= 0 ? x : a.alpha * (Math.exp(x) - 1)),
  },
  Selu: {
    wgsl: (x, a) => `${lit(a.gamma, 'f32')} * select(${lit(a.alpha, 'f32')} * (exp(${x}) - 1.0), ${x}, ${x} > 0.0)`,
    js: (x, a) => a.gamma * (x > 0 ? x : a.alpha * (Math.exp(x) - 1)),
  },
  Sigmoid: { wgsl: (x) => `(1.0 / (1.0 + exp(-${x})))`, js: (x) => 1 / (1 + Math.exp(-x)) },
  HardSigmoid: {
    wgsl: (x, a) => `clamp(${lit(a.alpha, 'f32')} * ${x} + ${lit(a.beta, 'f32')}, 0.0, 1.0)`,
    js: (x, a) => Math.min(1, Math.max(0, a.alpha * x + a.beta)),
  },
  HardSwish: {
    wgsl: (x) => `(${x} * clamp(${x} / 6.0 + 0.5, 0.0, 1.0))`,
    js: (x) => x * Math.min(1, Math.max(0, x / 6 + 0.5)),
  },
  // tanh() of large |x| is NaN on some drivers (exp overflow): clamp first, tanh(±10) is ±1 in f32.
  Tanh: { wgsl: (x) => `tanh(clamp(${x}, -10.0, 10.0))`, js: (x) => Math.tanh(x) },
  Softplus: {
    // log(1 + exp(x)) overflows for large x; softplus(x) == x there in f32.
    wgsl: (x) => `select(log(1.0 + exp(${x})), ${x}, ${x} > 20.0)`,
    js: (x) => (x > 20 ? x : Math.log1p(Math.exp(x))),
  },
  Softsign: { wgsl: (x) => `(${x} / (1.0 + abs(${x})))`, js: (x) => x / (1 + Math.abs(x)) },
  Clip: {
    wgsl: (x, a) => `clamp(${x}, ${lit(a.min, 'f32')}, ${lit(a.max, 'f32')})`,
    js: (x, a) => Math.min(a.max, Math.max(a.min, x)),
  },
};

const DEFAULT_ALPHA: Record<string, number> = { LeakyRelu: 0.01, Elu: 1, Selu: selu.alpha, HardSigmoid: 0.2, QuickGelu: 1.702 };

/** Gelu's `approximate` attribute; `where` names the node in the error. */
export function geluApproximation(attrs: Attrs, where = 'Gelu'): GeluApproximation {
  const a = attrs.approximate;
  const mode = a?.type === 'string' ? a.value : 'none';
  if (mode !== 'none' && mode !== 'tanh') fail('FM_UNSUPPORTED_OP', `${where}: approximate=${quoteName(mode)} is not 'none' or 'tanh'`);
  return mode;
}

/**
 * Activations that exist as kernels only through fusion (domain FUSED_DOMAIN), besides Gelu
 * (geluWgsl/geluHost; Gelu is also ONNX's own op from opset 20, with the same attributes).
 */
const FUSED_ACTIVATIONS: Record<string, ActivationImpl> = {
  QuickGelu: {
    // x * sigmoid(alpha * x): CLIP's QuickGELU (alpha 1.702), SiLU/Swish (alpha 1)
    wgsl: (x, a) => `(${x} / (1.0 + exp(-${lit(a.alpha, 'f32')} * ${x})))`,
    js: (x, a) => x / (1 + Math.exp(-a.alpha * x)),
  },
};

/**
 * GELU as one WGSL expression of `x`. The exact form evaluates the kernel layer's erf
 * (kernel/math.ts) inline, repeating `x`: fused producers paste expressions, not functions, and
 * the shader compiler merges the repeated subexpressions.
 */
function geluWgsl(x: string, attrs: Attrs): string {
  if (geluApproximation(attrs) === 'none') return `(${geluErfWgsl(x, (arg) => erfWgslExpression(`(${arg})`))})`;
  return `(${geluTanhWgsl(x)})`;
}

/** The ops of fusedActivationOps: the GELU forms the fuse-gelu pass recognises. */
export const FUSED_ACTIVATION_OPS: readonly string[] = ['Gelu', ...Object.keys(FUSED_ACTIVATIONS)];

/**
 * Whether `node` is an activation the fuse-activations pass may fold into its producer: the
 * ONNX activations, ONNX Gelu (opset 20) and the fused GELU forms.
 */
export function isFusableActivation(node: Node, opset: number): boolean {
  if (node.domain === FUSED_DOMAIN) return FUSED_ACTIVATION_OPS.includes(node.opType);
  if (node.domain !== '') return false;
  return ACTIVATION_OPS.includes(node.opType) || (node.opType === 'Gelu' && opset >= 20);
}

export const ACTIVATION_OPS: readonly string[] = Object.keys(ACTIVATIONS);

function resolveAttrs(opType: string, attrs: Attrs): ActivationAttrs {
  const pseudo: Node = { name: opType, opType, domain: '', inputs: [], outputs: [], attrs };
  return {
    alpha: attrFloat(pseudo, 'alpha', DEFAULT_ALPHA[opType] ?? 0),
    beta: attrFloat(pseudo, 'beta', 0.5),
    gamma: attrFloat(pseudo, 'gamma', selu.gamma),
    min: attrFloat(pseudo, 'min', -Infinity),
    max: attrFloat(pseudo, 'max', Infinity),
  };
}

/** WGSL expression applying `act` to f32 expression `x`; identity when act is undefined. */
export function applyActivation(x: string, act: FusedActivation | undefined): string {
  if (!act) return x;
  if (act.opType === 'Gelu') return geluWgsl(x, act.attrs);
  const impl = ACTIVATIONS[act.opType] ?? FUSED_ACTIVATIONS[act.opType];
  if (!impl) fail('FM_UNSUPPORTED_OP', `activation ${quoteName(act.opType)} cannot be fused`);
  return impl.wgsl(x, resolveAttrs(act.opType, act.attrs));
}

/**
 * Clip takes min/max as inputs from opset 11; fusion needs them constant and turns them into
 * attributes. Returns undefined when the Clip bounds are not compile-time constants.
 */
export function clipBoundsAsAttrs(node: Node, consts: readonly (ConstTensor | undefined)[]): Attrs | undefined {
  const attrs: Attrs = { ...node.attrs };
  for (const [i, key] of [[1, 'min'], [2, 'max']] as const) {
    if (!node.inputs[i]) continue;
    const c = consts[i];
    if (!c) return undefined;
    attrs[key] = { type: 'float', value: c.data[0]! };
  }
  return attrs;
}

/** Host value of a fused activation (constant folding, tests). */
export function activationHost(x: number, act: FusedActivation): number {
  if (act.opType === 'Gelu') return geluHost(x, geluApproximation(act.attrs));
  const impl = ACTIVATIONS[act.opType] ?? FUSED_ACTIVATIONS[act.opType];
  if (!impl) fail('FM_UNSUPPORTED_OP', `activation ${quoteName(act.opType)} has no host implementation`);
  return impl.js(x, resolveAttrs(act.opType, act.attrs));
}

/** Gelu and QuickGelu of FUSED_DOMAIN: one elementwise kernel (or none, once fused into a MatMul). */
export const fusedActivationOps: OpDef = {
  opTypes: FUSED_ACTIVATION_OPS,
  costClass: 'elementwise',
  inferTypes(ctx) {
    const x = ctx.inputs[0];
    if (!x || x.dtype !== 'float32') fail('FM_DTYPE', `${describeNode(ctx.node)}: takes one float32 input`);
    if (ctx.node.opType === 'Gelu') geluApproximation(ctx.node.attrs);
    return [{ ...x, shape: [...x.shape] }];
  },
  fold(ctx, inputs) {
    const x = inputs[0]!;
    const act: FusedActivation = { opType: ctx.node.opType, attrs: ctx.node.attrs };
    return [{ ...x, shape: [...x.shape], data: x.data.map((v) => activationHost(v, act)) }];
  },
  lower(ctx) {
    const act: FusedActivation = { opType: ctx.node.opType, attrs: ctx.node.attrs };
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    const k = kernel(ctx.node.opType === 'Gelu' ? 'gelu' : 'quick_gelu');
    const xv = k.bind('x', x, 'f32');
    const yv = k.bind('y', y, 'f32');
    ctx.kernel(k.buildGrid1D(grid1D(yv.size), `${yv.at('i')} = ${applyActivation(xv.at('i'), act)};`));
  },
};

/**
 * Clip whose min or max is computed at run time (opset 11+ inputs): the kernel reads each such
 * bound from its one-element tensor, so no host round trip is needed. Constant bounds stay
 * literals; min(max(x, lo), hi) is ONNX Runtime's order when lo > hi.
 */
function lowerRuntimeClip(inputs: LowerContext['inputs'], y: LowerTensor, ctx: LowerContext): void {
  const k = kernel('clip_runtime_bounds');
  const xv = k.bind('x', inputs[0]!, 'f32');
  const bound = (i: 1 | 2, fallback: number): string => {
    const t = inputs[i];
    if (!t) return lit(fallback, 'f32');
    if (numElements(t.type.shape) !== 1) fail('FM_SHAPE', `${describeNode(ctx.node)}: ${i === 1 ? 'min' : 'max'} must be a scalar, it has shape [${t.type.shape}]`);
    if (t.data) return lit(t.data.data[0]!, 'f32');
    return `f32(${k.bind(i === 1 ? 'lo' : 'hi', t, wgslType(t.type.dtype)).at('0')})`;
  };
  const lo = bound(1, -Infinity);
  const hi = bound(2, Infinity);
  const yv = k.bind('y', y, 'f32');
  ctx.kernel(k.buildGrid1D(grid1D(yv.size), `${yv.at('i')} = min(max(${xv.at('i')}, ${lo}), ${hi});`));
}

export const activationOps: OpDef = {
  opTypes: ACTIVATION_OPS,
  costClass: 'elementwise',
  inferTypes: (ctx) => [{ ...ctx.inputs[0]! }],
  fold(ctx, inputs) {
    const x = inputs[0]!;
    const attrs = ctx.node.opType === 'Clip' ? clipBoundsAsAttrs(ctx.node, ctx.consts) ?? ctx.node.attrs : ctx.node.attrs;
    const a = resolveAttrs(ctx.node.opType, attrs);
    const impl = ACTIVATIONS[ctx.node.opType]!;
    return [{ ...x, shape: [...x.shape], data: x.data.map((v) => impl.js(v, a)) }];
  },
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    let attrs = ctx.node.attrs;
    if (ctx.node.opType === 'Clip') {
      const bounds = clipBoundsAsAttrs(ctx.node, ctx.inputs.map((t) => t?.data));
      if (!bounds) return lowerRuntimeClip(ctx.inputs, y, ctx);
      attrs = bounds;
    }
    const k = kernel(ctx.node.opType.toLowerCase());
    const xv = k.bind('x', x, 'f32');
    const yv = k.bind('y', y, 'f32');
    const expr = applyActivation(xv.at('i'), { opType: ctx.node.opType, attrs });
    ctx.kernel(k.buildGrid1D(grid1D(yv.size), `${yv.at('i')} = ${expr};`));
  },
};
