/**
 * What every reduction shares: node helpers, reduction layouts (which input elements each output
 * row combines), reduction algebras (accumulator state, combine) and the two row-kernel shapes
 * (one workgroup per row with a tree reduction, or one invocation per row with a serial loop).
 */
import { stridesOf } from '../../kernel/strides.js';
import { type Node, type TensorType, isFloat, numElements } from '../../ir/types.js';
import { dot, grid1D, lit, nextPow2, rowGrid, u, unravel, type WgslScalar } from '../../kernel/wgsl.js';
import { GID, LID_INDEX, WID, kernel, type KernelBuilder } from '../../kernel/builder.js';
import { describeNode } from '../../ir/graph.js';
import { fail } from '../../errors.js';
import type { LowerContext } from '../op.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import { assertBindable } from '../shape.js';
import type { TargetLimits } from '../../target/limits.js';

// ---------------------------------------------------------------------------------------------
// Shared helpers: node descriptions, axis normalisation, binding limits
// ---------------------------------------------------------------------------------------------

/** Maps a possibly negative axis into [0, rank), or fails naming the attribute/input it came from. */
export function normalizeAxis(node: Node, axis: number, rank: number, source: string): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= Math.max(rank, 1)) {
    fail('FM_SHAPE', `${describeNode(node)}: ${source} ${axis} is out of range for an input of rank ${rank}; use a value in [${-rank}, ${Math.max(rank, 1) - 1}]`);
  }
  return axis < 0 ? axis + rank : axis;
}

export function requireFloat(node: Node, type: TensorType): void {
  if (!isFloat(type.dtype)) {
    fail('FM_DTYPE', `${describeNode(node)}: input of type ${type.dtype} is not supported; ${node.opType} takes float tensors`);
  }
}

/** A kernel reading `x` (as `inType`) and writing `y` (as `outType`), the two bindings every kernel here has. */
export function xyKernel(label: string, x: LowerTensor, inType: WgslScalar, y: LowerTensor, outType: WgslScalar): KernelBuilder {
  const k = kernel(label);
  k.bind('x', x, inType);
  k.bind('y', y, outType);
  return k;
}

/** The entry point of a one-workgroup-per-row (or per-line) kernel: `wid` and `lid` as the templates name them. */
export function workgroupEntry(k: KernelBuilder, shared: string, size: number, body: string, workgroups: [number, number, number], loopTrips?: number): KernelSpec {
  return k.build({ header: `${k.declarations()}\n${shared}\n\n`, entry: { workgroupSize: size, params: [WID, LID_INDEX], body }, workgroups, loopTrips });
}

export function product(dims: readonly number[]): number {
  return dims.reduce((p, d) => p * d, 1);
}

// ---------------------------------------------------------------------------------------------
// Reduction layouts: which input elements each output (row) combines
// ---------------------------------------------------------------------------------------------

export interface Dim {
  size: number;
  /** input stride in elements */
  stride: number;
}

/**
 * Row `r` (row-major over `kept`) combines the elements at base(r) + offsets over `reduced`.
 * Dims of size 1 are dropped and neighbouring dims of the same kind merged, so reducing the
 * H and W axes of NCHW becomes a single contiguous reduced dim.
 */
export interface ReductionLayout {
  kept: Dim[];
  reduced: Dim[];
}

