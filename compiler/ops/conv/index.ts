/**
 * Conv and ConvTranspose (1-D, 2-D and 3-D spatial, groups incl. depthwise, dilations, strides,
 * pads, auto_pad, output_padding / output_shape).
 *
 * Register-tiled kernels: an invocation computes `ocTile` output channels x `pxTile` output
 * pixels, reducing over (kernel tap, input channel). Weights are re-laid out once (packing.ts)
 * so that a tap's ocTile weights are one run of vec4s. The channel block comes from
 * workgroup_id.y and the batch from workgroup_id.z; the pixels from workgroup_id.x and the local
 * id. See KernelKind (plan.ts) for the three variants (rows.ts, pointwise.ts, gather.ts) and
 * bench/conv-bench.ts for the measurements behind the tile sizes. Conv with a constant float W
 * may instead read its weights from a texture (texture.ts).
 *
 * The window geometry helpers (geometry.ts: auto_pad, ceil_mode, ...) are shared with pool.ts.
 */
import { isFloat, type FusedActivation, type TensorType } from '../../ir/types.js';
import { checkBindable } from '../../kernel/limits.js';
import { isTextureShape, textureShapeFor } from '../../kernel/texture-layout.js';
import type { KernelSpec } from '../../kernel/types.js';
import { describeNode } from '../../ir/graph.js';
import type { LowerContext, OpDef, ShapeContext, TextureWeightCandidate } from '../op.js';
import { convShapes, convTransposeShapes, toVol, type ConvShapes } from './geometry.js';
import { makePlan, type ConvPlan, type ConvTiles } from './plan.js';
import { packedWeightCount, packedWeightsFor } from './packing.js';
import type { ConvTensors } from './tiled.js';
import { rowsKernel } from './rows.js';
import { pointwiseKernel } from './pointwise.js';
import { gatherKernel } from './gather.js';
import { implicitGemmApplies, lowerImplicitGemm } from './implicit-gemm.js';
import { convReduction, convTextureKernel, convTextureWorkgroups, convTexels, type ConvTextureGeometry } from './texture.js';

export type { ConvTiles } from './plan.js';

const BINDING_ADVICE = 'reduce the batch size or input resolution';

function convKernel(p: ConvPlan, label: string, t: ConvTensors, activation: FusedActivation | undefined): KernelSpec {
  return { ...convTemplate(p, label, t, activation), loopTrips: convLoopTrips(p) };
}

function convTemplate(p: ConvPlan, label: string, t: ConvTensors, activation: FusedActivation | undefined): KernelSpec {
  switch (p.kind) {
    case 'rows': return rowsKernel(p, label, t, activation);
    case 'pointwise': return pointwiseKernel(p, label, t, activation);
    case 'gather': return gatherKernel(p, label, t, activation);
  }
}

/** One invocation loops over every kernel tap and input channel of its group (kd x kh x kw x channels, plus the outer loops). */
function convLoopTrips(p: ConvPlan): number {
  const [kd, kh, kw] = p.kVol;
  return kd! * kh! * (kw! * (p.shapes.inPerGroup + 1) + 1) + kd!;
}

function kernelLabel(p: ConvPlan): string {
  const dims = p.shapes.geometry.inShape.length;
  const k = p.shapes.geometry.kernel;
  const kind = p.mode === 'conv' ? 'conv' : 'conv_transpose';
  const depthwise = p.shapes.inPerGroup === 1 && p.shapes.outPerGroup <= 2 && p.shapes.groups > 1 ? '_dw' : '';
  return `${kind}${dims}d_${k.join('x')}${depthwise}`;
}

function lowerConvLike(ctx: LowerContext, p: ConvPlan): void {
  const [x, w, bias] = ctx.inputs;
  const y = ctx.outputs[0]!;
  const packedType: TensorType = { dtype: w!.type.dtype, shape: [packedWeightCount(p)] };
  checkBindable(describeNode(ctx.node), [x!, y, { id: `${p.mode}_packed_weights`, type: packedType }], ctx.limits, BINDING_ADVICE);
  const packed = packedWeightsFor(ctx, p);
  ctx.kernel(convKernel(p, kernelLabel(p), { x: x!, w: packed, b: bias, y }, ctx.activation));
}

// ---------------------------------------------------------------------------------------------
// OpDefs
// ---------------------------------------------------------------------------------------------

function outputType(x: TensorType, s: ConvShapes): TensorType {
  return { dtype: x.dtype, shape: [s.batch, s.outChannels, ...s.geometry.outShape] };
}

// ---------------------------------------------------------------------------------------------
// Texture layout (texture.ts): Conv with a constant float W only
// ---------------------------------------------------------------------------------------------

