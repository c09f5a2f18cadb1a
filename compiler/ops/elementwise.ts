/**
 * Elementwise op families: binary arithmetic, comparison and logic with numpy broadcasting (and
 * the legacy opset < 7 `broadcast`/`axis` form), Where, PRelu, variadic Sum/Mean/Max/Min, unary
 * math and predicates, and Cast.
 *
 * One kernel template serves all of them (emitElementwise): each invocation computes 4 adjacent
 * output elements (vec4 loads/stores) or 1 where the shapes do not allow it; operand indices are
 * specialised per shape: operands of the output's shape read `x[i]` with no index arithmetic,
 * one-element operands read `x[0]` or become a literal when constant, broadcast operands use
 * literal strides (0 on broadcast axes) over the output axes merged where all operands agree.
 *
 * Integer semantics follow ONNX Runtime: every integer and bool dtype computes in i32 on the GPU
 * (int64 is held as i32), Div truncates toward zero, Mod follows the divisor's sign unless fmod=1.
 */
import { attrFloat, attrInt, attrString } from '../ir/attrs.js';
import type { ConstTensor, DType, FusedActivation, Node, TensorType } from '../ir/types.js';
import { isFloat, numElements } from '../ir/types.js';
import { hostArrayFor } from '../ir/tensor.js';
import { computeEntry, dot, grid1D, lit, unravel, wgslType, type WgslScalar } from '../codegen/wgsl.js';
import { fail, quoteName } from '../errors.js';
import { applyActivation } from './activation.js';
import type { LowerContext, LowerTensor, OpDef } from './op.js';

// ---------------------------------------------------------------------------------------------
// dtypes and host value semantics
// ---------------------------------------------------------------------------------------------

/** TensorProto.DataType codes used by Cast's `to` attribute. */
const DTYPE_BY_ONNX_CODE: Readonly<Record<number, DType>> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64',
  9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

/** Cast-1 names its target type with a string. */
const DTYPE_BY_LEGACY_NAME: Readonly<Record<string, DType>> = {
  FLOAT: 'float32', UINT8: 'uint8', INT8: 'int8', UINT16: 'uint16', INT16: 'int16', INT32: 'int32',
  INT64: 'int64', BOOL: 'bool', FLOAT16: 'float16', DOUBLE: 'float64', UINT32: 'uint32', UINT64: 'uint64',
};

function describe(node: Node): string {
  return `node ${quoteName(node.name)} (${node.opType})`;
}

const f32Scratch = new Float32Array(1);
const u32Scratch = new Uint32Array(f32Scratch.buffer);

/** Round to the nearest float16 value (ties to even), as Cast to float16 stores it. */
function roundToHalf(v: number): number {
  if (!Number.isFinite(v)) return v;
  const a = Math.abs(v);
  if (a >= 65520) return v > 0 ? Infinity : -Infinity;
  // spacing of float16 values around a: 2^(e-10) for normals, 2^-24 for subnormals
  const e = a < 2 ** -14 ? -14 : Math.floor(Math.log2(a));
  const step = 2 ** (e - 10);
  const q = a / step;
  let r = Math.round(q);
  if (Math.abs(q - Math.trunc(q) - 0.5) === 0 && r % 2 !== 0) r -= 1; // ties to even
  return Math.sign(v) * r * step;
}

/** Round to the nearest bfloat16 value (ties to even). */
function roundToBfloat16(v: number): number {
  if (!Number.isFinite(v)) return v;
  f32Scratch[0] = v;
  const bits = u32Scratch[0]!;
  u32Scratch[0] = ((bits + 0x7fff + ((bits >>> 16) & 1)) & 0xffff0000) >>> 0;
  return f32Scratch[0]!;
}

/**
 * A JS number converted to what a tensor of `dtype` stores: integer types truncate and wrap
 * around like C casts (int64 is kept exact up to 2^53), bool is nonzero-ness, float16 rounds.
 */
export function toDtypeValue(dtype: DType, v: number): number {
  switch (dtype) {
    case 'float32': case 'float64': return v;
    case 'float16': return roundToHalf(v);
    case 'bfloat16': return roundToBfloat16(v);
    case 'bool': return v !== 0 ? 1 : 0;
    case 'int8': return (v << 24) >> 24;
    case 'uint8': return v & 0xff;
    case 'int16': return (v << 16) >> 16;
    case 'uint16': return v & 0xffff;
    case 'int32': return v | 0;
    case 'uint32': return v >>> 0;
    case 'int64': case 'uint64': return Number.isFinite(v) ? Math.trunc(v) : v;
  }
}

function constOf(dtype: DType, shape: readonly number[], values: (i: number) => number): ConstTensor {
  const n = numElements(shape);
  const data = hostArrayFor(dtype, n);
  for (let i = 0; i < n; i++) data[i] = toDtypeValue(dtype, values(i));
  return { dtype, shape: [...shape], data };
}

// ---------------------------------------------------------------------------------------------
// broadcasting
// ---------------------------------------------------------------------------------------------

/** Multidirectional (numpy) broadcast of `shapes`; FM_SHAPE naming the node when incompatible. */
export function broadcastShapes(node: Node, shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const shape of shapes) {
    for (let k = 0; k < shape.length; k++) {
      const axis = rank - shape.length + k;
      const d = shape[k]!;
      if (d === out[axis] || d === 1) continue;
      if (out[axis] !== 1) {
        fail('FM_SHAPE', `${describe(node)}: input shapes ${shapes.map((s) => `[${s}]`).join(', ')} are not broadcastable ` +
          `(axis ${axis}: ${out[axis]} vs ${d}); reshape the inputs so each axis matches or is 1`);
      }
      out[axis] = d;
    }
  }
  return out;
}

/** Element strides of `shape` read as `outShape` (right-aligned, 0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let s = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    const axis = outShape.length - shape.length + k;
    strides[axis] = shape[k] === 1 ? 0 : s;
    s *= shape[k]!;
  }
  return strides;
}

/**
 * Merges adjacent output axes that every operand walks alike (both contiguous or both
 * broadcast) and drops size-1 axes, so kernels decompose the flat index into as few
 * coordinates as possible: [2,3,4,5] + [5] becomes [24,5] with strides [5,1] and [0,1].
 */
export function coalesceAxes(outShape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const shape: number[] = [];
  const merged: number[][] = strides.map(() => []);
  for (let axis = 0; axis < outShape.length; axis++) {
    const d = outShape[axis]!;
    if (d === 1) continue;
    const last = shape.length - 1;
    const mergeable = last >= 0 && strides.every((s, j) => merged[j]![last] === s[axis]! * d);
    if (mergeable) {
      shape[last] = shape[last]! * d;
      strides.forEach((s, j) => { merged[j]![last] = s[axis]!; });
    } else {
      shape.push(d);
      strides.forEach((s, j) => merged[j]!.push(s[axis]!));
    }
  }
  return { shape, strides: merged };
}

interface HostOperand {
  shape: readonly number[];
  data: ArrayLike<number>;
}

