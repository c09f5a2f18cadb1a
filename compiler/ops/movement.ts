/**
 * Data-movement ops: every output element is one input element (or a pad value).
 *
 * Most of them (Transpose, Slice, Split, Pad, Tile, Expand, Concat, DepthToSpace, SpaceToDepth)
 * are described by a CopyPlan: per-axis rules mapping an iteration coordinate to a source offset
 * and a destination offset. The WGSL kernel and the CPU fold are both generated from the plan,
 * so they cannot disagree, and one simplifier (dropping unit axes, merging axes that stay
 * adjacent) serves every op. Gather and GatherElements read their source offset from an index
 * tensor and have kernels of their own.
 */
import { attrFloat, attrInt, attrInts, attrString } from '../ir/attrs.js';
import { hostArrayFor, normalizeValue } from '../ir/tensor.js';
import { stridesOf } from '../kernel/strides.js';
import { type ConstTensor, type HostData, type Node, numElements, type TensorType } from '../ir/types.js';
import { dot, grid1D, lit, u, unravel, wgslType, type Grid1D, type WgslScalar } from '../kernel/wgsl.js';
import { GID, LID, WID, kernel } from '../kernel/builder.js';
import { fail } from '../errors.js';
import type { LowerContext, OpDef, ShapeContext } from './op.js';
import type { KernelSpec, LowerTensor } from '../kernel/types.js';
import {
  assertBindable, constInts, emitFill, nodeLabel, normalizeAxes, normalizeAxis, optionalConstInts,
  optionalConstValues, requiredInput, shapeContextOf, withFoldInputs,
} from './shape.js';

// ---------------------------------------------------------------------------------------------
// Copy plans

type PadMode = 'constant' | 'reflect' | 'edge' | 'wrap';

/** How the coordinate `o` of one iteration axis contributes to the source offset. */
type AxisRead =
  /** o * coef; coef is 0 for broadcast axes and negative for reversed slices */
  | { kind: 'linear'; coef: number }
  /** (o % period) * stride: Tile */
  | { kind: 'modulo'; period: number; stride: number }
  /** Pad: input coordinate o - before, mapped back into [0, inputSize) by the mode */
  | { kind: 'pad'; mode: PadMode; before: number; inputSize: number; stride: number };

interface PlanAxis {
  size: number;
  read: AxisRead;
  destStride: number;
}

/** dest[destBase + Σ o_j·destStride_j] = src[srcBase + Σ read_j(o_j)] over the iteration space. */
interface CopyPlan {
  axes: PlanAxis[];
  srcBase: number;
  destBase: number;
  /** stored where a 'constant' pad axis reads outside the input */
  fill: number;
}

/** A plan writing its iteration space contiguously (every op but Concat). */
function gatherPlan(sizes: readonly number[], reads: readonly AxisRead[], srcBase = 0, fill = 0): CopyPlan {
  const destStrides = stridesOf(sizes);
  return { axes: sizes.map((size, j) => ({ size, read: reads[j]!, destStride: destStrides[j]! })), srcBase, destBase: 0, fill };
}

function planElements(plan: CopyPlan): number {
  return numElements(plan.axes.map((a) => a.size));
}

/**
 * Drops unit axes (their coordinate is always 0) and merges neighbouring linear axes that stay
 * adjacent in both source and destination, so kernels do less index arithmetic: an NCHW->NHWC
 * transpose becomes a 3-D one, a concat along channels a 2-D one, a contiguous slice a 1-D one.
 */
