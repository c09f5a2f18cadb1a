/**
 * Resize (opsets 10-19) and its predecessor Upsample (opsets 7-9). Scales and sizes are
 * compile-time constants, so every output coordinate's source pixels and weights along each
 * resized axis are known ahead of time. They are computed here once, in f32 arithmetic that
 * mirrors onnxruntime's (so nearest-pixel rounding ties break the same way), and shipped as a
 * small "taps" table; the kernel gathers one output element per invocation from it. Axes that
 * are not resized cost nothing: they index the input directly.
 */
import { attrFloat, attrFloats, attrInt, attrInts, attrString } from '../ir/attrs.js';
import { constToInts, makeConst } from '../ir/tensor.js';
import { stridesOf } from '../kernel/strides.js';
import { type ConstTensor, type Node, type TensorType, isFloat, numElements } from '../ir/types.js';
import { dot, grid1D, u, unravel, wgslType, type WgslScalar } from '../kernel/wgsl.js';
import { GID, kernel } from '../kernel/builder.js';
import { describeNode } from '../ir/graph.js';
import { fail, quoteName } from '../errors.js';
import type { OpDef } from './op.js';
import type { KernelSpec, LowerTensor } from '../kernel/types.js';
import { assertBindable } from './shape.js';

type InterpolationMode = 'nearest' | 'linear' | 'cubic';
type CoordinateMode =
  | 'half_pixel' | 'half_pixel_symmetric' | 'pytorch_half_pixel' | 'align_corners' | 'asymmetric'
  | 'tf_half_pixel_for_nn';
/** 'simple' is the rounding of Upsample and Resize-10, which had no nearest_mode attribute. */
type NearestMode = 'round_prefer_floor' | 'round_prefer_ceil' | 'floor' | 'ceil' | 'simple';

const COORDINATE_MODES: readonly string[] = [
  'half_pixel', 'half_pixel_symmetric', 'pytorch_half_pixel', 'align_corners', 'asymmetric', 'tf_half_pixel_for_nn',
];
const NEAREST_MODES: readonly string[] = ['round_prefer_floor', 'round_prefer_ceil', 'floor', 'ceil'];

interface ResizePlan {
  inShape: number[];
  outShape: number[];
  /** per-axis scale (an f32 value) that the coordinate transforms divide by */
  scales: number[];
  mode: InterpolationMode;
  coordinateMode: CoordinateMode;
  nearestMode: NearestMode;
  cubicA: number;
  excludeOutside: boolean;
}

/** One source pixel of an output coordinate along one axis, with its interpolation weight. */
interface Tap {
  index: number;
  weight: number;
}

// ---------------------------------------------------------------------------------------------
// Attributes and inputs -> plan
// ---------------------------------------------------------------------------------------------

/** Input positions of scales / sizes / roi, which moved between Upsample, Resize-10 and Resize-11. */
function inputSlots(node: Node, opset: number): { roi?: number; scales?: number; sizes?: number } {
  if (node.opType === 'Upsample') return opset < 9 ? {} : { scales: 1 };
  return opset < 11 ? { scales: 1 } : { roi: 1, scales: 2, sizes: 3 };
}

function interpolationMode(node: Node): InterpolationMode {
  const mode = attrString(node, 'mode', 'nearest');
  if (mode !== 'nearest' && mode !== 'linear' && mode !== 'cubic') {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: mode ${quoteName(mode)} is not supported; use nearest, linear or cubic`);
  }
  return mode;
}

function coordinateMode(node: Node, opset: number): CoordinateMode {
  // before opset 11 there was no attribute and the transform was asymmetric
  if (node.opType === 'Upsample' || opset < 11) return 'asymmetric';
  let mode = attrString(node, 'coordinate_transformation_mode', 'half_pixel');
  if (mode === 'tf_half_pixel_for_nearest') mode = 'tf_half_pixel_for_nn';
  if (mode === 'tf_crop_and_resize') {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: coordinate_transformation_mode "tf_crop_and_resize" (roi cropping) is not supported`);
  }
  if (!COORDINATE_MODES.includes(mode)) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: coordinate_transformation_mode ${quoteName(mode)} is not supported; use one of ${COORDINATE_MODES.join(', ')}`);
  }
  return mode as CoordinateMode;
}

function nearestMode(node: Node, opset: number): NearestMode {
  if (node.opType === 'Upsample' || opset < 11) return 'simple';
  const mode = attrString(node, 'nearest_mode', 'round_prefer_floor');
  if (!NEAREST_MODES.includes(mode)) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: nearest_mode ${quoteName(mode)} is not supported; use one of ${NEAREST_MODES.join(', ')}`);
  }
  return mode as NearestMode;
}

