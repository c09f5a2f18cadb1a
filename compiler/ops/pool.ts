/**
 * Pooling: MaxPool / AveragePool (windowed, 1-D to 3-D spatial) and GlobalAveragePool /
 * GlobalMaxPool (any spatial rank).
 *
 * Windowed pools run one invocation per output element with the whole window geometry baked in
 * as literals; bounds checks that can never fail for this shape are left out. Global pools
 * reduce each (n, c) plane either serially (small planes: one invocation per plane) or with one
 * workgroup per plane and a tree reduction in workgroup memory (large planes such as 112x112).
 */
import { attrInt, attrInts } from '../ir/attrs.js';
import { makeConst } from '../ir/tensor.js';
import { isFloat, numElements, type ConstTensor, type Node, type TensorType } from '../ir/types.js';
import { grid1D, lit, nextPow2, rowGrid, u, unravel, wgslType, type WgslScalar } from '../kernel/wgsl.js';
import { kernel, LID, WID } from '../kernel/builder.js';
import { checkBindable } from '../kernel/limits.js';
import { fail } from '../errors.js';
import { describeNode } from '../ir/graph.js';
import { forwardWindow, spatialInts, type WindowGeometry } from './conv/geometry.js';
import type { LowerContext, OpDef, ShapeContext } from './op.js';
import type { KernelSpec, LowerTensor } from '../kernel/types.js';

// ---------------------------------------------------------------------------------------------
// Shared helpers (also used by normalization.ts)
// ---------------------------------------------------------------------------------------------

const MAX_SPATIAL_RANK = 3;

/** The input X as (N, C, spatial...) with at least `minRank` dims, else FM_SHAPE. */
export function requireNCHW(node: Node, x: TensorType | undefined, minRank: number): TensorType {
  if (!x) fail('FM_ONNX_INVALID', `${describeNode(node)}: input X is required`);
  if (x.shape.length < minRank) {
    fail('FM_SHAPE', `${describeNode(node)}: input X has shape [${x.shape}]; expected (N, C, D1, ...) with at least ${minRank} dimensions`);
  }
  return x;
}

export function requireFloatInput(node: Node, t: TensorType, what = 'input X'): void {
  if (!isFloat(t.dtype)) fail('FM_DTYPE', `${describeNode(node)}: ${what} of type ${t.dtype} is not supported; ${node.opType} takes float tensors`);
}

/** checkBindable (kernel/limits.ts) for a node's tensors, with this family's advice; also used by normalization.ts and transformer.ts. */
export function checkBindingSizes(ctx: LowerContext, tensors: readonly LowerTensor[]): void {
  checkBindable(describeNode(ctx.node), tensors, ctx.limits, 'reduce the batch size or input resolution');
}

/** Optional outputs beyond the first must be unused (dead-output elimination empties their names). */
export function rejectExtraOutputs(ctx: LowerContext, what: string): void {
  const used = ctx.node.outputs.slice(1).findIndex((name) => name !== '');
  if (used >= 0) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(ctx.node)}: output ${used + 1} (${what}) is used by the model but not supported; ` +
      'only the first output can be computed, re-export the model without it');
  }
}

/**
 * WGSL statements reducing per-invocation `acc` across the workgroup into `partial[0]` with
 * `combine(a, b)`; ends with a barrier so every invocation can read the result.
 */
export function workgroupReduce(size: number, combine: (a: string, b: string) => string): string {
  return `partial[lid.x] = acc;
  workgroupBarrier();
  for (var step = ${u(size / 2)}; step > 0u; step = step / 2u) {
    if (lid.x < step) { partial[lid.x] = ${combine('partial[lid.x]', 'partial[lid.x + step]')}; }
    workgroupBarrier();
  }`;
}

/** Workgroup size for reducing `extent` elements per row: a power of two in [32, 256]. */
export function reductionWorkgroupSize(extent: number, maxInvocations: number): number {
  return Math.max(32, Math.min(256, maxInvocations, nextPow2(Math.ceil(extent / 4))));
}

// ---------------------------------------------------------------------------------------------
// MaxPool / AveragePool
// ---------------------------------------------------------------------------------------------

type PoolKind = 'max' | 'average';

interface PoolPlan {
  kind: PoolKind;
  geometry: WindowGeometry;
  /** N * C planes */
  planes: number;
  countIncludePad: boolean;
}

/** An attribute that only newer opsets define: a non-default value in an older opset is an error. */
function attrSince(node: Node, opset: number, name: string, since: number, fallback: number): number {
  const value = attrInt(node, name, fallback);
  if (opset < since && value !== fallback) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute ${name} = ${value} is defined only from opset ${since} (model uses opset ${opset}); raise the opset or drop the attribute`);
  }
  return value;
}