function simplifyPlan(plan: CopyPlan): CopyPlan {
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

function mergeable(outer: PlanAxis, inner: PlanAxis): boolean {
  return outer.read.kind === 'linear' && inner.read.kind === 'linear' &&
    outer.read.coef === inner.size * inner.read.coef &&
    outer.destStride === inner.size * inner.destStride;
}

/** The input coordinate a pad axis reads, or undefined where 'constant' mode writes the fill. */
function padCoordinate(mode: PadMode, c: number, size: number): number | undefined {
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

function sourceOffset(read: AxisRead, o: number): number | undefined {
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
function runPlan(plan: CopyPlan, src: HostData, dest: HostData): void {
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

function foldPlan(plan: CopyPlan, src: ConstTensor, out: TensorType): ConstTensor {
  const data = hostArrayFor(out.dtype, numElements(out.shape));
  runPlan(plan, src.data, data);
  return { dtype: out.dtype, shape: [...out.shape], data };
}

/** WGSL statements declaring the i32 input coordinate `c{j}` of a pad axis. */
function padStatements(j: number, o: string, read: Extract<AxisRead, { kind: 'pad' }>): string[] {
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

function scaled(term: string, factor: number): string {
  return factor === 1 ? term : `${term} * ${u(factor)}`;
}

/**
 * The source offset as a u32 expression. Negative linear coefficients (reversed slices) are
 * subtracted: u32 arithmetic wraps, so the sum is exact whenever the final offset is in range.
 */
function sourceExpression(plan: CopyPlan, statements: string[]): string {
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

function destExpression(plan: CopyPlan): string {
  const sizes = plan.axes.map((a) => a.size);
  const contiguous = stridesOf(sizes).every((s, j) => s === plan.axes[j]!.destStride || sizes[j] === 1);
  if (contiguous) return plan.destBase === 0 ? 'i' : `i + ${u(plan.destBase)}`;
  const strided = dot(plan.axes.map((_, j) => `o${j}`), plan.axes.map((a) => a.destStride));
  return plan.destBase === 0 ? strided : `${u(plan.destBase)} + ${strided}`;
}

function planKernel(label: string, plan: CopyPlan, x: LowerTensor, y: LowerTensor): KernelSpec {
  const type = wgslType(y.type.dtype);
  const grid = grid1D(planElements(plan));
  const hasFill = plan.axes.some((a) => a.read.kind === 'pad' && a.read.mode === 'constant');
  const statements: string[] = [grid.prologue, unravel('i', plan.axes.map((a) => a.size), 'o')];
  if (hasFill) statements.push('var inside = true;');
  const src = sourceExpression(plan, statements);
  const dest = destExpression(plan);
  statements.push(`let src = ${src};`);
  statements.push(hasFill
    ? `if (inside) { y[${dest}] = x[src]; } else { y[${dest}] = ${lit(plan.fill, type)}; }`
    : `y[${dest}] = x[src];`);
  const k = kernel(label);
  k.bind('x', x, type);
  k.bind('y', y, type);
  return k.build({ entry: { workgroupSize: grid.workgroupSize, params: [GID], body: statements.filter((s) => s !== '').join('\n  ') }, workgroups: grid.workgroups });
}

/** Emits the kernel of one plan copying `x` into `y` (nothing when the plan is empty). */
function emitPlan(ctx: LowerContext, label: string, plan: CopyPlan, x: LowerTensor, y: LowerTensor): void {
  if (planElements(plan) === 0) return;
  if (numElements(x.type.shape) === 0) {
    // every element is padding: reading the (empty) input would bind a zero-sized buffer
    const fill = lit(plan.fill, wgslType(y.type.dtype));
    emitFill(ctx, label, y, () => fill);
    return;
  }
  assertBindable(ctx, [x, y]);
  ctx.kernel(planKernel(label, simplifyPlan(plan), x, y));
}

/**
 * An op whose single output is a plan over input 0. `plan` receives the ShapeContext so that
 * inferTypes, fold and lower share one derivation of the op's parameters.
 */
function planOp(opTypes: string[], label: (node: Node) => string, plan: (ctx: ShapeContext) => { type: TensorType; plan: CopyPlan }): OpDef {
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

// ---------------------------------------------------------------------------------------------
// Transpose, DepthToSpace, SpaceToDepth

function transposePlan(inShape: readonly number[], perm: readonly number[]): CopyPlan {
  const inStrides = stridesOf(inShape);
  return gatherPlan(perm.map((p) => inShape[p]!), perm.map((p) => ({ kind: 'linear', coef: inStrides[p]! })));
}

function transposePerm(node: Node, rank: number): number[] {
  const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const isPermutation = perm.length === rank && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
  if (!isPermutation) fail('FM_SHAPE', `${nodeLabel(node)}: perm [${perm}] is not a permutation of the ${rank} input axes`);
  return perm;
}

function transposeSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const x = requiredInput(ctx, 0, 'data');
  const perm = transposePerm(ctx.node, x.shape.length);
  return { type: { dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }, plan: transposePlan(x.shape, perm) };
}

const TILE = 16;

/**
 * A transpose that, once simplified, swaps the two inner axes of a [batch, rows, cols] array
 * (NCHW<->NHWC, matrix transposes). Such a transpose goes through a workgroup tile so that both
 * the reads and the writes are contiguous.
 */
function swappedInnerAxes(plan: CopyPlan): { batch: number; rows: number; cols: number } | undefined {
  const axes = plan.axes;
  if (axes.length < 2 || axes.length > 3 || axes.some((a) => a.read.kind !== 'linear')) return undefined;
  const coef = (a: PlanAxis) => (a.read as { coef: number }).coef;
  const [rowAxis, colAxis] = axes.slice(-2) as [PlanAxis, PlanAxis];
  const rows = rowAxis.size;
  const cols = colAxis.size;
  if (coef(rowAxis) !== 1 || coef(colAxis) !== rows) return undefined;
  const batch = axes.length === 3 ? axes[0]!.size : 1;
  if (axes.length === 3 && coef(axes[0]!) !== rows * cols) return undefined;
  const grid = [Math.ceil(rows / TILE), Math.ceil(cols / TILE), batch];
  return grid.every((g) => g <= 65535) ? { batch, rows, cols } : undefined;
}

/** y[b][r][c] = x[b][c][r] through a TILE x TILE workgroup tile. */
function tiledTransposeKernel(x: LowerTensor, y: LowerTensor, batch: number, rows: number, cols: number): KernelSpec {
  const type = wgslType(y.type.dtype);
  const matrix = rows * cols;
  const body = [
    `let r0 = wg.x * ${u(TILE)};`,
    `let c0 = wg.y * ${u(TILE)};`,
    `let base = wg.z * ${u(matrix)};`,
    '// read: consecutive lanes take consecutive rows r of input row c',
    `if (r0 + l.x < ${u(rows)} && c0 + l.y < ${u(cols)}) { tile[l.y][l.x] = x[base + (c0 + l.y) * ${u(rows)} + r0 + l.x]; }`,
    'workgroupBarrier();',
    '// write: consecutive lanes take consecutive columns c of output row r',
    `if (r0 + l.y < ${u(rows)} && c0 + l.x < ${u(cols)}) { y[base + (r0 + l.y) * ${u(cols)} + c0 + l.x] = tile[l.x][l.y]; }`,
  ].join('\n  ');
  const k = kernel('transpose_tiled');
  k.bind('x', x, type);
  k.bind('y', y, type);
  // the +1 column keeps the column-wise tile reads off a single shared-memory bank
  const tile = k.workgroupArray('tile', `array<${type}, ${TILE + 1}>`, TILE);
  return k.build({
    header: `${k.declarations()}\n\n${tile}\n\n`,
    entry: { workgroupSize: [TILE, TILE], params: [{ ...WID, name: 'wg' }, { ...LID, name: 'l' }], body },
    workgroups: [Math.ceil(rows / TILE), Math.ceil(cols / TILE), batch],
  });
}

const transposeOp: OpDef = {
  ...planOp(['Transpose'], () => 'transpose', transposeSpec),
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    const plan = simplifyPlan(transposeSpec(shapeContextOf(ctx)).plan);
    const tiled = swappedInnerAxes(plan);
    if (!tiled || numElements(y.type.shape) === 0) {
      emitPlan(ctx, 'transpose', plan, x, y);
      return;
    }
    assertBindable(ctx, [x, y]);
    ctx.kernel(tiledTransposeKernel(x, y, tiled.batch, tiled.rows, tiled.cols));
  },
};

function blockSize(node: Node): number {
  const b = attrInt(node, 'blocksize');
  if (b === undefined || !Number.isInteger(b) || b < 1) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: attribute "blocksize" must be a positive integer, got ${b}`);
  return b;
}

function nchw(ctx: ShapeContext): [TensorType, number, number, number, number] {
  const x = requiredInput(ctx, 0, 'input');
  if (x.shape.length !== 4) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: input must be 4-D [N, C, H, W], got [${x.shape}]`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return [x, n, c, h, w];
}

/** DepthToSpace is a transpose of a 6-D view of the input; the output is a 4-D view of the result. */
function depthToSpaceSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const [x, n, c, h, w] = nchw(ctx);
  const b = blockSize(ctx.node);
  // the mode attribute appeared in opset 11; before it the layout was always DCR
  const mode = ctx.opset >= 11 ? attrString(ctx.node, 'mode', 'DCR') : 'DCR';
  if (mode !== 'DCR' && mode !== 'CRD') fail('FM_UNSUPPORTED_OP', `${nodeLabel(ctx.node)}: mode ${JSON.stringify(mode)} is not supported (DCR or CRD)`);
  if (c % (b * b) !== 0) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: channels (${c}) must be divisible by blocksize² (${b * b})`);
  const cOut = c / (b * b);
  const plan = mode === 'DCR'
    ? transposePlan([n, b, b, cOut, h, w], [0, 3, 4, 1, 5, 2])
    : transposePlan([n, cOut, b, b, h, w], [0, 1, 4, 2, 5, 3]);
  return { type: { dtype: x.dtype, shape: [n, cOut, h * b, w * b] }, plan };
}

function spaceToDepthSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const [x, n, c, h, w] = nchw(ctx);
  const b = blockSize(ctx.node);
  if (h % b !== 0 || w % b !== 0) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: height (${h}) and width (${w}) must be divisible by blocksize (${b})`);
  const plan = transposePlan([n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4]);
  return { type: { dtype: x.dtype, shape: [n, c * b * b, h / b, w / b] }, plan };
}

// ---------------------------------------------------------------------------------------------
// Slice, Split

interface AxisWindow { axis: number; start: number; step: number; size: number }

/** A strided window of input `shape` (axes not listed are taken whole). */
function windowPlan(shape: readonly number[], windows: readonly AxisWindow[]): { shape: number[]; plan: CopyPlan } {
  const strides = stridesOf(shape);
  const outShape = [...shape];
  const reads: AxisRead[] = strides.map((s) => ({ kind: 'linear', coef: s }));
  let srcBase = 0;
  for (const w of windows) {
    outShape[w.axis] = w.size;
    reads[w.axis] = { kind: 'linear', coef: w.step * strides[w.axis]! };
    if (w.size > 0) srcBase += w.start * strides[w.axis]!;
  }
  return { shape: outShape, plan: gatherPlan(outShape, reads, srcBase) };
}

/** Clamps start/end as the ONNX spec prescribes (INT64_MAX/INT64_MIN sentinels included). */
function sliceWindow(axis: number, dim: number, startRaw: number, endRaw: number, step: number): AxisWindow {
  let start = startRaw < 0 ? startRaw + dim : startRaw;
  let end = endRaw < 0 ? endRaw + dim : endRaw;
  if (step > 0) {
    start = Math.min(dim, Math.max(0, start));
    end = Math.min(dim, Math.max(0, end));
  } else {
    start = Math.min(dim - 1, Math.max(0, start));
    end = Math.min(dim - 1, Math.max(-1, end));
  }
  return { axis, start, step, size: Math.max(0, Math.ceil((end - start) / step)) };
}

function sliceOperands(ctx: ShapeContext): { starts: number[]; ends: number[]; axes?: number[]; steps?: number[] } {
  const { node } = ctx;
  // starts/ends/axes were attributes until opset 10, which made them inputs and added steps
  if (ctx.opset < 10) {
    const starts = attrInts(node, 'starts');
    const ends = attrInts(node, 'ends');
    if (!starts || !ends) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: attributes "starts" and "ends" are required before opset 10`);
    return { starts, ends, axes: attrInts(node, 'axes') };
  }
  return {
    starts: constInts(ctx, 1, 'starts'),
    ends: constInts(ctx, 2, 'ends'),
    axes: optionalConstInts(ctx, 3, 'axes'),
    steps: optionalConstInts(ctx, 4, 'steps'),
  };
}

function sliceSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const x = requiredInput(ctx, 0, 'data');
  const rank = x.shape.length;
  const { starts, ends, axes: axesRaw, steps: stepsRaw } = sliceOperands(ctx);
  const axes = normalizeAxes(ctx.node, axesRaw ?? starts.map((_, i) => i), rank);
  const steps = stepsRaw ?? starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    fail('FM_SHAPE', `${nodeLabel(ctx.node)}: starts, ends, axes and steps must have equal lengths (got ${starts.length}, ${ends.length}, ${axes.length}, ${steps.length})`);
  }
  if (steps.includes(0)) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: steps [${steps}] must not contain 0`);
  const windows = axes.map((axis, i) => sliceWindow(axis, x.shape[axis]!, starts[i]!, ends[i]!, steps[i]!));
  const { shape, plan } = windowPlan(x.shape, windows);
  return { type: { dtype: x.dtype, shape }, plan };
}

function splitSizes(ctx: ShapeContext, dim: number): number[] {
  const { node } = ctx;
  const outputs = node.outputs.length;
  // split was an input in opset 1, an attribute in opsets 2-12 and an input again from 13
  const split = ctx.opset >= 13 || ctx.opset < 2 ? optionalConstInts(ctx, 1, 'split') : attrInts(node, 'split');
  const numOutputs = ctx.opset >= 18 ? attrInt(node, 'num_outputs') : undefined;
  if (split && numOutputs !== undefined) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: "split" and "num_outputs" must not both be given`);
  if (split) {
    const sum = split.reduce((a, b) => a + b, 0);
    if (split.length !== outputs || split.some((s) => !Number.isInteger(s) || s < 0) || sum !== dim) {
      fail('FM_SHAPE', `${nodeLabel(node)}: split [${split}] must list ${outputs} non-negative sizes summing to the axis size ${dim}`);
    }
    return split;
  }
  if (numOutputs !== undefined) {
    if (numOutputs !== outputs) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: num_outputs is ${numOutputs} but the node has ${outputs} outputs`);
    // uneven splits: every chunk has ceil(dim/n) elements but the last, which is smaller
    const chunk = Math.ceil(dim / outputs);
    const last = dim - chunk * (outputs - 1);
    if (last < 0) fail('FM_SHAPE', `${nodeLabel(node)}: an axis of size ${dim} cannot be split into ${outputs} chunks of ${chunk}`);
    return [...new Array<number>(outputs - 1).fill(chunk), last];
  }
  if (dim % outputs !== 0) fail('FM_SHAPE', `${nodeLabel(node)}: an axis of size ${dim} cannot be split evenly into ${outputs} outputs; give "split" sizes`);
  return new Array<number>(outputs).fill(dim / outputs);
}

function splitSpecs(ctx: ShapeContext): { type: TensorType; plan: CopyPlan }[] {
  const x = requiredInput(ctx, 0, 'input');
  const axis = normalizeAxis(ctx.node, attrInt(ctx.node, 'axis', 0), x.shape.length);
  let offset = 0;
  return splitSizes(ctx, x.shape[axis]!).map((size) => {
    const { shape, plan } = windowPlan(x.shape, [{ axis, start: offset, step: 1, size }]);
    offset += size;
    return { type: { dtype: x.dtype, shape }, plan };
  });
}

const splitOp: OpDef = {
  opTypes: ['Split'],
  costClass: 'data-movement',
  inferTypes: (ctx) => splitSpecs(ctx).map((s) => s.type),
  fold(ctx, inputs) {
    return splitSpecs({ ...ctx, consts: withFoldInputs(ctx, inputs) }).map((s) => foldPlan(s.plan, inputs[0]!, s.type));
  },
  lower(ctx) {
    // one kernel per output keeps each dispatch at two bindings whatever the number of outputs
    splitSpecs(shapeContextOf(ctx)).forEach((s, k) => emitPlan(ctx, 'split', s.plan, ctx.inputs[0]!, ctx.outputs[k]!));
  },
};

// ---------------------------------------------------------------------------------------------
// Pad, Tile, Expand

interface PadParams { mode: PadMode; before: number[]; after: number[]; value: number }

const PAD_MODES: readonly PadMode[] = ['constant', 'reflect', 'edge', 'wrap'];

function padMode(ctx: ShapeContext): PadMode {
  const mode = attrString(ctx.node, 'mode', 'constant');
  const known = (PAD_MODES as readonly string[]).includes(mode);
  if (!known || (mode === 'wrap' && ctx.opset < 19)) {
    fail('FM_UNSUPPORTED_OP', `${nodeLabel(ctx.node)}: mode ${JSON.stringify(mode)} is not supported at opset ${ctx.opset} (constant, reflect, edge; wrap from opset 19)`);
  }
  return mode as PadMode;
}

/** pads and value: attributes before opset 11 (`paddings` in opset 1), inputs from 11, axes from 18. */
function padOperands(ctx: ShapeContext, rank: number): { pads: number[]; value: number } {
  const { node } = ctx;
  if (ctx.opset < 11) {
    const pads = attrInts(node, ctx.opset < 2 ? 'paddings' : 'pads');
    if (!pads) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: attribute "${ctx.opset < 2 ? 'paddings' : 'pads'}" is required before opset 11`);
    return { pads, value: attrFloat(node, 'value', 0) };
  }
  const pads = constInts(ctx, 1, 'pads');
  const valueData = optionalConstValues(ctx, 2, 'constant_value');
  if (valueData && valueData.length !== 1) fail('FM_SHAPE', `${nodeLabel(node)}: constant_value must be a scalar, it has ${valueData.length} elements`);
  const axesRaw = ctx.opset >= 18 ? optionalConstInts(ctx, 3, 'axes') : undefined;
  const value = valueData?.[0] ?? 0;
  if (!axesRaw) return { pads, value };
  // pads list only the given axes: spread them over all axes
  const axes = normalizeAxes(node, axesRaw, rank);
  if (pads.length !== 2 * axes.length) fail('FM_SHAPE', `${nodeLabel(node)}: pads [${pads}] must have 2 entries per axis of axes [${axesRaw}]`);
  const full = new Array<number>(2 * rank).fill(0);
  axes.forEach((a, i) => {
    full[a] = pads[i]!;
    full[a + rank] = pads[i + axes.length]!;
  });
  return { pads: full, value };
}

function padParams(ctx: ShapeContext, x: TensorType): PadParams {
  const rank = x.shape.length;
  const mode = padMode(ctx);
  const { pads, value } = padOperands(ctx, rank);
  if (pads.length !== 2 * rank || pads.some((p) => !Number.isInteger(p))) {
    fail('FM_SHAPE', `${nodeLabel(ctx.node)}: pads [${pads}] must hold 2 integers per input axis (rank ${rank})`);
  }
  return { mode, before: pads.slice(0, rank), after: pads.slice(rank), value: normalizeValue(x.dtype, value) };
}

function padAxisRead(node: Node, p: PadParams, axis: number, dim: number, stride: number): { read: AxisRead; srcShift: number } {
  const before = p.before[axis]!;
  const after = p.after[axis]!;
  // pure cropping (negative pads) or untouched axes stay linear, so they can merge with neighbours
  if (before <= 0 && after <= 0) return { read: { kind: 'linear', coef: stride }, srcShift: -before * stride };
  if (dim === 0 && p.mode !== 'constant') fail('FM_SHAPE', `${nodeLabel(node)}: mode ${p.mode} cannot pad axis ${axis} of size 0`);
  return { read: { kind: 'pad', mode: p.mode, before, inputSize: dim, stride }, srcShift: 0 };
}

function padSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const x = requiredInput(ctx, 0, 'data');
  const p = padParams(ctx, x);
  const shape = x.shape.map((d, a) => d + p.before[a]! + p.after[a]!);
  const bad = shape.findIndex((d) => d < 0);
  if (bad >= 0) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: pads [${[...p.before, ...p.after]}] remove more than the ${x.shape[bad]} elements of axis ${bad}`);
  const strides = stridesOf(x.shape);
  let srcBase = 0;
  const reads = x.shape.map((dim, a) => {
    const { read, srcShift } = padAxisRead(ctx.node, p, a, dim, strides[a]!);
    srcBase += srcShift;
    return read;
  });
  return { type: { dtype: x.dtype, shape }, plan: gatherPlan(shape, reads, srcBase, p.value) };
}

function tileSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  if (ctx.opset < 6) fail('FM_UNSUPPORTED_OP', `${nodeLabel(ctx.node)}: Tile before opset 6 (tiles/axis inputs) is not supported; re-export with opset >= 6`);
  const x = requiredInput(ctx, 0, 'input');
  const repeats = constInts(ctx, 1, 'repeats');
  if (repeats.length !== x.shape.length || repeats.some((r) => !Number.isInteger(r) || r < 0)) {
    fail('FM_SHAPE', `${nodeLabel(ctx.node)}: repeats [${repeats}] must hold one non-negative integer per input axis (rank ${x.shape.length})`);
  }
  const strides = stridesOf(x.shape);
  const shape = x.shape.map((d, a) => d * repeats[a]!);
  const reads = x.shape.map((dim, a): AxisRead =>
    repeats[a] === 1 ? { kind: 'linear', coef: strides[a]! } : dim === 1 ? { kind: 'linear', coef: 0 } : { kind: 'modulo', period: dim, stride: strides[a]! });
  return { type: { dtype: x.dtype, shape }, plan: gatherPlan(shape, reads) };
}

