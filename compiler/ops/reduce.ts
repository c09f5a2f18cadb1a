/**
 * Reductions and the ops built on them: Softmax / LogSoftmax, the Reduce* family, ArgMax /
 * ArgMin and CumSum. All of them see the input as "rows": each output element (or each softmax
 * row) combines the elements of a set of reduced axes. Two kernel shapes cover every case:
 *  - one workgroup per row, partial results combined by a tree reduction in workgroup memory:
 *    for long rows (1000 classes, 50257-entry vocabularies) and rows contiguous in memory;
 *  - one invocation per row with a serial loop: for many short rows, and for strided rows where
 *    neighbouring invocations then read neighbouring addresses (reductions over non-last axes
 *    need no transpose).
 */
import { attrInt, attrInts } from '../ir/attrs.js';
import { constToInts, makeConst } from '../ir/tensor.js';
import { stridesOf } from '../kernel/strides.js';
import { type ConstTensor, type Node, type TensorType, isFloat, numElements } from '../ir/types.js';
import { dot, grid1D, lit, u, unravel, wgslType, type WgslScalar } from '../kernel/wgsl.js';
import { GID, LID_INDEX, WID, kernel, type KernelBuilder } from '../kernel/builder.js';
import { describeNode } from '../ir/graph.js';
import { fail } from '../errors.js';
import type { LowerContext, OpDef } from './op.js';
import type { KernelSpec, LowerTensor } from '../kernel/types.js';
import { assertBindable } from './shape.js';
import type { TargetLimits } from '../target/limits.js';

// ---------------------------------------------------------------------------------------------
// Shared helpers: node descriptions, axis normalisation, binding limits
// ---------------------------------------------------------------------------------------------

/** Maps a possibly negative axis into [0, rank), or fails naming the attribute/input it came from. */
function normalizeAxis(node: Node, axis: number, rank: number, source: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= Math.max(rank, 1)) {
    fail('FM_SHAPE', `${describeNode(node)}: ${source} ${axis} is out of range for an input of rank ${rank}; use a value in [${-rank}, ${Math.max(rank, 1) - 1}]`);
  }
  return axis < 0 ? axis + rank : axis;
}

function requireFloat(node: Node, type: TensorType): void {
  if (!isFloat(type.dtype)) {
    fail('FM_DTYPE', `${describeNode(node)}: input of type ${type.dtype} is not supported; ${node.opType} takes float tensors`);
  }
}

/** A kernel reading `x` (as `inType`) and writing `y` (as `outType`), the two bindings every kernel here has. */
function xyKernel(label: string, x: LowerTensor, inType: WgslScalar, y: LowerTensor, outType: WgslScalar): KernelBuilder {
  const k = kernel(label);
  k.bind('x', x, inType);
  k.bind('y', y, outType);
  return k;
}

/** The entry point of a one-workgroup-per-row (or per-line) kernel: `wid` and `lid` as the templates name them. */
function workgroupEntry(k: KernelBuilder, shared: string, size: number, body: string, workgroups: [number, number, number]): KernelSpec {
  return k.build({ header: `${k.declarations()}\n${shared}\n\n`, entry: { workgroupSize: size, params: [WID, LID_INDEX], body }, workgroups });
}

function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

