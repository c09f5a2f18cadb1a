/**
 * Copy plans: per-axis rules mapping an iteration coordinate to a source and a destination
 * offset. The WGSL kernel and the CPU fold are both generated from a plan, so they cannot
 * disagree, and one simplifier (dropping unit axes, merging axes that stay adjacent) serves
 * every data-movement op built on it.
 */
import { hostArrayFor } from '../../ir/tensor.js';
import { fail } from '../../errors.js';
import { describeNode } from '../../ir/graph.js';
import { stridesOf } from '../../kernel/strides.js';
import { type ConstTensor, type HostData, type Node, numElements, type TensorType } from '../../ir/types.js';
import { dot, grid1D, lit, u, unravel, wgslType } from '../../kernel/wgsl.js';
import { GID, kernel } from '../../kernel/builder.js';
import type { LowerContext, OpDef, ShapeContext } from '../op.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import { assertBindable, emitFill, shapeContextOf, withFoldInputs } from '../shape.js';

// ---------------------------------------------------------------------------------------------
// Copy plans

export type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';

/** How the coordinate `o` of one iteration axis contributes to the source offset. */
export type AxisRead =
  /** o * coef; coef is 0 for broadcast axes and negative for reversed slices */
  | { kind: 'linear'; coef: number }
  /** (o % period) * stride: Tile */
  | { kind: 'modulo'; period: number; stride: number }
  /** Pad: input coordinate o - before, mapped back into [0, inputSize) by the mode */
  | { kind: 'pad'; mode: PadMode; before: number; inputSize: number; stride: number };

export interface PlanAxis {
  size: number;
  read: AxisRead;
  destStride: number;
}

/** dest[destBase + Σ o_j·destStride_j] = src[srcBase + Σ read_j(o_j)] over the iteration space. */
export interface CopyPlan {
  axes: PlanAxis[];
  srcBase: number;
  destBase: number;
  /** stored where a 'constant' pad axis reads outside the input */
  fill: number;
}

/** A plan writing its iteration space contiguously (every op but Concat). */
export function gatherPlan(sizes: readonly number[], reads: readonly AxisRead[], srcBase = 0, fill = 0): CopyPlan {
  const destStrides = stridesOf(sizes);
  return { axes: sizes.map((size, j) => ({ size, read: reads[j]!, destStride: destStrides[j]! })), srcBase, destBase: 0, fill };
}

export function planElements(plan: CopyPlan): number {
  return numElements(plan.axes.map((a) => a.size));
}

/**
 * Drops unit axes (their coordinate is always 0) and merges neighbouring linear axes that stay
 * adjacent in both source and destination, so kernels do less index arithmetic: an NCHW->NHWC
 * transpose becomes a 3-D one, a concat along channels a 2-D one, a contiguous slice a 1-D one.
 */
export function simplifyPlan(plan: CopyPlan): CopyPlan {
  const axes: PlanAxis[] = [];
  for (const axis of plan.axes) {
    if (axis.size === 1 && axis.read.kind !== 'pad') continue;
    const outer = axes[axes.length - 1];
    if (outer && mergeable(outer, axis)) {
      axes[axes.length - 1] = { size: outer.size * axis.size, read: axis.read, destStride: axis.destStride };
    } else {
      axes.push(axis);
    }
  }
  return { ...plan, axes };
}

export function mergeable(outer: PlanAxis, inner: PlanAxis): boolean {
  return outer.read.kind === 'linear' && inner.read.kind === 'linear' &&
    outer.read.coef === inner.size * inner.read.coef &&
    outer.destStride === inner.size * inner.destStride;
}

/** The input coordinate a pad axis reads, or undefined where 'constant' mode writes the fill. */
export function padCoordinate(mode: PadMode, c: number, size: number): number | undefined {
  switch (mode) {
    case 'constant': return c >= 0 && c < size ? c : undefined;
    case 'edge': return Math.min(size - 1, Math.max(0, c));
    case 'wrap': return ((c % size) + size) % size;
    case 'reflect': {
      // reflection is periodic with period 2(size-1), which also covers pads wider than the input
      if (size === 1) return 0;
      const period = 2 * (size - 1);
      const p = ((c % period) + period) % period;
      return p >= size ? period - p : p;
    }
  }
}

