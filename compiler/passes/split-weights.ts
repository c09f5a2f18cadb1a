/**
 * split-large-weights: no constant weight larger than `maxWeightBytes` reaches lowering.
 *
 * A weight is the unit the runtime uploads and the stream planner places: it must be resident
 * in full while its kernel runs, so one weight larger than a fraction of the memory budget makes
 * the budget infeasible (GPT-Neo's tied 154 MB embedding under a 60 MiB budget), and one larger
 * than maxStorageBufferBindingSize cannot be bound at all. This pass rewrites
 *
 * - MatMul / Gemm with a constant 2-D B (shared by every batch entry) into SplitMatMul: B is
 *   packed as one constant per range of output columns, and each range's kernels write their
 *   columns of the one output in place (no Concat, no copy);
 * - Gather on axis 0 of a constant table into SplitGather: one constant per range of rows (views
 *   of the table, no copy), one kernel per range writing the rows whose index falls in it.
 *
 * Both are FUSED_DOMAIN ops with the ranges as attributes (`column_splits`, `row_splits`: the
 * inner boundaries); the graph keeps the original initializer, which lowering then no longer
 * binds. Ranges are equal-sized multiples of 32 columns/rows where that fits (the MatMul
 * kernels' column panels), so the split ranges of a tied table (Gather + transposed Gemm on
 * GPT's wte) coincide.
 */
import { fail } from '../errors.js';
import { attrInt } from '../ir/attrs.js';
import { numElements, type Graph, type Node, type TensorType } from '../ir/types.js';
import { FUSED_DOMAIN } from '../ops/domains.js';
import type { TargetLimits } from '../target/limits.js';

/** bytes per element on the GPU (f32 / i32) */
const GPU_BYTES = 4;
/** columns per packed MatMul panel (compiler/ops/matmul.ts): ranges are multiples of it */
const RANGE_ALIGN = 32;
/** MatMul kernels compute 4 adjacent columns per invocation */
const MATMUL_MIN_ALIGN = 4;
/** under streaming, a weight may take this fraction of the budget by default */
const BUDGET_FRACTION = 4;

/**
 * The default bound: the target's binding limit; under the stream strategy also a quarter of the
 * budget (weights of several kernels must be resident or in flight together).
 */
export function defaultMaxWeightBytes(limits: TargetLimits, budgetBytes?: number): number {
  const binding = limits.maxStorageBufferBindingSize;
  return budgetBytes === undefined ? binding : Math.min(binding, Math.floor(budgetBytes / BUDGET_FRACTION));
}

/**
 * Inner boundaries splitting `count` units of `unitBytes` each into equal ranges of at most
 * `maxBytes`, aligned to RANGE_ALIGN units where that fits, else to `minAlign` (MatMul: 4, the
 * kernels' vec4 column tiles, so that packed ranges need no padding); [] when it fits whole or
 * cannot be split that finely.
 */
export function rangeBoundaries(count: number, unitBytes: number, maxBytes: number, minAlign = 1): number[] {
  if (count * unitBytes <= maxBytes) return [];
  const maxUnits = Math.floor(maxBytes / unitBytes);
  if (maxUnits < minAlign) return [];
  const align = maxUnits >= RANGE_ALIGN ? RANGE_ALIGN : minAlign;
  const perRange = Math.floor(maxUnits / align) * align;
  const ranges = Math.ceil(count / perRange);
  const width = Math.ceil(Math.ceil(count / ranges) / align) * align;
  const bounds: number[] = [];
  for (let b = width; b < count; b += width) bounds.push(b);
  return bounds;
}

function constantType(graph: Graph, name: string | undefined): TensorType | undefined {
  const value = name ? graph.values.get(name) : undefined;
  return value?.data ? value.type : undefined;
}

/** MatMul/Gemm with a constant 2-D B: its output columns N and the bytes of one column of B. */
function matmulColumns(graph: Graph, node: Node): { n: number; columnBytes: number } | undefined {
  if (node.opType !== 'MatMul' && node.opType !== 'Gemm') return undefined;
  const b = constantType(graph, node.inputs[1]);
  if (!b || b.shape.length !== 2) return undefined;
  const transB = node.opType === 'Gemm' && attrInt(node, 'transB', 0) !== 0;
  const [k, n] = transB ? [b.shape[1]!, b.shape[0]!] : [b.shape[0]!, b.shape[1]!];
  return { n, columnBytes: k * GPU_BYTES };
}

/** Gather on axis 0 of a constant table: its rows and the bytes of one row. */
function gatherRows(graph: Graph, node: Node): { rows: number; rowBytes: number } | undefined {
  if (node.opType !== 'Gather') return undefined;
  const table = constantType(graph, node.inputs[0]);
  if (!table || table.shape.length === 0) return undefined;
  const axis = attrInt(node, 'axis', 0);
  if (axis !== 0 && axis !== -table.shape.length) return undefined;
  return { rows: table.shape[0]!, rowBytes: numElements(table.shape.slice(1)) * GPU_BYTES };
}

function splitNode(graph: Graph, node: Node, maxBytes: number): Node {
  if (node.domain !== '' && node.domain !== 'ai.onnx') return node;
  const columns = matmulColumns(graph, node);
  if (columns) {
    const splits = rangeBoundaries(columns.n, columns.columnBytes, maxBytes, MATMUL_MIN_ALIGN);
    if (splits.length === 0) return node;
    return {
      ...node, opType: 'SplitMatMul', domain: FUSED_DOMAIN,
      attrs: { ...node.attrs, op: { type: 'string', value: node.opType }, column_splits: { type: 'ints', value: splits } },
    };
  }
  const rows = gatherRows(graph, node);
  if (rows) {
    const splits = rangeBoundaries(rows.rows, rows.rowBytes, maxBytes);
    if (splits.length === 0) return node;
    return { ...node, opType: 'SplitGather', domain: FUSED_DOMAIN, attrs: { axis: { type: 'int', value: 0 }, row_splits: { type: 'ints', value: splits } } };
  }
  return node;
}

export function splitLargeWeights(graph: Graph, maxWeightBytes: number): Graph {
  if (!Number.isSafeInteger(maxWeightBytes) || maxWeightBytes <= 0) {
    fail('FM_BAD_ARGUMENT', `the largest weight (--max-weight-bytes) must be a positive number of bytes, got ${maxWeightBytes}`);
  }
  return { ...graph, nodes: graph.nodes.map((node) => splitNode(graph, node, maxWeightBytes)) };
}