/** Opset 18 `axes`: which axes scales/sizes refer to (all, in order, when absent). */
function resizedAxes(node: Node, opset: number, rank: number): number[] {
  const axes = opset >= 18 ? attrInts(node, 'axes') : undefined;
  if (!axes) return Array.from({ length: rank }, (_, i) => i);
  const seen = new Set<number>();
  return axes.map((a) => {
    if (a < -rank || a >= rank) fail('FM_SHAPE', `${describeNode(node)}: axes value ${a} is out of range for an input of rank ${rank}`);
    const axis = a < 0 ? a + rank : a;
    if (seen.has(axis)) fail('FM_SHAPE', `${describeNode(node)}: axes [${axes}] name axis ${axis} twice`);
    seen.add(axis);
    return axis;
  });
}

/** A constant input, undefined when omitted or empty; fails when present but only known at run time. */
function constInput(node: Node, consts: readonly (ConstTensor | undefined)[], slot: number | undefined, what: string): ConstTensor | undefined {
  if (slot === undefined || !node.inputs[slot]) return undefined;
  const c = consts[slot];
  if (!c) fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: the ${what} input must be a compile-time constant (kernels are specialised per shape)`);
  return c.data.length === 0 ? undefined : c;
}

function checkAntialias(node: Node, opset: number): void {
  if (opset >= 18 && attrInt(node, 'antialias', 0) !== 0) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: antialias=1 is not supported; export the model with antialias=0`);
  }
}

function resizePlan(node: Node, opset: number, input: TensorType, consts: readonly (ConstTensor | undefined)[]): ResizePlan {
  if (node.opType === 'Upsample' && opset < 7) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: the experimental Upsample of opset ${opset} (height_scale/width_scale) is not supported; re-export with opset >= 7`);
  }
  const inShape = input.shape;
  const rank = inShape.length;
  const mode = interpolationMode(node);
  if (mode !== 'nearest' && !isFloat(input.dtype)) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: ${mode} interpolation of ${input.dtype} tensors is not supported; use nearest or a float input`);
  }
  checkAntialias(node, opset);
  const slots = inputSlots(node, opset);
  const scalesInput = constInput(node, consts, slots.scales, 'scales');
  const sizesInput = constInput(node, consts, slots.sizes, 'sizes');
  const scalesAttr = node.opType === 'Upsample' && opset < 9 ? attrFloats(node, 'scales') : undefined;
  const axes = resizedAxes(node, opset, rank);
  const plan = { inShape: [...inShape], mode, coordinateMode: coordinateMode(node, opset), nearestMode: nearestMode(node, opset),
    cubicA: attrFloat(node, 'cubic_coeff_a', -0.75), excludeOutside: attrInt(node, 'exclude_outside', 0) !== 0 };
  if (scalesInput && sizesInput) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: both scales and sizes are given; a Resize takes exactly one of them`);
  }
  const scales = scalesAttr ?? (scalesInput ? Array.from(scalesInput.data) : undefined);
  if (scales) return { ...plan, ...shapeFromScales(node, inShape, axes, scales) };
  if (sizesInput) return { ...plan, ...shapeFromSizes(node, opset, inShape, axes, constToInts(sizesInput)) };
  return fail('FM_ONNX_INVALID', `${describeNode(node)}: neither scales nor sizes is given`);
}

function checkCount(node: Node, what: string, values: readonly number[], axes: readonly number[]): void {
  if (values.length !== axes.length) {
    fail('FM_SHAPE', `${describeNode(node)}: ${what} has ${values.length} values but ${axes.length} axes are resized; give one value per axis`);
  }
}

/** out = floor(in * scale), with the product in f32 as onnxruntime computes it. */
function shapeFromScales(node: Node, inShape: readonly number[], axes: readonly number[], given: readonly number[]): { outShape: number[]; scales: number[] } {
  checkCount(node, 'scales', given, axes);
  const scales = inShape.map(() => 1);
  axes.forEach((axis, i) => {
    const s = Math.fround(given[i]!);
    if (!(s > 0)) fail('FM_SHAPE', `${describeNode(node)}: scale ${given[i]} for axis ${axis} must be positive`);
    scales[axis] = s;
  });
  return { outShape: inShape.map((d, a) => Math.floor(Math.fround(scales[a]! * d))), scales };
}

function shapeFromSizes(node: Node, opset: number, inShape: readonly number[], axes: readonly number[], sizes: readonly number[]): { outShape: number[]; scales: number[] } {
  checkCount(node, 'sizes', sizes, axes);
  const outShape = [...inShape];
  const scales = inShape.map(() => 1);
  axes.forEach((axis, i) => {
    if (sizes[i]! < 0) fail('FM_SHAPE', `${describeNode(node)}: size ${sizes[i]} for axis ${axis} must not be negative`);
    outShape[axis] = sizes[i]!;
    scales[axis] = inShape[axis] === 0 ? 1 : Math.fround(sizes[i]! / inShape[axis]!);
  });
  const policy = opset >= 18 ? attrString(node, 'keep_aspect_ratio_policy', 'stretch') : 'stretch';
  if (policy === 'stretch') return { outShape, scales };
  if (policy !== 'not_larger' && policy !== 'not_smaller') {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: keep_aspect_ratio_policy ${quoteName(policy)} is not supported; use stretch, not_larger or not_smaller`);
  }
  // one common scale for every resized axis: the tightest (not_larger) or loosest (not_smaller)
  const pick = policy === 'not_larger' ? Math.min : Math.max;
  const common = axes.map((a) => scales[a]!).reduce((s, v) => pick(s, v));
  for (const axis of axes) {
    scales[axis] = common;
    outShape[axis] = Math.round(Math.fround(common * inShape[axis]!));
  }
  return { outShape, scales };
}