export function reductionLayout(shape: readonly number[], reducedAxes: ReadonlySet<number>): ReductionLayout {
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

export const rowCount = (layout: ReductionLayout): number => product(layout.kept.map((d) => d.size));
export const rowLength = (layout: ReductionLayout): number => product(layout.reduced.map((d) => d.size));

// ---------------------------------------------------------------------------------------------
// Reduction algebras: the accumulator state and how elements and partial states combine
// ---------------------------------------------------------------------------------------------

/**
 * WGSL snippets over fixed names: accumulators a0, a1 (of `acc` types), a partner's partial
 * state b0, b1, the element value `v` and the element's flat index within its row `k` (u32).
 */
export interface Algebra {
  acc: readonly { type: WgslScalar; init: string }[];
  /** type the element is converted to before accumulation */
  valueType: WgslScalar;
  accumulate: string;
  combine: string;
}

export function sumLike(type: WgslScalar, term: string): Algebra {
  return { acc: [{ type, init: lit(0, type) }], valueType: type, accumulate: `a0 += ${term};`, combine: 'a0 += b0;' };
}

/** Running maximum m (a0) and sum of exp(x - m) (a1), rescaled whenever the maximum grows. */
export const LOG_SUM_EXP_ALGEBRA: Algebra = {
  acc: [{ type: 'f32', init: lit(-Infinity, 'f32') }, { type: 'f32', init: lit(0, 'f32') }],
  valueType: 'f32',
  // one exp per element: only a new maximum rescales the running sum
  accumulate: 'if (v > a0) { a1 = a1 * exp(a0 - v) + 1.0; a0 = v; } else { a1 += exp(v - a0); }',
  combine: 'let m = max(a0, b0); a1 = a1 * exp(a0 - m) + b1 * exp(b0 - m); a0 = m;',
};

// ---------------------------------------------------------------------------------------------
// Row kernels
// ---------------------------------------------------------------------------------------------

export type RowEpilogue =
  /** one output per row: y[row] = expression of a0, a1 */
  | { kind: 'reduce'; result: string }
  /** output has the input's layout: y[off] = expression of v, a0, a1 for every element of the row */
  | { kind: 'normalize'; prepare: string; element: string };

export interface RowKernelSpec {
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
export type RowStrategy = { kind: 'serial' } | { kind: 'tiled'; rowsPerGroup: number; slices: number };

/**
 * Many short rows keep the GPU busy with one invocation each. Longer rows are read
 * cooperatively, at least ~4 elements per invocation. Contiguous rows get a workgroup each, its
 * invocations reading neighbouring elements; strided rows (a reduction over a non-last axis)
 * share workgroups, 32 neighbouring rows side by side, so that neighbouring invocations still
 * read neighbouring addresses.
 */
export function chooseRowStrategy(rows: number, length: number, contiguous: boolean, limits: TargetLimits): RowStrategy {
  if (length <= 16 || (rows >= 4096 && length <= 64)) return { kind: 'serial' };
  const maxSize = Math.min(limits.maxComputeInvocationsPerWorkgroup, limits.maxComputeWorkgroupSizeX, 256);
  const rowsPerGroup = contiguous ? 1 : Math.min(32, nextPow2(rows), maxSize);
  const maxSlices = Math.max(1, Math.floor(maxSize / rowsPerGroup));
  // at least 32 invocations: a narrower workgroup wastes most of a SIMD unit
  const minSlices = Math.max(1, 32 / rowsPerGroup);
  const slices = Math.min(maxSlices, Math.max(minSlices, nextPow2(Math.ceil(length / 4))));
  return { kind: 'tiled', rowsPerGroup, slices };
}

export function declareAccumulators(algebra: Algebra): string {
  return algebra.acc.map((a, i) => `var a${i}: ${a.type} = ${a.init};`).join('\n  ');
}

export function loadValue(spec: RowKernelSpec, offset: string): string {
  const raw = `x[${offset}]`;
  return spec.algebra.valueType === spec.inType ? `let v = ${raw};` : `let v = ${spec.algebra.valueType}(${raw});`;
}

/** WGSL computing `base`: the input offset of row `rowVar`'s first element. */
export function rowBase(layout: ReductionLayout, rowVar: string): string {
  const sizes = layout.kept.map((d) => d.size);
  const coords = sizes.map((_, i) => `q${i}`);
  const lines = [unravel(rowVar, sizes, 'q'), `let base = ${dot(coords, layout.kept.map((d) => d.stride))};`];
  return lines.filter((l) => l !== '').join('\n  ');
}

/** Nested loops over the reduced dims binding `off` (input offset) and `k` (flat index in row). */
export function serialRowLoop(layout: ReductionLayout, body: string): string {
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
export function stridedRowOffset(layout: ReductionLayout): string {
  const sizes = layout.reduced.map((d) => d.size);
  const coords = sizes.map((_, i) => `r${i}`);
  const lines = [unravel('k', sizes, 'r'), `let off = base + ${dot(coords, layout.reduced.map((d) => d.stride))};`];
  return lines.filter((l) => l !== '').join('\n    ');
}

export function serialRowKernel(spec: RowKernelSpec, k: KernelBuilder): KernelSpec {
  const rows = rowCount(spec.layout);
  const grid = grid1D(rows, 64);
  const accumulateLoop = serialRowLoop(spec.layout, `${loadValue(spec, 'off')}\n  ${spec.algebra.accumulate}`);
  const epilogue = spec.epilogue.kind === 'reduce'
    ? `y[i] = ${spec.epilogue.result};`
    : `${spec.epilogue.prepare}\n  ${serialRowLoop(spec.layout, `${loadValue(spec, 'off')}\n  y[off] = ${spec.epilogue.element};`)}`;
  const body = [grid.prologue, rowBase(spec.layout, 'i'), declareAccumulators(spec.algebra), accumulateLoop, epilogue]
    .filter((s) => s !== '').join('\n  ');
  const passes = spec.epilogue.kind === 'reduce' ? 1 : 2;
  return k.build({ entry: { workgroupSize: grid.workgroupSize, params: [GID], body }, workgroups: grid.workgroups, loopTrips: passes * rowLength(spec.layout) });
}

/** Tree reduction over the slices of each row; s0/s1[slice * rowsPerGroup + lane] hold partial states. */
export function treeReduce(algebra: Algebra, rowsPerGroup: number, slices: number): string {
  if (slices < 2) return '';
  const idx = [...Array(algebra.acc.length).keys()];
  const partner = rowsPerGroup === 1 ? 'lid + half' : `lid + half * ${u(rowsPerGroup)}`;
  // `half` is uniform across the workgroup, so the barrier inside the loop is legal
  return `for (var half = ${u(slices / 2)}; half > 0u; half >>= 1u) {\n` +
    `    if (slice < half) {\n      ${idx.map((i) => `var a${i} = s${i}[lid]; let b${i} = s${i}[${partner}];`).join(' ')}\n` +
    `      ${algebra.combine}\n      ${idx.map((i) => `s${i}[lid] = a${i};`).join(' ')}\n    }\n    workgroupBarrier();\n  }`;
}

export function tiledRowKernel(spec: RowKernelSpec, k: KernelBuilder, rowsPerGroup: number, slices: number, limits: TargetLimits): KernelSpec {
  const rows = rowCount(spec.layout);
  const length = rowLength(spec.layout);
  const groups = Math.ceil(rows / rowsPerGroup);
  const grid = rowGrid(groups, limits.maxComputeWorkgroupsPerDimension);
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
    `let group = ${grid.rowExpr};`,
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
  const passes = spec.epilogue.kind === 'reduce' ? 1 : 2;
  return workgroupEntry(k, shared, size, body, grid.workgroups, passes * Math.ceil(length / slices) + Math.log2(slices));
}

export function emitRowKernel(ctx: LowerContext, spec: RowKernelSpec): void {
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