function textureGeometry(shapes: ConvShapes): ConvTextureGeometry {
  const g = shapes.geometry;
  return {
    batch: shapes.batch, inChannels: shapes.inChannels, outChannels: shapes.outChannels, groups: shapes.groups,
    inPerGroup: shapes.inPerGroup, outPerGroup: shapes.outPerGroup,
    inVol: toVol(g.inShape, 1), outVol: toVol(g.outShape, 1), kVol: toVol(g.kernel, 1),
    strides: toVol(g.strides, 1), dilations: toVol(g.dilations, 1), padsBegin: toVol(g.padsBegin, 0),
  };
}

function convTextureCandidate(ctx: ShapeContext): TextureWeightCandidate | undefined {
  const [x, w] = ctx.inputs;
  if (!x || !w || !ctx.consts[1] || !isFloat(w.dtype)) return undefined;
  const shapes = convShapes(ctx);
  const g = textureGeometry(shapes);
  // the implicit GEMM (blocked core) outruns the texture kernel wherever it applies
  return { costKind: 'conv', rows: shapes.outChannels, reduction: convReduction(g), bufferKernelIsTiled: (choices) => implicitGemmApplies(g, choices) };
}

/** The texture variant; false when this node's weight cannot be a texture after all (then buffers). */
function lowerConvTexture(ctx: LowerContext, shapes: ConvShapes): boolean {
  const [x, w, bias] = ctx.inputs;
  if (!w?.data || !ctx.textureConstant) return false;
  const g = textureGeometry(shapes);
  const shape = textureShapeFor(shapes.outChannels, convReduction(g), ctx.limits);
  if (!isTextureShape(shape)) return false;
  const y = ctx.outputs[0]!;
  checkBindable(describeNode(ctx.node), [x!, y], ctx.limits, BINDING_ADVICE);
  if (convTextureWorkgroups(g).some((n) => n > ctx.limits.maxComputeWorkgroupsPerDimension)) return false;
  const texture = ctx.textureConstant('conv_weight_texels', shape, convTexels(g, shape, w.data));
  const dims = shapes.geometry.inShape.length;
  const label = `conv${dims}d_${shapes.geometry.kernel.join('x')}_tex`;
  ctx.kernel(convTextureKernel(label, g, shape, { x: x!, w: texture, b: bias, y }, ctx.activation));
  return true;
}

/** The implicit-GEMM variant (implicit-gemm.ts) where the profile's kernels are blocked; false otherwise. */
function lowerConvImplicitGemm(ctx: LowerContext, shapes: ConvShapes): boolean {
  const [x, w, bias] = ctx.inputs;
  const g = textureGeometry(shapes);
  if (!implicitGemmApplies(g, ctx.kernelChoices) || x!.type.dtype !== 'float32' || w!.type.dtype !== 'float32') return false;
  const y = ctx.outputs[0]!;
  checkBindable(describeNode(ctx.node), [x!, w!, y], ctx.limits, BINDING_ADVICE);
  const label = `conv${shapes.geometry.inShape.length}d_${shapes.geometry.kernel.join('x')}_igemm`;
  lowerImplicitGemm(label, g, ctx, { x: x!, w: w!, b: bias, y }, ctx.activation);
  return true;
}

export const convOp: OpDef = {
  opTypes: ['Conv'],
  costClass: 'reusable',
  fusesActivation: true,
  inferTypes: (ctx) => [outputType(ctx.inputs[0]!, convShapes(ctx))],
  textureWeight: convTextureCandidate,
  lower(ctx) {
    const shapes = convShapes({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
    if (ctx.weightLayout === 'texture' && lowerConvTexture(ctx, shapes)) return;
    if (lowerConvImplicitGemm(ctx, shapes)) return;
    lowerConvLike(ctx, makePlan('conv', shapes));
  },
};

export const convTransposeOp: OpDef = {
  opTypes: ['ConvTranspose'],
  costClass: 'reusable',
  fusesActivation: true,
  inferTypes: (ctx) => [outputType(ctx.inputs[0]!, convTransposeShapes(ctx))],
  lower(ctx) {
    const shapes = convTransposeShapes({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
    lowerConvLike(ctx, makePlan('transpose', shapes));
  },
};

export const convOps: readonly OpDef[] = [convOp, convTransposeOp];

/** For benchmarks and tests: the Conv kernel with explicit tile sizes. */
export function lowerConvWithTiles(ctx: LowerContext, tiles: ConvTiles): void {
  const shapes = convShapes({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
  lowerConvLike(ctx, makePlan('conv', shapes, tiles));
}
