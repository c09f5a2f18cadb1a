/**
 * Normalizations: BatchNormalization (inference form), InstanceNormalization and LRN.
 *
 * BatchNormalization is an affine map per channel. With constant parameters the host folds them
 * into one (scale, shift) pair per channel so the kernel reads x, two floats and writes y; runtime
 * parameters are combined in the kernel instead. InstanceNormalization needs the mean and
 * variance of each (n, c) plane: one workgroup per plane reduces them in workgroup memory.
 */
import { attrFloat, attrInt } from '../ir/attrs.js';
import { makeConst } from '../ir/tensor.js';
import { numElements, type ConstTensor, type FusedActivation, type TensorType } from '../ir/types.js';
import { grid1D, lit, rowGrid, u } from '../kernel/wgsl.js';
import { kernel, LID, WID } from '../kernel/builder.js';
import { fail } from '../errors.js';
import { applyActivation } from './activation.js';
import { describeNode } from '../ir/graph.js';
import type { LowerContext, OpDef, ShapeContext } from './op.js';
import type { KernelSpec, LowerTensor } from '../kernel/types.js';
import {
  checkBindingSizes, reductionWorkgroupSize, rejectExtraOutputs, requireFloatInput, requireNCHW, workgroupReduce,
} from './pool.js';

// ---------------------------------------------------------------------------------------------
// BatchNormalization
// ---------------------------------------------------------------------------------------------

/**
 * x viewed as [outer, params, inner]: parameter p applies to x[o, p, i]. Spatial BN (the usual
 * form) has params = C and inner = D1*...*Dk; the pre-opset-9 `spatial = 0` form keeps one set
 * of parameters per (c, d1, ..., dk), so params = C*D1*...*Dk and inner = 1.
 */
interface BatchNormPlan {
  outer: number;
  params: number;
  inner: number;
  epsilon: number;
}

const BN_PARAM_NAMES = ['scale', 'B', 'input_mean', 'input_var'] as const;

