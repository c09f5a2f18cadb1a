/**
 * Gemm and MatMul geometry: both ops become "batch x [M, K] x [K, N]" with arbitrary element
 * strides; the shape rule, Gemm's alpha/beta/C epilogue and the CPU evaluation (constant folding)
 * all read it.
 */
import { attrFloat, attrInt } from '../../ir/attrs.js';
import { numElements, type ConstTensor, type Node, type TensorType } from '../../ir/types.js';
import { hostArrayFor, normalizeValue } from '../../ir/tensor.js';
import { describeNode } from '../../ir/graph.js';
import { stridesOf } from '../../kernel/strides.js';
import { fail } from '../../errors.js';
import type { ShapeContext } from '../op.js';

// ---------------------------------------------------------------------------------------------
// Geometry: both ops become "batch x [M, K] x [K, N]" with arbitrary element strides
// ---------------------------------------------------------------------------------------------

/** Element strides of one operand: A is indexed (m, k), B is indexed (k, n). */
export interface OperandLayout {
  /** stride along A's m or B's k */
  rowStride: number;
  /** stride along A's k or B's n */
  colStride: number;
  /** stride per output batch dim; 0 where the operand is broadcast */
  batchStrides: number[];
}

export interface MatmulGeometry {
  M: number;
  K: number;
  N: number;
  batchShape: number[];
  a: OperandLayout;
  b: OperandLayout;
  outShape: number[];
}

/** How C of Gemm broadcasts over [M, N]: element strides along m and n (0 where broadcast). */
export interface BiasLayout {
  strideM: number;
  strideN: number;
}

export function gemmTransposes(node: Node): { transA: boolean; transB: boolean } {
  return { transA: attrInt(node, 'transA', 0) !== 0, transB: attrInt(node, 'transB', 0) !== 0 };
}

export function gemmGeometry(node: Node, aShape: readonly number[], bShape: readonly number[]): MatmulGeometry {
  if (aShape.length !== 2 || bShape.length !== 2) {
    fail('FM_SHAPE', `${describeNode(node)}: A and B must be 2-D, got A [${aShape}] and B [${bShape}]; use MatMul for batched products`);
  }
  const { transA, transB } = gemmTransposes(node);
  const [M, K] = transA ? [aShape[1]!, aShape[0]!] : [aShape[0]!, aShape[1]!];
  const [kB, N] = transB ? [bShape[1]!, bShape[0]!] : [bShape[0]!, bShape[1]!];
  if (K !== kB) {
    fail('FM_SHAPE', `${describeNode(node)}: inner dimensions differ: A [${aShape}] (transA=${+transA}) gives K=${K}, B [${bShape}] (transB=${+transB}) gives K=${kB}`);
  }
  return {
    M, K, N, batchShape: [],
    a: transA ? { rowStride: 1, colStride: M, batchStrides: [] } : { rowStride: K, colStride: 1, batchStrides: [] },
    b: transB ? { rowStride: 1, colStride: K, batchStrides: [] } : { rowStride: N, colStride: 1, batchStrides: [] },
    outShape: [M, N],
  };
}

/** numpy matmul: 1-D operands get a 1 prepended (A) or appended (B) that is dropped from the result. */
export function matmulGeometry(node: Node, aShape: readonly number[], bShape: readonly number[]): MatmulGeometry {
  if (aShape.length === 0 || bShape.length === 0) {
    fail('FM_SHAPE', `${describeNode(node)}: operands must have rank >= 1, got A [${aShape}] and B [${bShape}]`);
  }
  const a2 = aShape.length === 1 ? [1, aShape[0]!] : [...aShape];
  const b2 = bShape.length === 1 ? [bShape[0]!, 1] : [...bShape];
  const M = a2[a2.length - 2]!, K = a2[a2.length - 1]!;
  const kB = b2[b2.length - 2]!, N = b2[b2.length - 1]!;
  if (K !== kB) fail('FM_SHAPE', `${describeNode(node)}: inner dimensions differ: A [${aShape}] has K=${K}, B [${bShape}] has K=${kB}`);
  const aBatch = a2.slice(0, -2), bBatch = b2.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const batchShape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[i - (rank - aBatch.length)] ?? 1;
    const db = bBatch[i - (rank - bBatch.length)] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      fail('FM_SHAPE', `${describeNode(node)}: batch dimensions of A [${aShape}] and B [${bShape}] are not broadcastable`);
    }
    batchShape.push(da === 1 ? db : da);
  }
  const outShape = [...batchShape, ...(aShape.length === 1 ? [] : [M]), ...(bShape.length === 1 ? [] : [N])];
  return {
    M, K, N, batchShape, outShape,
    a: { rowStride: K, colStride: 1, batchStrides: broadcastBatchStrides(aBatch, batchShape, M * K) },
    b: { rowStride: N, colStride: 1, batchStrides: broadcastBatchStrides(bBatch, batchShape, K * N) },
  };
}

