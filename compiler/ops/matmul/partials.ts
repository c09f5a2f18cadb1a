/**
 * Split-K across workgroups: a product whose output blocks alone give the GPU too few workgroups
 * (a gemv over 768 columns is 24 panels; BERT's 128 x 768 GEMMs are 24 blocks of 64 x 64) also
 * splits K into `chunks`, each workgroup writing the partial sums of its chunk to a scratch tensor
 * [chunks, M, ceil(width / 4)] of vec4. A second kernel adds the chunks and applies the epilogue
 * (alpha/beta/C, fused activation). There are no float atomics in WGSL, and one extra dispatch
 * over M x width values costs far less than the workgroups it gains.
 */
import { grid1D, u } from '../../kernel/wgsl.js';
import { kernel } from '../../kernel/builder.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import type { LowerContext } from '../op.js';
import { bindEpilogue, storeStatement, type KernelPlan } from './epilogue.js';

/** K chunks for a product of `blocks` output blocks: enough workgroups for `target`, each chunk at least `minRows` of K (a multiple of `rowStep`). */
export function chooseChunks(K: number, blocks: number, target: number | undefined, minRows: number, rowStep: number): { chunks: number; chunkRows: number } {
  const wanted = target ? Math.ceil(target / blocks) : 1;
  const chunks = Math.max(1, Math.min(wanted, Math.floor(K / minRows)));
  const chunkRows = Math.ceil(K / chunks / rowStep) * rowStep;
  return { chunks: Math.ceil(K / chunkRows), chunkRows };
}

/** vec4 columns of one row of partial sums */
export const partialTiles = (p: KernelPlan) => Math.ceil(p.part.width / 4);

/** The scratch tensor of partial sums for `chunks` chunks of K. */
export function partialsTensor(ctx: LowerContext, p: KernelPlan, chunks: number): LowerTensor {
  return ctx.scratch('splitk_partials', { dtype: p.type === 'f32' ? 'float32' : 'int32', shape: [chunks, p.g.M, partialTiles(p) * 4] });
}

/** WGSL storing accumulator `acc` (a vec4) of row `m`, vec4 column `nt` and chunk `chunk` into `partial`. */
export function storePartial(p: KernelPlan, chunk: string, m: string, nt: string, acc: string): string {
  return `partial[(${chunk} * ${u(p.g.M)} + ${m}) * ${u(partialTiles(p))} + ${nt}] = ${acc};`;
}

/** The kernel adding `chunks` partial sums per output vec4 and storing them through the epilogue. */
export function reducePartialsKernel(label: string, p: KernelPlan, ctx: LowerContext, partial: LowerTensor, epilogue: { c?: LowerTensor; r?: LowerTensor }, y: LowerTensor, chunks: number): KernelSpec {
  const tiles = partialTiles(p);
  const grid = grid1D(p.g.M * tiles, 64, ctx.limits.maxComputeWorkgroupsPerDimension);
  const plan: KernelPlan = { ...p, rowTile: 1 };
  const body = [
    `let m0 = i / ${u(tiles)};`,
    `let nt = i % ${u(tiles)};`,
    'let n0 = nt * 4u;',
    'let yBase = 0u;',
    `var acc0 = vec4<${p.type}>();`,
    `for (var s = 0u; s < ${u(chunks)}; s++) { acc0 += partial[(s * ${u(p.g.M)} + m0) * ${u(tiles)} + nt]; }`,
    ...[0, 1, 2, 3].map((j) => storeStatement(plan, ctx, 0, j)),
  ];
  const k = kernel(`${label}_sum`);
  k.bind('partial', partial, `vec4<${p.type}>`);
  bindEpilogue(k, p.type, epilogue);
  k.bind('y', y, p.type);
  return k.buildGrid1D(grid, body.join('\n  '));
}