function readDilations(node: Node, opset: number, rank: number, since: number): number[] {
  const dilations = spatialInts(node, 'dilations', rank, 1, 1);
  if (opset < since && dilations.some((d) => d !== 1)) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute dilations = [${dilations}] is defined only from opset ${since} (model uses opset ${opset}); raise the opset`);
  }
  return dilations;
}

function poolPlan(node: Node, opset: number, xType: TensorType | undefined): PoolPlan {
  const x = requireNCHW(node, xType, 3);
  const kind: PoolKind = node.opType === 'MaxPool' ? 'max' : 'average';
  if (kind === 'average') requireFloatInput(node, x);
  const rank = x.shape.length - 2;
  if (rank > MAX_SPATIAL_RANK) fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: ${rank}-D spatial input [${x.shape}] is not supported (at most ${MAX_SPATIAL_RANK} spatial axes)`);
  const kernel = attrInts(node, 'kernel_shape');
  if (!kernel) fail('FM_ONNX_INVALID', `${describeNode(node)}: the required attribute kernel_shape is missing`);
  spatialInts(node, 'kernel_shape', rank, 1, 1);
  const ceilMode = attrSince(node, opset, 'ceil_mode', 10, 0) !== 0;
  const dilations = readDilations(node, opset, rank, kind === 'max' ? 10 : 19);
  const countIncludePad = kind === 'average' && attrSince(node, opset, 'count_include_pad', 7, 0) !== 0;
  const geometry = forwardWindow(node, x.shape.slice(2), kernel, { ceilMode, dilations });
  return { kind, geometry, planes: x.shape[0]! * x.shape[1]!, countIncludePad };
}

/** Per-axis WGSL: window start, and the guard for taps outside the input (omitted when impossible). */
interface AxisCode {
  start: string;
  guard: string | undefined;
  divisor: string;
}

function axisCode(p: PoolPlan, axis: number): AxisCode {
  const g = p.geometry;
  const size = g.inShape[axis]!, k = g.kernel[axis]!, s = g.strides[axis]!, d = g.dilations[axis]!;
  const padBegin = g.padsBegin[axis]!, padEnd = g.padsEnd[axis]!;
  const lastTap = (g.outShape[axis]! - 1) * s - padBegin + (k - 1) * d;
  const conds: string[] = [];
  if (padBegin > 0) conds.push(`i${axis} >= 0`);
  if (lastTap >= size) conds.push(`i${axis} < ${lit(size, 'i32')}`);
  const start = `let start${axis} = i32(o${axis}) * ${lit(s, 'i32')} - ${lit(padBegin, 'i32')};`;
  // count_include_pad counts the taps inside the padded input (a ceil_mode window may reach past it)
  const paddedEnd = size + padEnd;
  const divisor = lastTap < paddedEnd
    ? lit(k, 'i32')
    : `((min(start${axis} + ${lit((k - 1) * d + 1, 'i32')}, ${lit(paddedEnd, 'i32')}) - start${axis} + ${lit(d - 1, 'i32')}) / ${lit(d, 'i32')})`;
  return { start, guard: conds.length > 0 ? conds.join(' && ') : undefined, divisor };
}

function windowLoops(p: PoolPlan, axes: AxisCode[], accumulate: string): string {
  const g = p.geometry;
  const rank = g.inShape.length;
  let inner = accumulate;
  for (let axis = rank - 1; axis >= 0; axis--) {
    const offset = axis === 0 ? `i0` : `off${axis - 1} * ${lit(g.inShape[axis]!, 'i32')} + i${axis}`;
    const guarded = axes[axis]!.guard ? `if (${axes[axis]!.guard}) {\n${inner}\n}` : inner;
    inner = `for (var k${axis} = 0i; k${axis} < ${lit(g.kernel[axis]!, 'i32')}; k${axis}++) {
  let i${axis} = start${axis} + k${axis} * ${lit(g.dilations[axis]!, 'i32')};
  let off${axis} = ${offset};
  ${guarded}
}`;
  }
  return inner;
}

