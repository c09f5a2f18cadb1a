/**
 * The workgroup-tiled Gemm/MatMul kernel for large products (M and the part's width at least one
 * 64 x 64 block): a workgroup of 16 x 16 invocations computes a BM x BN output block, each
 * invocation RM x RN groups of 4 x 4 outputs spaced 64 apart (so that the 16 invocations of a row
 * read adjacent vec4s of workgroup memory). Each K step of BK stages a BM x BK block of A
 * (transposed: one vec4 holds four rows of one k) and a BK x BN block of B (vec4 column tiles) in
 * workgroup memory; every invocation then accumulates its outputs from there, RM + RN vec4 loads
 * per 16 RM RN FMAs.
 *
 * Two block shapes: 64 x 64 (4 x 4 per invocation) and 128 x 128 (8 x 8: half the
 * workgroup-memory loads per FMA, which is what bounds the smaller block on an H200, but 4x fewer
 * workgroups). A is staged with consecutive invocations on consecutive rows, so the transposed
 * stores hit 32 different banks (one row per invocation along k would put every store of a warp
 * on one bank). Products whose blocks are too few for the device also split K across workgroups
 * (partials.ts). llvmpipe, whose workgroup memory is ordinary memory, keeps tiled.ts (the device
 * profile picks).
 */
import { dot, u } from '../../kernel/wgsl.js';
import { stridesOf } from '../../kernel/strides.js';
import { kernel, LID, WID } from '../../kernel/builder.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import { numElements } from '../../ir/types.js';
import type { LowerContext } from '../op.js';
import { bindOperands, epilogueOperands, storeStatement, type KernelPlan } from './epilogue.js';
import { chooseChunks, partialsTensor, reducePartialsKernel, storePartial } from './partials.js';
import { loadBRow, vec4RowStart } from './tiled.js';

const THREADS_PER_SIDE = 16;
const WORKGROUP_SIZE = THREADS_PER_SIDE * THREADS_PER_SIDE;
/** rows (columns) between an invocation's 4-row (4-column) groups: 16 invocations x 4 */
const GROUP_SPACING = THREADS_PER_SIDE * 4;
/** Each K chunk of a split product at least this many rows (8 K steps of 16). */
const MIN_CHUNK_ROWS = 128;

/** A block shape: 4-row groups (RM) and 4-column groups (RN) per invocation, and the K step. */
export interface BlockShape {
  rm: number;
  rn: number;
  bk: number;
}

export const BLOCK_64: BlockShape = { rm: 1, rn: 1, bk: 16 };
export const BLOCK_128x64: BlockShape = { rm: 2, rn: 1, bk: 16 };

const blockRows = (s: BlockShape) => s.rm * GROUP_SPACING;
const blockCols = (s: BlockShape) => s.rn * GROUP_SPACING;

/** Whether the blocked kernel fits this product: at least one whole 64 x 64 block of output. */
export function blockedFits(M: number, width: number): boolean {
  return M >= GROUP_SPACING && width >= GROUP_SPACING;
}

const blockCount = (s: BlockShape, M: number, width: number) => Math.ceil(M / blockRows(s)) * Math.ceil(width / blockCols(s));

/**
 * 128 x 64 where that still gives the device its workgroups (4096^3: 2048 blocks), 64 x 64 (and K
 * chunks) otherwise. Measured on the H200 (bench/results/h200/kernels.md): 4096^3 30.3 TFLOP/s
 * with 128 x 64, 27.9 with 128 x 128, 26.8 with 64 x 64; smaller products are faster with 64 x 64
 * and K chunks (BERT's 128 x 3072 x 768: 0.033 ms against 0.21 ms unchunked).
 */
export function chooseBlockShape(M: number, width: number, occupancy: number | undefined, forced?: BlockShape): BlockShape {
  if (forced) {
    // every invocation stages whole vec4s of A and B: the block's K step must give each at least one
    if ((blockRows(forced) * forced.bk) % (4 * WORKGROUP_SIZE) !== 0 || (blockCols(forced) * forced.bk) % (4 * WORKGROUP_SIZE) !== 0) {
      throw new Error(`internal: blocked GEMM block ${blockRows(forced)}x${blockCols(forced)} with K step ${forced.bk} leaves invocations without a whole vec4 to stage`);
    }
    return forced;
  }
  const big = M >= 128 && blockCount(BLOCK_128x64, M, width) >= (occupancy ?? 0);
  return big ? BLOCK_128x64 : BLOCK_64;
}

/**
 * A B operand that is not a tensor in memory: WGSL statements that set `v` (vec4 of B at row `k`,
 * columns n0 .. n0 + 3; `bBase` is the batch entry's offset) for k < K. Conv's implicit GEMM reads
 * its im2col matrix this way (conv/implicit-gemm.ts).
 */
export type BLoader = (p: KernelPlan) => string;

interface BlockedPlan extends KernelPlan {
  shape: BlockShape;
  loadB?: BLoader;
  /** workgroups along K (1: the whole K loop, stores through the epilogue) and rows of K each */
  chunks: number;
  chunkRows: number;
  /** A read as vec4 along k (contiguous rows, K a multiple of 4) */
  aVec4: boolean;
}

