/**
 * Shape ops. Views reinterpret their input's storage under a new shape and emit no kernel
 * (Reshape, Flatten, Squeeze, Unsqueeze, Identity, inference-mode Dropout). Shape, Size, Constant,
 * ConstantOfShape and Range produce values that are known at compile time and are always folded;
 * ConstantOfShape and Range also get a fill kernel so that a folding pass may leave large ones to
 * the GPU instead of shipping them as weights.
 *
 * flashmemc compiles static shapes only: every shape-like operand (Reshape's shape, Squeeze's
 * axes...) must be a compile-time constant. The helpers exported here are shared with movement.ts.
 */
import { attrFloat, attrFloats, attrInt, attrInts, attrTensor } from '../ir/attrs.js';
import { constToInts, hostArrayFor, makeConst, normalizeValue } from '../ir/tensor.js';
import { type ConstTensor, type DType, isFloat, type Node, numElements, type TensorType } from '../ir/types.js';
import { grid1D, lit, wgslType } from '../kernel/wgsl.js';
import { kernel } from '../kernel/builder.js';
import { checkBindable } from '../kernel/limits.js';
import { describeNode } from '../ir/graph.js';
import { fail, quoteName } from '../errors.js';
import type { LowerContext, OpDef, ShapeContext } from './op.js';
import type { LowerTensor } from '../kernel/types.js';

// ---------------------------------------------------------------------------------------------
// Helpers shared by the shape and movement families

/** `node "name" (OpType)`: describeNode, under the name the shape and movement families import. */
export const nodeLabel = describeNode;

/** Type of a required input; a missing one means the model itself is malformed. */
export function requiredInput(ctx: ShapeContext, index: number, role: string): TensorType {
  const t = ctx.node.inputs[index] ? ctx.inputs[index] : undefined;
  if (!t) fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: required input ${index} (${role}) is missing`);
  return t;
}

/**
 * Integer contents of constant input `index`, or undefined when the optional input is omitted.
 * A runtime value here would make output shapes data-dependent, which flashmemc cannot compile.
 */
export function optionalConstInts(ctx: ShapeContext, index: number, role: string): number[] | undefined {
  return optionalConstValues(ctx, index, role);
}

export function constInts(ctx: ShapeContext, index: number, role: string): number[] {
  requiredInput(ctx, index, role);
  return optionalConstValues(ctx, index, role)!;
}

/** Contents of a constant input as numbers (ints, floats and bools alike); undefined when omitted. */
export function optionalConstValues(ctx: ShapeContext, index: number, role: string): number[] | undefined {
  if (!ctx.node.inputs[index]) return undefined;
  const c = ctx.consts[index];
  if (!c) {
    fail(
      'FM_SHAPE',
      `${describeNode(ctx.node)}: input ${index} (${role}) must be a compile-time constant, because flashmemc needs ` +
        `static shapes. Export the model with fixed input sizes and constant-folded shape computations ` +
        `(e.g. onnxsim), or fix symbolic dimensions with --input-shape.`,
    );
  }
  return constToInts(c);
}

/** Resolve a possibly negative axis against `rank`; FM_SHAPE when it is out of range. */
export function normalizeAxis(node: Node, axis: number, rank: number, what = 'axis'): number {
  if (!Number.isInteger(axis) || axis < -rank || axis >= rank) {
    fail('FM_SHAPE', `${describeNode(node)}: ${what} ${axis} is out of range for a rank-${rank} tensor (valid: ${-rank}..${rank - 1})`);
  }
  return axis < 0 ? axis + rank : axis;
}

/** Resolve a list of axes; duplicates are invalid for every op that takes an axes list. */
export function normalizeAxes(node: Node, axes: readonly number[], rank: number, what = 'axes'): number[] {
  const out = axes.map((a) => normalizeAxis(node, a, rank, what));
  if (new Set(out).size !== out.length) fail('FM_SHAPE', `${describeNode(node)}: ${what} [${axes}] repeat an axis`);
  return out;
}

/** A kernel binds whole tensors, so each one must fit a single storage binding of the target. */
export function assertBindable(ctx: LowerContext, tensors: readonly LowerTensor[]): void {
  checkBindable(describeNode(ctx.node), tensors, ctx.limits,
    'target a device with a larger limit or reduce the tensor size (e.g. a smaller batch or input size)');
}

/** Lowering re-derives an op's parameters with the same functions that inferred its types. */
export function shapeContextOf(ctx: LowerContext): ShapeContext {
  return { node: ctx.node, opset: ctx.opset, inputs: ctx.inputs.map((t) => t?.type), consts: ctx.inputs.map((t) => t?.data) };
}

/** Lowering stub of ops whose outputs must have been folded to constants. */
function failNotStatic(ctx: LowerContext): never {
  fail(
    'FM_UNSUPPORTED_OP',
    `${describeNode(ctx.node)}: the output must be static (a compile-time constant) and has no GPU kernel; ` +
      `constant folding should have replaced it. Make its inputs static (e.g. with --input-shape).`,
  );
}

/** One kernel writing `y[i] = value(i)` for every element of `y`, where value is a WGSL expression of `i`. */
export function emitFill(ctx: LowerContext, label: string, y: LowerTensor, valueOf: (i: string) => string): void {
  const total = numElements(y.type.shape);
  if (total === 0) return;
  assertBindable(ctx, [y]);
  const k = kernel(label);
  const yv = k.bind('y', y, wgslType(y.type.dtype));
  ctx.kernel(k.buildGrid1D(grid1D(total), `${yv.at('i')} = ${valueOf('i')};`));
}

/** During fold every present input is a constant, even where ctx.consts did not record it. */
export function withFoldInputs(ctx: ShapeContext, inputs: readonly (ConstTensor | undefined)[]): (ConstTensor | undefined)[] {
  return ctx.node.inputs.map((_, i) => inputs[i] ?? ctx.consts[i]);
}

function viewOp(opType: string, outputShape: (ctx: ShapeContext, x: TensorType) => number[]): OpDef {
  return {
    opTypes: [opType],
    costClass: 'view',
    view: true,
    inferTypes(ctx) {
      const x = requiredInput(ctx, 0, 'data');
      return [{ dtype: x.dtype, shape: outputShape(ctx, x) }];
    },
    // the same values under the new shape
    fold(ctx, inputs) {
      const x = inputs[0]!;
      const shape = outputShape({ ...ctx, consts: withFoldInputs(ctx, inputs) }, x);
      return [{ dtype: x.dtype, shape, data: x.data.slice() }];
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Views

function reshapeTarget(ctx: ShapeContext): number[] {
  // Reshape took its target shape as an attribute until opset 5.
  if (ctx.opset >= 5) return constInts(ctx, 1, 'shape');
  const shape = attrInts(ctx.node, 'shape');
  if (!shape) fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: attribute "shape" is required before opset 5`);
  return shape;
}