function product(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

// ---------------------------------------------------------------------------------------------
// Reduction layouts: which input elements each output (row) combines
// ---------------------------------------------------------------------------------------------

interface Dim {
  size: number;
  /** input stride in elements */
  stride: number;
}

/**
 * Row `r` (row-major over `kept`) combines the elements at base(r) + offsets over `reduced`.
 * Dims of size 1 are dropped and neighbouring dims of the same kind merged, so reducing the
 * H and W axes of NCHW becomes a single contiguous reduced dim.
 */
interface ReductionLayout {
  kept: Dim[];
  reduced: Dim[];
}

function reductionLayout(shape: readonly number[], reducedAxes: ReadonlySet<number>): ReductionLayout {
  const strides = stridesOf(shape);
  const layout: ReductionLayout = { kept: [], reduced: [] };
  let previous: 'kept' | 'reduced' | undefined;
  shape.forEach((size, axis) => {
    if (size === 1) return;
    const kind = reducedAxes.has(axis) ? 'reduced' : 'kept';
    const dims = layout[kind];
    const last = dims[dims.length - 1];
    // the input is contiguous: an axis directly inside another of the same kind merges with it
    if (previous === kind && last) {
      last.size *= size;
      last.stride = strides[axis]!;
    } else {
      dims.push({ size, stride: strides[axis]! });
    }
    previous = kind;
  });
  return layout;
}

const rowCount = (layout: ReductionLayout): number => product(layout.kept.map((d) => d.size));
const rowLength = (layout: ReductionLayout): number => product(layout.reduced.map((d) => d.size));

// ---------------------------------------------------------------------------------------------
// Reduction algebras: the accumulator state and how elements and partial states combine
// ---------------------------------------------------------------------------------------------

/**
 * WGSL snippets over fixed names: accumulators a0, a1 (of `acc` types), a partner's partial
 * state b0, b1, the element value `v` and the element's flat index within its row `k` (u32).
 */
interface Algebra {
  acc: readonly { type: WgslScalar; init: string }[];
  /** type the element is converted to before accumulation */
  valueType: WgslScalar;
  accumulate: string;
  combine: string;
}

function sumLike(type: WgslScalar, term: string): Algebra {
  return { acc: [{ type, init: lit(0, type) }], valueType: type, accumulate: `a0 += ${term};`, combine: 'a0 += b0;' };
}

/** Running maximum m (a0) and sum of exp(x - m) (a1), rescaled whenever the maximum grows. */
const LOG_SUM_EXP_ALGEBRA: Algebra = {
  acc: [{ type: 'f32', init: lit(-Infinity, 'f32') }, { type: 'f32', init: lit(0, 'f32') }],
  valueType: 'f32',
  // one exp per element: only a new maximum rescales the running sum
  accumulate: 'if (v > a0) { a1 = a1 * exp(a0 - v) + 1.0; a0 = v; } else { a1 += exp(v - a0); }',
  combine: 'let m = max(a0, b0); a1 = a1 * exp(a0 - m) + b1 * exp(b0 - m); a0 = m;',
};

// ---------------------------------------------------------------------------------------------
// Row kernels
// ---------------------------------------------------------------------------------------------

type RowEpilogue =
  /** one output per row: y[row] = expression of a0, a1 */
  | { kind: 'reduce'; result: string }
  /** output has the input's layout: y[off] = expression of v, a0, a1 for every element of the row */
  | { kind: 'normalize'; prepare: string; element: string };

interface RowKernelSpec {
  label: string;
  layout: ReductionLayout;
  inType: WgslScalar;
  outType: WgslScalar;
  algebra: Algebra;
  epilogue: RowEpilogue;
}

/**
 * 'serial': one invocation per row. 'tiled': a workgroup of `rowsPerGroup` x `slices`
 * invocations; each row is read cooperatively by `slices` invocations whose partial states meet
 * in a tree reduction in workgroup memory.
 */
type RowStrategy = { kind: 'serial' } | { kind: 'tiled'; rowsPerGroup: number; slices: number };

/**
 * Many short rows keep the GPU busy with one invocation each. Longer rows are read
 * cooperatively, at least ~4 elements per invocation. Contiguous rows get a workgroup each, its
 * invocations reading neighbouring elements; strided rows (a reduction over a non-last axis)
 * share workgroups, 32 neighbouring rows side by side, so that neighbouring invocations still
 * read neighbouring addresses.
 */
function chooseRowStrategy(rows: number, length: number, contiguous: boolean, limits: TargetLimits): RowStrategy {
  if (length <= 16 || (rows >= 4096 && length <= 64)) return { kind: 'serial' };
  const maxSize = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX, 256);
  const rowsPerGroup = contiguous ? 1 : Math.min(32, nextPow2(rows), maxSize);
  const maxSlices = Math.max(1, Math.floor(maxSize / rowsPerGroup));
  // at least 32 invocations: a narrower workgroup wastes most of a SIMD unit
  const minSlices = Math.max(1, 32 / rowsPerGroup);
  const slices = Math.min(maxSlices, Math.max(minSlices, nextPow2(Math.ceil(length / 4))));
  return { kind: 'tiled', rowsPerGroup, slices };
}

function declareAccumulators(algebra: Algebra): string {
  return algebra.acc.map((a, i) => `var a${i}: ${a.type} = ${a.init};`).join('\n  ');
}