export function sourceOffset(read: AxisRead, o: number): number | undefined {
  switch (read.kind) {
    case 'linear': return o * read.coef;
    case 'modulo': return (o % read.period) * read.stride;
    case 'pad': {
      const c = padCoordinate(read.mode, o - read.before, read.inputSize);
      return c === undefined ? undefined : c * read.stride;
    }
  }
}

/** CPU interpreter of a plan, for constant folding. */
export function runPlan(plan: CopyPlan, src: HostData, dest: HostData): void {
  const { axes } = plan;
  const total = planElements(plan);
  const coords = new Array<number>(axes.length).fill(0);
  for (let i = 0; i < total; i++) {
    let s = plan.srcBase;
    let d = plan.destBase;
    let inside = true;
    for (let j = 0; j < axes.length; j++) {
      const offset = sourceOffset(axes[j]!.read, coords[j]!);
      if (offset === undefined) inside = false;
      else s += offset;
      d += coords[j]! * axes[j]!.destStride;
    }
    dest[d] = inside ? src[s]! : plan.fill;
    for (let j = axes.length - 1; j >= 0 && ++coords[j]! === axes[j]!.size; j--) coords[j] = 0;
  }
}

export function foldPlan(plan: CopyPlan, src: ConstTensor, out: TensorType): ConstTensor {
  const data = hostArrayFor(out.dtype, numElements(out.shape));
  runPlan(plan, src.data, data);
  return { dtype: out.dtype, shape: [...out.shape], data };
}

/** WGSL statements declaring the i32 input coordinate `c{j}` of a pad axis. */
export function padStatements(j: number, o: string, read: Extract<AxisRead, { kind: 'pad' }>): string[] {
  const c = `c${j}`;
  const shifted = read.before === 0 ? `i32(${o})` : `i32(${o}) - ${lit(read.before, 'i32')}`;
  const size = lit(read.inputSize, 'i32');
  switch (read.mode) {
    case 'constant': return [`let ${c} = ${shifted};`, `inside = inside && ${c} >= 0 && ${c} < ${size};`];
    case 'edge': return [`let ${c} = clamp(${shifted}, 0, ${lit(read.inputSize - 1, 'i32')});`];
    case 'wrap': return [`let ${c} = ((${shifted}) % ${size} + ${size}) % ${size};`];
    case 'reflect': {
      if (read.inputSize === 1) return [`let ${c} = 0;`];
      const period = lit(2 * (read.inputSize - 1), 'i32');
      return [
        `var ${c} = ((${shifted}) % ${period} + ${period}) % ${period};`,
        `${c} = select(${c}, ${period} - ${c}, ${c} >= ${size});`,
      ];
    }
  }
}

export function scaled(term: string, factor: number): string {
  return factor === 1 ? term : `${term} * ${u(factor)}`;
}

/**
 * The source offset as a u32 expression. Negative linear coefficients (reversed slices) are
 * subtracted: u32 arithmetic wraps, so the sum is exact whenever the final offset is in range.
 */
export function sourceExpression(plan: CopyPlan, statements: string[]): string {
  const plus: string[] = plan.srcBase === 0 ? [] : [u(plan.srcBase)];
  const minus: string[] = [];
  plan.axes.forEach((axis, j) => {
    const o = `o${j}`;
    const read = axis.read;
    if (read.kind === 'linear') {
      if (read.coef > 0) plus.push(scaled(o, read.coef));
      if (read.coef < 0) minus.push(scaled(o, -read.coef));
    } else if (read.kind === 'modulo') {
      plus.push(scaled(`(${o} % ${u(read.period)})`, read.stride));
    } else {
      statements.push(...padStatements(j, o, read));
      plus.push(scaled(`u32(c${j})`, read.stride));
    }
  });
  const head = plus.length > 0 ? plus.join(' + ') : '0u';
  return minus.length > 0 ? `${head} - ${minus.join(' - ')}` : head;
}

