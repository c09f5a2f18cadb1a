/**
 * Ops that copy windows of their input: Slice, Split, Pad, Tile, Expand and Concat, as copy plans.
 */
import { attrFloat, attrInt, attrInts, attrString } from '../../ir/attrs.js';
import { hostArrayFor, normalizeValue } from '../../ir/tensor.js';
import { stridesOf } from '../../kernel/strides.js';
import { type Node, numElements, type TensorType } from '../../ir/types.js';
import { fail } from '../../errors.js';
import type { OpDef, ShapeContext } from '../op.js';
import { constInts, nodeLabel, normalizeAxes, normalizeAxis, optionalConstInts, optionalConstValues, requiredInput, shapeContextOf, withFoldInputs } from '../shape.js';
import { type AxisRead, type CopyPlan, type PadMode, emitPlan, foldPlan, gatherPlan, runPlan } from './plan.js';

// ---------------------------------------------------------------------------------------------
// Slice, Split

interface AxisWindow { axis: number; start: number; step: number; size: number }

/** A strided window of input `shape` (axes not listed are taken whole). */
function windowPlan(shape: readonly number[], windows: readonly AxisWindow[]): { shape: number[]; plan: CopyPlan } {
  const strides = stridesOf(shape);
  const outShape = [...shape];
  const reads: AxisRead[] = strides.map((s) => ({ kind: 'linear', coef: s }));
  let srcBase = 0;
  for (const w of windows) {
    outShape[w.axis] = w.size;
    reads[w.axis] = { kind: 'linear', coef: w.step * strides[w.axis]! };
    if (w.size > 0) srcBase += w.start * strides[w.axis]!;
  }
  return { shape: outShape, plan: gatherPlan(outShape, reads, srcBase) };
}

/** Clamps start/end as the ONNX spec prescribes (INT64_MAX/INT64_MIN sentinels included). */
function sliceWindow(axis: number, dim: number, startRaw: number, endRaw: number, step: number): AxisWindow {
  let start = startRaw < 0 ? startRaw + dim : startRaw;
  let end = endRaw < 0 ? endRaw + dim : endRaw;
  if (step > 0) {
    start = Math.min(dim, Math.max(0, start));
    end = Math.min(dim, Math.max(0, end));
  } else {
    start = Math.min(dim - 1, Math.max(0, start));
    end = Math.min(dim - 1, Math.max(-1, end));
  }
  return { axis, start, step, size: Math.max(0, Math.ceil((end - start) / step)) };
}

function sliceOperands(ctx: ShapeContext): { starts: number[]; ends: number[]; axes?: number[]; steps?: number[] } {
  const { node } = ctx;
  // starts/ends/axes were attributes until opset 10, which made them inputs and added steps
  if (ctx.opset < 10) {
    const starts = attrInts(node, 'starts');
    const ends = attrInts(node, 'ends');
    if (!starts || !ends) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: attributes "starts" and "ends" are required before opset 10`);
    return { starts, ends, axes: attrInts(node, 'axes') };
  }
  return {
    starts: constInts(ctx, 1, 'starts'),
    ends: constInts(ctx, 2, 'ends'),
    axes: optionalConstInts(ctx, 3, 'axes'),
    steps: optionalConstInts(ctx, 4, 'steps'),
  };
}

export function sliceSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const x = requiredInput(ctx, 0, 'data');
  const rank = x.shape.length;
  const { starts, ends, axes: axesRaw, steps: stepsRaw } = sliceOperands(ctx);
  const axes = normalizeAxes(ctx.node, axesRaw ?? starts.map((_, i) => i), rank);
  const steps = stepsRaw ?? starts.map(() => 1);
  if (ends.length !== starts.length || axes.length !== starts.length || steps.length !== starts.length) {
    fail('FM_SHAPE', `${nodeLabel(ctx.node)}: starts, ends, axes and steps must have equal lengths (got ${starts.length}, ${ends.length}, ${axes.length}, ${steps.length})`);
  }
  if (steps.includes(0)) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: steps [${steps}] must not contain 0`);
  const windows = axes.map((axis, i) => sliceWindow(axis, x.shape[axis]!, starts[i]!, ends[i]!, steps[i]!));
  const { shape, plan } = windowPlan(x.shape, windows);
  return { type: { dtype: x.dtype, shape }, plan };
}

