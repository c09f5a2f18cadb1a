/**
 * The Reduce* family (ReduceSum, ReduceMean, ReduceMax, ... ReduceLogSumExp), on the GPU and folded on the host.
 */
import { attrInt, attrInts } from '../../ir/attrs.js';
import { constToInts, makeConst } from '../../ir/tensor.js';
import { type ConstTensor, type Node, numElements } from '../../ir/types.js';
import { grid1D, lit, wgslType, type WgslScalar } from '../../kernel/wgsl.js';
import { describeNode } from '../../ir/graph.js';
import { fail } from '../../errors.js';
import type { LowerContext, OpDef } from '../op.js';
import { assertBindable } from '../shape.js';
import { type Algebra, type Dim, LOG_SUM_EXP_ALGEBRA, type ReductionLayout, emitRowKernel, normalizeAxis, reductionLayout, rowLength, sumLike, xyKernel } from './rows.js';

// ---------------------------------------------------------------------------------------------
// Reduce* family
// ---------------------------------------------------------------------------------------------

const REDUCE_OPS = [
  'ReduceSum', 'ReduceMean', 'ReduceMax', 'ReduceMin', 'ReduceProd',
  'ReduceL1', 'ReduceL2', 'ReduceSumSquare', 'ReduceLogSum', 'ReduceLogSumExp',
] as const;
type ReduceOp = (typeof REDUCE_OPS)[number];

interface Reducer {
  algebra(type: WgslScalar): Algebra;
  /** WGSL expression of the row result (type of the accumulators) from a0, a1 and the row length */
  result(count: number, type: WgslScalar): string;
  /** CPU reference for constant folding */
  cpu(values: readonly number[]): number;
}

/** Ops whose result needs real arithmetic (sqrt, log, exp): integer inputs accumulate in f32. */
export const floatOnly = (type: WgslScalar): WgslScalar => (type === 'i32' ? 'f32' : type);

const sum = (values: readonly number[]): number => values.reduce((s, v) => s + v, 0);
/** (Math.max(...values) overflows the stack for long rows) */
export const maxOf = (values: readonly number[]): number => values.reduce((m, v) => Math.max(m, v), -Infinity);

const REDUCERS: Record<ReduceOp, Reducer> = {
  ReduceSum: { algebra: (t) => sumLike(t, 'v'), result: () => 'a0', cpu: sum },
  ReduceMean: {
    algebra: (t) => sumLike(t, 'v'),
    result: (n, t) => `a0 / ${lit(n, t)}`,
    cpu: (vs) => sum(vs) / vs.length,
  },
  ReduceMax: {
    algebra: (t) => ({ acc: [{ type: t, init: lit(-Infinity, t) }], valueType: t, accumulate: 'a0 = max(a0, v);', combine: 'a0 = max(a0, b0);' }),
    result: () => 'a0',
    cpu: maxOf,
  },
  ReduceMin: {
    algebra: (t) => ({ acc: [{ type: t, init: lit(Infinity, t) }], valueType: t, accumulate: 'a0 = min(a0, v);', combine: 'a0 = min(a0, b0);' }),
    result: () => 'a0',
    cpu: (vs) => vs.reduce((m, v) => Math.min(m, v), Infinity),
  },
  ReduceProd: {
    algebra: (t) => ({ acc: [{ type: t, init: lit(1, t) }], valueType: t, accumulate: 'a0 *= v;', combine: 'a0 *= b0;' }),
    result: () => 'a0',
    cpu: (vs) => vs.reduce((p, v) => p * v, 1),
  },
  ReduceL1: { algebra: (t) => sumLike(t, 'abs(v)'), result: () => 'a0', cpu: (vs) => sum(vs.map(Math.abs)) },
  ReduceL2: {
    algebra: (t) => sumLike(floatOnly(t), 'v * v'),
    result: () => 'sqrt(a0)',
    cpu: (vs) => Math.sqrt(sum(vs.map((v) => v * v))),
  },
  ReduceSumSquare: { algebra: (t) => sumLike(t, 'v * v'), result: () => 'a0', cpu: (vs) => sum(vs.map((v) => v * v)) },
  ReduceLogSum: { algebra: (t) => sumLike(floatOnly(t), 'v'), result: () => 'log(a0)', cpu: (vs) => Math.log(sum(vs)) },
  ReduceLogSumExp: {
    algebra: () => LOG_SUM_EXP_ALGEBRA,
    result: () => 'a0 + log(a1)',
    cpu: (vs) => {
      const m = maxOf(vs);
      return m + Math.log(sum(vs.map((v) => Math.exp(v - m))));
    },
  },
};

/** ReduceSum took `axes` as an input from opset 13, every other Reduce* from opset 18. */
function axesIsInput(opType: string, opset: number): boolean {
  return opset >= (opType === 'ReduceSum' ? 13 : 18);
}

