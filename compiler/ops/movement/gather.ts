/**
 * Gather, GatherElements and SplitGather: the source offset of each element comes from an index tensor.
 */
import { attrInt, attrInts } from '../../ir/attrs.js';
import { hostArrayFor } from '../../ir/tensor.js';
import { stridesOf } from '../../kernel/strides.js';
import { type Node, numElements, type TensorType } from '../../ir/types.js';
import { dot, grid1D, lit, u, unravel, wgslType, type Grid1D, type WgslScalar } from '../../kernel/wgsl.js';
import { GID, kernel } from '../../kernel/builder.js';
import { fail } from '../../errors.js';
import type { LowerContext, OpDef, ShapeContext } from '../op.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import { assertBindable, nodeLabel, normalizeAxis, requiredInput, shapeContextOf, withFoldInputs } from '../shape.js';
import { scaled } from './plan.js';

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

export const gatherOp: OpDef = {
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

export const splitGatherOp: OpDef = {
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

export const gatherElementsOp: OpDef = {
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