function batchNormPlan(ctx: Pick<ShapeContext, 'node' | 'opset' | 'inputs'>): BatchNormPlan {
  const { node, opset } = ctx;
  const x = requireNCHW(node, ctx.inputs[0], 2);
  requireFloatInput(node, x);
  if (opset >= 14 && attrInt(node, 'training_mode', 0) !== 0) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: training_mode = 1 is not supported; flashmemc compiles inference graphs, export the model in eval mode`);
  }
  // `spatial` exists in opsets 7-8 (and as a float-like int in 1-6); from opset 9 BN is always spatial
  const spatial = opset >= 9 || attrInt(node, 'spatial', 1) !== 0;
  const [n, c] = x.shape as [number, number];
  const rest = numElements(x.shape.slice(2));
  const plan: BatchNormPlan = spatial
    ? { outer: n, params: c, inner: rest, epsilon: attrFloat(node, 'epsilon', 1e-5) }
    : { outer: n, params: c * rest, inner: 1, epsilon: attrFloat(node, 'epsilon', 1e-5) };
  for (let i = 1; i <= 4; i++) {
    const t = ctx.inputs[i];
    if (!t) fail('FM_ONNX_INVALID', `${describeNode(node)}: input ${BN_PARAM_NAMES[i - 1]} is required`);
    requireFloatInput(node, t, `input ${BN_PARAM_NAMES[i - 1]}`);
    const expected = spatial ? [c] : x.shape.slice(1);
    const ok = spatial ? t.shape.length === 1 && t.shape[0] === c : numElements(t.shape) === plan.params;
    if (!ok) {
      fail('FM_SHAPE', `${describeNode(node)}: input ${BN_PARAM_NAMES[i - 1]} has shape [${t.shape}], expected [${expected}] for X of shape [${x.shape}]`);
    }
  }
  return plan;
}

/** (scale / sqrt(var + eps), bias - mean * scale / sqrt(var + eps)) per parameter, in float64. */
export function batchNormScaleShift(scale: ConstTensor, bias: ConstTensor, mean: ConstTensor, variance: ConstTensor, epsilon: number): { scale: Float64Array; shift: Float64Array } {
  const n = scale.data.length;
  const s = new Float64Array(n), t = new Float64Array(n);
  for (let p = 0; p < n; p++) {
    s[p] = scale.data[p]! / Math.sqrt(variance.data[p]! + epsilon);
    t[p] = bias.data[p]! - mean.data[p]! * s[p]!;
  }
  return { scale: s, shift: t };
}

/**
 * Folds an inference BatchNormalization into the Conv producing its input: weight is
 * [Cout, Cin/g, k...], every output channel o is rescaled by scale[o] / sqrt(var[o] + eps).
 */
export function foldBatchNormIntoConv(
  convWeight: ConstTensor,
  convBias: ConstTensor | undefined,
  bn: { scale: ConstTensor; bias: ConstTensor; mean: ConstTensor; var: ConstTensor; epsilon: number },
): { weight: ConstTensor; bias: ConstTensor } {
  const outChannels = convWeight.shape[0]!;
  for (const [name, t] of [['scale', bn.scale], ['bias', bn.bias], ['mean', bn.mean], ['var', bn.var], ['conv bias', convBias]] as const) {
    if (t && t.data.length !== outChannels) {
      fail('FM_SHAPE', `BatchNormalization folding: ${name} has ${t.data.length} values, the Conv has ${outChannels} output channels`);
    }
  }
  const { scale, shift } = batchNormScaleShift(bn.scale, bn.bias, bn.mean, bn.var, bn.epsilon);
  const perChannel = numElements(convWeight.shape) / outChannels;
  const weight = new Float32Array(convWeight.data.length);
  const bias = new Float32Array(outChannels);
  for (let o = 0; o < outChannels; o++) {
    for (let j = 0; j < perChannel; j++) weight[o * perChannel + j] = convWeight.data[o * perChannel + j]! * scale[o]!;
    // (b - mean) * s + B == b * s + (B - mean * s)
    bias[o] = (convBias ? convBias.data[o]! : 0) * scale[o]! + shift[o]!;
  }
  return {
    weight: { dtype: 'float32', shape: [...convWeight.shape], data: weight },
    bias: { dtype: 'float32', shape: [outChannels], data: bias },
  };
}

/** WGSL expression of the parameter index of flat element `i`. */
function paramIndex(p: BatchNormPlan): string {
  if (p.inner === 1) return p.outer === 1 ? 'i' : `i % ${u(p.params)}`;
  return p.outer === 1 ? `i / ${u(p.inner)}` : `(i / ${u(p.inner)}) % ${u(p.params)}`;
}

function batchNormConstKernel(p: BatchNormPlan, activation: FusedActivation | undefined, x: LowerTensor, ss: LowerTensor, y: LowerTensor): KernelSpec {
  const grid = grid1D(numElements(y.type.shape));
  const k = kernel('batchnorm');
  k.bind('x', x, 'f32');
  k.bind('ss', ss, 'f32');
  k.bind('y', y, 'f32');
  return k.buildGrid1D(grid, `let p = ${paramIndex(p)};
  let v = x[i] * ss[2u * p] + ss[2u * p + 1u];
  y[i] = ${applyActivation('v', activation)};`);
}

function batchNormRuntimeKernel(p: BatchNormPlan, activation: FusedActivation | undefined, tensors: readonly LowerTensor[], y: LowerTensor): KernelSpec {
  const grid = grid1D(numElements(y.type.shape));
  const k = kernel('batchnorm_runtime');
  ['x', 'scale', 'bias', 'mean', 'variance'].forEach((name, i) => k.bind(name, tensors[i]!, 'f32'));
  k.bind('y', y, 'f32');
  return k.buildGrid1D(grid, `let p = ${paramIndex(p)};
  let s = scale[p] * inverseSqrt(variance[p] + ${lit(p.epsilon, 'f32')});
  let v = (x[i] - mean[p]) * s + bias[p];
  y[i] = ${applyActivation('v', activation)};`);
}

function batchNormOutputTypes(ctx: ShapeContext): TensorType[] {
  const x = ctx.inputs[0]!;
  const mean = ctx.inputs[3]!;
  // extra outputs: running mean/var (opset >= 14) or mean, var, saved mean, saved var (older)
  const extra = ctx.node.outputs.slice(1).map(() => ({ dtype: mean.dtype, shape: [...mean.shape] }));
  return [{ dtype: x.dtype, shape: [...x.shape] }, ...extra];
}

function foldBatchNorm(p: BatchNormPlan, inputs: readonly (ConstTensor | undefined)[]): ConstTensor {
  const [x, scale, bias, mean, variance] = inputs as ConstTensor[];
  const ss = batchNormScaleShift(scale!, bias!, mean!, variance!, p.epsilon);
  const out = new Array<number>(x!.data.length);
  for (let i = 0; i < out.length; i++) {
    const q = Math.floor(i / p.inner) % p.params;
    out[i] = x!.data[i]! * ss.scale[q]! + ss.shift[q]!;
  }
  return makeConst(x!.dtype, x!.shape, out);
}

export const batchNormOp: OpDef = {
  opTypes: ['BatchNormalization'],
  costClass: 'elementwise',
  fusesActivation: true,
  inferTypes(ctx) {
    batchNormPlan(ctx);
    return batchNormOutputTypes(ctx);
  },
  fold(ctx, inputs) {
    const p = batchNormPlan(ctx);
    // folding only covers the inference output; used training outputs stay unsupported
    if (ctx.node.outputs.slice(1).some((o) => o !== '')) fail('FM_UNSUPPORTED_OP', `${describeNode(ctx.node)}: the training outputs (mean/var) are not supported`);
    return [foldBatchNorm(p, inputs)];
  },
  lower(ctx) {
    rejectExtraOutputs(ctx, 'training statistics');
    const p = batchNormPlan({ node: ctx.node, opset: ctx.opset, inputs: ctx.inputs.map((t) => t?.type) });
    const [x, scale, bias, mean, variance] = ctx.inputs as LowerTensor[];
    const y = ctx.outputs[0]!;
    checkBindingSizes(ctx, [x!, y, scale!]);
    if (scale!.data && bias!.data && mean!.data && variance!.data) {
      const ss = batchNormScaleShift(scale!.data, bias!.data, mean!.data, variance!.data, p.epsilon);
      const packed = new Float32Array(2 * p.params);
      for (let q = 0; q < p.params; q++) { packed[2 * q] = ss.scale[q]!; packed[2 * q + 1] = ss.shift[q]!; }
      const ssTensor = ctx.constant('batchnorm_scale_shift', { dtype: 'float32', shape: [p.params, 2], data: packed });
      ctx.kernel(batchNormConstKernel(p, ctx.activation, x!, ssTensor, y));
    } else {
      ctx.kernel(batchNormRuntimeKernel(p, ctx.activation, [x!, scale!, bias!, mean!, variance!], y));
    }
  },
};

// ---------------------------------------------------------------------------------------------
// InstanceNormalization
// ---------------------------------------------------------------------------------------------

interface InstanceNormPlan {
  channels: number;
  planes: number;
  planeSize: number;
  epsilon: number;
}

function instanceNormPlan(ctx: Pick<ShapeContext, 'node' | 'inputs'>): InstanceNormPlan {
  const { node } = ctx;
  const x = requireNCHW(node, ctx.inputs[0], 3);
  requireFloatInput(node, x);
  const c = x.shape[1]!;
  for (const [i, name] of [[1, 'scale'], [2, 'B']] as const) {
    const t = ctx.inputs[i];
    if (!t) fail('FM_ONNX_INVALID', `${describeNode(node)}: input ${name} is required`);
    if (t.shape.length !== 1 || t.shape[0] !== c) fail('FM_SHAPE', `${describeNode(node)}: input ${name} has shape [${t.shape}], expected [${c}] (one value per channel of X [${x.shape}])`);
  }
  return { channels: c, planes: x.shape[0]! * c, planeSize: numElements(x.shape.slice(2)), epsilon: attrFloat(node, 'epsilon', 1e-5) };
}

function instanceNormKernel(p: InstanceNormPlan, ctx: LowerContext, tensors: readonly LowerTensor[]): KernelSpec {
  const size = reductionWorkgroupSize(p.planeSize, ctx.limits.maxComputeInvocationsPerWorkgroup);
  const grid = rowGrid(p.planes, ctx.limits.maxComputeWorkgroupsPerDimension);
  const sum = (a: string, b: string) => `${a} + ${b}`;
  const overPlane = (statement: string) => `for (var j = lid.x; j < ${u(p.planeSize)}; j += ${u(size)}) { ${statement} }`;
  // two passes (mean, then squared deviations) avoid the cancellation of E[x^2] - E[x]^2
  const k = kernel('instance_norm');
  ['x', 'scale', 'bias', 'y'].forEach((name, i) => k.bind(name, tensors[i]!, 'f32'));
  const header = `${k.declarations()}\n${k.workgroupArray('partial', 'f32', size)}\n\n`;
  const body = `let plane = ${grid.rowExpr};
  if (plane >= ${u(p.planes)}) { return; }
  let base = plane * ${u(p.planeSize)};
  let c = plane % ${u(p.channels)};
  var acc = 0.0;
  ${overPlane('acc += x[base + j];')}
  ${workgroupReduce(size, sum)}
  let mean = partial[0] * ${lit(1 / p.planeSize, 'f32')};
  workgroupBarrier();
  acc = 0.0;
  ${overPlane('let d = x[base + j] - mean; acc += d * d;')}
  ${workgroupReduce(size, sum)}
  let variance = partial[0] * ${lit(1 / p.planeSize, 'f32')};
  let s = scale[c] * inverseSqrt(variance + ${lit(p.epsilon, 'f32')});
  let t = bias[c] - mean * s;
  ${overPlane('y[base + j] = x[base + j] * s + t;')}`;
  return k.build({ header, entry: { workgroupSize: size, params: [WID, LID], body }, workgroups: grid.workgroups, loopTrips: 3 * Math.ceil(p.planeSize / size) + 2 * Math.log2(size) });
}

function foldInstanceNorm(p: InstanceNormPlan, x: ConstTensor, scale: ConstTensor, bias: ConstTensor): ConstTensor {
  const out = new Array<number>(x.data.length);
  for (let plane = 0; plane < p.planes; plane++) {
    const base = plane * p.planeSize;
    let mean = 0;
    for (let j = 0; j < p.planeSize; j++) mean += x.data[base + j]!;
    mean /= p.planeSize;
    let variance = 0;
    for (let j = 0; j < p.planeSize; j++) variance += (x.data[base + j]! - mean) ** 2;
    variance /= p.planeSize;
    const c = plane % p.channels;
    const s = scale.data[c]! / Math.sqrt(variance + p.epsilon);
    for (let j = 0; j < p.planeSize; j++) out[base + j] = (x.data[base + j]! - mean) * s + bias.data[c]!;
  }
  return makeConst(x.dtype, x.shape, out);
}

export const instanceNormOp: OpDef = {
  opTypes: ['InstanceNormalization'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    instanceNormPlan(ctx);
    return [{ ...ctx.inputs[0]!, shape: [...ctx.inputs[0]!.shape] }];
  },
  fold(ctx, inputs) {
    return [foldInstanceNorm(instanceNormPlan(ctx), inputs[0]!, inputs[1]!, inputs[2]!)];
  },
  lower(ctx) {
    const [x, scale, bias] = ctx.inputs as LowerTensor[];
    const y = ctx.outputs[0]!;
    const p = instanceNormPlan({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
    checkBindingSizes(ctx, [x!, y]);
    ctx.kernel(instanceNormKernel(p, ctx, [x!, scale!, bias!, y]));
  },
};

// ---------------------------------------------------------------------------------------------
// LRN
// ---------------------------------------------------------------------------------------------

interface LrnPlan {
  channels: number;
  inner: number;
  /** channels before / after c in the window: floor((size-1)/2), ceil((size-1)/2) */
  before: number;
  after: number;
  size: number;
  alpha: number;
  beta: number;
  bias: number;
}

function lrnPlan(ctx: Pick<ShapeContext, 'node' | 'inputs'>): LrnPlan {
  const { node } = ctx;
  const x = requireNCHW(node, ctx.inputs[0], 3);
  requireFloatInput(node, x);
  const size = attrInt(node, 'size');
  if (size === undefined || !Number.isInteger(size) || size < 1) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute size = ${size} must be a positive integer (it is required)`);
  }
  return {
    channels: x.shape[1]!,
    inner: numElements(x.shape.slice(2)),
    before: Math.floor((size - 1) / 2),
    after: Math.ceil((size - 1) / 2),
    size,
    alpha: attrFloat(node, 'alpha', 1e-4),
    beta: attrFloat(node, 'beta', 0.75),
    bias: attrFloat(node, 'bias', 1),
  };
}