function aVec4Loadable(p: KernelPlan): boolean {
  const a = p.g.a;
  return a.colStride === 1 && a.rowStride % 4 === 0 && p.g.K % 4 === 0 && a.batchStrides.every((s) => s % 4 === 0);
}

/** Stages this invocation's A vec4s of the K step at k0 (rows past M read row M-1; k past K gives 0). */
function stageA(p: BlockedPlan): string[] {
  const { g, shape } = p;
  const rows = blockRows(shape);
  const loads = (rows * shape.bk) / 4 / WORKGROUP_SIZE;
  return Array.from({ length: loads }, (_, t) => {
    const load = p.aVec4
      ? `if (k < ${u(g.K)}) { v = a[(aBase + row * ${u(g.a.rowStride)} + k) / 4u]; }`
      : [0, 1, 2, 3].map((j) => `if (k + ${u(j)} < ${u(g.K)}) { v[${j}] = a[aBase + row * ${u(g.a.rowStride)} + (k + ${u(j)}) * ${u(g.a.colStride)}]; }`).join(' ');
    return [
      `{ let idx = lid.x + ${u(t * WORKGROUP_SIZE)}; let r = idx % ${u(rows)}; let k4 = idx / ${u(rows)};`,
      `  let row = min(wid.y * ${u(rows)} + r, ${u(g.M - 1)}); let k = k0 + k4 * 4u;`,
      `  var v = vec4<${p.type}>(); ${load}`,
      ...[0, 1, 2, 3].map((j) => `  As[(k4 * 4u + ${u(j)}) * ${u(rows / 4)} + r / 4u][r % 4u] = v[${j}];`),
      '}',
    ].join('\n  ');
  });
}

/** Stages this invocation's B vec4s (row kk of the K step, column tile ct of the block); columns past the part read its last tile. */
function stageB(p: BlockedPlan, lastTile: number): string[] {
  const tilesPerRow = blockCols(p.shape) / 4;
  const loads = (tilesPerRow * p.shape.bk) / WORKGROUP_SIZE;
  const bRow = p.part.vec4 && !p.loadB ? ` let bRow = ${vec4RowStart(p, 'bBase')};` : '';
  const load = p.loadB ? p.loadB(p) : `v = ${loadBRow(p)};`;
  return Array.from({ length: loads }, (_, t) => [
    `{ let idx = lid.x + ${u(t * WORKGROUP_SIZE)}; let kk = idx / ${u(tilesPerRow)}; let ct = idx % ${u(tilesPerRow)};`,
    `  let nt = min(wid.x * ${u(tilesPerRow)} + ct, ${u(lastTile)}); let n0 = nt * 4u;${bRow} let k = k0 + kk;`,
    `  var v = vec4<${p.type}>(); if (k < ${u(p.g.K)}) { ${load} }`,
    `  Bs[kk * ${u(tilesPerRow)} + ct] = v; }`,
  ].join('\n  '));
}

const accName = (r: number, c: number, i: number) => `acc${r}_${c}_${i}`;

/** The inner product over the staged K step: RM A vec4s and RN B vec4s per kk. */
function accumulate(p: BlockedPlan): string[] {
  const { rm, rn, bk } = p.shape;
  const rowVec4s = blockRows(p.shape) / 4, colVec4s = blockCols(p.shape) / 4;
  return [
    `  for (var kk = 0u; kk < ${u(bk)}; kk++) {`,
    ...Array.from({ length: rm }, (_, r) => `    let av${r} = As[kk * ${u(rowVec4s)} + ${u(r * THREADS_PER_SIDE)} + ty];`),
    ...Array.from({ length: rn }, (_, c) => `    let bv${c} = Bs[kk * ${u(colVec4s)} + ${u(c * THREADS_PER_SIDE)} + tx];`),
    ...Array.from({ length: rm }, (_, r) => Array.from({ length: rn }, (_, c) => [0, 1, 2, 3].map((i) => `    ${accName(r, c, i)} += av${r}[${i}] * bv${c};`))).flat(2),
    '  }',
  ];
}

/** Stores of every output group: through the epilogue, or as partial sums of chunk wid.z. */
function stores(p: BlockedPlan, ctx: LowerContext): string[] {
  const { rm, rn } = p.shape;
  const lines: string[] = [];
  for (let r = 0; r < rm; r++) {
    for (let c = 0; c < rn; c++) {
      const inner = p.chunks > 1
        ? [0, 1, 2, 3].map((i) => `if (m0 + ${u(i)} < ${u(p.g.M)}) { ${storePartial(p, 'wid.z', `m0 + ${u(i)}`, 'n0 / 4u', accName(r, c, i))} }`)
        : [
          ...[0, 1, 2, 3].map((i) => `let acc${i} = ${accName(r, c, i)};`),
          ...[0, 1, 2, 3].flatMap((i) => [0, 1, 2, 3].map((j) => storeStatement(p, ctx, i, j))),
        ];
      lines.push(
        `{ let m0 = mBase + ${u(r * GROUP_SPACING)}; let n0 = nBase + ${u(c * GROUP_SPACING)};`,
        `  if (m0 < ${u(p.g.M)} && n0 < ${u(p.part.width)}) {`,
        ...inner.map((l) => `    ${l}`),
        '  } }',
      );
    }
  }
  return lines;
}