function reshapeShape(ctx: ShapeContext, x: TensorType): number[] {
  const { node } = ctx;
  const target = reshapeTarget(ctx);
  const allowZero = ctx.opset >= 14 && attrInt(node, 'allowzero', 0) !== 0;
  if (allowZero && target.includes(0) && target.includes(-1)) {
    fail('FM_SHAPE', `${describeNode(node)}: shape [${target}] combines 0 and -1, which is ambiguous with allowzero=1`);
  }
  let inferredAxis = -1;
  const out = target.map((d, i) => {
    if (d === -1) {
      if (inferredAxis >= 0) fail('FM_SHAPE', `${describeNode(node)}: shape [${target}] has more than one -1`);
      inferredAxis = i;
      return 1;
    }
    if (d === 0 && !allowZero) {
      if (i >= x.shape.length) fail('FM_SHAPE', `${describeNode(node)}: shape [${target}] copies dimension ${i} (0), but the input [${x.shape}] has rank ${x.shape.length}`);
      return x.shape[i]!;
    }
    if (!Number.isInteger(d) || d < 0) fail('FM_SHAPE', `${describeNode(node)}: shape [${target}] has invalid dimension ${d}`);
    return d;
  });
  const total = numElements(x.shape);
  const known = numElements(out);
  if (inferredAxis >= 0) {
    if (known === 0 || total % known !== 0) {
      fail('FM_SHAPE', `${describeNode(node)}: cannot infer the -1 in shape [${target}] from the input's ${total} elements (shape [${x.shape}])`);
    }
    out[inferredAxis] = total / known;
  } else if (known !== total) {
    fail('FM_SHAPE', `${describeNode(node)}: cannot reshape [${x.shape}] (${total} elements) to [${out}] (${known} elements)`);
  }
  return out;
}

function flattenShape(ctx: ShapeContext, x: TensorType): number[] {
  const rank = x.shape.length;
  const raw = attrInt(ctx.node, 'axis', 1);
  // Flatten's axis ranges over [-r, r]: axis r flattens everything into the first output dim.
  if (!Number.isInteger(raw) || raw < -rank || raw > rank) {
    fail('FM_SHAPE', `${describeNode(ctx.node)}: axis ${raw} is out of range for a rank-${rank} tensor (valid: ${-rank}..${rank})`);
  }
  const axis = raw < 0 ? raw + rank : raw;
  return [numElements(x.shape.slice(0, axis)), numElements(x.shape.slice(axis))];
}