export function destExpression(plan: CopyPlan): string {
  const sizes = plan.axes.map((a) => a.size);
  const contiguous = stridesOf(sizes).every((s, j) => s === plan.axes[j]!.destStride || sizes[j] === 1);
  if (contiguous) return plan.destBase === 0 ? 'i' : `i + ${u(plan.destBase)}`;
  const strided = dot(plan.axes.map((_, j) => `o${j}`), plan.axes.map((a) => a.destStride));
  return plan.destBase === 0 ? strided : `${u(plan.destBase)} + ${strided}`;
}

/** `fill`, when given, is a one-element tensor read at run time instead of plan.fill (Pad's computed constant_value). */
export function planKernel(label: string, plan: CopyPlan, x: LowerTensor, y: LowerTensor, fill?: LowerTensor): KernelSpec {
  const type = wgslType(y.type.dtype);
  const grid = grid1D(planElements(plan));
  const hasFill = plan.axes.some((a) => a.read.kind === 'pad' && a.read.mode === 'constant');
  const statements: string[] = [grid.prologue, unravel('i', plan.axes.map((a) => a.size), 'o')];
  if (hasFill) statements.push('var inside = true;');
  const src = sourceExpression(plan, statements);
  const dest = destExpression(plan);
  statements.push(`let src = ${src};`);
  statements.push(hasFill
    ? `if (inside) { y[${dest}] = x[src]; } else { y[${dest}] = ${fill ? `${type}(fill[0])` : lit(plan.fill, type)}; }`
    : `y[${dest}] = x[src];`);
  const k = kernel(label);
  k.bind('x', x, type);
  if (fill && hasFill) k.bind('fill', fill, wgslType(fill.type.dtype));
  k.bind('y', y, type);
  return k.build({ entry: { workgroupSize: grid.workgroupSize, params: [GID], body: statements.filter((s) => s !== '').join('\n  ') }, workgroups: grid.workgroups });
}

/** Emits the kernel of one plan copying `x` into `y` (nothing when the plan is empty). */
export function emitPlan(ctx: LowerContext, label: string, plan: CopyPlan, x: LowerTensor, y: LowerTensor, fill?: LowerTensor): void {
  if (planElements(plan) === 0) return;
  if (numElements(x.type.shape) === 0) {
    if (fill) fail('FM_UNSUPPORTED_OP', `${describeNode(ctx.node)}: padding an empty tensor with a value computed at run time`);
    // every element is padding: reading the (empty) input would bind a zero-sized buffer
    const value = lit(plan.fill, wgslType(y.type.dtype));
    emitFill(ctx, label, y, () => value);
    return;
  }
  assertBindable(ctx, [x, y]);
  ctx.kernel(planKernel(label, simplifyPlan(plan), x, y, fill));
}

/**
 * An op whose single output is a plan over input 0. `plan` receives the ShapeContext so that
 * inferTypes, fold and lower share one derivation of the op's parameters.
 */
export function planOp(opTypes: string[], label: (node: Node) => string, plan: (ctx: ShapeContext) => { type: TensorType; plan: CopyPlan }): OpDef {
  return {
    opTypes,
    costClass: 'data-movement',
    inferTypes: (ctx) => [plan(ctx).type],
    fold(ctx, inputs) {
      const p = plan({ ...ctx, consts: withFoldInputs(ctx, inputs) });
      return [foldPlan(p.plan, inputs[0]!, p.type)];
    },
    lower(ctx) {
      const p = plan(shapeContextOf(ctx));
      emitPlan(ctx, label(ctx.node), p.plan, ctx.inputs[0]!, ctx.outputs[0]!);
    },
  };
}