/** CPU evaluation of a broadcasting elementwise function (constant folding). */
function foldBroadcast(dtype: DType, outShape: readonly number[], operands: readonly HostOperand[], fn: (values: number[]) => number): ConstTensor {
  const strides = operands.map((op) => broadcastStrides(op.shape, outShape));
  const coords = new Array<number>(outShape.length).fill(0);
  const offsets = operands.map(() => 0);
  const values = operands.map(() => 0);
  const n = numElements(outShape);
  const data = hostArrayFor(dtype, n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < operands.length; j++) values[j] = operands[j]!.data[offsets[j]!]!;
    data[i] = toDtypeValue(dtype, fn(values));
    // odometer increment of the output coordinates, keeping every operand offset in step
    for (let axis = outShape.length - 1; axis >= 0; axis--) {
      coords[axis]!++;
      for (let j = 0; j < operands.length; j++) offsets[j]! += strides[j]![axis]!;
      if (coords[axis]! < outShape[axis]!) break;
      for (let j = 0; j < operands.length; j++) offsets[j]! -= strides[j]![axis]! * outShape[axis]!;
      coords[axis] = 0;
    }
  }
  return { dtype, shape: [...outShape], data };
}

// ---------------------------------------------------------------------------------------------
// WGSL helper functions, emitted once per kernel that needs them
// ---------------------------------------------------------------------------------------------

/** erf coefficients: weighted least-squares fits on Chebyshev nodes in double precision (see erfApproximation). */
const ERF_SPLIT = 0.9;
const ERF_SMALL = [1.12837911, -0.376125544, 0.112824090, -0.0267874096, 0.00502329879, -0.000614414224];
const ERF_LARGE = [0.0000986216037, -1.12916672, -0.634009957, -0.107600234, 0.0247144569, -0.00403104397, 0.000408460444, -0.0000190952505];
/** erf(x) rounds to 1 in f32 beyond this */
const ERF_SATURATION = 3.92;

function horner(coefficients: readonly number[], x: string): string {
  return coefficients.slice(0, -1).reduceRight((acc, c) => `fma(${acc}, ${x}, ${lit(c, 'f32')})`, lit(coefficients.at(-1)!, 'f32'));
}

/**
 * erf in f32, max abs error 1.3e-7 over the whole line (measured against a double-precision
 * series/continued-fraction reference). |x| <= 0.9: erf(x) = x * P(x^2) with P of degree 5;
 * 0.9 < |x| < 3.92: erf(|x|) = 1 - exp(Q(|x|)) with Q of degree 7 fitted to log(erfc) with
 * weight sqrt(erfc), which bounds the absolute error of erf.
 */
function erfApproximation(): string {
  const saturation = lit(ERF_SATURATION, 'f32');
  return `fn fm_erf(x: f32) -> f32 {
  if (fm_is_nan(x)) { return x; }
  let a = abs(x);
  if (a <= ${lit(ERF_SPLIT, 'f32')}) {
    let s = x * x;
    return x * ${horner(ERF_SMALL, 's')};
  }
  let t = min(a, ${saturation});
  let r = 1.0 - exp(${horner(ERF_LARGE, 't')});
  return select(r, 1.0, a >= ${saturation}) * sign(x);
}`;
}

const WGSL_HELPERS = {
  // `var` keeps these out of const-evaluation, where WGSL forbids inf and NaN results
  fm_inf: 'fn fm_inf() -> f32 {\n  var bits = 0x7f800000u;\n  return bitcast<f32>(bits);\n}',
  fm_nan: 'fn fm_nan() -> f32 {\n  var bits = 0x7fc00000u;\n  return bitcast<f32>(bits);\n}',
  fm_is_nan: 'fn fm_is_nan(x: f32) -> bool {\n  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;\n}',
  fm_max: 'fn fm_max(a: f32, b: f32) -> f32 {\n  return select(max(a, b), a + b, fm_is_nan(a) || fm_is_nan(b));\n}',
  fm_min: 'fn fm_min(a: f32, b: f32) -> f32 {\n  return select(min(a, b), a + b, fm_is_nan(a) || fm_is_nan(b));\n}',
  fm_is_inf: 'fn fm_is_inf(x: f32) -> bool {\n  return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;\n}',
  // WGSL pow() is exp2(y * log2(x)): undefined for x <= 0. ONNX follows C pow.
  fm_pow: `fn fm_pow(x: f32, y: f32) -> f32 {
  if (y == 0.0 || x == 1.0) { return 1.0; }
  let ax = abs(x);
  if (ax == 0.0) { return select(0.0, fm_inf(), y < 0.0); }
  let r = exp2(y * log2(ax));
  if (x > 0.0) { return r; }
  if (fract(y) != 0.0) { return fm_nan(); }
  return select(r, -r, fract(y * 0.5) != 0.0);
}`,
  // integer power as ONNX Runtime computes it: trunc(pow(base, exp)), so negative exponents give 0 unless |base| == 1
  fm_ipow: `fn fm_ipow(base: i32, e: i32) -> i32 {
  if (e < 0) {
    if (base == 1) { return 1; }
    if (base == -1) { return select(1, -1, (e & 1) != 0); }
    return 0;
  }
  var result = 1;
  var b = base;
  var n = e;
  loop {
    if (n == 0) { break; }
    if ((n & 1) != 0) { result = result * b; }
    b = b * b;
    n = n >> 1u;
  }
  return result;
}`,
  // Splits x into a high part of 12 significant bits and the exact rest: products of two high or
  // low parts are exact in f32. Bit masking, unlike Veltkamp splitting, survives any float rewrites.
  fm_split: 'fn fm_split(x: f32) -> vec2<f32> {\n  let hi = bitcast<f32>(bitcast<u32>(x) & 0xfffff000u);\n  return vec2<f32>(hi, x - hi);\n}',
  // C fmod is exact: r = a - b * trunc(a / b) needs b * q without rounding, which fma() does not
  // guarantee (llvmpipe rounds the product), so b * q is formed as p + e (Dekker's two-product);
  // then one step corrects a quotient that a / b rounded across an integer.
  fm_fmod: `fn fm_fmod(a: f32, b: f32) -> f32 {
  let q = trunc(a / b);
  let p = b * q;
  let bs = fm_split(b);
  let qs = fm_split(q);
  let e = ((bs.x * qs.x - p) + bs.x * qs.y + bs.y * qs.x) + bs.y * qs.y;
  var r = (a - p) - e;
  if (r != 0.0 && (r < 0.0) != (a < 0.0)) { r = r + select(-abs(b), abs(b), a > 0.0); }
  if (abs(r) >= abs(b)) { r = r - select(-abs(b), abs(b), a > 0.0); }
  return r;
}`,
  // log(x + sqrt(x * x + 1)) overflows for |x| > 1e19 in f32, where asinh(x) = sign(x) * (log|x| + log 2)
  fm_asinh: 'fn fm_asinh(x: f32) -> f32 {\n  return select(asinh(x), sign(x) * (log(abs(x)) + 0.693147181), abs(x) > 1e18);\n}',
  fm_acosh: 'fn fm_acosh(x: f32) -> f32 {\n  return select(acosh(x), log(x) + 0.693147181, x > 1e18);\n}',
  // Mod with fmod=0: the remainder takes the divisor's sign (Python's %)
  fm_imod: 'fn fm_imod(a: i32, b: i32) -> i32 {\n  let r = a % b;\n  return select(r, r + b, r != 0 && ((r < 0) != (b < 0)));\n}',
  fm_erf: erfApproximation(),
  // pack2x16float is undefined beyond the f16 range, where Cast must give +-inf
  fm_to_f16: 'fn fm_to_f16(x: f32) -> f32 {\n  let h = unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x;\n  return select(h, sign(x) * fm_inf(), abs(x) >= 65520.0);\n}',
  fm_to_bf16: 'fn fm_to_bf16(x: f32) -> f32 {\n  let b = bitcast<u32>(x);\n  return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);\n}',
} as const;