/** The reduced axes, or 'identity' when noop_with_empty_axes asks to pass the input through. */
export function reduceAxes(node: Node, opset: number, rank: number, axesInput: ConstTensor | undefined): Set<number> | 'identity' {
  let axes: number[] | undefined;
  if (axesIsInput(node.opType, opset)) {
    if (node.inputs[1] && !axesInput) {
      fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: the axes input must be a compile-time constant (kernels are specialised per shape)`);
    }
    axes = axesInput ? constToInts(axesInput) : undefined;
  } else {
    axes = attrInts(node, 'axes');
  }
  if (!axes || axes.length === 0) {
    // noop_with_empty_axes exists only where axes is an input; the attribute forms reduce everything
    if (axesIsInput(node.opType, opset) && attrInt(node, 'noop_with_empty_axes', 0) !== 0) return 'identity';
    return new Set(Array.from({ length: rank }, (_, i) => i));
  }
  const set = new Set<number>();
  for (const a of axes) {
    const axis = normalizeAxis(node, a, rank, 'axes value');
    if (set.has(axis)) fail('FM_SHAPE', `${describeNode(node)}: axes [${axes}] name axis ${axis} twice; list each axis once`);
    set.add(axis);
  }
  return set;
}

export function reduceOutputShape(node: Node, shape: readonly number[], axes: Set<number> | 'identity'): number[] {
  if (axes === 'identity') return [...shape];
  const keep = attrInt(node, 'keepdims', 1) !== 0;
  return shape.flatMap((d, i) => (axes.has(i) ? (keep ? [1] : []) : [d]));
}

/** Calls `visit` with the input offsets of each row, rows in output order (CPU folding). */
export function forEachRow(layout: ReductionLayout, visit: (offsets: number[]) => void): void {
  const rowOffsets = offsetsOf(layout.kept);
  const inRow = offsetsOf(layout.reduced);
  for (const base of rowOffsets) visit(inRow.map((o) => base + o));
}

export function offsetsOf(dims: readonly Dim[]): number[] {
  let offsets = [0];
  for (const d of dims) offsets = offsets.flatMap((o) => Array.from({ length: d.size }, (_, i) => o + i * d.stride));
  return offsets;
}

function reduceOnCpu(node: Node, opset: number, x: ConstTensor, axesInput: ConstTensor | undefined): ConstTensor {
  const axes = reduceAxes(node, opset, x.shape.length, axesInput);
  const shape = reduceOutputShape(node, x.shape, axes);
  if (axes === 'identity') return makeConst(x.dtype, shape, x.data);
  const reducer = REDUCERS[node.opType as ReduceOp];
  const out: number[] = [];
  forEachRow(reductionLayout(x.shape, axes), (offsets) => out.push(reducer.cpu(offsets.map((o) => x.data[o]!))));
  return makeConst(x.dtype, shape, out);
}

function emitCopy(ctx: LowerContext, type: WgslScalar): void {
  const x = ctx.inputs[0]!;
  const y = ctx.outputs[0]!;
  assertBindable(ctx, [x, y]);
  const total = numElements(y.type.shape);
  if (total === 0) return;
  ctx.kernel(xyKernel('copy', x, type, y, type).buildGrid1D(grid1D(total), 'y[i] = x[i];'));
}

export const reduceFamily: OpDef = {
  opTypes: REDUCE_OPS,
  costClass: 'hierarchical',
  inferTypes(ctx) {
    const x = ctx.inputs[0]!;
    const axes = reduceAxes(ctx.node, ctx.opset, x.shape.length, ctx.consts[1]);
    return [{ dtype: x.dtype, shape: reduceOutputShape(ctx.node, x.shape, axes) }];
  },
  fold: (ctx, inputs) => [reduceOnCpu(ctx.node, ctx.opset, inputs[0]!, inputs[1])],
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const type = wgslType(x.type.dtype);
    const axes = reduceAxes(ctx.node, ctx.opset, x.type.shape.length, ctx.inputs[1]?.data);
    if (axes === 'identity') return emitCopy(ctx, type);
    const layout = reductionLayout(x.type.shape, axes);
    const reducer = REDUCERS[ctx.node.opType as ReduceOp];
    const algebra = reducer.algebra(type);
    const accType = algebra.acc[0]!.type;
    const result = reducer.result(rowLength(layout), accType);
    emitRowKernel(ctx, {
      label: ctx.node.opType.replace(/^Reduce/, 'reduce_').toLowerCase(),
      layout,
      inType: type,
      outType: type,
      algebra,
      epilogue: { kind: 'reduce', result: accType === type ? result : `${type}(${result})` },
    });
  },
};