function lrnKernel(p: LrnPlan, x: LowerTensor, y: LowerTensor): KernelSpec {
  const grid = grid1D(numElements(y.type.shape));
  const k = kernel('lrn');
  k.bind('x', x, 'f32');
  k.bind('y', y, 'f32');
  return k.buildGrid1D(grid, `let c = i32((i / ${u(p.inner)}) % ${u(p.channels)});
  let first = max(c - ${lit(p.before, 'i32')}, 0i);
  let last = min(c + ${lit(p.after, 'i32')}, ${lit(p.channels - 1, 'i32')});
  // element (n, c', s) sits (c' - c) * inner away from (n, c, s)
  let origin = i32(i) - c * ${lit(p.inner, 'i32')};
  var squares = 0.0;
  for (var k = first; k <= last; k++) {
    let v = x[u32(origin + k * ${lit(p.inner, 'i32')})];
    squares += v * v;
  }
  let denominator = ${lit(p.bias, 'f32')} + ${lit(p.alpha / p.size, 'f32')} * squares;
  y[i] = x[i] * pow(denominator, ${lit(-p.beta, 'f32')});`);
}

export const lrnOp: OpDef = {
  opTypes: ['LRN'],
  costClass: 'elementwise',
  inferTypes(ctx) {
    lrnPlan(ctx);
    return [{ ...ctx.inputs[0]!, shape: [...ctx.inputs[0]!.shape] }];
  },
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    const p = lrnPlan({ node: ctx.node, inputs: [x.type] });
    checkBindingSizes(ctx, [x, y]);
    ctx.kernel(lrnKernel(p, x, y));
  },
};

export const normalizationOps: readonly OpDef[] = [batchNormOp, instanceNormOp, lrnOp];