type HelperName = keyof typeof WGSL_HELPERS;

/** helpers other helpers call */
const HELPER_DEPS: Partial<Record<HelperName, HelperName[]>> = {
  fm_pow: ['fm_inf', 'fm_nan'], fm_to_f16: ['fm_inf'], fm_max: ['fm_is_nan'], fm_min: ['fm_is_nan'], fm_erf: ['fm_is_nan'], fm_fmod: ['fm_split'],
};

function helperSource(names: readonly HelperName[]): string {
  const ordered: HelperName[] = [];
  const visit = (n: HelperName): void => {
    if (ordered.includes(n)) return;
    for (const d of HELPER_DEPS[n] ?? []) visit(d);
    ordered.push(n);
  };
  names.forEach(visit);
  return ordered.map((n) => WGSL_HELPERS[n]).join('\n\n');
}

/** A WGSL expression plus the helper functions it calls. */
interface Expr {
  code: string;
  helpers?: HelperName[];
}

function zero(t: WgslScalar): string {
  return t === 'f32' ? '0.0' : '0';
}

function boolToI32(cond: string): string {
  return `select(0, 1, ${cond})`;
}

// ---------------------------------------------------------------------------------------------
// the elementwise kernel template
// ---------------------------------------------------------------------------------------------

/** A kernel operand: the tensor and the shape it broadcasts as (legacy forms pad it with 1s). */
export interface Operand {
  tensor: LowerTensor;
  shape: readonly number[];
}

interface ElementwiseKernel {
  label: string;
  operands: readonly Operand[];
  output: LowerTensor;
  /** the output element (in the output's storage type) from the operands' element expressions */
  expr(values: readonly string[]): Expr;
  activation?: FusedActivation;
}

/** A one-element constant that fits a literal of its storage type, or undefined. */
function inlinableScalar(t: LowerTensor): string | undefined {
  if (!t.data || t.data.data.length !== 1) return undefined;
  const v = t.data.data[0]!;
  const type = wgslType(t.type.dtype);
  if (type === 'f32') return Number.isFinite(v) ? lit(v, 'f32') : undefined;
  return Number.isInteger(v) && Math.abs(v) <= 2147483647 ? lit(v, 'i32') : undefined;
}

/** FM_LIMIT when a tensor is too large to be bound as one storage buffer. */
export function checkBindable(ctx: LowerContext, tensors: readonly LowerTensor[]): void {
  for (const t of tensors) {
    const bytes = numElements(t.type.shape) * 4;
    if (bytes > ctx.limits.maxStorageBufferBindingSize) {
      fail('FM_LIMIT', `${describe(ctx.node)}: a [${t.type.shape}] tensor (${bytes} bytes) exceeds maxStorageBufferBindingSize ` +
        `(${ctx.limits.maxStorageBufferBindingSize} bytes); split the tensor in the model or target a device with a larger limit`);
    }
  }
  if (tensors.length > ctx.limits.maxStorageBuffersPerShaderStage) {
    fail('FM_LIMIT', `${describe(ctx.node)}: a kernel needs ${tensors.length} storage buffers, the target allows ` +
      `${ctx.limits.maxStorageBuffersPerShaderStage}`);
  }
}

/** Applies the fused activation to the output value `v` (integer outputs go through f32). */
function activate(v: string, outType: WgslScalar, act: FusedActivation | undefined): string {
  if (!act) return v;
  return outType === 'f32' ? applyActivation(v, act) : `i32(${applyActivation(`f32(${v})`, act)})`;
}

const LANES = ['x', 'y', 'z', 'w'];

/**
 * One invocation computes `width` consecutive output elements: 4 when the innermost merged axis
 * is a multiple of 4, so that every operand either walks those 4 elements contiguously (one vec4
 * load) or holds them constant (one scalar load); 1 otherwise. On llvmpipe the vec4 form
 * amortises the per-invocation index arithmetic: about 2x faster with a broadcast or scalar
 * operand (Add of a [64,1,1] bias to [1,64,112,112]: 1.2 ms vs 2.9 ms); streams of equal
 * shapes are bandwidth-bound either way (about 1.6 ms).
 */
function emitElementwise(ctx: LowerContext, k: ElementwiseKernel): void {
  const outShape = k.output.type.shape;
  const total = numElements(outShape);
  if (total === 0) return;
  const outType = wgslType(k.output.type.dtype);
  const { shape: axes, strides } = coalesceAxes(outShape, k.operands.map((op) => broadcastStrides(op.shape, outShape)));
  const width = (axes.at(-1) ?? 1) % 4 === 0 ? 4 : 1;
  const coordNames = axes.map((_, a) => `c${a}`);
  const bound: { name: string; tensor: LowerTensor; vector: boolean }[] = [];
  const loads: string[] = [];
  let needsCoords = false;
  /** per operand: its value in output lane q */
  const lanes = k.operands.map((op, j): ((q: number) => string) => {
    const literal = inlinableScalar(op.tensor);
    if (literal !== undefined) return () => literal;
    const name = `x${bound.length}`;
    const n = numElements(op.shape);
    const vector = width === 4 && n > 1 && strides[j]!.at(-1) === 1;
    bound.push({ name, tensor: op.tensor, vector });
    let index = 'i';
    if (n === 1) index = '0u';
    else if (n !== total) {
      needsCoords = true;
      const offset = dot(coordNames, strides[j]!);
      index = vector ? `(${offset}) / 4u` : offset;
    }
    loads.push(`let v${j} = ${name}[${index}];`);
    return vector ? (q) => `v${j}.${LANES[q]}` : () => `v${j}`;
  });
  checkBindable(ctx, [...bound.map((b) => b.tensor), k.output]);
  const results = Array.from({ length: width }, (_, q) => k.expr(lanes.map((lane) => lane(q))));
  const grid = grid1D(total / width);
  const storage = (t: WgslScalar, vector: boolean) => (vector ? `vec4<${t}>` : t);
  const decls = [
    ...bound.map((b) => ({ name: b.name, type: storage(wgslType(b.tensor.type.dtype), b.vector) })),
    { name: 'y', type: storage(outType, width === 4) },
  ].map((d, i) => `@group(0) @binding(${i}) var<storage, read_write> ${d.name}: array<${d.type}>;`).join('\n');
  const stored = results.map((_, q) => activate(`r${q}`, outType, k.activation));
  const body = [
    grid.prologue,
    ...(needsCoords ? [width === 4 ? `let e = i * 4u;\n  ${unravel('e', axes, 'c')}` : unravel('i', axes, 'c')] : []),
    ...loads,
    ...results.map((r, q) => `let r${q} = ${r.code};`),
    `y[i] = ${width === 4 ? `vec4<${outType}>(${stored.join(', ')})` : stored[0]};`,
  ].join('\n  ');
  const helperNames = [...new Set(results.flatMap((r) => r.helpers ?? []))];
  const helpers = helperNames.length ? `${helperSource(helperNames)}\n\n` : '';
  const wgsl = `${decls}\n\n${helpers}${computeEntry(grid.workgroupSize, body)}\n`;
  ctx.kernel({ label: k.label, wgsl, bindings: [...bound.map((b) => b.tensor), k.output], workgroups: grid.workgroups });
}