function poolKernel(p: PoolPlan, x: LowerTensor, y: LowerTensor, scalar: WgslScalar): KernelSpec {
  const g = p.geometry;
  const rank = g.inShape.length;
  const inPlane = numElements(g.inShape);
  const total = p.planes * numElements(g.outShape);
  const grid = grid1D(total);
  const axes = g.inShape.map((_, axis) => axisCode(p, axis));
  const validTaps = !p.countIncludePad && axes.some((a) => a.guard !== undefined);
  const load = `x[xBase + u32(off${rank - 1})]`;
  const accumulate = p.kind === 'max'
    ? `acc = max(acc, ${load});`
    : validTaps ? `acc += ${load};\ncount += 1.0;` : `acc += ${load};`;
  const init = p.kind === 'max' ? lit(-Infinity, scalar) : lit(0, scalar);
  let result = 'acc';
  if (p.kind === 'average') {
    result = validTaps
      ? 'acc / max(count, 1.0)'
      : p.countIncludePad ? `acc / f32(${axes.map((a) => a.divisor).join(' * ')})` : `acc * ${lit(1 / numElements(g.kernel), 'f32')}`;
  }
  const k = kernel(poolLabel(p));
  k.bind('x', x, scalar);
  k.bind('y', y, scalar);
  return k.buildGrid1D(grid, `${unravel('i', [p.planes, ...g.outShape], 'c')}
  let plane = c0;
  ${g.outShape.map((_, axis) => `let o${axis} = c${axis + 1};`).join('\n  ')}
  let xBase = plane * ${u(inPlane)};
  ${axes.map((a) => a.start).join('\n  ')}
  var acc = ${init};
  ${validTaps ? 'var count = 0.0;' : ''}
  ${windowLoops(p, axes, accumulate)}
  y[i] = ${result};`);
}

function poolLabel(p: PoolPlan): string {
  return `${p.kind === 'max' ? 'maxpool' : 'avgpool'}${p.geometry.inShape.length}d_${p.geometry.kernel.join('x')}`;
}

export const windowPoolOp: OpDef = {
  opTypes: ['MaxPool', 'AveragePool'],
  costClass: 'elementwise',
  inferTypes(ctx) {
    const x = ctx.inputs[0]!;
    const p = poolPlan(ctx.node, ctx.opset, x);
    const y: TensorType = { dtype: x.dtype, shape: [x.shape[0]!, x.shape[1]!, ...p.geometry.outShape] };
    // MaxPool's optional Indices (opset >= 8) is typed so dead-output elimination can drop it first
    return ctx.node.outputs.length > 1 && ctx.node.opType === 'MaxPool' ? [y, { dtype: 'int64', shape: [...y.shape] }] : [y];
  },
  lower(ctx) {
    rejectExtraOutputs(ctx, 'Indices');
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    const p = poolPlan(ctx.node, ctx.opset, x.type);
    checkBindingSizes(ctx, [x, y]);
    ctx.kernel(poolKernel(p, x, y, wgslType(x.type.dtype)));
  },
};

// ---------------------------------------------------------------------------------------------
// GlobalAveragePool / GlobalMaxPool
// ---------------------------------------------------------------------------------------------

/** Planes at least this large get a workgroup each; smaller ones one invocation each. */
const WORKGROUP_PLANE_THRESHOLD = 256;

interface GlobalPlan {
  kind: PoolKind;
  planes: number;
  planeSize: number;
  outShape: number[];
}

function globalPlan(ctx: Pick<ShapeContext, 'node' | 'inputs'>): GlobalPlan {
  const x = requireNCHW(ctx.node, ctx.inputs[0], 2);
  const kind: PoolKind = ctx.node.opType === 'GlobalMaxPool' ? 'max' : 'average';
  if (kind === 'average') requireFloatInput(ctx.node, x);
  const spatial = x.shape.slice(2);
  return {
    kind,
    planes: x.shape[0]! * x.shape[1]!,
    planeSize: numElements(spatial),
    outShape: [x.shape[0]!, x.shape[1]!, ...spatial.map(() => 1)],
  };
}