/** Bidirectional (numpy) broadcast of the input against the requested shape. */
function expandSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const x = requiredInput(ctx, 0, 'input');
  const target = constInts(ctx, 1, 'shape');
  const rank = Math.max(x.shape.length, target.length);
  const inOffset = rank - x.shape.length;
  const tOffset = rank - target.length;
  const strides = stridesOf(x.shape);
  const shape: number[] = [];
  const reads: AxisRead[] = [];
  for (let j = 0; j < rank; j++) {
    const a = j >= inOffset ? x.shape[j - inOffset]! : 1;
    const b = j >= tOffset ? target[j - tOffset]! : 1;
    if (a !== b && a !== 1 && b !== 1) {
      fail('FM_SHAPE', `${nodeLabel(ctx.node)}: input shape [${x.shape}] cannot be broadcast to [${target}] (axis ${j}: ${a} vs ${b})`);
    }
    shape.push(a === 1 ? b : a);
    reads.push({ kind: 'linear', coef: a === 1 ? 0 : strides[j - inOffset]! });
  }
  return { type: { dtype: x.dtype, shape }, plan: gatherPlan(shape, reads) };
}

// ---------------------------------------------------------------------------------------------
// Concat

function concatAxis(ctx: ShapeContext, rank: number): number {
  const axis = attrInt(ctx.node, 'axis');
  if (axis !== undefined) return normalizeAxis(ctx.node, axis, rank);
  // axis was optional (default 1) until opset 4 made it required
  if (ctx.opset < 4) return normalizeAxis(ctx.node, 1, rank);
  fail('FM_ONNX_INVALID', `${nodeLabel(ctx.node)}: attribute "axis" is required from opset 4`);
}