// ---------------------------------------------------------------------------------------------
// input access and validation
// ---------------------------------------------------------------------------------------------

function requireInputs<T>(node: Node, inputs: readonly (T | undefined)[], min: number, max = min): T[] {
  const present = inputs.filter((t): t is T => t !== undefined);
  if (present.length !== inputs.length || inputs.length < min || inputs.length > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    fail('FM_ONNX_INVALID', `${describe(node)}: expects ${want} inputs, got ${present.length} of ${inputs.length}`);
  }
  return present;
}

type DtypeClass = 'float' | 'numeric' | 'bool' | 'numeric-or-bool';

function checkDtype(node: Node, dtype: DType, cls: DtypeClass, what = 'input'): void {
  const ok = cls === 'float' ? isFloat(dtype)
    : cls === 'numeric' ? dtype !== 'bool'
      : cls === 'bool' ? dtype === 'bool'
        : true;
  if (!ok) {
    const want = cls === 'numeric' ? 'a numeric type' : cls === 'float' ? 'a floating-point type' : 'bool';
    fail('FM_DTYPE', `${describe(node)}: ${what} has dtype ${dtype}, expected ${want}`);
  }
}

function checkSameDtype(node: Node, types: readonly TensorType[]): void {
  const first = types[0]!.dtype;
  const other = types.find((t) => t.dtype !== first);
  if (other) fail('FM_ONNX_INVALID', `${describe(node)}: inputs must share one dtype, got ${first} and ${other.dtype}`);
}

// ---------------------------------------------------------------------------------------------
// binary ops
// ---------------------------------------------------------------------------------------------

interface BinaryContext {
  node: Node;
  /** storage types of A and B (the output type follows A, or is i32 for bool results) */
  a: WgslScalar;
  b: WgslScalar;
  /** B's value when it is a one-element constant */
  bConst?: number;
}

interface BinaryOpImpl {
  result: 'same' | 'bool';
  accepts: DtypeClass;
  /** ops that had `broadcast`/`axis` attributes before opset 7 */
  legacyBroadcast: boolean;
  wgsl(a: string, b: string, c: BinaryContext): Expr;
  js(a: number, b: number, dtype: DType, node: Node): number;
}

function arithmetic(op: string, js: (a: number, b: number) => number): BinaryOpImpl {
  return { result: 'same', accepts: 'numeric', legacyBroadcast: true, wgsl: (a, b) => ({ code: `${a} ${op} ${b}` }), js };
}

function comparison(op: string, js: (a: number, b: number) => boolean, legacyBroadcast: boolean): BinaryOpImpl {
  return {
    result: 'bool', accepts: 'numeric-or-bool', legacyBroadcast,
    wgsl: (a, b) => ({ code: boolToI32(`${a} ${op} ${b}`) }),
    js: (a, b) => (js(a, b) ? 1 : 0),
  };
}

function logical(op: string, js: (a: boolean, b: boolean) => boolean): BinaryOpImpl {
  return {
    result: 'bool', accepts: 'bool', legacyBroadcast: true,
    wgsl: (a, b) => ({ code: boolToI32(`(${a} != 0) ${op} (${b} != 0)`) }),
    js: (a, b) => (js(a !== 0, b !== 0) ? 1 : 0),
  };
}

/** Pow by a constant small integer or half exponent, without exp2/log2. */
function powByConstant(a: string, e: number): string | undefined {
  switch (e) {
    case 0: return '1.0';
    case 1: return a;
    case 2: return `${a} * ${a}`;
    case 3: return `${a} * ${a} * ${a}`;
    case 4: return `(${a} * ${a}) * (${a} * ${a})`;
    case 0.5: return `sqrt(${a})`;
    case -0.5: return `inverseSqrt(${a})`;
    case -1: return `1.0 / ${a}`;
    case -2: return `1.0 / (${a} * ${a})`;
    default: return undefined;
  }
}

const powImpl: BinaryOpImpl = {
  result: 'same', accepts: 'numeric', legacyBroadcast: true,
  wgsl(a, b, c) {
    if (c.a === 'f32') {
      const special = c.bConst === undefined ? undefined : powByConstant(a, c.bConst);
      if (special) return { code: special };
      return { code: `fm_pow(${a}, ${c.b === 'f32' ? b : `f32(${b})`})`, helpers: ['fm_pow'] };
    }
    if (c.b === 'i32') return { code: `fm_ipow(${a}, ${b})`, helpers: ['fm_ipow'] };
    return { code: `i32(fm_pow(f32(${a}), ${b}))`, helpers: ['fm_pow'] };
  },
  // C pow: x^0 and 1^y are 1 even for NaN (JS ** gives NaN for 1 ** NaN)
  js: (a, b) => (b === 0 || a === 1 ? 1 : a ** b),
};

const modImpl: BinaryOpImpl = {
  result: 'same', accepts: 'numeric', legacyBroadcast: false,
  wgsl(a, b, c) {
    const fmod = attrInt(c.node, 'fmod', 0) === 1;
    // i32 % truncates like C fmod; f32 % loses the remainder when a / b rounds
    if (fmod) return c.a === 'i32' ? { code: `${a} % ${b}` } : { code: `fm_fmod(${a}, ${b})`, helpers: ['fm_fmod'] };
    return { code: `fm_imod(${a}, ${b})`, helpers: ['fm_imod'] };
  },
  js(a, b, _dtype, node) {
    const r = a % b;
    if (attrInt(node, 'fmod', 0) === 1) return r;
    return r !== 0 && (r < 0) !== (b < 0) ? r + b : r;
  },
};

