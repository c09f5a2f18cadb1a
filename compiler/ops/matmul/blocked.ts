/**
 * The workgroup-tiled Gemm/MatMul kernel for large products (M and the part's width at least one
 * tile): a workgroup of 16 x 16 invocations computes a 64 x 64 output block. Each K step of 16
 * stages a 64 x 16 block of A (transposed: one vec4 holds four rows of one k) and a 16 x 64 block
 * of B (vec4 column tiles) in workgroup memory, every invocation loading 4 A values and one B vec4;
 * each invocation then accumulates its 4 rows x 4 columns from workgroup memory (16 FMAs per two
 * vec4 loads). A and B are read from device memory once per 64 columns / rows instead of once per
 * 4 as in tiled.ts, which is what a real GPU needs; llvmpipe, whose workgroup memory is ordinary
 * memory, keeps using tiled.ts (the device profile picks).
 */
import { dot, u } from '../../kernel/wgsl.js';
import { stridesOf } from '../../kernel/strides.js';
import { kernel, LID, WID } from '../../kernel/builder.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import type { LowerContext } from '../op.js';
import { bindOperands, storeStatement, type KernelPlan } from './epilogue.js';
import { loadBRow, vec4RowStart } from './tiled.js';

/** output rows and columns of a workgroup, and the K step staged in workgroup memory */
export const BLOCK = { M: 64, N: 64, K: 16 } as const;
const THREADS_PER_SIDE = 16;
const WORKGROUP_SIZE = THREADS_PER_SIDE * THREADS_PER_SIDE;
/** A values each invocation stages per K step: 64 x 16 over 256 invocations */
const A_LOADS = (BLOCK.M * BLOCK.K) / WORKGROUP_SIZE;

/** Whether the blocked kernel fits this product: at least one whole block of output. */
export function blockedFits(M: number, width: number): boolean {
  return M >= BLOCK.M && width >= BLOCK.N;
}

export function blockedWorkgroups(M: number, width: number, batch: number): [number, number, number] {
  return [Math.ceil(width / BLOCK.N), Math.ceil(M / BLOCK.M), batch];
}

/** Stages this invocation's four A values of the K step at k0 (rows past M read row M-1; k past K gives 0). */
function stageA(p: KernelPlan): string[] {
  const { g } = p;
  return Array.from({ length: A_LOADS }, (_, t) => [
    `{ let idx = lid.x + ${u(t * WORKGROUP_SIZE)}; let r = idx / ${u(BLOCK.K)}; let kk = idx % ${u(BLOCK.K)};`,
    `  let row = min(wid.y * ${u(BLOCK.M)} + r, ${u(g.M - 1)}); let k = k0 + kk;`,
    `  var v = ${p.type}(0); if (k < ${u(g.K)}) { v = a[aBase + row * ${u(g.a.rowStride)} + k * ${u(g.a.colStride)}]; }`,
    `  As[kk * ${u(BLOCK.M / 4)} + r / 4u][r % 4u] = v; }`,
  ].join('\n  '));
}

/** Stages this invocation's B vec4 (row kk = lid.x / 16 of the K step, column tile tx); columns past the part read its last tile. */
function stageB(p: KernelPlan): string {
  return [
    `{ let kk = lid.x / ${u(THREADS_PER_SIDE)}; let k = k0 + kk; let n0 = loadN0;`,
    `  var v = vec4<${p.type}>(); if (k < ${u(p.g.K)}) { v = ${loadBRow(p)}; }`,
    `  Bs[kk * ${u(THREADS_PER_SIDE)} + tx] = v; }`,
  ].join('\n  ');
}

export function blockedKernel(label: string, p: KernelPlan, ctx: LowerContext, bindings: readonly LowerTensor[], workgroups: [number, number, number]): KernelSpec {
  const { g, part, type } = p;
  const { M, N } = g;
  const rows = [0, 1, 2, 3];
  const batchCoords = g.batchShape.map((_, i) => `bc${i}`);
  const batchStrides = stridesOf(g.batchShape);
  const bBase = dot(batchCoords, part.layout.batchStrides);
  const lastTile = Math.ceil(part.width / 4) - 1;
  const body = [
    `let tx = lid.x % ${u(THREADS_PER_SIDE)};`,
    `let ty = lid.x / ${u(THREADS_PER_SIDE)};`,
    `let ntStore = wid.x * ${u(THREADS_PER_SIDE)} + tx;`,
    // loads clamp to the last column tile (in bounds); its columns are never stored
    `let nt = min(ntStore, ${u(lastTile)});`,
    'let loadN0 = nt * 4u;',
    `let n0 = ntStore * 4u;`,
    `let m0 = wid.y * ${u(BLOCK.M)} + ty * 4u;`,
    ...g.batchShape.map((d, i) => `let bc${i} = (wid.z / ${u(batchStrides[i]!)}) % ${u(d)};`),
    `let aBase = ${dot(batchCoords, g.a.batchStrides)};`,
    part.vec4 ? `let bRow = ${vec4RowStart(p, bBase)};` : `let bBase = ${bBase};`,
    `let yBase = wid.z * ${u(M * N)};`,
    ...rows.map((i) => `var acc${i} = vec4<${type}>();`),
    `for (var k0 = 0u; k0 < ${u(g.K)}; k0 += ${u(BLOCK.K)}) {`,
    ...stageA(p),
    stageB(p),
    '  workgroupBarrier();',
    `  for (var kk = 0u; kk < ${u(BLOCK.K)}; kk++) {`,
    `    let av = As[kk * ${u(BLOCK.M / 4)} + ty];`,
    `    let bv = Bs[kk * ${u(THREADS_PER_SIDE)} + tx];`,
    ...rows.map((i) => `    acc${i} += av[${i}] * bv;`),
    '  }',
    '  workgroupBarrier();',
    '}',
    // no early return above: every invocation takes part in the barriers
    `if (m0 >= ${u(M)} || n0 >= ${u(part.width)}) { return; }`,
    ...rows.flatMap((i) => [0, 1, 2, 3].map((j) => storeStatement(p, ctx, i, j))),
  ];
  const k = kernel(label);
  bindOperands(k, bindings, type, part.vec4 ? 'vec4' : 'scalar');
  const shared = [
    k.workgroupArray('As', `vec4<${type}>`, (BLOCK.M / 4) * BLOCK.K),
    k.workgroupArray('Bs', `vec4<${type}>`, THREADS_PER_SIDE * BLOCK.K),
  ];
  return k.build({
    header: `${k.declarations()}\n\n${shared.join('\n')}\n\n`,
    entry: { workgroupSize: WORKGROUP_SIZE, params: [WID, LID], body: body.join('\n  ') },
    workgroups,
  });
}