/** The output type and, per input, the plan writing it into its slab of the output. */
function concatSpec(ctx: ShapeContext): { type: TensorType; plans: CopyPlan[] } {
  const xs = ctx.node.inputs.map((_, i) => requiredInput(ctx, i, `input ${i}`));
  if (xs.length === 0) fail('FM_ONNX_INVALID', `${nodeLabel(ctx.node)}: needs at least one input`);
  const first = xs[0]!;
  const rank = first.shape.length;
  if (rank === 0) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: cannot concatenate scalars`);
  const axis = concatAxis(ctx, rank);
  for (const [i, t] of xs.entries()) {
    const compatible = t.dtype === first.dtype && t.shape.length === rank && t.shape.every((d, a) => a === axis || d === first.shape[a]);
    if (!compatible) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: input ${i} (${t.dtype} [${t.shape}]) does not match input 0 (${first.dtype} [${first.shape}]) outside axis ${axis}`);
  }
  const shape = [...first.shape];
  shape[axis] = xs.reduce((sum, t) => sum + t.shape[axis]!, 0);
  const outStrides = stridesOf(shape);
  let offset = 0;
  const plans = xs.map((t) => {
    const inStrides = stridesOf(t.shape);
    const plan: CopyPlan = {
      axes: t.shape.map((size, a) => ({ size, read: { kind: 'linear', coef: inStrides[a]! }, destStride: outStrides[a]! })),
      srcBase: 0,
      destBase: offset * outStrides[axis]!,
      fill: 0,
    };
    offset += t.shape[axis]!;
    return plan;
  });
  return { type: { dtype: first.dtype, shape }, plans };
}