function loadValue(spec: RowKernelSpec, offset: string): string {
  const raw = `x[${offset}]`;
  return spec.algebra.valueType === spec.inType ? `let v = ${raw};` : `let v = ${spec.algebra.valueType}(${raw});`;
}

/** WGSL computing `base`: the input offset of row `rowVar`'s first element. */
function rowBase(layout: ReductionLayout, rowVar: string): string {
  const sizes = layout.kept.map((d) => d.size);
  const coords = sizes.map((_, i) => `q${i}`);
  const lines = [unravel(rowVar, sizes, 'q'), `let base = ${dot(coords, layout.kept.map((d) => d.stride))};`];
  return lines.filter((l) => l !== '').join('\n  ');
}

/** Nested loops over the reduced dims binding `off` (input offset) and `k` (flat index in row). */
function serialRowLoop(layout: ReductionLayout, body: string): string {
  const dims = layout.reduced;
  const coords = dims.map((_, i) => `r${i}`);
  const flat = dot(coords, stridesOf(dims.map((d) => d.size)));
  let inner = `let off = base + ${dot(coords, dims.map((d) => d.stride))};\n  let k = ${flat};\n  ${body}`;
  for (let i = dims.length - 1; i >= 0; i--) {
    inner = `for (var r${i} = 0u; r${i} < ${u(dims[i]!.size)}; r${i}++) {\n  ${inner}\n  }`;
  }
  return inner;
}

/** Element offset of flat in-row index `k` (the workgroup loop strides over k). */
function stridedRowOffset(layout: ReductionLayout): string {
  const sizes = layout.reduced.map((d) => d.size);
  const coords = sizes.map((_, i) => `r${i}`);
  const lines = [unravel('k', sizes, 'r'), `let off = base + ${dot(coords, layout.reduced.map((d) => d.stride))};`];
  return lines.filter((l) => l !== '').join('\n    ');
}

/** Workgroup counts for `n` workgroups folded into x/y, and the WGSL expression of the linear id. */
function workgroupGrid(n: number, limits: TargetLimits): { workgroups: [number, number, number]; id: string } {
  const maxPerDim = limits.maxComputeWorkgroupsPerDimension;
  const x = Math.max(1, Math.min(n, maxPerDim));
  const y = Math.ceil(n / x);
  if (y > maxPerDim) fail('FM_LIMIT', `kernel needs ${n} workgroups, more than ${maxPerDim}x${maxPerDim}`);
  return { workgroups: [x, Math.max(1, y), 1], id: y > 1 ? `wid.x + wid.y * ${u(x)}` : 'wid.x' };
}

function serialRowKernel(spec: RowKernelSpec, k: KernelBuilder): KernelSpec {
  const rows = rowCount(spec.layout);
  const grid = grid1D(rows, 64);
  const accumulateLoop = serialRowLoop(spec.layout, `${loadValue(spec, 'off')}\n  ${spec.algebra.accumulate}`);
  const epilogue = spec.epilogue.kind === 'reduce'
    ? `y[i] = ${spec.epilogue.result};`
    : `${spec.epilogue.prepare}\n  ${serialRowLoop(spec.layout, `${loadValue(spec, 'off')}\n  y[off] = ${spec.epilogue.element};`)}`;
  const body = [grid.prologue, rowBase(spec.layout, 'i'), declareAccumulators(spec.algebra), accumulateLoop, epilogue]
    .filter((s) => s !== '').join('\n  ');
  return k.build({ entry: { workgroupSize: grid.workgroupSize, params: [GID], body }, workgroups: grid.workgroups });
}

/** Tree reduction over the slices of each row; s0/s1[slice * rowsPerGroup + lane] hold partial states. */
function treeReduce(algebra: Algebra, rowsPerGroup: number, slices: number): string {
  if (slices < 2) return '';
  const idx = [...Array(algebra.acc.length).keys()];
  const partner = rowsPerGroup === 1 ? 'lid + half' : `lid + half * ${u(rowsPerGroup)}`;
  // `half` is uniform across the workgroup, so the barrier inside the loop is legal
  return `for (var half = ${u(slices / 2)}; half > 0u; half >>= 1u) {\n` +
    `    if (slice < half) {\n      ${idx.map((i) => `var a${i} = s${i}[lid]; let b${i} = s${i}[${partner}];`).join(' ')}\n` +
    `      ${algebra.combine}\n      ${idx.map((i) => `s${i}[lid] = a${i};`).join(' ')}\n    }\n    workgroupBarrier();\n  }`;
}

