/**
 * Inputs and outputs: host typed arrays <-> GPU elements (f32 for floats, i32 for integers and bool).
 */
import type { DType, ModelInfo, RunInputs, TensorInfo, TypedArray } from './api.js';
import { describeValue, fail, quote } from './errors.js';

/** a tensor as the GPU holds it: 4-byte f32 or i32 elements */
export type GpuElements = Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer>;

const FLOAT_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'float64', 'bfloat16']);
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** the typed array each dtype is passed in and returned as */
const HOST_ARRAYS: Record<DType, { name: string; prototype: object }> = {
  float32: Float32Array, float16: Float32Array, bfloat16: Float32Array, float64: Float64Array,
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
};

export function convertInputs(info: ModelInfo, inputs: RunInputs): GpuElements[] {
  const declared = new Set(info.inputs.map((tensor) => tensor.name));
  const unknown = Object.keys(inputs).find((name) => !declared.has(name));
  if (unknown !== undefined) {
    fail('FM_INPUT', `model ${quote(info.name)} has no input ${quote(unknown)}; its inputs are ${info.inputs.map((t) => quote(t.name)).join(', ') || 'none'}`);
  }
  return info.inputs.map((tensor) => {
    const where = `input ${quote(tensor.name)} of model ${quote(info.name)} (${tensor.dtype} [${tensor.shape.join(', ')}])`;
    if (!Object.hasOwn(inputs, tensor.name)) fail('FM_INPUT', `${where} is missing`);
    return toGpuElements(tensor, inputs[tensor.name], where);
  });
}

function toGpuElements(tensor: TensorInfo, value: unknown, where: string): GpuElements {
  const hostArray = HOST_ARRAYS[tensor.dtype];
  if (!Array.isArray(value) && !(value instanceof (hostArray as unknown as new () => object))) {
    fail('FM_INPUT', `${where} must be a ${hostArray.name} or a plain array, not ${describeValue(value)}`);
  }
  const values = value as ArrayLike<unknown>;
  const count = elementCount(tensor.shape);
  if (values.length !== count) fail('FM_INPUT', `${where} needs ${count} elements, got ${values.length}`);
  return FLOAT_DTYPES.has(tensor.dtype) ? toFloat32(values, where) : toInt32(values, tensor.dtype, where);
}

function toFloat32(values: ArrayLike<unknown>, where: string): Float32Array<ArrayBuffer> {
  if (values instanceof Float32Array || values instanceof Float64Array) return Float32Array.from(values);
  return Float32Array.from(values as ArrayLike<unknown>, (v, i) => {
    if (typeof v !== 'number') fail('FM_INPUT', `${where}: element ${i} is ${describeValue(v)}, not a number`);
    return v;
  });
}

function toInt32(values: ArrayLike<unknown>, dtype: DType, where: string): Int32Array<ArrayBuffer> {
  if (values instanceof Int32Array || values instanceof Int16Array || values instanceof Int8Array || values instanceof Uint16Array) {
    return Int32Array.from(values);
  }
  return Int32Array.from(values, (v, i) => {
    if (dtype === 'bool') return v ? 1 : 0;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) fail('FM_INPUT', `${where}: element ${i} is ${String(v)}, not an integer`);
    if (n < INT32_MIN || n > INT32_MAX) {
      fail('FM_INPUT', `${where}: element ${i} is ${String(v)}, outside the 32-bit range the GPU computes ${dtype} in`);
    }
    return n;
  });
}

export function fromGpuElements(dtype: DType, bytes: ArrayBuffer, offset: number, count: number): TypedArray {
  if (FLOAT_DTYPES.has(dtype)) {
    const floats = new Float32Array(bytes, offset, count);
    return dtype === 'float64' ? Float64Array.from(floats) : floats.slice();
  }
  const ints = new Int32Array(bytes, offset, count);
  switch (dtype) {
    case 'int64': return BigInt64Array.from(ints, (v) => BigInt(v));
    case 'uint64': return BigUint64Array.from(ints, (v) => BigInt.asUintN(64, BigInt(v)));
    case 'bool': return Uint8Array.from(ints, (v) => (v !== 0 ? 1 : 0));
    case 'int8': return Int8Array.from(ints);
    case 'uint8': return Uint8Array.from(ints);
    case 'int16': return Int16Array.from(ints);
    case 'uint16': return Uint16Array.from(ints);
    case 'uint32': return Uint32Array.from(ints);
    default: return ints.slice();
  }
}

export function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}