const concatOp: OpDef = {
  opTypes: ['Concat'],
  costClass: 'data-movement',
  inferTypes: (ctx) => [concatSpec(ctx).type],
  fold(ctx, inputs) {
    const { type, plans } = concatSpec({ ...ctx, consts: withFoldInputs(ctx, inputs) });
    const data = hostArrayFor(type.dtype, numElements(type.shape));
    plans.forEach((plan, i) => runPlan(plan, inputs[i]!.data, data));
    return [{ ...type, data }];
  },
  lower(ctx) {
    // one kernel per input keeps each dispatch at two bindings however many inputs there are
    const { plans } = concatSpec(shapeContextOf(ctx));
    plans.forEach((plan, i) => emitPlan(ctx, 'concat', plan, ctx.inputs[i]!, ctx.outputs[0]!));
  },
};

// ---------------------------------------------------------------------------------------------
// Gather, GatherElements

function assertIndexType(ctx: ShapeContext, indices: TensorType): void {
  if (indices.dtype !== 'int64' && indices.dtype !== 'int32') {
    fail('FM_SHAPE', `${nodeLabel(ctx.node)}: indices must be int32 or int64, got ${indices.dtype}`);
  }
}

/** Constant indices are checked at compile time; runtime ones are clamped by the kernel. */
function assertIndicesInRange(ctx: ShapeContext, dim: number): void {
  const data = ctx.consts[1]?.data;
  if (!data) return;
  const bad = data.find((k) => k < -dim || k >= dim);
  if (bad !== undefined) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: index ${bad} is out of range for an axis of size ${dim}`);
}

/** WGSL statements reading index `k` at `at` into u32 `j` in [0, dim): negative indices count from the end. */
function indexStatements(at: string, dim: number): string[] {
  return [
    `let k = indices[${at}];`,
    // out-of-range runtime indices are clamped rather than read out of bounds
    `let j = u32(clamp(select(k, k + ${lit(dim, 'i32')}, k < 0), 0, ${lit(dim - 1, 'i32')}));`,
  ];
}

function wrapIndex(k: number, dim: number): number {
  return k < 0 ? k + dim : k;
}

function gatherAxis(ctx: ShapeContext, data: TensorType): number {
  return normalizeAxis(ctx.node, attrInt(ctx.node, 'axis', 0), data.shape.length);
}

function gatherTypes(ctx: ShapeContext): TensorType[] {
  const data = requiredInput(ctx, 0, 'data');
  const indices = requiredInput(ctx, 1, 'indices');
  assertIndexType(ctx, indices);
  const axis = gatherAxis(ctx, data);
  assertIndicesInRange(ctx, data.shape[axis]!);
  return [{ dtype: data.dtype, shape: [...data.shape.slice(0, axis), ...indices.shape, ...data.shape.slice(axis + 1)] }];
}

/** A gather kernel: binds data `x`, i32 `indices` and output `y`, one invocation per output element. */
function gatherKernel(label: string, [x, indices, y]: readonly [LowerTensor, LowerTensor, LowerTensor], type: WgslScalar, grid: Grid1D, statements: readonly string[]): KernelSpec {
  const k = kernel(label);
  k.bind('x', x, type);
  k.bind('indices', indices, 'i32');
  k.bind('y', y, type);
  return k.build({ entry: { workgroupSize: grid.workgroupSize, params: [GID], body: statements.join('\n  ') }, workgroups: grid.workgroups });
}

function emitGatherKernel(ctx: LowerContext, label: string, iterShape: readonly number[], body: string[]): void {
  const [data, indices] = [ctx.inputs[0]!, ctx.inputs[1]!];
  const y = ctx.outputs[0]!;
  if (numElements(y.type.shape) === 0) return;
  if (numElements(data.type.shape) === 0) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: cannot gather from an empty axis`);
  assertBindable(ctx, [data, indices, y]);
  const type = wgslType(y.type.dtype);
  const grid = grid1D(numElements(y.type.shape));
  const statements = [grid.prologue, unravel('i', iterShape, 'o'), ...body].filter((s) => s !== '');
  ctx.kernel(gatherKernel(label, [data, indices, y], type, grid, statements));
}