function globalCombine(kind: PoolKind): (a: string, b: string) => string {
  return kind === 'max' ? (a, b) => `max(${a}, ${b})` : (a, b) => `${a} + ${b}`;
}

function globalFinish(p: GlobalPlan, acc: string): string {
  return p.kind === 'max' ? acc : `${acc} * ${lit(1 / p.planeSize, 'f32')}`;
}

function globalSerialKernel(label: string, p: GlobalPlan, x: LowerTensor, y: LowerTensor, scalar: WgslScalar): KernelSpec {
  const grid = grid1D(p.planes, 64);
  const combine = globalCombine(p.kind);
  const k = kernel(label);
  k.bind('x', x, scalar);
  k.bind('y', y, scalar);
  return k.buildGrid1D(grid, `let base = i * ${u(p.planeSize)};
  var acc = ${p.kind === 'max' ? lit(-Infinity, scalar) : lit(0, scalar)};
  for (var j = 0u; j < ${u(p.planeSize)}; j++) { acc = ${combine('acc', 'x[base + j]')}; }
  y[i] = ${globalFinish(p, 'acc')};`, undefined, p.planeSize);
}

function globalWorkgroupKernel(label: string, p: GlobalPlan, x: LowerTensor, y: LowerTensor, scalar: WgslScalar, ctx: LowerContext): KernelSpec {
  const size = reductionWorkgroupSize(p.planeSize, ctx.limits.maxComputeInvocationsPerWorkgroup);
  const grid = rowGrid(p.planes, ctx.limits.maxComputeWorkgroupsPerDimension);
  const combine = globalCombine(p.kind);
  const k = kernel(label);
  k.bind('x', x, scalar);
  k.bind('y', y, scalar);
  const header = `${k.declarations()}\n${k.workgroupArray('partial', scalar, size)}\n\n`;
  const body = `let plane = ${grid.rowExpr};
  if (plane >= ${u(p.planes)}) { return; }
  let base = plane * ${u(p.planeSize)};
  var acc = ${p.kind === 'max' ? lit(-Infinity, scalar) : lit(0, scalar)};
  for (var j = lid.x; j < ${u(p.planeSize)}; j += ${u(size)}) { acc = ${combine('acc', 'x[base + j]')}; }
  ${workgroupReduce(size, combine)}
  if (lid.x == 0u) { y[plane] = ${globalFinish(p, 'partial[0]')}; }`;
  return k.build({ header, entry: { workgroupSize: size, params: [WID, LID], body }, workgroups: grid.workgroups, loopTrips: Math.ceil(p.planeSize / size) + Math.log2(size) });
}

function foldGlobalPool(p: GlobalPlan, x: ConstTensor): ConstTensor {
  const out = new Array<number>(p.planes);
  for (let plane = 0; plane < p.planes; plane++) {
    let acc = p.kind === 'max' ? -Infinity : 0;
    for (let j = plane * p.planeSize; j < (plane + 1) * p.planeSize; j++) {
      acc = p.kind === 'max' ? Math.max(acc, x.data[j]!) : acc + x.data[j]!;
    }
    out[plane] = p.kind === 'max' ? acc : acc / p.planeSize;
  }
  return makeConst(x.dtype, p.outShape, out);
}

export const globalPoolOp: OpDef = {
  opTypes: ['GlobalAveragePool', 'GlobalMaxPool'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    const p = globalPlan(ctx);
    return [{ dtype: ctx.inputs[0]!.dtype, shape: p.outShape }];
  },
  fold(ctx, inputs) {
    return [foldGlobalPool(globalPlan(ctx), inputs[0]!)];
  },
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    const p = globalPlan({ node: ctx.node, inputs: [x.type] });
    checkBindingSizes(ctx, [x, y]);
    const scalar = wgslType(x.type.dtype);
    const serial = p.planeSize < WORKGROUP_PLANE_THRESHOLD;
    const label = `${p.kind === 'max' ? 'global_maxpool' : 'global_avgpool'}${serial ? '' : '_wg'}`;
    ctx.kernel(serial ? globalSerialKernel(label, p, x, y, scalar) : globalWorkgroupKernel(label, p, x, y, scalar, ctx));
  },
};

export const poolOps: readonly OpDef[] = [windowPoolOp, globalPoolOp];
