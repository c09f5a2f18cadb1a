/**
 * Gemm and MatMul.
 *
 * Both lower to one register-tiled kernel: an invocation computes `rowTile` (up to 4) output rows
 * x 4 consecutive output columns, looping over the reduction dimension K. The row block comes from
 * workgroup_id, so every invocation of a workgroup reads the same A values (uniform loads, which
 * software rasterisers such as llvmpipe turn into one scalar load), while B is read as one vec4 of
 * four adjacent columns per k. There is no shared-memory staging: on llvmpipe (the target here)
 * workgroup memory is ordinary cached memory and barriers cost coroutine switches.
 *
 * Constant B (weights, shared by every batch entry) is always re-packed at compile time into
 * column panels: [ceil(N / 32), K, 32], element (k, n) at ((n / 32) * K + k) * 32 + n % 32,
 * zero-padded past N. Eight invocations (one llvmpipe SIMD row, or a quarter warp) cover one
 * panel, so that the B values they need for k = 0, 1, 2, ... form one sequential stream; a plain
 * [K, N] layout strides N*4 bytes per k and runs latency-bound (VGG fc6: 1.25 s -> 0.14 s).
 * When the weights exceed maxStorageBufferBindingSize (VGG's 25088x4096 classifier is 411 MB)
 * the panels are split into several constants ("parts"), each bound by its own kernel that
 * writes only its slice of the output columns. Runtime B is read in place ([K, N] or, for
 * Gemm transB, [N, K] with scalar loads).
 *
 * Files: geometry.ts (shape rule, epilogue, folding), packing.ts (B panels and parts),
 * epilogue.ts (plan, bindings, stores), tiled.ts / blocked.ts / split-k.ts / texture.ts (the kernel
 * variants; blocked.ts, workgroup-memory tiles, where the device profile is a real GPU's).
 */
import { attrInts, attrString } from '../../ir/attrs.js';
import { isFloat, numElements, type DType, type Node } from '../../ir/types.js';
import { describeNode } from '../../ir/graph.js';
import { wgslType } from '../../kernel/wgsl.js';
import { checkBindable } from '../../kernel/limits.js';
import type { LowerTensor } from '../../kernel/types.js';
import { fail, quoteName } from '../../errors.js';
import type { LowerContext, OpDef, ShapeContext } from '../op.js';
import { biasOperand, epilogueOf, fold, foldBatchIntoRows, geometryOf, inferTypes, MATMUL_BIAS, residualOperand, usesBias, type Epilogue } from './geometry.js';
import { prepareB, type BPart } from './packing.js';
import { chooseRowTile, chooseWorkgroupSize, operandList, type KernelPlan } from './epilogue.js';
import { tiledKernel } from './tiled.js';
import { blockedFits, blockedKernels } from './blocked.js';
import { kChunkRows, splitK, sumChunksKernel } from './split-k.js';
import { lowerTexture, textureCandidate } from './texture.js';

/** A, C and Y are bound whole (B may be split into parts): each must fit one storage binding. */
function checkBindingSizes(ctx: LowerContext, tensors: readonly (LowerTensor | undefined)[]): void {
  checkBindable(describeNode(ctx.node), tensors.filter((t) => t !== undefined), ctx.limits,
    'reduce the batch size or target a device with a larger limit');
}

function lower(ctx: LowerContext, columnSplits: readonly number[] = []): void {
  const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
  const c = biasOperand(ctx.node, ctx.inputs);
  const r = residualOperand(ctx.node, ctx.inputs);
  const y = ctx.outputs[0]!;
  const g = foldBatchIntoRows(geometryOf(ctx.node, a.type.shape, b.type.shape));
  const epi = { ...epilogueOf(ctx.node, ctx.opset, c?.type.shape, g), residual: r !== undefined };
  checkBindingSizes(ctx, [a, c, r, y]);
  const kChunk = kChunkRows(g);
  if (!kChunk && columnSplits.length === 0 && ctx.weightLayout === 'texture' && lowerTexture(ctx, g, epi)) return;
  const type = wgslType(a.type.dtype);
  const rowTile = chooseRowTile(g.M);
  const label = `${ctx.node.opType.toLowerCase()}${g.M === 1 ? '_gemv' : ''}`;
  const bounds = [0, ...columnSplits, g.N];
  const ranges = bounds.slice(1).map((n1, i) => [bounds[i]!, n1] as const);
  // split-K gemv and the blocked GEMM bound their own loops; only the tiled kernel needs K chunks
  const chunked: BPart[] = [];
  for (const part of prepareB(ctx, g, ranges)) {
    const bindings = operandList(a, part.tensor, epi, c, r, y);
    const gemv = ctx.kernelChoices?.gemv !== 'tiled' ? splitK(label, g, type, part, epi, ctx, bindings) : undefined;
    if (gemv) {
      for (const k of gemv) ctx.kernel(k);
      continue;
    }
    if (ctx.kernelChoices?.gemm === 'blocked' && blockedFits(g.M, part.width)) {
      const plan: KernelPlan = { g, type, part, epi, rowTile: 4, workgroupSize: 256 };
      for (const k of blockedKernels(label, plan, ctx, bindings)) ctx.kernel(k);
      continue;
    }
    if (kChunk) {
      chunked.push(part);
      continue;
    }
    const columnTiles = Math.ceil(part.width / 4);
    const plan: KernelPlan = { g, type, part, epi, rowTile, workgroupSize: chooseWorkgroupSize(columnTiles) };
    const workgroups: [number, number, number] = [
      Math.ceil(columnTiles / plan.workgroupSize), Math.ceil(g.M / rowTile), numElements(g.batchShape),
    ];
    ctx.kernel(tiledKernel(label, plan, ctx, bindings, workgroups));
  }
  if (chunked.length > 0) lowerKChunks(ctx, g, epi, chunked, kChunk!);
}