function tiledRowKernel(spec: RowKernelSpec, k: KernelBuilder, rowsPerGroup: number, slices: number, limits: TargetLimits): KernelSpec {
  const rows = rowCount(spec.layout);
  const length = rowLength(spec.layout);
  const groups = Math.ceil(rows / rowsPerGroup);
  const grid = workgroupGrid(groups, limits);
  const size = rowsPerGroup * slices;
  const idx = [...Array(spec.algebra.acc.length).keys()];
  const shared = spec.algebra.acc.map((a, i) => k.workgroupArray(`s${i}`, a.type, size)).join('\n');
  const loop = (inner: string) =>
    `if (inRange) {\n  for (var k = slice; k < ${u(length)}; k += ${u(slices)}) {\n    ${stridedRowOffset(spec.layout)}\n` +
    `    ${loadValue(spec, 'off')}\n    ${inner}\n  }\n  }`;
  const epilogue = spec.epilogue.kind === 'reduce'
    ? `if (inRange && slice == 0u) { y[row] = ${spec.epilogue.result}; }`
    : `${spec.epilogue.prepare}\n  ${loop(`y[off] = ${spec.epilogue.element};`)}`;
  const tile = rowsPerGroup === 1
    ? ['let row = group;', 'let slice = lid;', 'let inRange = true;']
    : [`let lane = lid % ${u(rowsPerGroup)};`, `let slice = lid / ${u(rowsPerGroup)};`,
      `let row = group * ${u(rowsPerGroup)} + lane;`, `let inRange = row < ${u(rows)};`];
  const body = [
    `let group = ${grid.id};`,
    // uniform per workgroup (derived from workgroup_id only), so the barriers below stay legal
    `if (group >= ${u(groups)}) { return; }`,
    ...tile,
    rowBase(spec.layout, 'row'),
    declareAccumulators(spec.algebra),
    loop(spec.algebra.accumulate),
    `${idx.map((i) => `s${i}[lid] = a${i};`).join(' ')}\n  workgroupBarrier();`,
    treeReduce(spec.algebra, rowsPerGroup, slices),
    idx.map((i) => `a${i} = s${i}[${rowsPerGroup === 1 ? '0' : 'lane'}];`).join(' '),
    epilogue,
  ].filter((l) => l !== '').join('\n  ');
  return workgroupEntry(k, shared, size, body, grid.workgroups);
}

function emitRowKernel(ctx: LowerContext, spec: RowKernelSpec): void {
  const x = ctx.inputs[0]!;
  const y = ctx.outputs[0]!;
  assertBindable(ctx, [x, y]);
  if (numElements(y.type.shape) === 0) return;
  const rows = rowCount(spec.layout);
  const innermost = spec.layout.reduced[spec.layout.reduced.length - 1];
  const contiguous = !innermost || innermost.stride === 1;
  const strategy = chooseRowStrategy(rows, rowLength(spec.layout), contiguous, ctx.limits);
  const k = xyKernel(spec.label, x, spec.inType, y, spec.outType);
  ctx.kernel(strategy.kind === 'serial'
    ? serialRowKernel(spec, k)
    : tiledRowKernel(spec, k, strategy.rowsPerGroup, strategy.slices, ctx.limits));
}

// ---------------------------------------------------------------------------------------------
// Softmax / LogSoftmax
// ---------------------------------------------------------------------------------------------

/**
 * Before opset 13 the input is coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])] (default
 * axis 1), so the "row" spans every axis from `axis` on; from 13 it is the single axis (default -1).
 */
function softmaxReducedAxes(node: Node, opset: number, rank: number): Set<number> {
  const legacy = opset < 13;
  const axis = normalizeAxis(node, attrInt(node, 'axis', legacy ? 1 : -1), rank, 'axis');
  if (!legacy) return new Set([axis]);
  return new Set(Array.from({ length: rank - axis }, (_, i) => axis + i));
}