// ---------------------------------------------------------------------------------------------
// Per-axis taps, in f32 arithmetic (Math.fround after every operation, as C++ float code does)
// ---------------------------------------------------------------------------------------------

const f32 = Math.fround;

function originalCoordinate(mode: CoordinateMode, x: number, scale: number, lengthOut: number, lengthIn: number): number {
  switch (mode) {
    case 'asymmetric':
      return f32(x / scale);
    case 'pytorch_half_pixel':
      return lengthOut > 1 ? f32(f32(f32(x + 0.5) / scale) - 0.5) : 0;
    case 'tf_half_pixel_for_nn':
      return f32(f32(x + 0.5) / scale);
    case 'align_corners':
      return lengthOut === 1 ? 0 : f32(f32(x * (lengthIn - 1)) / (lengthOut - 1));
    case 'half_pixel_symmetric': {
      // the crop of a resize whose output was rounded down stays centred
      const adjustment = f32(lengthOut / f32(scale * lengthIn));
      const offset = f32(f32(lengthIn / 2) * f32(1 - adjustment));
      return f32(offset + (x + 0.5) / scale - 0.5);
    }
    case 'half_pixel':
      return f32(f32(f32(x + 0.5) / scale) - 0.5);
  }
}

/** C++ std::round: halves away from zero. */
function roundHalfAway(v: number): number {
  return Math.sign(v) * Math.round(Math.abs(v));
}

function nearestIndex(mode: NearestMode, x: number, downsampling: boolean): number {
  switch (mode) {
    case 'simple': return downsampling ? Math.ceil(x) : Math.trunc(x);
    case 'round_prefer_ceil': return roundHalfAway(x);
    case 'floor': return Math.floor(x);
    case 'ceil': return Math.ceil(x);
    case 'round_prefer_floor': return x === Math.trunc(x) + 0.5 ? Math.floor(x) : roundHalfAway(x);
  }
}

const clampIndex = (i: number, length: number): number => Math.max(0, Math.min(length - 1, i));

function linearTaps(x: number, lengthIn: number): Tap[] {
  const clamped = Math.max(0, Math.min(x, lengthIn - 1));
  const lo = Math.min(Math.trunc(clamped), lengthIn - 1);
  const hi = Math.min(lo + 1, lengthIn - 1);
  if (lo === hi) return [{ index: lo, weight: 1 }];
  return [{ index: lo, weight: f32(Math.abs(clamped - hi)) }, { index: hi, weight: f32(Math.abs(clamped - lo)) }];
}