const BINARY_ARITHMETIC: Readonly<Record<string, BinaryOpImpl>> = {
  Add: arithmetic('+', (a, b) => a + b),
  Sub: arithmetic('-', (a, b) => a - b),
  Mul: arithmetic('*', (a, b) => a * b),
  // i32 division in WGSL truncates toward zero like ONNX Runtime's integer Div
  Div: { ...arithmetic('/', (a, b) => a / b), js: (a, b, dtype) => (isFloat(dtype) ? a / b : Math.trunc(a / b)) },
  Pow: powImpl,
  Mod: modImpl,
};

const BINARY_PREDICATES: Readonly<Record<string, BinaryOpImpl>> = {
  Equal: comparison('==', (a, b) => a === b, true),
  Less: comparison('<', (a, b) => a < b, true),
  Greater: comparison('>', (a, b) => a > b, true),
  LessOrEqual: comparison('<=', (a, b) => a <= b, false),
  GreaterOrEqual: comparison('>=', (a, b) => a >= b, false),
  And: logical('&&', (a, b) => a && b),
  Or: logical('||', (a, b) => a || b),
  Xor: logical('!=', (a, b) => a !== b),
};

/**
 * Before opset 7, binary ops broadcast only with broadcast=1: B's shape then matches a
 * contiguous run of A's axes starting at `axis` (default: A's trailing axes). Returns B's shape
 * padded with 1s so that numpy broadcasting reproduces that alignment.
 */
function legacyAlignedShape(node: Node, a: readonly number[], b: readonly number[]): number[] {
  const enabled = attrInt(node, 'broadcast', 0) === 1;
  if (!enabled) {
    if (a.length !== b.length || a.some((d, k) => d !== b[k])) {
      fail('FM_SHAPE', `${describe(node)}: input shapes [${a}] and [${b}] differ and broadcast=0 (opset < 7 broadcasts only ` +
        `with broadcast=1); set broadcast=1 or convert the model to opset >= 7`);
    }
    return [...b];
  }
  let axis = attrInt(node, 'axis', a.length - b.length);
  if (axis < 0) axis += a.length;
  if (axis < 0 || axis + b.length > a.length) {
    fail('FM_SHAPE', `${describe(node)}: axis=${attrInt(node, 'axis')} cannot place B [${b}] inside A [${a}]`);
  }
  b.forEach((d, k) => {
    if (d !== 1 && d !== a[axis + k]) {
      fail('FM_SHAPE', `${describe(node)}: B [${b}] does not match A [${a}] at axis ${axis} (broadcast=1, opset < 7)`);
    }
  });
  return [...new Array<number>(axis).fill(1), ...b, ...new Array<number>(a.length - axis - b.length).fill(1)];
}

interface BinaryPlan {
  outType: TensorType;
  shapes: [number[], number[]];
}

function planBinary(impl: BinaryOpImpl, node: Node, opset: number, inputs: readonly (TensorType | undefined)[]): BinaryPlan {
  const [a, b] = requireInputs(node, inputs, 2);
  if (!(node.opType === 'Pow' && opset >= 12)) checkSameDtype(node, [a!, b!]);
  checkDtype(node, a!.dtype, impl.accepts);
  checkDtype(node, b!.dtype, impl.accepts);
  if (node.opType === 'Mod' && isFloat(a!.dtype) && attrInt(node, 'fmod', 0) !== 1) {
    fail('FM_ONNX_INVALID', `${describe(node)}: floating-point Mod requires fmod=1 (got fmod=${attrInt(node, 'fmod', 0)})`);
  }
  const shapes: [number[], number[]] = impl.legacyBroadcast && opset < 7
    ? [[...a!.shape], legacyAlignedShape(node, a!.shape, b!.shape)]
    : [[...a!.shape], [...b!.shape]];
  const shape = broadcastShapes(node, shapes);
  return { outType: { dtype: impl.result === 'bool' ? 'bool' : a!.dtype, shape }, shapes };
}

