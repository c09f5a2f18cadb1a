/**
 * The register-tiled Gemm/MatMul kernel: an invocation computes `rowTile` (up to 4) output rows
 * x 4 consecutive output columns, looping over K; B is read as one vec4 of four adjacent columns
 * per k (see the overview in index.ts).
 */
import { dot, u } from '../../kernel/wgsl.js';
import { stridesOf } from '../../kernel/strides.js';
import { kernel, LID, WID } from '../../kernel/builder.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import type { LowerContext } from '../op.js';
import { bindOperands, storeStatement, type KernelPlan } from './epilogue.js';

/** WGSL expression loading B's four columns n0..n0+3 (of this part) at row k. */
export function loadBRow(p: KernelPlan): string {
  const { part, type } = p;
  const rowStride = part.layout.rowStride;
  if (part.vec4) return `b[bRow + k * ${u(rowStride / 4)}]`;
  const lanes = [0, 1, 2, 3].map((j) => {
    // columns past the part's width read its last column (in bounds) and are never stored
    const col = part.width % 4 === 0 ? `(n0 + ${u(j)})` : `min(n0 + ${u(j)}, ${u(part.width - 1)})`;
    return `b[bBase + k * ${u(rowStride)} + ${col} * ${u(part.layout.colStride)}]`;
  });
  return `vec4<${type}>(${lanes.join(', ')})`;
}

/** vec4 index of this invocation's four B columns at k = 0 */
export function vec4RowStart(p: KernelPlan, bBase: string): string {
  const { part, g } = p;
  const batchPart = bBase === '0u' ? '' : `(${bBase}) / 4u + `;
  if (!part.panel) return `${batchPart}nt`;
  const tilesPerPanel = part.panel / 4;
  return `${batchPart}(nt / ${u(tilesPerPanel)}) * ${u(g.K * tilesPerPanel)} + nt % ${u(tilesPerPanel)}`;
}

/**
 * The register-tiled kernel over `bindings` (a, this part of B, [c], y). With `kChunk`, K is
 * split into chunks of that many rows (llvmpipe's loop limit, kernel/limits.ts MAX_LOOP_TRIPS):
 * workgroup z is batch entry x chunk, and each chunk stores its raw sums in y = a partial-sum
 * scratch [batch, chunks, M, N], which sumChunksKernel (split-k.ts) adds up through the epilogue.
 */
export function tiledKernel(label: string, p: KernelPlan, ctx: LowerContext, bindings: readonly LowerTensor[], workgroups: [number, number, number], kChunk?: number): KernelSpec {
  const { g, part, type, rowTile } = p;
  const { M, K, N } = g;
  const chunks = kChunk ? Math.ceil(K / kChunk) : 1;
  const rows = Array.from({ length: rowTile }, (_, i) => i);
  const batchCoords = g.batchShape.map((_, i) => `bc${i}`);
  const batchStrides = stridesOf(g.batchShape);
  const batchIndex = chunks > 1 ? `(wid.z / ${u(chunks)})` : 'wid.z';
  const batchLines = g.batchShape.map((d, i) => `let bc${i} = (${batchIndex} / ${u(batchStrides[i]!)}) % ${u(d)};`);
  const kLoop = chunks > 1
    ? [`let kBegin = (wid.z % ${u(chunks)}) * ${u(kChunk!)};`, `let kEnd = min(kBegin + ${u(kChunk!)}, ${u(K)});`, 'for (var k = kBegin; k < kEnd; k++) {']
    : [`for (var k = 0u; k < ${u(K)}; k++) {`];
  const bBase = dot(batchCoords, part.layout.batchStrides);
  const body = [
    'let nt = wid.x * ' + u(p.workgroupSize) + ' + lid.x;',
    'let n0 = nt * 4u;',
    `if (n0 >= ${u(part.width)}) { return; }`,
    `let m0 = wid.y * ${u(rowTile)};`,
    ...batchLines,
    `let aBase = ${dot(batchCoords, g.a.batchStrides)};`,
    part.vec4 ? `let bRow = ${vec4RowStart(p, bBase)};` : `let bBase = ${bBase};`,
    `let yBase = wid.z * ${u(M * N)};`,
    // rows past M read row M-1 (in bounds) and are never stored
    ...rows.map((i) => `let ar${i} = aBase + ${M % rowTile === 0 ? `(m0 + ${u(i)})` : `min(m0 + ${u(i)}, ${u(M - 1)})`} * ${u(g.a.rowStride)};`),
    ...rows.map((i) => `var acc${i} = vec4<${type}>();`),
    ...kLoop,
    `  let bv = ${loadBRow(p)};`,
    ...rows.map((i) => `  acc${i} += a[ar${i} + k * ${u(g.a.colStride)}] * bv;`),
    '}',
    ...rows.flatMap((i) => [0, 1, 2, 3].map((j) => storeStatement(p, ctx, i, j))),
  ];
  const k = kernel(label);
  bindOperands(k, bindings, type, part.vec4 ? 'vec4' : 'scalar', false, p.epi);
  return k.build({ entry: { workgroupSize: p.workgroupSize, params: [WID, LID], body: body.join('\n  ') }, workgroups, loopTrips: kChunk ?? K });
}
