/**
 * Window geometry of Conv, ConvTranspose and the pooling ops (auto_pad, pads, strides,
 * dilations, ceil_mode, output_padding / output_shape) and the shape rules of Conv and
 * ConvTranspose. Shared with pool.ts.
 */
import { attrInt, attrInts, attrString } from '../../ir/attrs.js';
import { isFloat, type Node, type TensorType } from '../../ir/types.js';
import { describeNode } from '../../ir/graph.js';
import { fail, quoteName } from '../../errors.js';
import type { ShapeContext } from '../op.js';

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
const AUTO_PADS: readonly AutoPad[] = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

/** Per spatial axis: where each output window starts in the (unpadded) input and how it steps. */
export interface WindowGeometry {
  inShape: number[];
  outShape: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
}

export function readAutoPad(node: Node): AutoPad {
  const value = attrString(node, 'auto_pad', 'NOTSET');
  if (!(AUTO_PADS as readonly string[]).includes(value)) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: auto_pad ${quoteName(value)} is not one of ${AUTO_PADS.join(', ')}`);
  }
  return value as AutoPad;
}

/**
 * An ints attribute with one value per spatial axis (or `perAxis` values per axis, for pads),
 * defaulting to `fallback` everywhere; every value must be >= `min`.
 */
export function spatialInts(node: Node, name: string, rank: number, fallback: number, min: number, perAxis = 1): number[] {
  const values = attrInts(node, name) ?? new Array<number>(rank * perAxis).fill(fallback);
  if (values.length !== rank * perAxis) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute ${quoteName(name)} has ${values.length} values [${values}], expected ${rank * perAxis} for ${rank} spatial axes`);
  }
  const bad = values.find((v) => !Number.isInteger(v) || v < min);
  if (bad !== undefined) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute ${quoteName(name)} = [${values}] contains ${bad}; every value must be an integer >= ${min}`);
  }
  return values;
}

/** Output length of a sliding window; ceil mode drops a last window that would start in the end padding. */
function slidingOutputSize(inSize: number, padBegin: number, padEnd: number, effectiveKernel: number, stride: number, ceilMode: boolean): number {
  const span = inSize + padBegin + padEnd - effectiveKernel;
  if (span < 0) return 0;
  if (!ceilMode) return Math.floor(span / stride) + 1;
  let out = Math.ceil(span / stride) + 1;
  if ((out - 1) * stride >= inSize + padBegin) out--;
  return out;
}

/**
 * The window geometry of Conv and the pooling ops: explicit pads or auto_pad (SAME_* gives
 * ceil(in / stride) outputs, the odd padding going to the end for SAME_UPPER and to the
 * beginning for SAME_LOWER).
 */
export function forwardWindow(node: Node, inShape: readonly number[], kernel: readonly number[], options: { ceilMode?: boolean; dilations?: number[] } = {}): WindowGeometry {
  const rank = inShape.length;
  const strides = spatialInts(node, 'strides', rank, 1, 1);
  const dilations = options.dilations ?? spatialInts(node, 'dilations', rank, 1, 1);
  const autoPad = readAutoPad(node);
  const pads = autoPad === 'NOTSET' ? spatialInts(node, 'pads', rank, 0, 0, 2) : new Array<number>(2 * rank).fill(0);
  const geometry: WindowGeometry = {
    inShape: [...inShape], outShape: [], kernel: [...kernel], strides, dilations,
    padsBegin: pads.slice(0, rank), padsEnd: pads.slice(rank),
  };
  for (let axis = 0; axis < rank; axis++) {
    const inSize = inShape[axis]!;
    const stride = strides[axis]!;
    const effectiveKernel = (kernel[axis]! - 1) * dilations[axis]! + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const out = Math.ceil(inSize / stride);
      const total = Math.max(0, (out - 1) * stride + effectiveKernel - inSize);
      const begin = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
      geometry.padsBegin[axis] = begin;
      geometry.padsEnd[axis] = total - begin;
    }
    const out = slidingOutputSize(inSize, geometry.padsBegin[axis]!, geometry.padsEnd[axis]!, effectiveKernel, stride, options.ceilMode ?? false);
    if (out <= 0) {
      fail('FM_SHAPE', `${describeNode(node)}: spatial axis ${axis} of size ${inSize} (pads ${geometry.padsBegin[axis]}+${geometry.padsEnd[axis]}) is smaller than the kernel extent ${effectiveKernel}; no output position remains`);
    }
    geometry.outShape.push(out);
  }
  return geometry;
}

/**
 * ConvTranspose geometry. With output_shape the total padding is derived from it and split like
 * SAME_UPPER (more at the end) or, for every other auto_pad, more at the beginning; SAME_* without
 * output_shape targets in * stride outputs.
 */
function transposeWindow(node: Node, inShape: readonly number[], kernel: readonly number[]): WindowGeometry & { outputPadding: number[] } {
  const rank = inShape.length;
  const strides = spatialInts(node, 'strides', rank, 1, 1);
  const dilations = spatialInts(node, 'dilations', rank, 1, 1);
  const outputPadding = spatialInts(node, 'output_padding', rank, 0, 0);
  const autoPad = readAutoPad(node);
  const pads = autoPad === 'NOTSET' ? spatialInts(node, 'pads', rank, 0, 0, 2) : new Array<number>(2 * rank).fill(0);
  const requested = attrInts(node, 'output_shape');
  if (requested && requested.length !== rank && requested.length !== rank + 2) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: output_shape [${requested}] must have ${rank} (spatial) or ${rank + 2} values`);
  }
  const geometry = {
    inShape: [...inShape], outShape: [] as number[], kernel: [...kernel], strides, dilations, outputPadding,
    padsBegin: pads.slice(0, rank), padsEnd: pads.slice(rank),
  };
  for (let axis = 0; axis < rank; axis++) {
    const full = (inShape[axis]! - 1) * strides[axis]! + outputPadding[axis]! + (kernel[axis]! - 1) * dilations[axis]! + 1;
    if (outputPadding[axis]! >= Math.max(strides[axis]!, dilations[axis]!)) {
      fail('FM_ONNX_INVALID', `${describeNode(node)}: output_padding[${axis}] = ${outputPadding[axis]} must be smaller than max(stride, dilation) = ${Math.max(strides[axis]!, dilations[axis]!)}`);
    }
    const target = requested ? requested[requested.length - rank + axis]! : autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' ? inShape[axis]! * strides[axis]! : undefined;
    if (target !== undefined) {
      // a target beyond the full extent leaves trailing outputs that no input reaches (bias only)
      const total = Math.max(0, full - target);
      const begin = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
      geometry.padsBegin[axis] = begin;
      geometry.padsEnd[axis] = full - begin - target;
    }
    const out = full - geometry.padsBegin[axis]! - geometry.padsEnd[axis]!;
    if (out <= 0) fail('FM_SHAPE', `${describeNode(node)}: spatial axis ${axis} would have ${out} outputs; reduce pads`);
    geometry.outShape.push(out);
  }
  return geometry;
}


