/**
 * f16 GEMM on tensor cores through WGSL subgroup matrices (`chromium_experimental_subgroup_matrix`,
 * SPIR-V cooperative matrices on Vulkan): Y[M, N] (f32) = A[M, K] (f16, row-major) x B[K, N] (f16,
 * row-major), accumulated in f32 (f16 accumulation overflows on real models: onnxruntime #26732).
 *
 * A workgroup is one subgroup of 32 invocations (the workgroup's x size must be a multiple of the
 * device's maxSubgroupSize, 32 on NVIDIA), because Tint requires the offsets of subgroup-matrix
 * loads and stores to be workgroup-uniform: several subgroups of one workgroup could not address
 * different tiles. The subgroup owns tm x tn result matrices of 16 x 16. Two ways to feed them:
 * - `direct`: the operands' 16 x 16 tiles are loaded from the storage buffers (L1 and L2 serve
 *   the reuse between neighbouring workgroups);
 * - `staged`: the workgroup first copies the BM x BK block of A and the BK x BN block of B into
 *   workgroup memory (vec4<f16> loads, rows padded by 8 halves against bank conflicts) and loads
 *   the tiles from there.
 * The config used is f16 16x16x16 with an f32 result; callers check that the adapter lists it
 * (adapter.info.subgroupMatrixConfigs) and keep the f32 kernels as the fallback. Shapes must be
 * whole blocks (M % BM, N % BN, K % BK = 0): the compiler pads or falls back otherwise.
 */
import { u } from '../../kernel/wgsl.js';
import { kernel, LID, WID } from '../../kernel/builder.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';

export const SUBGROUP_WIDTH = 32;
const TILE = 16;

export interface SubgroupMatrixShape {
  feed: 'direct' | 'staged';
  /** result matrices per subgroup along m and n */
  tm: number;
  tn: number;
  /** K step (staged: rows of K per workgroup-memory block; a multiple of 16) */
  bk: number;
  /**
   * subgroups per workgroup along m and n (default 1 x 1). More than one needs Tint's
   * `subgroup_uniformity` diagnostic off: lid.y (the subgroup) is uniform within each subgroup,
   * which is all the hardware needs, but not across the workgroup, which is what Tint checks.
   */
  wm?: number;
  wn?: number;
}

const subgroupsOf = (s: SubgroupMatrixShape) => (s.wm ?? 1) * (s.wn ?? 1);
export const blockRowsOf = (s: SubgroupMatrixShape) => (s.wm ?? 1) * s.tm * TILE;
export const blockColsOf = (s: SubgroupMatrixShape) => (s.wn ?? 1) * s.tn * TILE;

export function subgroupMatrixFits(M: number, K: number, N: number, s: SubgroupMatrixShape): boolean {
  return M % blockRowsOf(s) === 0 && N % blockColsOf(s) === 0 && K % s.bk === 0 && K % 8 === 0 && N % 8 === 0;
}

const LEFT = `subgroup_matrix_left<f16, ${TILE}, ${TILE}>`;
const RIGHT = `subgroup_matrix_right<f16, ${TILE}, ${TILE}>`;
const RESULT = `subgroup_matrix_result<f32, ${TILE}, ${TILE}>`;

const range = (n: number) => Array.from({ length: n }, (_, i) => i);

/** One K step of 16 from operands at left offset `aAt(i)` and right offset `bAt(j)` in arrays `aArr`, `bArr`. */
function multiplyStep(s: SubgroupMatrixShape, aArr: string, aAt: (i: number) => string, aStride: string, bArr: string, bAt: (j: number) => string, bStride: string): string[] {
  return [
    ...range(s.tm).map((i) => `let l${i} = subgroupMatrixLoad<${LEFT}>(&${aArr}, ${aAt(i)}, false, ${aStride});`),
    ...range(s.tn).map((j) => `let r${j} = subgroupMatrixLoad<${RIGHT}>(&${bArr}, ${bAt(j)}, false, ${bStride});`),
    ...range(s.tm).flatMap((i) => range(s.tn).map((j) => `acc${i}_${j} = subgroupMatrixMultiplyAccumulate(l${i}, r${j}, acc${i}_${j});`)),
  ];
}

function directLoop(s: SubgroupMatrixShape, K: number, N: number): string[] {
  return [
    `for (var k = 0u; k < ${u(K)}; k += ${u(TILE)}) {`,
    ...multiplyStep(s, 'a', (i) => `(m0 + ${u(i * TILE)}) * ${u(K)} + k`, u(K), 'b', (j) => `k * ${u(N)} + n0 + ${u(j * TILE)}`, u(N)).map((l) => `  ${l}`),
    '}',
  ];
}