function softmaxOnCpu(node: Node, opset: number, x: ConstTensor): ConstTensor {
  const layout = reductionLayout(x.shape, softmaxReducedAxes(node, opset, x.shape.length));
  const out = new Float64Array(x.data.length);
  const log = node.opType === 'LogSoftmax';
  forEachRow(layout, (offsets) => {
    const max = maxOf(offsets.map((o) => x.data[o]!));
    const sum = offsets.reduce((s, o) => s + Math.exp(x.data[o]! - max), 0);
    for (const o of offsets) out[o] = log ? x.data[o]! - max - Math.log(sum) : Math.exp(x.data[o]! - max) / sum;
  });
  return makeConst(x.dtype, x.shape, out);
}

const softmaxOps: OpDef = {
  opTypes: ['Softmax', 'LogSoftmax'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    const x = ctx.inputs[0]!;
    requireFloat(ctx.node, x);
    softmaxReducedAxes(ctx.node, ctx.opset, x.shape.length);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  fold: (ctx, inputs) => [softmaxOnCpu(ctx.node, ctx.opset, inputs[0]!)],
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const layout = reductionLayout(x.type.shape, softmaxReducedAxes(ctx.node, ctx.opset, x.type.shape.length));
    const log = ctx.node.opType === 'LogSoftmax';
    emitRowKernel(ctx, {
      label: log ? 'log_softmax' : 'softmax',
      layout,
      inType: 'f32',
      outType: 'f32',
      algebra: LOG_SUM_EXP_ALGEBRA,
      epilogue: log
        ? { kind: 'normalize', prepare: 'let shift = a0 + log(a1);', element: 'v - shift' }
        : { kind: 'normalize', prepare: 'let inv = 1.0 / a1;', element: 'exp(v - a0) * inv' },
    });
  },
};

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
const floatOnly = (type: WgslScalar): WgslScalar => (type === 'i32' ? 'f32' : type);

