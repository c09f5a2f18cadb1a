/**
 * Gemm/MatMul with B as a weight texture: constant float B shared by every batch entry, stored as
 * texture rows n of K values (2.5D texture layout, see kernel/texture-layout.ts).
 */
import { blockedFits } from './blocked.js';
import { isFloat, numElements, type ConstTensor } from '../../ir/types.js';
import { dot, u } from '../../kernel/wgsl.js';
import { stridesOf } from '../../kernel/strides.js';
import { kernel, LID, WID } from '../../kernel/builder.js';
import { isTextureShape, packTexels, TEXEL_VALUES, texelLoad, textureShapeFor } from '../../kernel/texture-layout.js';
import type { KernelSpec, LowerTensor, TextureShape } from '../../kernel/types.js';
import type { LowerContext, ShapeContext, TextureWeightCandidate } from '../op.js';
import { biasOperand, foldBatchIntoRows, geometryOf, residualOperand, type Epilogue, type MatmulGeometry } from './geometry.js';
import type { BPart } from './packing.js';
import { bindOperands, chooseRowTile, chooseWorkgroupSize, operandList, storeStatement, type KernelPlan } from './epilogue.js';

export function textureCandidate(ctx: ShapeContext): TextureWeightCandidate | undefined {
  const [a, b] = ctx.inputs;
  if (!a || !b || !ctx.consts[1] || !isFloat(b.dtype) || !isFloat(a.dtype)) return undefined;
  const g = foldBatchIntoRows(geometryOf(ctx.node, a.shape, b.shape));
  if (g.b.batchStrides.some((s) => s !== 0)) return undefined;
  return {
    costKind: 'matmul', rows: g.N, reduction: g.K,
    // the blocked GEMM (M and N at least one block) and split-K gemv (M <= 4, long K) outrun the
    // texture kernel on real GPUs: BERT-base's 72 MatMuls took 24 ms of GPU time per run as
    // texture kernels on the H200 (bench/results/h200/side-by-side.md)
    bufferKernelIsTiled: (choices) => (choices.gemm === 'blocked' && blockedFits(g.M, g.N)) || (choices.gemv === 'split-k' && g.M <= 4 && g.K >= 256),
  };
}

/** Texture row n holds B's column n (element (k, n) at k * rowStride + n * colStride), K values. */
function texelsOfB(g: MatmulGeometry, shape: TextureShape, b: ConstTensor): Float32Array {
  return packTexels(shape, g.N, g.K, (n, k) => Number(b.data[k * g.b.rowStride + n * g.b.colStride]));
}

/** A's rows can be read as vec4 along k: contiguous k, K a multiple of 4, every row start aligned. */
function aVec4Loadable(g: MatmulGeometry): boolean {
  return g.a.colStride === 1 && g.K % 4 === 0 && g.a.rowStride % 4 === 0 && g.a.batchStrides.every((s) => s % 4 === 0);
}

/**
 * The texture kernel: like kernelSource (rowTile rows x 4 columns per invocation), but per texel t
 * it loads 4 k-values of each of the 4 columns (one texel per column) and of each A row, and
 * accumulates vec4 dot products. Values of A past K are masked (the texels there are zero).
 */