function splitSizes(ctx: ShapeContext, dim: number): number[] {
  const { node } = ctx;
  const outputs = node.outputs.length;
  // split was an input in opset 1, an attribute in opsets 2-12 and an input again from 13
  const split = ctx.opset >= 13 || ctx.opset < 2 ? optionalConstInts(ctx, 1, 'split') : attrInts(node, 'split');
  const numOutputs = ctx.opset >= 18 ? attrInt(node, 'num_outputs') : undefined;
  if (split && numOutputs !== undefined) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: "split" and "num_outputs" must not both be given`);
  if (split) {
    const sum = split.reduce((a, b) => a + b, 0);
    if (split.length !== outputs || split.some((s) => !Number.isInteger(s) || s < 0) || sum !== dim) {
      fail('FM_SHAPE', `${nodeLabel(node)}: split [${split}] must list ${outputs} non-negative sizes summing to the axis size ${dim}`);
    }
    return split;
  }
  if (numOutputs !== undefined) {
    if (numOutputs !== outputs) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: num_outputs is ${numOutputs} but the node has ${outputs} outputs`);
    // uneven splits: every chunk has ceil(dim/n) elements but the last, which is smaller
    const chunk = Math.ceil(dim / outputs);
    const last = dim - chunk * (outputs - 1);
    if (last < 0) fail('FM_SHAPE', `${nodeLabel(node)}: an axis of size ${dim} cannot be split into ${outputs} chunks of ${chunk}`);
    return [...new Array<number>(outputs - 1).fill(chunk), last];
  }
  if (dim % outputs !== 0) fail('FM_SHAPE', `${nodeLabel(node)}: an axis of size ${dim} cannot be split evenly into ${outputs} outputs; give "split" sizes`);
  return new Array<number>(outputs).fill(dim / outputs);
}

function splitSpecs(ctx: ShapeContext): { type: TensorType; plan: CopyPlan }[] {
  const x = requiredInput(ctx, 0, 'input');
  const axis = normalizeAxis(ctx.node, attrInt(ctx.node, 'axis', 0), x.shape.length);
  let offset = 0;
  return splitSizes(ctx, x.shape[axis]!).map((size) => {
    const { shape, plan } = windowPlan(x.shape, [{ axis, start: offset, step: 1, size }]);
    offset += size;
    return { type: { dtype: x.dtype, shape }, plan };
  });
}

export const splitOp: OpDef = {
  opTypes: ['Split'],
  costClass: 'data-movement',
  inferTypes: (ctx) => splitSpecs(ctx).map((s) => s.type),
  fold(ctx, inputs) {
    return splitSpecs({ ...ctx, consts: withFoldInputs(ctx, inputs) }).map((s) => foldPlan(s.plan, inputs[0]!, s.type));
  },
  lower(ctx) {
    // one kernel per output keeps each dispatch at two bindings whatever the number of outputs
    splitSpecs(shapeContextOf(ctx)).forEach((s, k) => emitPlan(ctx, 'split', s.plan, ctx.inputs[0]!, ctx.outputs[k]!));
  },
};

// ---------------------------------------------------------------------------------------------
// Pad, Tile, Expand

interface PadParams { mode: PadMode; before: number[]; after: number[]; value: number }

const PAD_MODES: readonly PadMode[] = ['constant', 'reflect', 'edge', 'wrap'];

function padMode(ctx: ShapeContext): PadMode {
  const mode = attrString(ctx.node, 'mode', 'constant');
  const known = (PAD_MODES as readonly string[]).includes(mode);
  if (!known || (mode === 'wrap' && ctx.opset < 19)) {
    fail('FM_UNSUPPORTED_OP', `${nodeLabel(ctx.node)}: mode ${JSON.stringify(mode)} is not supported at opset ${ctx.opset} (constant, reflect, edge; wrap from opset 19)`);
  }
  return mode as PadMode;
}

/** Pad's constant_value input when it is not a compile-time constant (opset 11+). */
export function padRuntimeValue(ctx: ShapeContext): boolean {
  return ctx.opset >= 11 && !!ctx.node.inputs[2] && ctx.consts[2] === undefined;
}