const gatherOp: OpDef = {
  opTypes: ['Gather'],
  costClass: 'data-movement',
  inferTypes: gatherTypes,
  fold(ctx, inputs) {
    const fctx = { ...ctx, consts: withFoldInputs(ctx, inputs) };
    const [out] = gatherTypes(fctx);
    const [data, indices] = [inputs[0]!, inputs[1]!];
    const axis = gatherAxis(fctx, data);
    const dim = data.shape[axis]!;
    const inner = numElements(data.shape.slice(axis + 1));
    const outer = numElements(data.shape.slice(0, axis));
    const n = indices.data.length;
    const result = hostArrayFor(out!.dtype, numElements(out!.shape));
    for (let o = 0; o < outer; o++) {
      for (let q = 0; q < n; q++) {
        const src = (o * dim + wrapIndex(indices.data[q]!, dim)) * inner;
        result.set(data.data.subarray(src, src + inner), (o * n + q) * inner);
      }
    }
    return [{ ...out!, data: result }];
  },
  lower(ctx) {
    const data = ctx.inputs[0]!.type;
    const indices = ctx.inputs[1]!.type;
    const axis = gatherAxis(shapeContextOf(ctx), data);
    const q = indices.shape.length;
    const dataStrides = stridesOf(data.shape);
    const coords = (from: number, to: number) => Array.from({ length: to - from }, (_, k) => `o${from + k}`);
    const outRank = ctx.outputs[0]!.type.shape.length;
    const srcTerms = [
      dot(coords(0, axis), dataStrides.slice(0, axis)),
      scaled('j', dataStrides[axis]!),
      dot(coords(axis + q, outRank), dataStrides.slice(axis + 1)),
    ];
    emitGatherKernel(ctx, 'gather', ctx.outputs[0]!.type.shape, [
      ...indexStatements(dot(coords(axis, axis + q), stridesOf(indices.shape)), data.shape[axis]!),
      `y[i] = x[${srcTerms.filter((t) => t !== '0u').join(' + ') || '0u'}];`,
    ]);
  },
};