/** Strides of an operand's batch dims (right-aligned to the output's), 0 where it broadcasts. */
export function broadcastBatchStrides(batch: readonly number[], outBatch: readonly number[], matrixSize: number): number[] {
  const own = stridesOf(batch).map((s) => s * matrixSize);
  const offset = outBatch.length - batch.length;
  return outBatch.map((_, i) => (i < offset || batch[i - offset] === 1 ? 0 : own[i - offset]!));
}

export function geometryOf(node: Node, aShape: readonly number[], bShape: readonly number[]): MatmulGeometry {
  return node.opType === 'Gemm' ? gemmGeometry(node, aShape, bShape) : matmulGeometry(node, aShape, bShape);
}

/**
 * When B is shared by every batch entry and A's matrices are contiguous in batch order (a
 * Linear layer on [batch, seq, K]), the batch dims fold into M: one bigger GEMM, better tiles.
 */
export function foldBatchIntoRows(g: MatmulGeometry): MatmulGeometry {
  if (g.batchShape.length === 0 || g.b.batchStrides.some((s) => s !== 0)) return g;
  if (g.a.rowStride !== g.K || g.a.colStride !== 1) return g;
  const expected = stridesOf(g.batchShape).map((s) => s * g.M * g.K);
  if (g.batchShape.some((d, i) => d !== 1 && g.a.batchStrides[i] !== expected[i])) return g;
  return { ...g, M: g.M * numElements(g.batchShape), batchShape: [], a: { ...g.a, batchStrides: [] }, b: { ...g.b, batchStrides: [] } };
}

export function gemmBiasLayout(node: Node, opset: number, cShape: readonly number[], M: number, N: number): BiasLayout {
  const where = `${describeNode(node)}: C of shape [${cShape}] does not broadcast to the output [${M}, ${N}]`;
  if (cShape.length > 2) fail('FM_SHAPE', `${where} (rank > 2)`);
  const legacyNoBroadcast = opset < 7 && attrInt(node, 'broadcast', 0) === 0;
  if (legacyNoBroadcast && !(cShape.length === 2 && cShape[0] === M && cShape[1] === N)) {
    fail('FM_SHAPE', `${where}: before opset 7 C must be exactly [M, N] unless the attribute "broadcast" is 1`);
  }
  const c2 = [...new Array<number>(2 - cShape.length).fill(1), ...cShape];
  const [cm, cn] = [c2[0]!, c2[1]!];
  if ((cm !== 1 && cm !== M) || (cn !== 1 && cn !== N)) fail('FM_SHAPE', where);
  return { strideM: cm === 1 ? 0 : cn, strideN: cn === 1 ? 0 : 1 };
}

export function inferTypes(ctx: ShapeContext): TensorType[] {
  const [a, b] = [ctx.inputs[0], ctx.inputs[1]];
  if (!a || !b) fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: inputs A and B are required`);
  if (a.dtype !== b.dtype) {
    fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: A is ${a.dtype} but B is ${b.dtype}; both must have the same element type`);
  }
  const g = geometryOf(ctx.node, a.shape, b.shape);
  const c = biasOperand(ctx.node, ctx.inputs);
  if (c && ctx.node.opType === 'Gemm') gemmBiasLayout(ctx.node, ctx.opset, c.shape, g.M, g.N);
  if (c && ctx.node.opType === MATMUL_BIAS && (numElements(c.shape) !== g.N || c.shape[c.shape.length - 1] !== g.N)) {
    fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: the fused bias [${c.shape}] must hold one value per output column (${g.N})`);
  }
  const r = residualOperand(ctx.node, ctx.inputs);
  if (r && (r.dtype !== a.dtype || r.shape.length !== g.outShape.length || r.shape.some((d, i) => d !== g.outShape[i]))) {
    fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: the fused residual ${r.dtype} [${r.shape}] must have the output's type and shape, ${a.dtype} [${g.outShape}]`);
  }
  return [{ dtype: a.dtype, shape: g.outShape }];
}