/** pads and value: attributes before opset 11 (`paddings` in opset 1), inputs from 11, axes from 18. */
function padOperands(ctx: ShapeContext, rank: number): { pads: number[]; value: number } {
  const { node } = ctx;
  if (ctx.opset < 11) {
    const pads = attrInts(node, ctx.opset < 2 ? 'paddings' : 'pads');
    if (!pads) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: attribute "${ctx.opset < 2 ? 'paddings' : 'pads'}" is required before opset 11`);
    return { pads, value: attrFloat(node, 'value', 0) };
  }
  const pads = constInts(ctx, 1, 'pads');
  // a constant_value computed at run time is read by the kernel (padRuntimeValue); the plan's fill is unused then
  const valueData = padRuntimeValue(ctx) ? undefined : optionalConstValues(ctx, 2, 'constant_value');
  if (valueData && valueData.length !== 1) fail('FM_SHAPE', `${nodeLabel(node)}: constant_value must be a scalar, it has ${valueData.length} elements`);
  const axesRaw = ctx.opset >= 18 ? optionalConstInts(ctx, 3, 'axes') : undefined;
  const value = valueData?.[0] ?? 0;
  if (!axesRaw) return { pads, value };
  // pads list only the given axes: spread them over all axes
  const axes = normalizeAxes(node, axesRaw, rank);
  if (pads.length !== 2 * axes.length) fail('FM_SHAPE', `${nodeLabel(node)}: pads [${pads}] must have 2 entries per axis of axes [${axesRaw}]`);
  const full = new Array<number>(2 * rank).fill(0);
  axes.forEach((a, i) => {
    full[a] = pads[i]!;
    full[a + rank] = pads[i + axes.length]!;
  });
  return { pads: full, value };
}

function padParams(ctx: ShapeContext, x: TensorType): PadParams {
  const rank = x.shape.length;
  const mode = padMode(ctx);
  const { pads, value } = padOperands(ctx, rank);
  if (pads.length !== 2 * rank || pads.some((p) => !Number.isInteger(p))) {
    fail('FM_SHAPE', `${nodeLabel(ctx.node)}: pads [${pads}] must hold 2 integers per input axis (rank ${rank})`);
  }
  return { mode, before: pads.slice(0, rank), after: pads.slice(rank), value: normalizeValue(x.dtype, value) };
}

function padAxisRead(node: Node, p: PadParams, axis: number, dim: number, stride: number): { read: AxisRead; srcShift: number } {
  const before = p.before[axis]!;
  const after = p.after[axis]!;
  // pure cropping (negative pads) or untouched axes stay linear, so they can merge with neighbours
  if (before <= 0 && after <= 0) return { read: { kind: 'linear', coef: stride }, srcShift: -before * stride };
  if (dim === 0 && p.mode !== 'constant') fail('FM_SHAPE', `${nodeLabel(node)}: mode ${p.mode} cannot pad axis ${axis} of size 0`);
  return { read: { kind: 'pad', mode: p.mode, before, inputSize: dim, stride }, srcShift: 0 };
}

export function padSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const x = requiredInput(ctx, 0, 'data');
  const p = padParams(ctx, x);
  const shape = x.shape.map((d, a) => d + p.before[a]! + p.after[a]!);
  const bad = shape.findIndex((d) => d < 0);
  if (bad >= 0) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: pads [${[...p.before, ...p.after]}] remove more than the ${x.shape[bad]} elements of axis ${bad}`);
  const strides = stridesOf(x.shape);
  let srcBase = 0;
  const reads = x.shape.map((dim, a) => {
    const { read, srcShift } = padAxisRead(ctx.node, p, a, dim, strides[a]!);
    srcBase += srcShift;
    return read;
  });
  return { type: { dtype: x.dtype, shape }, plan: gatherPlan(shape, reads, srcBase, p.value) };
}

export function tileSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  if (ctx.opset < 6) fail('FM_UNSUPPORTED_OP', `${nodeLabel(ctx.node)}: Tile before opset 6 (tiles/axis inputs) is not supported; re-export with opset >= 6`);
  const x = requiredInput(ctx, 0, 'input');
  const repeats = constInts(ctx, 1, 'repeats');
  if (repeats.length !== x.shape.length || repeats.some((r) => !Number.isInteger(r) || r < 0)) {
    fail('FM_SHAPE', `${nodeLabel(ctx.node)}: repeats [${repeats}] must hold one non-negative integer per input axis (rank ${x.shape.length})`);
  }
  const strides = stridesOf(x.shape);
  const shape = x.shape.map((d, a) => d * repeats[a]!);
  const reads = x.shape.map((dim, a): AxisRead =>
    repeats[a] === 1 ? { kind: 'linear', coef: strides[a]! } : dim === 1 ? { kind: 'linear', coef: 0 } : { kind: 'modulo', period: dim, stride: strides[a]! });
  return { type: { dtype: x.dtype, shape }, plan: gatherPlan(shape, reads) };
}