function textureKernel(label: string, p: KernelPlan, shape: TextureShape, ctx: LowerContext, bindings: readonly LowerTensor[], workgroups: [number, number, number]): KernelSpec {
  const { g, rowTile } = p;
  const { M, K, N } = g;
  const rows = Array.from({ length: rowTile }, (_, i) => i);
  const cols = [0, 1, 2, 3];
  const aVec4 = aVec4Loadable(g);
  const batchCoords = g.batchShape.map((_, i) => `bc${i}`);
  const batchStrides = stridesOf(g.batchShape);
  const aLoad = (i: number): string => {
    if (aVec4) return `a[(ar${i}) / 4u + t]`;
    const lanes = [0, 1, 2, 3].map((l) => {
      const k = K % TEXEL_VALUES === 0 ? `(k0 + ${u(l)})` : `min(k0 + ${u(l)}, ${u(K - 1)})`;
      const load = `a[ar${i} + ${k} * ${u(g.a.colStride)}]`;
      return K % TEXEL_VALUES === 0 ? load : `select(0.0, ${load}, k0 + ${u(l)} < ${u(K)})`;
    });
    return `vec4<f32>(${lanes.join(', ')})`;
  };
  const body = [
    `let nt = wid.x * ${u(p.workgroupSize)} + lid.x;`,
    'let n0 = nt * 4u;',
    `if (n0 >= ${u(N)}) { return; }`,
    `let m0 = wid.y * ${u(rowTile)};`,
    ...g.batchShape.map((d, i) => `let bc${i} = (wid.z / ${u(batchStrides[i]!)}) % ${u(d)};`),
    `let aBase = ${dot(batchCoords, g.a.batchStrides)};`,
    `let yBase = wid.z * ${u(M * N)};`,
    ...rows.map((i) => `let ar${i} = aBase + ${M % rowTile === 0 ? `(m0 + ${u(i)})` : `min(m0 + ${u(i)}, ${u(M - 1)})`} * ${u(g.a.rowStride)};`),
    // columns past N read row N-1 (in bounds) and are never stored
    ...cols.map((j) => `let col${j} = ${N % 4 === 0 ? `n0 + ${u(j)}` : `min(n0 + ${u(j)}, ${u(N - 1)})`};`),
    ...rows.map((i) => `var acc${i} = vec4<f32>();`),
    `for (var t = 0u; t < ${u(shape.width)}; t++) {`,
    ...(aVec4 ? [] : ['  let k0 = t * 4u;']),
    ...cols.map((j) => `  let wv${j} = ${texelLoad('b', shape, 't', `col${j}`)};`),
    ...rows.flatMap((i) => [`  let av${i} = ${aLoad(i)};`, `  acc${i} += vec4<f32>(${cols.map((j) => `dot(av${i}, wv${j})`).join(', ')});`]),
    '}',
    ...rows.flatMap((i) => [0, 1, 2, 3].map((j) => storeStatement(p, ctx, i, j))),
  ];
  const k = kernel(label);
  bindOperands(k, bindings, 'f32', 'texture', aVec4, p.epi);
  return k.build({
    header: `${k.declarations()}\n\n// ${ctx.node.opType.toLowerCase()} (texture ${shape.width}x${shape.height}x${shape.layers}): ${rowTile} rows x 4 columns per invocation\n`,
    entry: { workgroupSize: p.workgroupSize, params: [WID, LID], body: body.join('\n  ') },
    workgroups,
  });
}

/** Lowers with B as a texture; false when it cannot be one after all (then the buffer kernel runs). */
export function lowerTexture(ctx: LowerContext, g: MatmulGeometry, epi: Epilogue): boolean {
  const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
  const c = biasOperand(ctx.node, ctx.inputs);
  if (!b.data || !ctx.textureConstant || !isFloat(a.type.dtype) || g.b.batchStrides.some((s) => s !== 0)) return false;
  const shape = textureShapeFor(g.N, g.K, ctx.limits);
  if (!isTextureShape(shape)) return false;
  const columnTiles = Math.ceil(g.N / 4);
  const rowTile = chooseRowTile(g.M);
  // the texture path never splits B: it is one part covering every column
  const part: BPart = { tensor: b, layout: g.b, n0: 0, width: g.N, vec4: false };
  const plan: KernelPlan = { g, type: 'f32', part, epi, rowTile, workgroupSize: chooseWorkgroupSize(columnTiles) };
  const workgroups: [number, number, number] = [Math.ceil(columnTiles / plan.workgroupSize), Math.ceil(g.M / rowTile), numElements(g.batchShape)];
  if (workgroups.some((w) => w > ctx.limits.maxComputeWorkgroupsPerDimension)) return false;
  const texture = ctx.textureConstant('weights_texels', shape, texelsOfB(g, shape, b.data));
  const label = `${ctx.node.opType.toLowerCase()}${g.M === 1 ? '_gemv' : ''}_tex`;
  ctx.kernel(textureKernel(label, plan, shape, ctx, operandList(a, texture, epi, c, residualOperand(ctx.node, ctx.inputs), ctx.outputs[0]!), workgroups));
  return true;
}