export type Vec3 = [number, number, number];

/** `values` left-padded with `fill` to 3 axes (D, H, W). */
export function toVol(values: readonly number[], fill: number): Vec3 {
  const padded = [...new Array<number>(3 - values.length).fill(fill), ...values];
  return padded as Vec3;
}


/** A Conv's batch and channel counts, per group too. */
export interface ConvChannels {
  batch: number;
  inChannels: number;
  outChannels: number;
  groups: number;
  inPerGroup: number;
  outPerGroup: number;
}

/** A Conv's window over its spatial axes, left-padded to 3 (D, H, W). */
export interface ConvVolumes {
  inVol: Vec3;
  outVol: Vec3;
  kVol: Vec3;
  strides: Vec3;
  dilations: Vec3;
  padsBegin: Vec3;
}

// ---------------------------------------------------------------------------------------------
// Shape rules
// ---------------------------------------------------------------------------------------------

const MAX_SPATIAL_RANK = 3;

export interface ConvShapes extends ConvChannels {
  geometry: WindowGeometry;
}

function requireFloat(node: Node, t: TensorType): void {
  if (!isFloat(t.dtype)) fail('FM_DTYPE', `${describeNode(node)}: input of type ${t.dtype} is not supported; ${node.opType} takes float tensors`);
}

