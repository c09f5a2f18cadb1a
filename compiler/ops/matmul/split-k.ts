/**
 * Few rows, long K (gemv): K split across a workgroup, partial sums reduced in workgroup memory.
 */
import { numElements } from '../../ir/types.js';
import { grid1D, u, type WgslScalar } from '../../kernel/wgsl.js';
import { kernel, LID, WID } from '../../kernel/builder.js';
import { MAX_LOOP_TRIPS } from '../../kernel/limits.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import type { LowerContext } from '../op.js';
import type { Epilogue, MatmulGeometry } from './geometry.js';
import type { BPart } from './packing.js';
import { bindEpilogue, bindOperands, epilogueOperands, storeExpr, storeStatement, type KernelPlan } from './epilogue.js';
import { chooseChunks, partialsTensor, reducePartialsKernel, storePartial } from './partials.js';

/**
 * The register-tiled kernel gives each invocation the whole K loop, so with M <= 4 a kernel runs
 * only N / 4 invocations, each K dependent loads long: latency-bound on a real GPU, and just as
 * slow for a 352-column slice of a split weight as for all 4096 columns (VGG fc6 on the H100:
 * ~10 ms per slice). Here one workgroup owns one panel of packed B; its invocations split K into
 * `slices` interleaved rows (the panel's rows are contiguous, so a warp reads consecutive rows
 * in one stream) and add their partial sums in workgroup memory. Where the panels alone are too
 * few workgroups to keep a real GPU's memory busy (768 columns are 24 panels; a 4096-column
 * weight 128 for 132 SMs), K is also split into chunks across workgroups (partials.ts).
 */
const SPLIT_K_MIN_K = 256;
const SPLIT_K_INVOCATIONS = 256;

function splitKApplies(g: MatmulGeometry, part: BPart): boolean {
  // the K loop runs K / slices trips, slices >= 8 (an 8-tile panel in 256 invocations); longer K goes to K chunks
  return g.M <= 4 && g.K >= SPLIT_K_MIN_K && g.K / 8 <= MAX_LOOP_TRIPS && part.panel !== undefined && numElements(g.batchShape) === 1;
}

interface SplitKPlan extends KernelPlan {
  /** vec4 column tiles per panel (invocations along n) */
  tiles: number;
  /** invocations along k: a power of two, for the reduction tree */
  slices: number;
  /** workgroups along K (1: no partial sums) and the rows of K each covers */
  chunks: number;
  chunkRows: number;
  /** B loads in flight per invocation (rows per trip of the K loop) */
  unroll: number;
}

/** Each chunk of K at least this many rows: fewer would make the partial sums outweigh the loads. */
const MIN_CHUNK_ROWS = 256;

/**
 * K shorter than this stays in one workgroup per panel, at UNCHUNKED_UNROLL rows a trip: on the
 * H200 (bench/results/h200/kernels.md) the single kernel beat partial sums plus their reduction for
 * GPT-Neo's 768-row gemvs (768x768: 4.9 us against 5.6-6.9; 768x3072: 5.2 against 6.6-7.5), while
 * 3072 and 4096 rows gained from K chunks (3072x768: 6.9 against 11.8). In a decode step every
 * partial-sum reduction is also one more dispatch.
 */
const CHUNKED_MIN_K = 2048;
const UNCHUNKED_UNROLL = 4;

function splitKPlan(g: MatmulGeometry, type: WgslScalar, part: BPart, epi: Epilogue, targetWorkgroups: number | undefined, chunkedUnroll: number): SplitKPlan {
  const tiles = part.panel! / 4;
  let slices = 1;
  while (slices * 2 * tiles <= SPLIT_K_INVOCATIONS) slices *= 2;
  const panels = Math.ceil(part.width / part.panel!);
  const long = g.K >= CHUNKED_MIN_K;
  const unroll = long ? chunkedUnroll : Math.min(chunkedUnroll, UNCHUNKED_UNROLL);
  const { chunks, chunkRows } = chooseChunks(g.K, panels, long ? targetWorkgroups : undefined, MIN_CHUNK_ROWS, unroll * slices);
  return { g, type, part, epi, rowTile: g.M, workgroupSize: tiles * slices, tiles, slices, chunks, chunkRows, unroll };
}

