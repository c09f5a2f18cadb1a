/**
 * dtypes and host value semantics of the elementwise ops: Cast's dtype codes and the conversion
 * of a JS number to what a tensor of a dtype stores.
 */
import type { ConstTensor, DType } from '../../ir/types.js';
import { numElements } from '../../ir/types.js';
import { hostArrayFor } from '../../ir/tensor.js';

/** TensorProto.DataType codes used by Cast's `to` attribute. */
export const DTYPE_BY_ONNX_CODE: Readonly<Record<number, DType>> = {
  1: 'float32', 2: 'uint8', 3: 'int8', 4: 'uint16', 5: 'int16', 6: 'int32', 7: 'int64',
  9: 'bool', 10: 'float16', 11: 'float64', 12: 'uint32', 13: 'uint64', 16: 'bfloat16',
};

/** Cast-1 names its target type with a string. */
export const DTYPE_BY_LEGACY_NAME: Readonly<Record<string, DType>> = {
  FLOAT: 'float32', UINT8: 'uint8', INT8: 'int8', UINT16: 'uint16', INT16: 'int16', INT32: 'int32',
  INT64: 'int64', BOOL: 'bool', FLOAT16: 'float16', DOUBLE: 'float64', UINT32: 'uint32', UINT64: 'uint64',
};

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

export function constOf(dtype: DType, shape: readonly number[], values: (i: number) => number): ConstTensor {
  const n = numElements(shape);
  const data = hostArrayFor(dtype, n);
  for (let i = 0; i < n; i++) data[i] = toDtypeValue(dtype, values(i));
  return { dtype, shape: [...shape], data };
}