/** Squeeze/Unsqueeze: axes is an attribute before opset 13 and an input from 13. */
function axesOperand(ctx: ShapeContext): number[] | undefined {
  return ctx.opset >= 13 ? optionalConstInts(ctx, 1, 'axes') : attrInts(ctx.node, 'axes');
}

function squeezeShape(ctx: ShapeContext, x: TensorType): number[] {
  const axesRaw = axesOperand(ctx);
  if (!axesRaw) return x.shape.filter((d) => d !== 1);
  const axes = normalizeAxes(ctx.node, axesRaw, x.shape.length);
  for (const a of axes) {
    if (x.shape[a] !== 1) fail('FM_SHAPE', `${describeNode(ctx.node)}: cannot squeeze axis ${a} of shape [${x.shape}]: its size is ${x.shape[a]}, not 1`);
  }
  return x.shape.filter((_, i) => !axes.includes(i));
}

function unsqueezeShape(ctx: ShapeContext, x: TensorType): number[] {
  const axesRaw = axesOperand(ctx);
  if (!axesRaw) fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: axes are required (${ctx.opset >= 13 ? 'input 1' : 'attribute "axes"'})`);
  const outRank = x.shape.length + axesRaw.length;
  const axes = new Set(normalizeAxes(ctx.node, axesRaw, outRank));
  const rest = x.shape[Symbol.iterator]();
  return Array.from({ length: outRank }, (_, i) => (axes.has(i) ? 1 : rest.next().value!));
}

/**
 * Inference-mode Dropout is the identity. Its mask output and training mode (random masks) have
 * no meaning in a compiled inference bundle, so both are rejected rather than silently ignored.
 * Before opset 7 `is_test` selected the mode; exporters of that era set it for inference models
 * and every inference runtime ignores it, so it is ignored here too.
 */
function dropoutShape(ctx: ShapeContext, x: TensorType): number[] {
  const { node } = ctx;
  if (node.outputs[1]) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: the mask output ${quoteName(node.outputs[1])} is not supported (inference only); remove its consumers or re-export the model in eval mode`);
  }
  if (ctx.opset >= 12 && node.inputs[2]) {
    const mode = ctx.consts[2];
    if (!mode || mode.data.some((v) => v !== 0)) {
      fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: training_mode must be a constant false; flashmemc compiles inference only`);
    }
  }
  return [...x.shape];
}

// ---------------------------------------------------------------------------------------------
// Compile-time values

/** Shape's [start, end) window over the dims (attributes from opset 15), clamped like the spec says. */
function shapeWindow(ctx: ShapeContext, rank: number): [number, number] {
  if (ctx.opset < 15) return [0, rank];
  const clampAxis = (a: number) => Math.min(rank, Math.max(0, a < 0 ? a + rank : a));
  const start = clampAxis(attrInt(ctx.node, 'start', 0));
  const end = clampAxis(attrInt(ctx.node, 'end', rank));
  return [start, Math.max(start, end)];
}

const shapeOp: OpDef = {
  opTypes: ['Shape'],
  costClass: 'view',
  foldNeedsOnlyTypes: true,
  inferTypes(ctx) {
    const x = requiredInput(ctx, 0, 'data');
    const [start, end] = shapeWindow(ctx, x.shape.length);
    return [{ dtype: 'int64', shape: [end - start] }];
  },
  fold(ctx) {
    const x = requiredInput(ctx, 0, 'data');
    const [start, end] = shapeWindow(ctx, x.shape.length);
    return [makeConst('int64', [end - start], x.shape.slice(start, end))];
  },
  lower: failNotStatic,
};

const sizeOp: OpDef = {
  opTypes: ['Size'],
  costClass: 'view',
  foldNeedsOnlyTypes: true,
  inferTypes: () => [{ dtype: 'int64', shape: [] }],
  fold: (ctx) => [makeConst('int64', [], [numElements(requiredInput(ctx, 0, 'data').shape)])],
  lower: failNotStatic,
};

const CONSTANT_VALUE_ATTRS = ['value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'value_string', 'value_strings', 'sparse_value'];

function constantValue(node: Node): ConstTensor {
  const present = CONSTANT_VALUE_ATTRS.filter((k) => node.attrs[k] !== undefined);
  if (present.length !== 1) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: exactly one of ${CONSTANT_VALUE_ATTRS.join(', ')} must be set, found ${present.length ? present.join(', ') : 'none'}`);
  }
  const key = present[0]!;
  switch (key) {
    case 'value': return attrTensor(node, key)!;
    case 'value_float': return makeConst('float32', [], [attrFloat(node, key)!]);
    case 'value_int': return makeConst('int64', [], [attrInt(node, key)!]);
    case 'value_floats': {
      const values = attrFloats(node, key)!;
      return makeConst('float32', [values.length], values);
    }
    case 'value_ints': {
      const values = attrInts(node, key)!;
      return makeConst('int64', [values.length], values);
    }
    case 'sparse_value':
      fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: sparse_value is not supported; store the constant as a dense tensor`);
    default:
      fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: string constants (${key}) are not supported`);
  }
}