/** The split-K kernel over `bindings` (a, packed B, [c], y): one workgroup per panel. */
function splitKKernel(label: string, p: SplitKPlan, ctx: LowerContext, bindings: readonly LowerTensor[], partial?: LowerTensor): KernelSpec {
  const { g, type, tiles, slices } = p;
  const { M } = g;
  const chunked = partial !== undefined;
  // the K range of this workgroup: all of K, or chunk wid.y
  const K = chunked ? 'kEnd' : u(g.K);
  const rows = Array.from({ length: M }, (_, i) => i);
  const step = u(slices);
  const aAt = (i: number, k: string) => `a[${u(i * g.a.rowStride)} + (${k}) * ${u(g.a.colStride)}]`;
  const bAt = (k: string) => `b[bPanel + (${k}) * ${u(tiles)}]`;
  // `unroll` rows per trip keep that many loads in flight per invocation: on a real GPU a chunk is
  // sized so that one trip covers it (one memory round trip per invocation, like a streaming read)
  const unrolled = Array.from({ length: p.unroll }, (_, r) => (r === 0 ? 'k' : `k + ${u(r * slices)}`));
  const body = [
    `let tile = lid.x % ${u(tiles)};`,
    `let kslice = lid.x / ${u(tiles)};`,
    `let bPanel = wid.x * ${u(g.K * tiles)} + tile;`,
    ...(chunked ? [`let kStart = wid.y * ${u(p.chunkRows)};`, `let kEnd = min(kStart + ${u(p.chunkRows)}, ${u(g.K)});`] : []),
    ...rows.map((i) => `var acc${i} = vec4<${type}>();`),
    chunked ? 'var k = kStart + kslice;' : 'var k = kslice;',
    `for (; k + ${u((p.unroll - 1) * slices)} < ${K}; k += ${u(p.unroll * slices)}) {`,
    ...unrolled.map((kk, r) => `  let b${r} = ${bAt(kk)};`),
    ...rows.map((i) => `  acc${i} += ${unrolled.map((kk, r) => `${aAt(i, kk)} * b${r}`).join(' + ')};`),
    '}',
    `for (; k < ${K}; k += ${step}) {`,
    `  let bv = ${bAt('k')};`,
    ...rows.map((i) => `  acc${i} += ${aAt(i, 'k')} * bv;`),
    '}',
    ...rows.map((i) => `sums[${u(i * p.workgroupSize)} + lid.x] = acc${i};`),
    `for (var width = ${u(slices / 2)}; width > 0u; width /= 2u) {`,
    '  workgroupBarrier();',
    '  if (kslice < width) {',
    ...rows.map((i) => `    sums[${u(i * p.workgroupSize)} + lid.x] += sums[${u(i * p.workgroupSize)} + lid.x + width * ${u(tiles)}];`),
    '  }',
    '}',
    'workgroupBarrier();',
    `let n0 = wid.x * ${u(tiles * 4)} + tile * 4u;`,
    `if (kslice != 0u || n0 >= ${u(p.part.width)}) { return; }`,
    ...(chunked
      ? rows.map((i) => storePartial(p, 'wid.y', u(i), 'n0 / 4u', `sums[${u(i * p.workgroupSize)} + lid.x]`))
      : [
        'let m0 = 0u;',
        'let yBase = 0u;',
        ...rows.map((i) => `acc${i} = sums[${u(i * p.workgroupSize)} + lid.x];`),
        ...rows.flatMap((i) => [0, 1, 2, 3].map((j) => storeStatement(p, ctx, i, j))),
      ]),
  ];
  const k = kernel(label);
  if (partial) {
    k.bind('a', bindings[0]!, type);
    k.bind('b', bindings[1]!, `vec4<${type}>`);
    k.bind('partial', partial, `vec4<${type}>`);
  } else {
    bindOperands(k, bindings, type, 'vec4', false, p.epi);
  }
  const sums = k.workgroupArray('sums', `vec4<${type}>`, M * p.workgroupSize);
  return k.build({
    header: `${k.declarations()}\n${sums}\n\n`,
    entry: { workgroupSize: p.workgroupSize, params: [WID, LID], body: body.join('\n  ') },
    workgroups: [Math.ceil(p.part.width / p.part.panel!), p.chunks, 1],
  });
}

/**
 * The split-K kernels of one part of B (one, or two where K is chunked across workgroups), or
 * undefined where split-K does not apply (M > 4, short K, unpacked B, batches).
 */
export function splitK(label: string, g: MatmulGeometry, type: WgslScalar, part: BPart, epi: Epilogue, ctx: LowerContext, bindings: readonly LowerTensor[]): KernelSpec[] | undefined {
  if (!splitKApplies(g, part)) return undefined;
  const plan = splitKPlan(g, type, part, epi, ctx.kernelChoices?.occupancyWorkgroups, ctx.kernelChoices?.gemvUnroll ?? 4);
  if (plan.chunks === 1) return [splitKKernel(label, plan, ctx, bindings)];
  const partial = partialsTensor(ctx, plan, plan.chunks);
  return [
    splitKKernel(label, plan, ctx, bindings, partial),
    reducePartialsKernel(label, plan, ctx, partial, epilogueOperands(epi, bindings), bindings[bindings.length - 1]!, plan.chunks),
  ];
}

// ---------------------------------------------------------------------------------------------
// K chunks: K longer than one invocation may loop (kernel/limits.ts MAX_LOOP_TRIPS)

/** Rows of K per chunk, or undefined when one invocation may loop over all of K. */
export function kChunkRows(g: MatmulGeometry): number | undefined {
  return g.K > MAX_LOOP_TRIPS ? MAX_LOOP_TRIPS : undefined;
}

/**
 * Adds the chunks' partial sums ([batch, chunks, M, N], from tiledKernel with kChunk) and stores
 * each output through the epilogue (alpha, beta * C, fused activation): one invocation per
 * output element, `chunks` loop trips (K / MAX_LOOP_TRIPS, a few).
 */
export function sumChunksKernel(label: string, g: MatmulGeometry, type: WgslScalar, epi: Epilogue, ctx: LowerContext, partial: LowerTensor, epilogue: { c?: LowerTensor; r?: LowerTensor }, y: LowerTensor, chunks: number): KernelSpec {
  const { M, N } = g;
  const total = numElements(g.batchShape) * M * N;
  const grid = grid1D(total);
  const plan = { g, type, epi } as KernelPlan;
  const k = kernel(`${label}_sum_k_chunks`);
  k.bind('partial', partial, type);
  bindEpilogue(k, type, epilogue);
  k.bind('y', y, type);
  const body = [
    `let mn = i % ${u(M * N)};`,
    `let base = (i / ${u(M * N)}) * ${u(chunks * M * N)} + mn;`,
    'let m = mn / ' + u(N) + ';',
    'let n = mn % ' + u(N) + ';',
    `var acc = partial[base];`,
    `for (var j = 1u; j < ${u(chunks)}; j++) { acc += partial[base + j * ${u(M * N)}]; }`,
    `y[i] = ${storeExpr(plan, 'acc', ctx, 'i')};`,
  ];
  return k.buildGrid1D(grid, body.join('\n  '));
}