function binaryFamily(table: Readonly<Record<string, BinaryOpImpl>>, fusesActivation: boolean): OpDef {
  const implOf = (node: Node): BinaryOpImpl => table[node.opType]!;
  return {
    opTypes: Object.keys(table),
    costClass: 'elementwise',
    fusesActivation,
    inferTypes: (ctx) => [planBinary(implOf(ctx.node), ctx.node, ctx.opset, ctx.inputs).outType],
    fold(ctx, inputs) {
      const impl = implOf(ctx.node);
      const plan = planBinary(impl, ctx.node, ctx.opset, ctx.inputs);
      const [a, b] = inputs as ConstTensor[];
      const operands = [{ shape: plan.shapes[0], data: a!.data }, { shape: plan.shapes[1], data: b!.data }];
      return [foldBroadcast(plan.outType.dtype, plan.outType.shape, operands, ([x, y]) => impl.js(x!, y!, a!.dtype, ctx.node))];
    },
    lower(ctx) {
      const impl = implOf(ctx.node);
      const plan = planBinary(impl, ctx.node, ctx.opset, ctx.inputs.map((t) => t?.type));
      const [a, b] = ctx.inputs as LowerTensor[];
      const bc: BinaryContext = {
        node: ctx.node, a: wgslType(a!.type.dtype), b: wgslType(b!.type.dtype),
        bConst: b!.data?.data.length === 1 ? b!.data.data[0] : undefined,
      };
      emitElementwise(ctx, {
        label: ctx.node.opType.toLowerCase(),
        operands: [{ tensor: a!, shape: plan.shapes[0] }, { tensor: b!, shape: plan.shapes[1] }],
        output: ctx.outputs[0]!,
        expr: ([x, y]) => impl.wgsl(x!, y!, bc),
        activation: fusesActivation ? ctx.activation : undefined,
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Where
// ---------------------------------------------------------------------------------------------

function planWhere(node: Node, inputs: readonly (TensorType | undefined)[]): TensorType {
  const [c, x, y] = requireInputs(node, inputs, 3);
  checkDtype(node, c!.dtype, 'bool', 'condition');
  checkSameDtype(node, [x!, y!]);
  return { dtype: x!.dtype, shape: broadcastShapes(node, [c!.shape, x!.shape, y!.shape]) };
}

const whereOp: OpDef = {
  opTypes: ['Where'],
  costClass: 'elementwise',
  fusesActivation: true,
  inferTypes: (ctx) => [planWhere(ctx.node, ctx.inputs)],
  fold(ctx, inputs) {
    const out = planWhere(ctx.node, ctx.inputs);
    const operands = (inputs as ConstTensor[]).map((t) => ({ shape: t.shape, data: t.data }));
    return [foldBroadcast(out.dtype, out.shape, operands, ([c, x, y]) => (c !== 0 ? x! : y!))];
  },
  lower(ctx) {
    planWhere(ctx.node, ctx.inputs.map((t) => t?.type));
    const operands = (ctx.inputs as LowerTensor[]).map((t) => ({ tensor: t, shape: t.type.shape }));
    emitElementwise(ctx, {
      label: 'where', operands, output: ctx.outputs[0]!,
      expr: ([c, x, y]) => ({ code: `select(${y}, ${x}, ${c} != 0)` }),
      activation: ctx.activation,
    });
  },
};

// ---------------------------------------------------------------------------------------------
// PRelu
// ---------------------------------------------------------------------------------------------

/**
 * The shape the slope broadcasts as. From opset 7 it broadcasts unidirectionally (numpy) to X.
 * Before, a slope of X's channel count applied per channel (axis 1), as in the PyTorch exports
 * of that era, so a [C] slope on [N, C, ...] is read as [C, 1, ...].
 */
function preluSlopeShape(node: Node, opset: number, x: readonly number[], slope: readonly number[]): number[] {
  const perChannel = opset < 7 && slope.length === 1 && slope[0] !== 1 && x.length >= 2 && slope[0] === x[1];
  const shape = perChannel ? [slope[0]!, ...new Array<number>(x.length - 2).fill(1)] : [...slope];
  const out = broadcastShapes(node, [x, shape]);
  if (out.length !== x.length || out.some((d, k) => d !== x[k])) {
    fail('FM_SHAPE', `${describe(node)}: slope [${slope}] must broadcast to X [${x}] (unidirectional); reshape the slope`);
  }
  return shape;
}

function planPrelu(node: Node, opset: number, inputs: readonly (TensorType | undefined)[]): { out: TensorType; slopeShape: number[] } {
  const [x, slope] = requireInputs(node, inputs, 2);
  checkSameDtype(node, [x!, slope!]);
  checkDtype(node, x!.dtype, 'numeric');
  return { out: { dtype: x!.dtype, shape: [...x!.shape] }, slopeShape: preluSlopeShape(node, opset, x!.shape, slope!.shape) };
}

const preluOp: OpDef = {
  opTypes: ['PRelu'],
  costClass: 'elementwise',
  fusesActivation: true,
  inferTypes: (ctx) => [planPrelu(ctx.node, ctx.opset, ctx.inputs).out],
  fold(ctx, inputs) {
    const { out, slopeShape } = planPrelu(ctx.node, ctx.opset, ctx.inputs);
    const [x, s] = inputs as ConstTensor[];
    const operands = [{ shape: x!.shape, data: x!.data }, { shape: slopeShape, data: s!.data }];
    return [foldBroadcast(out.dtype, out.shape, operands, ([v, k]) => (v! < 0 ? v! * k! : v!))];
  },
  lower(ctx) {
    const { slopeShape } = planPrelu(ctx.node, ctx.opset, ctx.inputs.map((t) => t?.type));
    const [x, s] = ctx.inputs as LowerTensor[];
    const t = wgslType(x!.type.dtype);
    emitElementwise(ctx, {
      label: 'prelu',
      operands: [{ tensor: x!, shape: x!.type.shape }, { tensor: s!, shape: slopeShape }],
      output: ctx.outputs[0]!,
      expr: ([v, k]) => ({ code: `select(${v}, ${v} * ${k}, ${v} < ${zero(t)})` }),
      activation: ctx.activation,
    });
  },
};

// ---------------------------------------------------------------------------------------------
// variadic Sum / Mean / Max / Min
// ---------------------------------------------------------------------------------------------

/** ONNX Runtime's Max/Min propagate NaN; WGSL max/min may return the other operand. */
function nanPropagating(fn: 'max' | 'min') {
  return (a: string, b: string, t: WgslScalar): Expr => (t === 'i32'
    ? { code: `${fn}(${a}, ${b})` }
    : { code: `fm_${fn}(${a}, ${b})`, helpers: [`fm_${fn}`] });
}

const VARIADIC: Readonly<Record<string, { combine(a: string, b: string, t: WgslScalar): Expr; js(a: number, b: number): number }>> = {
  Sum: { combine: (a, b) => ({ code: `${a} + ${b}` }), js: (a, b) => a + b },
  Mean: { combine: (a, b) => ({ code: `${a} + ${b}` }), js: (a, b) => a + b },
  Max: { combine: nanPropagating('max'), js: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)) },
  Min: { combine: nanPropagating('min'), js: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)) },
};

/** Shapes must be equal before opset 8; broadcasting them anyway accepts every valid model. */
function planVariadic(node: Node, inputs: readonly (TensorType | undefined)[]): TensorType {
  const present = requireInputs(node, inputs, 1, Infinity);
  checkSameDtype(node, present);
  checkDtype(node, present[0]!.dtype, 'numeric');
  return { dtype: present[0]!.dtype, shape: broadcastShapes(node, present.map((t) => t.shape)) };
}

const variadicOp: OpDef = {
  opTypes: Object.keys(VARIADIC),
  costClass: 'elementwise',
  fusesActivation: true,
  inferTypes: (ctx) => [planVariadic(ctx.node, ctx.inputs)],
  fold(ctx, inputs) {
    const out = planVariadic(ctx.node, ctx.inputs);
    const impl = VARIADIC[ctx.node.opType]!;
    const operands = (inputs as ConstTensor[]).map((t) => ({ shape: t.shape, data: t.data }));
    const mean = ctx.node.opType === 'Mean';
    return [foldBroadcast(out.dtype, out.shape, operands, (vals) => {
      const r = vals.reduce((acc, v) => impl.js(acc, v));
      return mean ? r / vals.length : r;
    })];
  },
  lower(ctx) {
    const out = ctx.outputs[0]!;
    planVariadic(ctx.node, ctx.inputs.map((t) => t?.type));
    const impl = VARIADIC[ctx.node.opType]!;
    const inputs = ctx.inputs as LowerTensor[];
    const t = wgslType(out.type.dtype);
    // one binding stays for the output; beyond that, chain kernels through scratch tensors,
    // each folding its inputs into the previous partial result
    const perKernel = Math.min(8, ctx.limits.maxStorageBuffersPerShaderStage) - 1;
    if (perKernel < 2) fail('FM_LIMIT', `${describe(ctx.node)}: the target allows too few storage buffers per kernel`);
    let partial: LowerTensor | undefined;
    let next = 0;
    while (next < inputs.length) {
      const room = partial ? perKernel - 1 : perKernel;
      const chunk = inputs.slice(next, next + room);
      next += chunk.length;
      const last = next >= inputs.length;
      const target = last ? out : ctx.scratch(`${ctx.node.opType.toLowerCase()}_partial`, { ...out.type });
      const operands = [...(partial ? [partial] : []), ...chunk].map((tensor) => ({ tensor, shape: tensor.type.shape }));
      emitElementwise(ctx, {
        label: ctx.node.opType.toLowerCase(),
        operands,
        output: target,
        expr: (values) => {
          const combined = values.slice(1).reduce<Expr>((acc, v) => {
            const step = impl.combine(acc.code, v, t);
            return { code: step.code, helpers: [...(acc.helpers ?? []), ...(step.helpers ?? [])] };
          }, { code: values[0]! });
          if (!(last && ctx.node.opType === 'Mean')) return combined;
          return { ...combined, code: `(${combined.code}) / ${lit(inputs.length, t)}` };
        },
        activation: last ? ctx.activation : undefined,
      });
      partial = target;
    }
  },
};

// ---------------------------------------------------------------------------------------------
// unary math
// ---------------------------------------------------------------------------------------------

interface UnaryContext {
  node: Node;
  t: WgslScalar;
}

interface UnaryOpImpl {
  accepts: DtypeClass;
  result: 'same' | 'bool';
  wgsl(x: string, c: UnaryContext): Expr;
  js(x: number, node: Node): number;
  /** minimum opset where the op exists (older models fail clearly) */
  since?: number;
}

function floatMath(fn: string, js: (x: number) => number): UnaryOpImpl {
  return { accepts: 'float', result: 'same', wgsl: (x) => ({ code: `${fn}(${x})` }), js };
}

function helperMath(fn: HelperName, js: (x: number) => number): UnaryOpImpl {
  return { accepts: 'float', result: 'same', wgsl: (x) => ({ code: `${fn}(${x})`, helpers: [fn] }), js };
}

/** Round half to even (WGSL round() has the same rule). */
function roundHalfEven(x: number): number {
  const r = Math.round(x);
  return Math.abs(x - Math.trunc(x)) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

const SQRT_PI = Math.sqrt(Math.PI);

/** erf in double precision (constant folding): Taylor series below 2, erfc's continued fraction above. */
export function erfHost(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  let r: number;
  if (a < 2) {
    let sum = 0;
    let term = a;
    for (let n = 0; n < 60; n++) {
      sum += term / (2 * n + 1);
      term *= (-a * a) / (n + 1);
    }
    r = (2 / SQRT_PI) * sum;
  } else if (a < 6) {
    let f = a;
    for (let k = 300; k >= 1; k--) f = a + k / 2 / f;
    r = 1 - Math.exp(-a * a) / SQRT_PI / f;
  } else {
    r = 1;
  }
  return x < 0 ? -r : r;
}

function geluTanhHost(x: number): number {
  return 0.5 * x * (1 + Math.tanh(Math.sqrt(2 / Math.PI) * (x + 0.044715 * x * x * x)));
}

function shrinkAttrs(node: Node): { lambd: number; bias: number } {
  return { lambd: attrFloat(node, 'lambd', 0.5), bias: attrFloat(node, 'bias', 0) };
}

function geluApproximation(node: Node): 'none' | 'tanh' {
  const mode = attrString(node, 'approximate', 'none');
  if (mode !== 'none' && mode !== 'tanh') {
    fail('FM_UNSUPPORTED_OP', `${describe(node)}: approximate=${quoteName(mode)} is not 'none' or 'tanh'`);
  }
  return mode;
}

const UNARY_MATH: Readonly<Record<string, UnaryOpImpl>> = {
  Abs: { accepts: 'numeric', result: 'same', wgsl: (x) => ({ code: `abs(${x})` }), js: Math.abs },
  Neg: { accepts: 'numeric', result: 'same', wgsl: (x) => ({ code: `-(${x})` }), js: (x) => -x },
  Sign: {
    accepts: 'numeric', result: 'same',
    // sign(NaN) is NaN in ONNX Runtime, 0 on llvmpipe
    wgsl: (x, c) => (c.t === 'i32' ? { code: `sign(${x})` } : { code: `select(sign(${x}), ${x}, fm_is_nan(${x}))`, helpers: ['fm_is_nan'] }),
    js: (x) => (Number.isNaN(x) ? NaN : Math.sign(x)),
  },
  Sqrt: floatMath('sqrt', Math.sqrt),
  Exp: floatMath('exp', Math.exp),
  Log: floatMath('log', Math.log),
  Reciprocal: { accepts: 'float', result: 'same', wgsl: (x) => ({ code: `1.0 / ${x}` }), js: (x) => 1 / x },
  Floor: floatMath('floor', Math.floor),
  Ceil: floatMath('ceil', Math.ceil),
  Round: { ...floatMath('round', roundHalfEven), since: 11 },
  Sin: { ...floatMath('sin', Math.sin), since: 7 },
  Cos: { ...floatMath('cos', Math.cos), since: 7 },
  Tan: { ...floatMath('tan', Math.tan), since: 7 },
  Asin: { ...floatMath('asin', Math.asin), since: 7 },
  Acos: { ...floatMath('acos', Math.acos), since: 7 },
  Atan: { ...floatMath('atan', Math.atan), since: 7 },
  Sinh: { ...floatMath('sinh', Math.sinh), since: 9 },
  Cosh: { ...floatMath('cosh', Math.cosh), since: 9 },
  Asinh: { ...helperMath('fm_asinh', Math.asinh), since: 9 },
  Acosh: { ...helperMath('fm_acosh', Math.acosh), since: 9 },
  Atanh: { ...floatMath('atanh', Math.atanh), since: 9 },
  Erf: { ...helperMath('fm_erf', erfHost), since: 9 },
  Gelu: {
    accepts: 'float', result: 'same', since: 20,
    wgsl(x, c) {
      if (geluApproximation(c.node) === 'none') return { code: `0.5 * ${x} * (1.0 + fm_erf(${x} * ${lit(Math.SQRT1_2, 'f32')}))`, helpers: ['fm_erf'] };
      const inner = `${lit(Math.sqrt(2 / Math.PI), 'f32')} * (${x} + ${lit(0.044715, 'f32')} * ${x} * ${x} * ${x})`;
      // tanh() of large |x| is NaN on some drivers: tanh(+-10) is +-1 in f32
      return { code: `0.5 * ${x} * (1.0 + tanh(clamp(${inner}, -10.0, 10.0)))` };
    },
    js: (x, node) => (geluApproximation(node) === 'none' ? 0.5 * x * (1 + erfHost(x * Math.SQRT1_2)) : geluTanhHost(x)),
  },
  Shrink: {
    accepts: 'numeric', result: 'same', since: 9,
    wgsl(x, c) {
      const { lambd, bias } = shrinkAttrs(c.node);
      // lambd and bias are floats even for integer X: compare and shift in f32, then truncate
      const v = c.t === 'f32' ? x : `f32(${x})`;
      const l = lit(lambd, 'f32');
      const b = lit(bias, 'f32');
      const shrunk = `select(select(0.0, ${v} - ${b}, ${v} > ${l}), ${v} + ${b}, ${v} < -(${l}))`;
      return { code: c.t === 'f32' ? shrunk : `i32(${shrunk})` };
    },
    js(x, node) {
      const { lambd, bias } = shrinkAttrs(node);
      return x < -lambd ? x + bias : x > lambd ? x - bias : 0;
    },
  },
};

const UNARY_PREDICATES: Readonly<Record<string, UnaryOpImpl>> = {
  IsNaN: { accepts: 'float', result: 'bool', since: 9, wgsl: (x) => ({ code: boolToI32(`fm_is_nan(${x})`), helpers: ['fm_is_nan'] }), js: (x) => (Number.isNaN(x) ? 1 : 0) },
  IsInf: {
    accepts: 'float', result: 'bool', since: 10,
    wgsl(x, c) {
      const neg = attrInt(c.node, 'detect_negative', 1) === 1;
      const pos = attrInt(c.node, 'detect_positive', 1) === 1;
      const sides = neg && pos ? 'true' : neg ? `${x} < 0.0` : pos ? `${x} > 0.0` : 'false';
      return { code: boolToI32(`fm_is_inf(${x}) && (${sides})`), helpers: ['fm_is_inf'] };
    },
    js(x, node) {
      const neg = attrInt(node, 'detect_negative', 1) === 1;
      const pos = attrInt(node, 'detect_positive', 1) === 1;
      return (x === Infinity && pos) || (x === -Infinity && neg) ? 1 : 0;
    },
  },
  Not: { accepts: 'bool', result: 'bool', wgsl: (x) => ({ code: boolToI32(`${x} == 0`) }), js: (x) => (x === 0 ? 1 : 0) },
};

function planUnary(impl: UnaryOpImpl, node: Node, opset: number, inputs: readonly (TensorType | undefined)[]): TensorType {
  if (impl.since !== undefined && opset < impl.since) {
    fail('FM_UNSUPPORTED_OP', `${describe(node)}: ${node.opType} does not exist before opset ${impl.since} (model opset ${opset})`);
  }
  const [x] = requireInputs(node, inputs, 1);
  checkDtype(node, x!.dtype, impl.accepts);
  return { dtype: impl.result === 'bool' ? 'bool' : x!.dtype, shape: [...x!.shape] };
}

function unaryFamily(table: Readonly<Record<string, UnaryOpImpl>>, fusesActivation: boolean): OpDef {
  const implOf = (node: Node): UnaryOpImpl => table[node.opType]!;
  return {
    opTypes: Object.keys(table),
    costClass: 'elementwise',
    fusesActivation,
    inferTypes: (ctx) => [planUnary(implOf(ctx.node), ctx.node, ctx.opset, ctx.inputs)],
    fold(ctx, inputs) {
      const impl = implOf(ctx.node);
      const out = planUnary(impl, ctx.node, ctx.opset, ctx.inputs);
      const x = inputs[0]!;
      return [constOf(out.dtype, out.shape, (i) => impl.js(x.data[i]!, ctx.node))];
    },
    lower(ctx) {
      const impl = implOf(ctx.node);
      planUnary(impl, ctx.node, ctx.opset, ctx.inputs.map((t) => t?.type));
      const x = ctx.inputs[0]!;
      const uc: UnaryContext = { node: ctx.node, t: wgslType(x.type.dtype) };
      emitElementwise(ctx, {
        label: ctx.node.opType.toLowerCase(),
        operands: [{ tensor: x, shape: x.type.shape }],
        output: ctx.outputs[0]!,
        expr: ([v]) => impl.wgsl(v!, uc),
        activation: fusesActivation ? ctx.activation : undefined,
      });
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Cast / CastLike
// ---------------------------------------------------------------------------------------------

function castTarget(node: Node, inputs: readonly (TensorType | undefined)[]): DType {
  if (node.opType === 'CastLike') {
    const like = inputs[1];
    if (!like) fail('FM_ONNX_INVALID', `${describe(node)}: missing target_type input`);
    return like.dtype;
  }
  const attr = node.attrs.to;
  let dtype: DType | undefined;
  if (attr?.type === 'int') dtype = DTYPE_BY_ONNX_CODE[attr.value];
  else if (attr?.type === 'string') dtype = DTYPE_BY_LEGACY_NAME[attr.value.toUpperCase()];
  else fail('FM_ONNX_INVALID', `${describe(node)}: attribute 'to' is missing or not an int`);
  if (!dtype) {
    fail('FM_UNSUPPORTED_OP', `${describe(node)}: cast to ${quoteName(String(attr.value))} is not supported ` +
      `(supported: float, double, float16, bfloat16, integer types, bool)`);
  }
  return dtype;
}

function planCast(node: Node, inputs: readonly (TensorType | undefined)[]): TensorType {
  const x = inputs[0];
  if (!x) fail('FM_ONNX_INVALID', `${describe(node)}: missing input`);
  const to = castTarget(node, inputs);
  if (to === 'uint64' || x.dtype === 'uint64') fail('FM_DTYPE', `${describe(node)}: uint64 tensors are not supported on the GPU`);
  return { dtype: to, shape: [...x.shape] };
}

/** WGSL conversion of value `x` of storage type `from` (IR dtype `fromDtype`) to dtype `to`. */
function castExpr(x: string, fromDtype: DType, to: DType): Expr {
  const from = wgslType(fromDtype);
  const asF32 = from === 'f32' ? x : `f32(${x})`;
  const asI32 = from === 'i32' ? x : `i32(${x})`;
  switch (to) {
    case 'float32': case 'float64': return { code: asF32 };
    case 'float16': return { code: `fm_to_f16(${asF32})`, helpers: ['fm_to_f16'] };
    case 'bfloat16': return { code: `fm_to_bf16(${asF32})`, helpers: ['fm_to_bf16'] };
    case 'bool': return { code: boolToI32(`${x} != ${zero(from)}`) };
    // narrow integers wrap like C casts; f32 -> i32 truncates toward zero
    case 'int8': return { code: `(${asI32} << 24u) >> 24u` };
    case 'uint8': return { code: `${asI32} & 255` };
    case 'int16': return { code: `(${asI32} << 16u) >> 16u` };
    case 'uint16': return { code: `${asI32} & 65535` };
    case 'int32': case 'int64': case 'uint32': case 'uint64': return { code: asI32 };
  }
}

const castOp: OpDef = {
  opTypes: ['Cast', 'CastLike'],
  costClass: 'elementwise',
  inferTypes: (ctx) => [planCast(ctx.node, ctx.inputs)],
  fold(ctx, inputs) {
    const out = planCast(ctx.node, ctx.inputs);
    const x = inputs[0]!;
    // float -> integer truncates toward zero (constOf applies the wrap-around of narrow types)
    const convert = isFloat(x.dtype) && !isFloat(out.dtype) && out.dtype !== 'bool' ? Math.trunc : (v: number) => v;
    return [constOf(out.dtype, out.shape, (i) => convert(x.data[i]!))];
  },
  lower(ctx) {
    const out = planCast(ctx.node, ctx.inputs.map((t) => t?.type));
    const x = ctx.inputs[0]!;
    emitElementwise(ctx, {
      label: 'cast',
      operands: [{ tensor: x, shape: x.type.shape }],
      output: ctx.outputs[0]!,
      expr: ([v]) => castExpr(v!, x.type.dtype, out.dtype),
    });
  },
};

export const elementwiseOps: readonly OpDef[] = [
  binaryFamily(BINARY_ARITHMETIC, true),
  binaryFamily(BINARY_PREDICATES, false),
  whereOp,
  preluOp,
  variadicOp,
  unaryFamily(UNARY_MATH, true),
  unaryFamily(UNARY_PREDICATES, false),
  castOp,
];