/** Copies a rows x cols block of `src` (row stride srcStride halves, from offset base) into `dst` (row stride cols + 8). */
function copyBlock(dst: string, src: string, rows: number, cols: number, srcStride: number, base: string, threads: number): string[] {
  const vec4s = (rows * cols) / 4;
  const perThread = Math.ceil(vec4s / threads);
  const pitch = cols + 8;
  return range(perThread).map((t) => [
    `{ let v = tid + ${u(t * threads)};`,
    ...(vec4s % threads === 0 ? [] : [`  if (v < ${u(vec4s)}) {`]),
    `  let r = v / ${u(cols / 4)}; let c = (v % ${u(cols / 4)}) * 4u;`,
    `  let x = ${src}[(${base} + r * ${u(srcStride)} + c) / 4u];`,
    ...range(4).map((e) => `  ${dst}[r * ${u(pitch)} + c + ${u(e)}] = x[${e}];`),
    ...(vec4s % threads === 0 ? [] : ['  }']),
    '}',
  ].join('\n  '));
}

function stagedLoop(s: SubgroupMatrixShape, K: number, N: number): string[] {
  const BM = blockRowsOf(s), BN = blockColsOf(s);
  const threads = SUBGROUP_WIDTH * subgroupsOf(s);
  const aPitch = s.bk + 8, bPitch = BN + 8;
  const steps = s.bk / TILE;
  return [
    `for (var k0 = 0u; k0 < ${u(K)}; k0 += ${u(s.bk)}) {`,
    ...copyBlock('As', 'a4', BM, s.bk, K, `wid.y * ${u(BM * K)} + k0`, threads),
    ...copyBlock('Bs', 'b4', s.bk, BN, N, `k0 * ${u(N)} + wid.x * ${u(BN)}`, threads),
    '  workgroupBarrier();',
    // one block per 16 rows of the staged K step (each declares its own operands)
    ...range(steps).flatMap((st) => ['  {', ...multiplyStep(s,
      'As', (i) => `aTile + ${u(i * TILE * aPitch + st * TILE)}`, u(aPitch),
      'Bs', (j) => `bTile + ${u(st * TILE * bPitch + j * TILE)}`, u(bPitch),
    ).map((l) => `    ${l}`), '  }']),
    '  workgroupBarrier();',
    '}',
  ];
}

/**
 * The subgroup-matrix GEMM of a [M, K] x [K, N] product over a (f16), b (f16) and y (f32);
 * the shape must satisfy subgroupMatrixFits.
 */
export function subgroupMatrixGemm(label: string, M: number, K: number, N: number, s: SubgroupMatrixShape, a: LowerTensor, b: LowerTensor, y: LowerTensor): KernelSpec {
  if (!subgroupMatrixFits(M, K, N, s)) throw new Error(`internal: subgroup-matrix GEMM ${M}x${K}x${N} is not whole blocks of ${blockRowsOf(s)}x${s.bk}x${blockColsOf(s)}`);
  const k = kernel(label);
  const staged = s.feed === 'staged';
  k.bind(staged ? 'a4' : 'a', a, staged ? 'vec4<f16>' : 'f16');
  k.bind(staged ? 'b4' : 'b', b, staged ? 'vec4<f16>' : 'f16');
  k.bind('y', y, 'f32');
  const shared = staged
    ? [k.workgroupArray('As', 'f16', blockRowsOf(s) * (s.bk + 8)), k.workgroupArray('Bs', 'f16', s.bk * (blockColsOf(s) + 8))]
    : [];
  const several = subgroupsOf(s) > 1;
  const body = [
    several ? `let sgRow = lid.y / ${u(s.wn ?? 1)}; let sgCol = lid.y % ${u(s.wn ?? 1)};` : 'let sgRow = 0u; let sgCol = 0u;',
    `let tid = lid.y * ${u(SUBGROUP_WIDTH)} + lid.x;`,
    `let m0 = wid.y * ${u(blockRowsOf(s))} + sgRow * ${u(s.tm * TILE)};`,
    `let n0 = wid.x * ${u(blockColsOf(s))} + sgCol * ${u(s.tn * TILE)};`,
    // this subgroup's tiles in the staged blocks
    `let aTile = sgRow * ${u(s.tm * TILE * (s.bk + 8))}; let bTile = sgCol * ${u(s.tn * TILE)};`,
    ...range(s.tm).flatMap((i) => range(s.tn).map((j) => `var acc${i}_${j} = ${RESULT}();`)),
    ...(staged ? stagedLoop(s, K, N) : directLoop(s, K, N)),
    ...range(s.tm).flatMap((i) => range(s.tn).map((j) =>
      `subgroupMatrixStore(&y, (m0 + ${u(i * TILE)}) * ${u(N)} + n0 + ${u(j * TILE)}, acc${i}_${j}, false, ${u(N)});`)),
  ];
  return k.build({
    extensions: ['f16', 'chromium_experimental_subgroup_matrix'],
    header: `${several ? 'diagnostic(off, subgroup_uniformity);\n' : ''}${k.declarations()}\n\n${shared.join('\n')}\n\n`,
    entry: { workgroupSize: [SUBGROUP_WIDTH, subgroupsOf(s)], params: [WID, LID], body: body.join('\n  ') },
    workgroups: [N / blockColsOf(s), M / blockRowsOf(s), 1],
  });
}