/**
 * K longer than one invocation may loop over (llvmpipe ends loops after 65,535 trips in all): the
 * tiled kernel sums each chunk of K rows into a partial-sum scratch, raw, and sumChunksKernel adds
 * the chunks and applies the epilogue. Every part of B writes its columns of the scratch.
 */
function lowerKChunks(ctx: LowerContext, g: ReturnType<typeof foldBatchIntoRows>, epi: Epilogue, parts: readonly BPart[], kChunk: number): void {
  const [a, c, r, y] = [ctx.inputs[0]!, biasOperand(ctx.node, ctx.inputs), residualOperand(ctx.node, ctx.inputs), ctx.outputs[0]!];
  const type = wgslType(a.type.dtype);
  const rowTile = chooseRowTile(g.M);
  const chunks = Math.ceil(g.K / kChunk);
  const batch = numElements(g.batchShape);
  const partial = ctx.scratch('k_chunks', { dtype: y.type.dtype, shape: [batch * chunks, g.M, g.N] });
  checkBindingSizes(ctx, [partial]);
  const label = `${ctx.node.opType.toLowerCase()}_k_chunks`;
  // the chunks store raw sums: no alpha, no C, no activation until they are added up
  const raw = { ...ctx, activation: undefined };
  for (const part of parts) {
    const columnTiles = Math.ceil(part.width / 4);
    const plan: KernelPlan = { g, type, part, epi: { alpha: 1, beta: 0 }, rowTile, workgroupSize: chooseWorkgroupSize(columnTiles) };
    const workgroups: [number, number, number] = [Math.ceil(columnTiles / plan.workgroupSize), Math.ceil(g.M / rowTile), batch * chunks];
    ctx.kernel(tiledKernel(label, plan, raw, [a, part.tensor, partial], workgroups, kChunk));
  }
  ctx.kernel(sumChunksKernel(label, g, type, epi, ctx, partial, { c: c && usesBias(epi) ? c : undefined, r: epi.residual ? r : undefined }, y, chunks));
}

/** MatMul/Gemm element types: floats compute in f32; integers in i32 (wrapping past 2^31, like the rest of the GPU path). */
const INTEGER_DTYPES: ReadonlySet<DType> = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64']);

function checkDtype(ctx: ShapeContext): void {
  const dtype = ctx.inputs[0]?.dtype;
  if (dtype && !isFloat(dtype) && !INTEGER_DTYPES.has(dtype)) {
    fail('FM_DTYPE', `${describeNode(ctx.node)}: element type ${dtype} is not supported; cast the operands to float32 or int32`);
  }
}

function matmulDef(opType: 'Gemm' | 'MatMul'): OpDef {
  return {
    opTypes: [opType],
    costClass: 'reusable',
    fusesActivation: true,
    inferTypes(ctx) {
      checkDtype(ctx);
      return inferTypes(ctx);
    },
    textureWeight: textureCandidate,
    fold,
    lower,
  };
}

export const matmulOps: readonly OpDef[] = [matmulDef('Gemm'), matmulDef('MatMul')];

/** MatMul + constant bias (FUSED_DOMAIN, passes/fuse-matmul-bias.ts): the MatMul kernels with the bias in their epilogue. */
export const matmulBiasOp: OpDef = { ...matmulDef('MatMul'), opTypes: [MATMUL_BIAS] };

// ---------------------------------------------------------------------------------------------
// SplitMatMul (FUSED_DOMAIN, built by the split-large-weights pass)
// ---------------------------------------------------------------------------------------------

/**
 * The MatMul or Gemm a SplitMatMul node stands for: attribute `op`, with that op's own attributes
 * and inputs (A, constant B[, C]).
 */
function originalNode(node: Node): Node {
  const op = attrString(node, 'op', '');
  if (op !== 'MatMul' && op !== 'Gemm') fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute "op" must be MatMul or Gemm, got ${quoteName(op)}`);
  return { ...node, opType: op, domain: '' };
}

/**
 * Column boundaries of a SplitMatMul: ascending, strictly inside (0, N). Each range of output
 * columns gets its own packed weight constant and kernels, which write their columns of the one
 * output in place (no Concat).
 */
function columnSplits(node: Node, n: number): number[] {
  const splits = attrInts(node, 'column_splits', []);
  if (splits.some((s, i) => !Number.isInteger(s) || s <= (i === 0 ? 0 : splits[i - 1]!) || s >= n)) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: column_splits [${splits}] must ascend strictly inside (0, ${n})`);
  }
  return splits;
}

export const splitMatmulOp: OpDef = {
  opTypes: ['SplitMatMul'],
  costClass: 'reusable',
  fusesActivation: true,
  inferTypes(ctx) {
    const original = { ...ctx, node: originalNode(ctx.node) };
    checkDtype(original);
    if (!ctx.consts[1]) fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: B must be a constant`);
    const types = inferTypes(original);
    columnSplits(ctx.node, types[0]!.shape[types[0]!.shape.length - 1] ?? 1);
    return types;
  },
  lower(ctx) {
    const node = originalNode(ctx.node);
    const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
    const g = geometryOf(node, a.type.shape, b.type.shape);
    lower({ ...ctx, node }, columnSplits(ctx.node, g.N));
  },
};