const sum = (values: readonly number[]): number => values.reduce((s, v) => s + v, 0);
/** (Math.max(...values) overflows the stack for long rows) */
const maxOf = (values: readonly number[]): number => values.reduce((m, v) => Math.max(m, v), -Infinity);

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
function reduceAxes(node: Node, opset: number, rank: number, axesInput: ConstTensor | undefined): Set<number> | 'identity' {
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

function reduceOutputShape(node: Node, shape: readonly number[], axes: Set<number> | 'identity'): number[] {
  if (axes === 'identity') return [...shape];
  const keep = attrInt(node, 'keepdims', 1) !== 0;
  return shape.flatMap((d, i) => (axes.has(i) ? (keep ? [1] : []) : [d]));
}

/** Calls `visit` with the input offsets of each row, rows in output order (CPU folding). */
function forEachRow(layout: ReductionLayout, visit: (offsets: number[]) => void): void {
  const rowOffsets = offsetsOf(layout.kept);
  const inRow = offsetsOf(layout.reduced);
  for (const base of rowOffsets) visit(inRow.map((o) => base + o));
}

function offsetsOf(dims: readonly Dim[]): number[] {
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

const reduceFamily: OpDef = {
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

// ---------------------------------------------------------------------------------------------
// ArgMax / ArgMin
// ---------------------------------------------------------------------------------------------

interface ArgParams {
  axis: number;
  keepdims: boolean;
  selectLast: boolean;
}

function argParams(node: Node, rank: number): ArgParams {
  return {
    axis: normalizeAxis(node, attrInt(node, 'axis', 0), rank, 'axis'),
    keepdims: attrInt(node, 'keepdims', 1) !== 0,
    selectLast: attrInt(node, 'select_last_index', 0) !== 0,
  };
}

/**
 * State: best value a0 and its index a1 (-1 before the first element). Ties keep the first index,
 * or the last with select_last_index; each invocation sees its indices in increasing order, and
 * the combine step compares indices so the tree keeps the same rule.
 */
function argAlgebra(type: WgslScalar, isMax: boolean, selectLast: boolean): Algebra {
  const better = isMax ? '>' : '<';
  const tieWins = selectLast ? 'b1 > a1' : 'b1 < a1';
  return {
    acc: [{ type, init: lit(0, type) }, { type: 'i32', init: '-1' }],
    valueType: type,
    accumulate: `if (a1 < 0 || v ${better}${selectLast ? '=' : ''} a0) { a0 = v; a1 = i32(k); }`,
    combine: `if (b1 >= 0 && (a1 < 0 || b0 ${better} a0 || (b0 == a0 && ${tieWins}))) { a0 = b0; a1 = b1; }`,
  };
}

function argOnCpu(node: Node, x: ConstTensor): ConstTensor {
  const p = argParams(node, x.shape.length);
  const isMax = node.opType === 'ArgMax';
  const out: number[] = [];
  forEachRow(reductionLayout(x.shape, new Set([p.axis])), (offsets) => {
    let best = 0;
    offsets.forEach((o, k) => {
      const v = x.data[o]!, b = x.data[offsets[best]!]!;
      const wins = isMax ? v > b : v < b;
      if (wins || (p.selectLast && v === b)) best = k;
    });
    out.push(best);
  });
  return makeConst('int64', argOutputShape(x.shape, p), out);
}

function argOutputShape(shape: readonly number[], p: ArgParams): number[] {
  return shape.flatMap((d, i) => (i === p.axis ? (p.keepdims ? [1] : []) : [d]));
}

const argFamily: OpDef = {
  opTypes: ['ArgMax', 'ArgMin'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    const x = ctx.inputs[0]!;
    if (x.shape.length === 0) fail('FM_SHAPE', `${describeNode(ctx.node)}: the input must have rank >= 1`);
    if (x.shape[argParams(ctx.node, x.shape.length).axis] === 0) {
      fail('FM_SHAPE', `${describeNode(ctx.node)}: cannot take the ${ctx.node.opType} of an empty axis`);
    }
    return [{ dtype: 'int64', shape: argOutputShape(x.shape, argParams(ctx.node, x.shape.length)) }];
  },
  fold: (ctx, inputs) => [argOnCpu(ctx.node, inputs[0]!)],
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const type = wgslType(x.type.dtype);
    const p = argParams(ctx.node, x.type.shape.length);
    emitRowKernel(ctx, {
      label: ctx.node.opType.toLowerCase(),
      layout: reductionLayout(x.type.shape, new Set([p.axis])),
      inType: type,
      outType: 'i32',
      algebra: argAlgebra(type, ctx.node.opType === 'ArgMax', p.selectLast),
      // a1 stays -1 only for an axis of length 1 dropped from the layout: its index is 0
      epilogue: { kind: 'reduce', result: 'max(a1, 0)' },
    });
  },
};

// ---------------------------------------------------------------------------------------------
// CumSum
// ---------------------------------------------------------------------------------------------

interface ScanLayout {
  outer: number;
  length: number;
  /** stride of the scanned axis = number of independent lines interleaved with each other */
  inner: number;
  exclusive: boolean;
  reverse: boolean;
}

function cumSumLayout(node: Node, shape: readonly number[], axisInput: ConstTensor | undefined): ScanLayout {
  if (!axisInput) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: the axis input must be a compile-time constant (kernels are specialised per shape)`);
  }
  if (axisInput.data.length !== 1) fail('FM_SHAPE', `${describeNode(node)}: axis must be a scalar, got shape [${axisInput.shape}]`);
  const axis = normalizeAxis(node, constToInts(axisInput)[0]!, shape.length, 'axis');
  return {
    outer: product(shape.slice(0, axis)),
    length: shape[axis]!,
    inner: product(shape.slice(axis + 1)),
    exclusive: attrInt(node, 'exclusive', 0) !== 0,
    reverse: attrInt(node, 'reverse', 0) !== 0,
  };
}

function cumSumOnCpu(node: Node, x: ConstTensor, axisInput: ConstTensor | undefined): ConstTensor {
  const s = cumSumLayout(node, x.shape, axisInput);
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < s.outer; o++) {
    for (let n = 0; n < s.inner; n++) {
      let acc = 0;
      for (let j = 0; j < s.length; j++) {
        const pos = s.reverse ? s.length - 1 - j : j;
        const off = (o * s.length + pos) * s.inner + n;
        if (s.exclusive) { out[off] = acc; acc += x.data[off]!; } else { acc += x.data[off]!; out[off] = acc; }
      }
    }
  }
  return makeConst(x.dtype, x.shape, out);
}

/** WGSL offset of position `j` along line (o, n), honouring `reverse`. */
function scanOffset(s: ScanLayout, j: string): string {
  const pos = s.reverse ? `(${u(s.length - 1)} - ${j})` : j;
  return s.inner === 1 ? `lineBase + ${pos}` : `lineBase + ${pos} * ${u(s.inner)}`;
}

function lineBase(s: ScanLayout, line: string): string {
  if (s.inner === 1) return `let lineBase = ${line} * ${u(s.length)};`;
  return `let lineBase = (${line} / ${u(s.inner)}) * ${u(s.length * s.inner)} + ${line} % ${u(s.inner)};`;
}

/** One invocation per line: coalesced when lines are interleaved (inner > 1). */
function serialScanKernel(s: ScanLayout, type: WgslScalar, k: KernelBuilder): KernelSpec {
  const grid = grid1D(s.outer * s.inner, 64);
  const step = s.exclusive ? 'y[off] = acc; acc += x[off];' : 'acc += x[off]; y[off] = acc;';
  const body = `${grid.prologue}\n  ${lineBase(s, 'i')}\n  var acc: ${type} = ${lit(0, type)};\n` +
    `  for (var j = 0u; j < ${u(s.length)}; j++) {\n    let off = ${scanOffset(s, 'j')};\n    ${step}\n  }`;
  return k.build({ entry: { workgroupSize: grid.workgroupSize, params: [GID], body }, workgroups: grid.workgroups });
}

/**
 * One workgroup per line: chunks of `size` elements are scanned in workgroup memory
 * (Hillis-Steele) and offset by the running total of earlier chunks.
 */
function workgroupScanKernel(s: ScanLayout, type: WgslScalar, k: KernelBuilder, size: number, limits: TargetLimits): KernelSpec {
  const lines = s.outer * s.inner;
  const grid = workgroupGrid(lines, limits);
  const zero = lit(0, type);
  const result = s.exclusive ? `select(${zero}, buf[max(lid, 1u) - 1u], lid > 0u)` : 'buf[lid]';
  const body = [
    `let line = ${grid.id};`,
    `if (line >= ${u(lines)}) { return; }`,
    lineBase(s, 'line'),
    `var carry: ${type} = ${zero};`,
    `for (var c = 0u; c < ${u(s.length)}; c += ${u(size)}) {`,
    `  let j = c + lid;`,
    `  let off = ${scanOffset(s, 'min(j, ' + u(s.length - 1) + ')')};`,
    `  var v: ${type} = ${zero};`,
    `  if (j < ${u(s.length)}) { v = x[off]; }`,
    `  buf[lid] = v;`,
    `  workgroupBarrier();`,
    // `d` is uniform, so the barriers inside the loop are legal
    `  for (var d = 1u; d < ${u(size)}; d <<= 1u) {`,
    `    var t = buf[lid];`,
    `    if (lid >= d) { t += buf[lid - d]; }`,
    `    workgroupBarrier();`,
    `    buf[lid] = t;`,
    `    workgroupBarrier();`,
    `  }`,
    `  if (j < ${u(s.length)}) { y[off] = carry + ${result}; }`,
    `  carry += buf[${u(size - 1)}];`,
    // the next chunk overwrites buf: every invocation must have read it first
    `  workgroupBarrier();`,
    `}`,
  ].join('\n  ');
  return workgroupEntry(k, k.workgroupArray('buf', type, size), size, body, grid.workgroups);
}

const cumSumOp: OpDef = {
  opTypes: ['CumSum'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    const x = ctx.inputs[0]!;
    cumSumLayout(ctx.node, x.shape, ctx.consts[1]);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  fold: (ctx, inputs) => [cumSumOnCpu(ctx.node, inputs[0]!, inputs[1])],
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    assertBindable(ctx, [x, y]);
    if (numElements(y.type.shape) === 0) return;
    const type = wgslType(x.type.dtype);
    const s = cumSumLayout(ctx.node, x.type.shape, ctx.inputs[1]?.data);
    const lines = s.outer * s.inner;
    // long contiguous lines (the usual last-axis CumSum) are read cooperatively; interleaved
    // lines are already coalesced with one invocation each
    const cooperative = s.length >= 64 && (s.inner === 1 || lines < 1024);
    const maxSize = Math.min(ctx.limits.maxComputeInvocationsPerWorkgroup, ctx.limits.maxComputeWorkgroupSizeX, 256);
    const k = xyKernel('cumsum', x, type, y, type);
    ctx.kernel(cooperative
      ? workgroupScanKernel(s, type, k, Math.min(maxSize, nextPow2(s.length)), ctx.limits)
      : serialScanKernel(s, type, k));
  },
};

export const reduceOps: readonly OpDef[] = [softmaxOps, reduceFamily, argFamily, cumSumOp];
