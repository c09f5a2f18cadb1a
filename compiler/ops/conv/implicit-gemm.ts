/**
 * Conv as an implicit GEMM on the blocked GEMM core (matmul/blocked.ts), for real-GPU profiles:
 * per batch entry, Y[oc, p] = sum_r W[oc, r] * X_col[r, p], where r runs over (input channel,
 * kernel tap) in W's own order and p over the output pixels. A is W as stored ([Cout, Cin * taps],
 * rows contiguous, no repacking); B is the im2col matrix, never materialised: the workgroup stages
 * its K-step block of it straight from X, computing each element's input coordinate (zero outside
 * the padded input). A 1x1 conv with unit strides and no padding reads X rows in place, as vec4
 * where the pixel count allows.
 *
 * The direct kernels (rows.ts, pointwise.ts, texture.ts) keep one invocation per few channels x
 * few pixels with no workgroup-memory reuse: on the H200 DenseNet-121's 120 convs took 19 ms of
 * GPU time per run that way (bench/results/h200/). Grouped and depthwise convs keep their
 * specialised kernels (no shared reduction to tile), as do ConvTranspose and llvmpipe profiles.
 */
import { lit, u } from '../../kernel/wgsl.js';
import { numElements, type FusedActivation } from '../../ir/types.js';
import type { KernelChoices } from '../../target/limits.js';
import type { LowerTensor } from '../../kernel/types.js';
import type { LowerContext } from '../op.js';
import { blockedKernels, type BLoader } from '../matmul/blocked.js';
import type { MatmulGeometry } from '../matmul/geometry.js';
import type { KernelPlan } from '../matmul/epilogue.js';
import type { ConvChannels, ConvVolumes } from './geometry.js';

export interface ImplicitGemmGeometry extends ConvChannels, ConvVolumes {}

/** Smallest output channels and pixels worth a 64 x 64 block (fewer leave most of it idle). */
const MIN_SIDE = 16;

/** Whether this conv runs as an implicit GEMM under these kernel choices. */
export function implicitGemmApplies(g: ImplicitGemmGeometry, choices: KernelChoices | undefined): boolean {
  return choices?.gemm === 'blocked' && g.groups === 1 && g.outChannels >= MIN_SIDE && numElements(g.outVol) >= MIN_SIDE;
}

/** 1x1 kernel, unit strides, no padding: B row r is input channel r's pixels, in place. */
function isPointwise(g: ImplicitGemmGeometry): boolean {
  return [0, 1, 2].every((i) => g.kVol[i] === 1 && g.strides[i] === 1 && g.padsBegin[i] === 0 && g.inVol[i] === g.outVol[i]);
}

/** The im2col element loads of one staged vec4 (row k, pixels n0 .. n0 + 3). */
function im2colLoader(g: ImplicitGemmGeometry): BLoader {
  const taps = numElements(g.kVol);
  const inPix = numElements(g.inVol);
  const outPix = numElements(g.outVol);
  const [, kh, kw] = g.kVol;
  const [, oh, ow] = g.outVol;
  const axis = (name: string, o: string, kIndex: string, i: number) =>
    `let ${name} = i32(${o} * ${u(g.strides[i]!)} + ${kIndex} * ${u(g.dilations[i]!)}) - ${lit(g.padsBegin[i]!, 'i32')};`;
  const inside = (name: string, size: number) => `${name} >= 0i && ${name} < ${lit(size, 'i32')}`;
  const clamped = (name: string, size: number) => `u32(clamp(${name}, 0i, ${lit(size - 1, 'i32')}))`;
  return () => {
    const tap = [
      `let ic = k / ${u(taps)}; let tap = k % ${u(taps)};`,
      `let kz = tap / ${u(kh * kw)}; let ky = (tap / ${u(kw)}) % ${u(kh)}; let kx = tap % ${u(kw)};`,
    ];
    const lanes = [0, 1, 2, 3].map((j) => [
      `{ let px = min(n0 + ${u(j)}, ${u(outPix - 1)});`,
      `  let oz = px / ${u(oh * ow)}; let oy = (px / ${u(ow)}) % ${u(oh)}; let ox = px % ${u(ow)};`,
      `  ${axis('iz', 'oz', 'kz', 0)} ${axis('iy', 'oy', 'ky', 1)} ${axis('ix', 'ox', 'kx', 2)}`,
      `  let at = bBase + ic * ${u(inPix)} + (${clamped('iz', g.inVol[0]!)} * ${u(g.inVol[1]!)} + ${clamped('iy', g.inVol[1]!)}) * ${u(g.inVol[2]!)} + ${clamped('ix', g.inVol[2]!)};`,
      `  v[${j}] = select(0.0, b[at], ${inside('iz', g.inVol[0]!)} && ${inside('iy', g.inVol[1]!)} && ${inside('ix', g.inVol[2]!)}); }`,
    ].join('\n    '));
    // a 2-D conv has depth 1: its z terms are constants the shader compiler folds away
    return [...tap, ...lanes].join('\n    ');
  };
}

/** B row k of a pointwise conv: input channel k's pixels, vec4 when the pixel count is a multiple of 4. */
function pointwiseLoader(g: ImplicitGemmGeometry, vec4: boolean): BLoader {
  const pix = numElements(g.outVol);
  if (vec4) return () => `v = b[(bBase + k * ${u(pix)} + n0) / 4u];`;
  return () => `v = vec4<f32>(${[0, 1, 2, 3].map((j) => `b[bBase + k * ${u(pix)} + min(n0 + ${u(j)}, ${u(pix - 1)})]`).join(', ')});`;
}

/**
 * Lowers the conv: W as A ([Cout, Cin * taps]), X as the implicit B, bias through the GEMM
 * epilogue's C (one value per row), the batch as GEMM batch.
 */
export function lowerImplicitGemm(label: string, g: ImplicitGemmGeometry, ctx: LowerContext, t: { x: LowerTensor; w: LowerTensor; b?: LowerTensor; y: LowerTensor }, activation: FusedActivation | undefined): void {
  const M = g.outChannels;
  const K = g.inChannels * numElements(g.kVol);
  const N = numElements(g.outVol);
  const inBatch = g.inChannels * numElements(g.inVol);
  const pointwise = isPointwise(g);
  const vec4 = pointwise && N % 4 === 0;
  const geometry: MatmulGeometry = {
    M, K, N, batchShape: [g.batch],
    a: { rowStride: K, colStride: 1, batchStrides: [0] },
    b: { rowStride: N, colStride: 1, batchStrides: [inBatch] },
    outShape: [g.batch, M, N],
  };
  const plan: KernelPlan = {
    g: geometry, type: 'f32',
    part: { tensor: t.x, layout: geometry.b, n0: 0, width: N, vec4 },
    epi: t.b ? { alpha: 1, beta: 1, bias: { strideM: 1, strideN: 0 } } : { alpha: 1, beta: 0 },
    rowTile: 4, workgroupSize: 256,
  };
  const loader = pointwise ? pointwiseLoader(g, vec4) : im2colLoader(g);
  const bindings = [t.w, t.x, ...(t.b ? [t.b] : []), t.y];
  for (const spec of blockedKernels(label, plan, { ...ctx, activation }, bindings, loader)) ctx.kernel(spec);
}