// SplitGather (FUSED_DOMAIN, built by the split-large-weights pass): Gather on axis 0 of a
// constant table too large to be one weight. Each row range [r0, r1) of the table (row_splits
// holds the inner boundaries) is its own constant, a view of the table's rows (no copy), bound by
// its own kernel, which writes the output rows whose index falls in its range. Every (clamped)
// index lies in exactly one range, so the kernels together write each output element once.

function rowSplits(node: Node, rows: number): number[] {
  const splits = attrInts(node, 'row_splits', []);
  if (splits.some((s, i) => !Number.isInteger(s) || s <= (i === 0 ? 0 : splits[i - 1]!) || s >= rows)) {
    fail('FM_ONNX_INVALID', `${nodeLabel(node)}: row_splits [${splits}] must ascend strictly inside (0, ${rows})`);
  }
  return splits;
}

function splitGatherTypes(ctx: ShapeContext): TensorType[] {
  if (!ctx.consts[0]) fail('FM_ONNX_INVALID', `${nodeLabel(ctx.node)}: the table must be a constant`);
  if (gatherAxis(ctx, requiredInput(ctx, 0, 'data')) !== 0) fail('FM_ONNX_INVALID', `${nodeLabel(ctx.node)}: only axis 0 is split`);
  rowSplits(ctx.node, ctx.inputs[0]!.shape[0]!);
  return gatherTypes(ctx);
}