/** Validates X, W (and B) and returns the kernel shape from W, checked against kernel_shape. */
function checkConvInputs(node: Node, x: TensorType | undefined, w: TensorType | undefined): number[] {
  if (!x || !w) fail('FM_ONNX_INVALID', `${describeNode(node)}: inputs X and W are required`);
  requireFloat(node, x);
  const rank = x.shape.length - 2;
  if (rank < 1) fail('FM_SHAPE', `${describeNode(node)}: input X has shape [${x.shape}]; expected (N, C, D1, ...) with at least one spatial axis`);
  if (rank > MAX_SPATIAL_RANK) fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: ${rank}-D spatial input [${x.shape}] is not supported (at most ${MAX_SPATIAL_RANK} spatial axes)`);
  if (w.shape.length !== x.shape.length) fail('FM_SHAPE', `${describeNode(node)}: weight W has shape [${w.shape}], expected rank ${x.shape.length} like X [${x.shape}]`);
  const kernel = w.shape.slice(2);
  const declared = attrInts(node, 'kernel_shape');
  if (declared && JSON.stringify(declared) !== JSON.stringify(kernel)) {
    fail('FM_SHAPE', `${describeNode(node)}: kernel_shape [${declared}] does not match the spatial shape [${kernel}] of W`);
  }
  return kernel;
}

function readGroups(node: Node): number {
  const groups = attrInt(node, 'group', 1);
  if (!Number.isInteger(groups) || groups < 1) fail('FM_ONNX_INVALID', `${describeNode(node)}: group = ${groups} must be a positive integer`);
  return groups;
}

function checkBias(node: Node, b: TensorType | undefined, outChannels: number): void {
  if (b && (b.shape.length !== 1 || b.shape[0] !== outChannels)) {
    fail('FM_SHAPE', `${describeNode(node)}: bias B has shape [${b.shape}], expected [${outChannels}] (one value per output channel)`);
  }
}

export function convShapes(ctx: Pick<ShapeContext, 'node' | 'inputs'>): ConvShapes {
  const { node } = ctx;
  const [x, w, b] = ctx.inputs;
  const kernel = checkConvInputs(node, x, w);
  const groups = readGroups(node);
  const [batch, inChannels] = x!.shape as [number, number];
  const [outChannels, inPerGroup] = w!.shape as [number, number];
  if (inPerGroup * groups !== inChannels) {
    fail('FM_SHAPE', `${describeNode(node)}: X has ${inChannels} channels but W [${w!.shape}] with group ${groups} expects ${inPerGroup * groups}`);
  }
  if (outChannels % groups !== 0) fail('FM_SHAPE', `${describeNode(node)}: ${outChannels} output channels are not divisible by group ${groups}`);
  checkBias(node, b, outChannels);
  const geometry = forwardWindow(node, x!.shape.slice(2), kernel);
  return { batch, inChannels, outChannels, groups, inPerGroup, outPerGroup: outChannels / groups, geometry };
}

export function convTransposeShapes(ctx: Pick<ShapeContext, 'node' | 'inputs'>): ConvShapes {
  const { node } = ctx;
  const [x, w, b] = ctx.inputs;
  const kernel = checkConvInputs(node, x, w);
  const groups = readGroups(node);
  const [batch, inChannels] = x!.shape as [number, number];
  const [weightIn, outPerGroup] = w!.shape as [number, number];
  if (weightIn !== inChannels) fail('FM_SHAPE', `${describeNode(node)}: W [${w!.shape}] has ${weightIn} input channels, X [${x!.shape}] has ${inChannels}`);
  if (inChannels % groups !== 0) fail('FM_SHAPE', `${describeNode(node)}: ${inChannels} input channels are not divisible by group ${groups}`);
  const outChannels = outPerGroup * groups;
  checkBias(node, b, outChannels);
  const geometry = transposeWindow(node, x!.shape.slice(2), kernel);
  return { batch, inChannels, outChannels, groups, inPerGroup: inChannels / groups, outPerGroup, geometry };
}