/** Bidirectional (numpy) broadcast of the input against the requested shape. */
export function expandSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const x = requiredInput(ctx, 0, 'input');
  const target = constInts(ctx, 1, 'shape');
  const rank = Math.max(x.shape.length, target.length);
  const inOffset = rank - x.shape.length;
  const tOffset = rank - target.length;
  const strides = stridesOf(x.shape);
  const shape: number[] = [];
  const reads: AxisRead[] = [];
  for (let j = 0; j < rank; j++) {
    const a = j >= inOffset ? x.shape[j - inOffset]! : 1;
    const b = j >= tOffset ? target[j - tOffset]! : 1;
    if (a !== b && a !== 1 && b !== 1) {
      fail('FM_SHAPE', `${nodeLabel(ctx.node)}: input shape [${x.shape}] cannot be broadcast to [${target}] (axis ${j}: ${a} vs ${b})`);
    }
    shape.push(a === 1 ? b : a);
    reads.push({ kind: 'linear', coef: a === 1 ? 0 : strides[j - inOffset]! });
  }
  return { type: { dtype: x.dtype, shape }, plan: gatherPlan(shape, reads) };
}

// ---------------------------------------------------------------------------------------------
// Concat

function concatAxis(ctx: ShapeContext, rank: number): number {
  const axis = attrInt(ctx.node, 'axis');
  if (axis !== undefined) return normalizeAxis(ctx.node, axis, rank);
  // axis was optional (default 1) until opset 4 made it required
  if (ctx.opset < 4) return normalizeAxis(ctx.node, 1, rank);
  fail('FM_ONNX_INVALID', `${nodeLabel(ctx.node)}: attribute "axis" is required from opset 4`);
}

/** The output type and, per input, the plan writing it into its slab of the output. */
export function concatSpec(ctx: ShapeContext): { type: TensorType; plans: CopyPlan[] } {
  const xs = ctx.node.inputs.map((_, i) => requiredInput(ctx, i, `input ${i}`));
  if (xs.length === 0) fail('FM_ONNX_INVALID', `${nodeLabel(ctx.node)}: needs at least one input`);
  const first = xs[0]!;
  const rank = first.shape.length;
  if (rank === 0) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: cannot concatenate scalars`);
  const axis = concatAxis(ctx, rank);
  for (const [i, t] of xs.entries()) {
    const compatible = t.dtype === first.dtype && t.shape.length === rank && t.shape.every((d, a) => a === axis || d === first.shape[a]);
    if (!compatible) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: input ${i} (${t.dtype} [${t.shape}]) does not match input 0 (${first.dtype} [${first.shape}]) outside axis ${axis}`);
  }
  const shape = [...first.shape];
  shape[axis] = xs.reduce((sum, t) => sum + t.shape[axis]!, 0);
  const outStrides = stridesOf(shape);
  let offset = 0;
  const plans = xs.map((t) => {
    const inStrides = stridesOf(t.shape);
    const plan: CopyPlan = {
      axes: t.shape.map((size, a) => ({ size, read: { kind: 'linear', coef: inStrides[a]! }, destStride: outStrides[a]! })),
      srcBase: 0,
      destBase: offset * outStrides[axis]!,
      fill: 0,
    };
    offset += t.shape[axis]!;
    return plan;
  });
  return { type: { dtype: first.dtype, shape }, plans };
}

export const concatOp: OpDef = {
  opTypes: ['Concat'],
  costClass: 'data-movement',
  inferTypes: (ctx) => [concatSpec(ctx).type],
  fold(ctx, inputs) {
    const { type, plans } = concatSpec({ ...ctx, consts: withFoldInputs(ctx, inputs) });
    const data = hostArrayFor(type.dtype, numElements(type.shape));
    plans.forEach((plan, i) => runPlan(plan, inputs[i]!.data, data));
    return [{ ...type, data }];
  },
  lower(ctx) {
    // one kernel per input keeps each dispatch at two bindings however many inputs there are
    const { plans } = concatSpec(shapeContextOf(ctx));
    plans.forEach((plan, i) => emitPlan(ctx, 'concat', plan, ctx.inputs[i]!, ctx.outputs[0]!));
  },
};