const splitGatherOp: OpDef = {
  opTypes: ['SplitGather'],
  costClass: 'data-movement',
  inferTypes: splitGatherTypes,
  lower(ctx) {
    const [table, indices] = [ctx.inputs[0]!, ctx.inputs[1]!];
    const y = ctx.outputs[0]!;
    const total = numElements(y.type.shape);
    if (total === 0) return;
    const rows = table.type.shape[0]!;
    const rowShape = table.type.shape.slice(1);
    const inner = numElements(rowShape);
    const bounds = [0, ...rowSplits(ctx.node, rows), rows];
    const type = wgslType(y.type.dtype);
    const grid = grid1D(total);
    const data = table.data!.data;
    for (let c = 0; c + 1 < bounds.length; c++) {
      const [r0, r1] = [bounds[c]!, bounds[c + 1]!];
      const chunk = ctx.constant(`table_rows${r0}`, { dtype: table.type.dtype, shape: [r1 - r0, ...rowShape], data: data.subarray(r0 * inner, r1 * inner) });
      assertBindable(ctx, [chunk, indices, y]);
      const body = [
        grid.prologue,
        ...indexStatements(inner === 1 ? 'i' : `i / ${u(inner)}`, rows),
        `if (j < ${u(r0)} || j >= ${u(r1)}) { return; }`,
        `y[i] = x[${scaled(`(j - ${u(r0)})`, inner)}${inner === 1 ? '' : ` + i % ${u(inner)}`}];`,
      ];
      ctx.kernel(gatherKernel('gather_rows', [chunk, indices, y], type, grid, body));
    }
  },
};

function gatherElementsTypes(ctx: ShapeContext): TensorType[] {
  const data = requiredInput(ctx, 0, 'data');
  const indices = requiredInput(ctx, 1, 'indices');
  assertIndexType(ctx, indices);
  const axis = gatherAxis(ctx, data);
  const fits = indices.shape.length === data.shape.length && indices.shape.every((d, a) => a === axis || d <= data.shape[a]!);
  if (!fits) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: indices [${indices.shape}] must have the rank of data [${data.shape}] and fit inside it outside axis ${axis}`);
  assertIndicesInRange(ctx, data.shape[axis]!);
  return [{ dtype: data.dtype, shape: [...indices.shape] }];
}

const gatherElementsOp: OpDef = {
  opTypes: ['GatherElements'],
  costClass: 'data-movement',
  inferTypes: gatherElementsTypes,
  fold(ctx, inputs) {
    const fctx = { ...ctx, consts: withFoldInputs(ctx, inputs) };
    const [out] = gatherElementsTypes(fctx);
    const [data, indices] = [inputs[0]!, inputs[1]!];
    const axis = gatherAxis(fctx, data);
    const dataStrides = stridesOf(data.shape);
    const idxStrides = stridesOf(indices.shape);
    const result = hostArrayFor(out!.dtype, indices.data.length);
    for (let i = 0; i < indices.data.length; i++) {
      let src = 0;
      for (let a = 0; a < idxStrides.length; a++) {
        const coord = a === axis ? wrapIndex(indices.data[i]!, data.shape[axis]!) : Math.floor(i / idxStrides[a]!) % indices.shape[a]!;
        src += coord * dataStrides[a]!;
      }
      result[i] = data.data[src]!;
    }
    return [{ ...out!, data: result }];
  },
  lower(ctx) {
    const data = ctx.inputs[0]!.type;
    const axis = gatherAxis(shapeContextOf(ctx), data);
    const dataStrides = stridesOf(data.shape);
    const coords = data.shape.map((_, a) => (a === axis ? 'j' : `o${a}`));
    emitGatherKernel(ctx, 'gather_elements', ctx.outputs[0]!.type.shape, [
      ...indexStatements('i', data.shape[axis]!),
      `y[i] = x[${dot(coords, dataStrides)}];`,
    ]);
  },
};

/** Ops of FUSED_DOMAIN defined here. */
export const movementFusedOps: readonly OpDef[] = [splitGatherOp];

export const movementOps: readonly OpDef[] = [
  concatOp,
  transposeOp,
  planOp(['Slice'], () => 'slice', sliceSpec),
  splitOp,
  planOp(['Pad'], (node) => `pad_${attrString(node, 'mode', 'constant')}`, padSpec),
  gatherOp,
  gatherElementsOp,
  planOp(['Tile'], () => 'tile', tileSpec),
  planOp(['Expand'], () => 'expand', expandSpec),
  planOp(['DepthToSpace'], () => 'depth_to_space', depthToSpaceSpec),
  planOp(['SpaceToDepth'], () => 'space_to_depth', spaceToDepthSpec),
];