/** Keys' cubic convolution weights of the 4 pixels around x (onnxruntime's GetCubicCoeffs). */
function cubicTaps(x: number, lengthIn: number, a: number, excludeOutside: boolean): Tap[] {
  const base = Math.floor(x);
  const s = f32(x - base);
  const far = (t: number) => ((a * t - 5 * a) * t + 8 * a) * t - 4 * a;
  const near = (t: number) => ((a + 2) * t - (a + 3)) * t * t + 1;
  const coeffs = [far(s + 1), near(s), near(1 - s), far(2 - s)].map(f32);
  const taps = coeffs.map((weight, i) => ({ index: base - 1 + i, weight }));
  if (!excludeOutside) return taps.map((t) => ({ index: clampIndex(t.index, lengthIn), weight: t.weight }));
  // pixels outside the input get no weight; the remaining weights are renormalised
  const inside = taps.filter((t) => t.index >= 0 && t.index < lengthIn);
  const total = inside.reduce((sum, t) => sum + t.weight, 0);
  return inside.map((t) => ({ index: t.index, weight: f32(t.weight / total) }));
}

/** The taps of every output coordinate of `axis`, duplicates merged and zero weights dropped. */
function axisTaps(plan: ResizePlan, axis: number): Tap[][] {
  const lengthIn = plan.inShape[axis]!;
  const lengthOut = plan.outShape[axis]!;
  const scale = plan.scales[axis]!;
  // like onnxruntime, an axis with scale 1 is copied whatever the coordinate transform (only
  // tf_half_pixel_for_nn would otherwise shift it by half a pixel)
  if (scale === 1 && lengthOut === lengthIn) return Array.from({ length: lengthOut }, (_, x) => [{ index: x, weight: 1 }]);
  return Array.from({ length: lengthOut }, (_, x) => {
    const original = originalCoordinate(plan.coordinateMode, x, scale, lengthOut, lengthIn);
    if (plan.mode === 'nearest') return [{ index: clampIndex(nearestIndex(plan.nearestMode, original, scale < 1), lengthIn), weight: 1 }];
    const taps = plan.mode === 'linear' ? linearTaps(original, lengthIn) : cubicTaps(original, lengthIn, plan.cubicA, plan.excludeOutside);
    return mergeTaps(taps);
  });
}

function mergeTaps(taps: readonly Tap[]): Tap[] {
  const byIndex = new Map<number, number>();
  for (const t of taps) byIndex.set(t.index, (byIndex.get(t.index) ?? 0) + t.weight);
  return [...byIndex].filter(([, w]) => w !== 0).map(([index, weight]) => ({ index, weight }));
}

const isIdentity = (taps: readonly Tap[][], lengthIn: number): boolean =>
  taps.length === lengthIn && taps.every((t, x) => t.length === 1 && t[0]!.index === x && t[0]!.weight === 1);

// ---------------------------------------------------------------------------------------------
// Kernel axes: identity runs merged, resized axes described by their slice of the taps table
// ---------------------------------------------------------------------------------------------

type KernelAxis =
  | { kind: 'identity'; size: number; inStride: number }
  /** one source pixel per output coordinate: table[offset + o] is its index */
  | { kind: 'gather'; size: number; inStride: number; offset: number }
  /** `taps` (index, weight) pairs per output coordinate at table[offset + (o * taps + t) * 2] */
  | { kind: 'weighted'; size: number; inStride: number; offset: number; taps: number };

interface KernelLayout {
  axes: KernelAxis[];
  table: number[];
}

function kernelLayout(plan: ResizePlan): KernelLayout {
  const inStrides = stridesOf(plan.inShape);
  const axes: KernelAxis[] = [];
  const table: number[] = [];
  plan.inShape.forEach((lengthIn, axis) => {
    const taps = axisTaps(plan, axis);
    const size = plan.outShape[axis]!;
    const inStride = inStrides[axis]!;
    const previous = axes[axes.length - 1];
    if (isIdentity(taps, lengthIn)) {
      // contiguous identity axes index the input as one
      if (previous?.kind === 'identity') {
        previous.size *= size;
        previous.inStride = inStride;
      } else {
        axes.push({ kind: 'identity', size, inStride });
      }
      return;
    }
    if (lengthIn > 1 << 24) fail('FM_LIMIT', `an axis of ${lengthIn} elements is too long to resize (f32 indices are exact up to 2^24)`);
    const offset = table.length;
    if (taps.every((t) => t.length === 1 && t[0]!.weight === 1)) {
      for (const t of taps) table.push(t[0]!.index);
      axes.push({ kind: 'gather', size, inStride, offset });
      return;
    }
    const width = Math.max(...taps.map((t) => t.length));
    for (const t of taps) {
      for (let k = 0; k < width; k++) table.push(t[k]?.index ?? 0, t[k]?.weight ?? 0);
    }
    axes.push({ kind: 'weighted', size, inStride, offset, taps: width });
  });
  return { axes, table };
}