// ---------------------------------------------------------------------------------------------
// Gemm scalars (alpha, beta) and CPU evaluation
// ---------------------------------------------------------------------------------------------

export interface Epilogue {
  alpha: number;
  beta: number;
  bias?: BiasLayout;
  /**
   * A residual tensor of the output's shape added last, after the activation (MatMulBias's 4th
   * input, fused by passes/fuse-residual-add.ts): y = act(alpha A B + beta C) + R.
   */
  residual?: boolean;
}

/** beta = 0 drops C entirely (and its binding: unused bindings vanish from an 'auto' layout) */
export function usesBias(epi: Epilogue): epi is Epilogue & { bias: BiasLayout } {
  return !!epi.bias && epi.beta !== 0;
}

/**
 * MatMul + Add of a constant [N] bias, fused by passes/fuse-matmul-bias.ts (FUSED_DOMAIN, inputs
 * A, B, bias): a MatMul whose epilogue adds the bias, as Gemm's does with C.
 */
export const MATMUL_BIAS = 'MatMulBias';

/** The epilogue's C operand: Gemm's third input, or the fused MatMul's bias. */
export function biasOperand<T>(node: Node, inputs: readonly T[]): T | undefined {
  return node.opType === 'Gemm' || node.opType === MATMUL_BIAS ? inputs[2] : undefined;
}

/** MatMulBias's optional 4th input: the residual added after the epilogue. */
export function residualOperand<T>(node: Node, inputs: readonly T[]): T | undefined {
  return node.opType === MATMUL_BIAS ? inputs[3] : undefined;
}

export function epilogueOf(node: Node, opset: number, cShape: readonly number[] | undefined, g: MatmulGeometry): Epilogue {
  // the bias is one value per output column, whatever the rows and batches
  if (node.opType === MATMUL_BIAS) return { alpha: 1, beta: 1, bias: { strideM: 0, strideN: 1 } };
  if (node.opType !== 'Gemm') return { alpha: 1, beta: 1 };
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  return { alpha, beta, bias: cShape ? gemmBiasLayout(node, opset, cShape, g.M, g.N) : undefined };
}

export function fold(ctx: ShapeContext, inputs: readonly (ConstTensor | undefined)[]): ConstTensor[] {
  const [a, b, c, r] = [inputs[0]!, inputs[1]!, biasOperand(ctx.node, inputs), residualOperand(ctx.node, inputs)];
  const g = geometryOf(ctx.node, a.shape, b.shape);
  const epi = epilogueOf(ctx.node, ctx.opset, c?.shape, g);
  const { M, K, N } = g;
  const batchCount = numElements(g.batchShape);
  const batchStrides = stridesOf(g.batchShape);
  const out = hostArrayFor(a.dtype, batchCount * M * N);
  for (let batch = 0; batch < batchCount; batch++) {
    const coords = g.batchShape.map((d, i) => Math.floor(batch / batchStrides[i]!) % d);
    const aBase = coords.reduce((s, x, i) => s + x * g.a.batchStrides[i]!, 0);
    const bBase = coords.reduce((s, x, i) => s + x * g.b.batchStrides[i]!, 0);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          acc += a.data[aBase + m * g.a.rowStride + k * g.a.colStride]! * b.data[bBase + k * g.b.rowStride + n * g.b.colStride]!;
        }
        let v = epi.alpha * acc;
        if (c && epi.bias) v += epi.beta * c.data[m * epi.bias.strideM + n * epi.bias.strideN]!;
        if (r) v += Number(r.data[(batch * M + m) * N + n]);
        out[(batch * M + m) * N + n] = normalizeValue(a.dtype, v);
      }
    }
  }
  return [{ dtype: a.dtype, shape: g.outShape, data: out }];
}