const constantOp: OpDef = {
  opTypes: ['Constant'],
  costClass: 'view',
  inferTypes(ctx) {
    const c = constantValue(ctx.node);
    return [{ dtype: c.dtype, shape: [...c.shape] }];
  },
  fold(ctx) {
    const c = constantValue(ctx.node);
    return [{ dtype: c.dtype, shape: [...c.shape], data: c.data.slice() }];
  },
  lower: failNotStatic,
};

function constantOfShapeSpec(ctx: ShapeContext): { type: TensorType; value: number } {
  const shape = constInts(ctx, 0, 'shape');
  if (shape.length > 64) fail('FM_SHAPE', `${describeNode(ctx.node)}: a shape input of ${shape.length} dimensions is not a plausible tensor shape`);
  const bad = shape.find((d) => !Number.isInteger(d) || d < 0);
  if (bad !== undefined) fail('FM_SHAPE', `${describeNode(ctx.node)}: shape [${shape}] has invalid dimension ${bad}`);
  const value = attrTensor(ctx.node, 'value') ?? makeConst('float32', [1], [0]);
  if (value.data.length !== 1) fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: attribute "value" must hold one element, it has ${value.data.length}`);
  return { type: { dtype: value.dtype, shape }, value: value.data[0]! };
}

const constantOfShapeOp: OpDef = {
  opTypes: ['ConstantOfShape'],
  costClass: 'data-movement',
  inferTypes: (ctx) => [constantOfShapeSpec(ctx).type],
  fold(ctx, inputs) {
    const { type, value } = constantOfShapeSpec({ ...ctx, consts: withFoldInputs(ctx, inputs) });
    const data = hostArrayFor(type.dtype, numElements(type.shape)).fill(value);
    return [{ ...type, data }];
  },
  lower(ctx) {
    const y = ctx.outputs[0]!;
    const { value } = constantOfShapeSpec(shapeContextOf(ctx));
    const literal = lit(value, wgslType(y.type.dtype));
    emitFill(ctx, 'fill', y, () => literal);
  },
};

interface RangeSpec { dtype: DType; start: number; delta: number; count: number }

function rangeSpec(ctx: ShapeContext): RangeSpec {
  const roles = ['start', 'limit', 'delta'] as const;
  const types = roles.map((role, i) => requiredInput(ctx, i, role));
  const dtype = types[0]!.dtype;
  if (types.some((t) => t.dtype !== dtype)) fail('FM_SHAPE', `${describeNode(ctx.node)}: start, limit and delta must share one type, got ${types.map((t) => t.dtype).join(', ')}`);
  const [start, limit, delta] = roles.map((role, i) => {
    const v = optionalConstValues(ctx, i, role)!;
    if (v.length !== 1) fail('FM_SHAPE', `${describeNode(ctx.node)}: ${role} must be a scalar, it has ${v.length} elements`);
    return v[0]!;
  }) as [number, number, number];
  if (delta === 0) fail('FM_SHAPE', `${describeNode(ctx.node)}: delta must not be 0`);
  return { dtype, start, delta, count: Math.max(0, Math.ceil((limit - start) / delta)) };
}

const rangeOp: OpDef = {
  opTypes: ['Range'],
  costClass: 'data-movement',
  inferTypes(ctx) {
    const { dtype, count } = rangeSpec(ctx);
    return [{ dtype, shape: [count] }];
  },
  fold(ctx, inputs) {
    const { dtype, start, delta, count } = rangeSpec({ ...ctx, consts: withFoldInputs(ctx, inputs) });
    const values = Array.from({ length: count }, (_, i) => normalizeValue(dtype, start + i * delta));
    return [makeConst(dtype, [count], values)];
  },
  lower(ctx) {
    const { dtype, start, delta } = rangeSpec(shapeContextOf(ctx));
    const type = wgslType(dtype);
    const index = isFloat(dtype) ? 'f32(i)' : 'i32(i)';
    emitFill(ctx, 'range', ctx.outputs[0]!, () => `${lit(start, type)} + ${index} * ${lit(delta, type)}`);
  },
};

export const shapeOps: readonly OpDef[] = [
  viewOp('Reshape', reshapeShape),
  viewOp('Flatten', flattenShape),
  viewOp('Squeeze', squeezeShape),
  viewOp('Unsqueeze', unsqueezeShape),
  viewOp('Identity', (_, x) => [...x.shape]),
  viewOp('Dropout', dropoutShape),
  shapeOp,
  sizeOp,
  constantOp,
  constantOfShapeOp,
  rangeOp,
];