function blockedBody(p: BlockedPlan, ctx: LowerContext): string[] {
  const { g, part, type, shape } = p;
  const { M, N } = g;
  const batchCoords = g.batchShape.map((_, i) => `bc${i}`);
  const batchStrides = stridesOf(g.batchShape);
  const lastTile = Math.ceil(part.width / 4) - 1;
  const chunked = p.chunks > 1;
  const accs = Array.from({ length: shape.rm }, (_, r) => Array.from({ length: shape.rn }, (_, c) => [0, 1, 2, 3].map((i) => accName(r, c, i)))).flat(2);
  return [
    `let tx = lid.x % ${u(THREADS_PER_SIDE)};`,
    `let ty = lid.x / ${u(THREADS_PER_SIDE)};`,
    `let nBase = (wid.x * ${u(blockCols(shape) / 4)} + tx) * 4u;`,
    `let mBase = wid.y * ${u(blockRows(shape))} + ty * 4u;`,
    // chunked products have no batch (wid.z is the chunk)
    ...g.batchShape.map((d, i) => `let bc${i} = (wid.z / ${u(batchStrides[i]!)}) % ${u(d)};`),
    `let aBase = ${dot(batchCoords, g.a.batchStrides)};`,
    `let bBase = ${dot(batchCoords, part.layout.batchStrides)};`,
    `let yBase = ${chunked ? '0u' : `wid.z * ${u(M * N)}`};`,
    ...accs.map((a) => `var ${a} = vec4<${type}>();`),
    chunked ? `let kStart = wid.z * ${u(p.chunkRows)};` : 'let kStart = 0u;',
    chunked ? `let kEnd = min(kStart + ${u(p.chunkRows)}, ${u(g.K)});` : `let kEnd = ${u(g.K)};`,
    `for (var k0 = kStart; k0 < kEnd; k0 += ${u(shape.bk)}) {`,
    ...stageA(p),
    ...stageB(p, lastTile),
    '  workgroupBarrier();',
    ...accumulate(p),
    '  workgroupBarrier();',
    '}',
    // no early return above: every invocation takes part in the barriers
    ...stores(p, ctx),
  ];
}

function blockedKernel(label: string, p: BlockedPlan, ctx: LowerContext, bindings: readonly LowerTensor[], partial: LowerTensor | undefined): KernelSpec {
  const { type, shape } = p;
  const k = kernel(label);
  if (partial) {
    k.bind('a', bindings[0]!, p.aVec4 ? `vec4<${type}>` : type);
    k.bind('b', bindings[1]!, p.part.vec4 ? `vec4<${type}>` : type);
    k.bind('partial', partial, `vec4<${type}>`);
  } else {
    bindOperands(k, bindings, type, p.part.vec4 ? 'vec4' : 'scalar', p.aVec4, p.epi);
  }
  const shared = [
    k.workgroupArray('As', `vec4<${type}>`, (blockRows(shape) / 4) * shape.bk),
    k.workgroupArray('Bs', `vec4<${type}>`, (blockCols(shape) / 4) * shape.bk),
  ];
  const batch = numElements(p.g.batchShape);
  return k.build({
    header: `${k.declarations()}\n\n${shared.join('\n')}\n\n`,
    entry: { workgroupSize: WORKGROUP_SIZE, params: [WID, LID], body: blockedBody(p, ctx).join('\n  ') },
    workgroups: [Math.ceil(p.part.width / blockCols(shape)), Math.ceil(p.g.M / blockRows(shape)), p.chunks > 1 ? p.chunks : batch],
  });
}

/**
 * The blocked kernels of one part of B: one, or two where K is split across workgroups (only
 * unbatched products: wid.z then numbers the chunks).
 */
export function blockedKernels(label: string, base: KernelPlan, ctx: LowerContext, bindings: readonly LowerTensor[], loadB?: BLoader): KernelSpec[] {
  const { g, part } = base;
  const occupancy = ctx.kernelChoices?.occupancyWorkgroups;
  const shape = chooseBlockShape(g.M, part.width, occupancy, ctx.kernelChoices?.gemmBlock);
  const unbatched = numElements(g.batchShape) === 1;
  const { chunks, chunkRows } = unbatched
    ? chooseChunks(g.K, blockCount(shape, g.M, part.width), occupancy, MIN_CHUNK_ROWS, shape.bk)
    : { chunks: 1, chunkRows: g.K };
  const plan: BlockedPlan = { ...base, shape, chunks, chunkRows, aVec4: aVec4Loadable(base), loadB };
  if (chunks === 1) return [blockedKernel(label, plan, ctx, bindings, undefined)];
  const partial = partialsTensor(ctx, plan, chunks);
  return [
    blockedKernel(label, plan, ctx, bindings, partial),
    reducePartialsKernel(label, plan, ctx, partial, epilogueOperands(plan.epi, bindings), bindings[bindings.length - 1]!, chunks),
  ];
}