/** The kernel over `bindings`: [x, y], or [x, taps, y] when some axis reads the taps table. */
function resizeKernel(label: string, layout: KernelLayout, total: number, type: WgslScalar, bindings: readonly LowerTensor[]): KernelSpec {
  const grid = grid1D(total);
  const { axes } = layout;
  const lines: string[] = [grid.prologue, unravel('i', axes.map((a) => a.size), 'o')];
  const sources = axes.map((a, n) => (a.kind === 'identity' ? `o${n}` : `j${n}`));
  axes.forEach((a, n) => {
    if (a.kind === 'gather') lines.push(`let j${n} = u32(taps[${u(a.offset)} + o${n}]);`);
  });
  const offset = dot(sources, axes.map((a) => a.inStride));
  const weighted = axes.flatMap((a, n) => (a.kind === 'weighted' ? [{ a, n }] : []));
  if (weighted.length === 0) {
    lines.push(`y[i] = x[${offset}];`);
  } else {
    const weight = weighted.map(({ n }) => `w${n}`).join(' * ');
    let body = `acc += ${weight} * x[${offset}];`;
    for (const { a, n } of [...weighted].reverse()) {
      body = `for (var t${n} = 0u; t${n} < ${u(a.taps)}; t${n}++) {\n    let e${n} = ${u(a.offset)} + (o${n} * ${u(a.taps)} + t${n}) * 2u;\n` +
        `    let j${n} = u32(taps[e${n}]);\n    let w${n} = taps[e${n} + 1u];\n    ${body}\n  }`;
    }
    lines.push('var acc = 0.0;', body, 'y[i] = acc;');
  }
  const k = kernel(label);
  k.bind('x', bindings[0]!, type);
  if (bindings.length === 3) k.bind('taps', bindings[1]!, 'f32');
  k.bind('y', bindings[bindings.length - 1]!, type);
  return k.build({ entry: { workgroupSize: grid.workgroupSize, params: [GID], body: lines.filter((l) => l !== '').join('\n  ') }, workgroups: grid.workgroups });
}

// ---------------------------------------------------------------------------------------------
// CPU evaluation (constant folding)
// ---------------------------------------------------------------------------------------------

function resizeOnCpu(plan: ResizePlan, x: ConstTensor): ConstTensor {
  const taps = plan.inShape.map((_, axis) => axisTaps(plan, axis));
  const inStrides = stridesOf(plan.inShape);
  const outStrides = stridesOf(plan.outShape);
  const out = new Float64Array(numElements(plan.outShape));
  for (let i = 0; i < out.length; i++) {
    let acc: { offset: number; weight: number }[] = [{ offset: 0, weight: 1 }];
    plan.outShape.forEach((size, axis) => {
      const o = Math.floor(i / outStrides[axis]!) % size;
      acc = acc.flatMap((p) => taps[axis]![o]!.map((t) => ({ offset: p.offset + t.index * inStrides[axis]!, weight: p.weight * t.weight })));
    });
    out[i] = acc.reduce((s, p) => s + p.weight * x.data[p.offset]!, 0);
  }
  return makeConst(x.dtype, plan.outShape, out);
}

// ---------------------------------------------------------------------------------------------
// OpDef
// ---------------------------------------------------------------------------------------------

const resizeOp: OpDef = {
  opTypes: ['Resize', 'Upsample'],
  costClass: 'data-movement',
  inferTypes(ctx) {
    const x = ctx.inputs[0]!;
    const plan = resizePlan(ctx.node, ctx.opset, x, ctx.consts);
    return [{ dtype: x.dtype, shape: plan.outShape }];
  },
  fold(ctx, inputs) {
    const x = inputs[0]!;
    return [resizeOnCpu(resizePlan(ctx.node, ctx.opset, x, inputs), x)];
  },
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    const plan = resizePlan(ctx.node, ctx.opset, x.type, ctx.inputs.map((t) => t?.data));
    const total = numElements(plan.outShape);
    if (total === 0) return;
    const layout = kernelLayout(plan);
    const bindings = layout.table.length > 0
      ? [x, ctx.constant('resize_taps', makeConst('float32', [layout.table.length], layout.table)), y]
      : [x, y];
    assertBindable(ctx, bindings);
    ctx.kernel(resizeKernel(`resize_${plan.mode}`, layout, total, wgslType(x.type.dtype), bindings));
  },
};

export const resizeOps: readonly OpDef[] = [resizeOp];
