/**
 * TensorProto -> ConstTensor for every encoding ONNX allows: raw_data (little-endian), the typed
 * repeated fields, and external data (read through an injected ExternalDataSource so that this
 * module stays free of file I/O). Sizes are checked against the data actually present before
 * anything is allocated, so a forged dims list cannot make us allocate more than the file holds.
 */
import type onnxProto from 'onnx-proto';
import { fail, quoteName } from '../errors.js';
import type { ConstTensor, DType, HostData } from '../ir/types.js';
import { hostArrayFor } from '../ir/tensor.js';

type TensorProto = onnxProto.onnx.ITensorProto;

/** Tensors larger than this cannot be addressed by WebGPU (u32 indices) nor by JS typed arrays. */
export const MAX_ELEMENTS = 2 ** 31;

/** onnx.TensorProto.DataType codes flashmemc accepts, with their storage size in bytes. */
const DTYPE_BY_CODE: ReadonlyMap<number, { dtype: DType; bytes: number }> = new Map([
  [1, { dtype: 'float32', bytes: 4 }],
  [2, { dtype: 'uint8', bytes: 1 }],
  [3, { dtype: 'int8', bytes: 1 }],
  [4, { dtype: 'uint16', bytes: 2 }],
  [5, { dtype: 'int16', bytes: 2 }],
  [6, { dtype: 'int32', bytes: 4 }],
  [7, { dtype: 'int64', bytes: 8 }],
  [9, { dtype: 'bool', bytes: 1 }],
  [10, { dtype: 'float16', bytes: 2 }],
  [11, { dtype: 'float64', bytes: 8 }],
  [12, { dtype: 'uint32', bytes: 4 }],
  [13, { dtype: 'uint64', bytes: 8 }],
  [16, { dtype: 'bfloat16', bytes: 2 }],
]);

/** Names of the codes we refuse, so the error says what the model actually contains. */
const UNSUPPORTED_DTYPE_NAMES: ReadonlyMap<number, string> = new Map([
  [0, 'UNDEFINED'], [8, 'STRING'], [14, 'COMPLEX64'], [15, 'COMPLEX128'],
  [17, 'FLOAT8E4M3FN'], [18, 'FLOAT8E4M3FNUZ'], [19, 'FLOAT8E5M2'], [20, 'FLOAT8E5M2FNUZ'],
  [21, 'UINT4'], [22, 'INT4'], [23, 'FLOAT4E2M1'],
]);

export function dtypeName(code: number): string {
  return DTYPE_BY_CODE.get(code)?.dtype ?? UNSUPPORTED_DTYPE_NAMES.get(code) ?? `data type ${code}`;
}

/** Maps an ONNX element type code to a DType; `what` names the tensor/input for the error. */
export function dtypeFromCode(code: number | null | undefined, what: string): DType {
  const known = DTYPE_BY_CODE.get(code ?? 0);
  if (!known) {
    fail('FM_DTYPE', `${what} has element type ${dtypeName(code ?? 0)}, which flashmemc does not support ` +
      `(supported: ${[...DTYPE_BY_CODE.values()].map((d) => d.dtype).join(', ')})`);
  }
  return known.dtype;
}

export function bytesPerElement(dtype: DType): number {
  for (const entry of DTYPE_BY_CODE.values()) if (entry.dtype === dtype) return entry.bytes;
  throw new Error(`unreachable: no size for ${dtype}`);
}

/**
 * protobufjs returns int64 fields as Long (the `long` package is installed) or as number; large
 * values lose precision like HostData does, which keeps their order and sign.
 */
export function int64ToNumber(v: unknown): number {
  if (typeof v === 'number') return v;
  if (typeof v === 'string') return Number(v);
  if (v && typeof (v as { toNumber?: unknown }).toNumber === 'function') return (v as { toNumber(): number }).toNumber();
  return Number.NaN;
}

/** Element count of `dims`, refusing negative dims and counts beyond MAX_ELEMENTS (checked as it multiplies). */
export function checkedElementCount(dims: readonly number[], what: string): number {
  for (let i = 0; i < dims.length; i++) {
    const d = dims[i]!;
    if (!Number.isInteger(d) || d < 0) fail('FM_SHAPE', `${what} has invalid dimension ${d} at index ${i} (dims [${dims.join(', ')}]); dimensions must be integers >= 0`);
  }
  if (dims.includes(0)) return 0;
  let n = 1;
  for (const d of dims) {
    n *= d;
    if (n > MAX_ELEMENTS) {
      fail('FM_SHAPE', `${what} has dims [${dims.join(', ')}], more than 2^31 elements; flashmemc cannot hold tensors that large`);
    }
  }
  return n;
}

/** Reads byte ranges of external data files; implemented with fs in external-data.ts. */
export interface ExternalDataSource {
  /**
   * The `byteLength` bytes a tensor stores externally. `entries` are the TensorProto's
   * external_data key/value pairs; `tensorLabel` names the tensor in errors.
   */
  read(entries: ReadonlyMap<string, string>, byteLength: number, tensorLabel: string): Uint8Array;
}

export interface TensorDecodeContext {
  /** how to name the tensor in errors when its proto has no name, e.g. 'attribute "value" of node "n"' */
  label?: string;
  external?: ExternalDataSource;
}

const TYPED_FIELDS = ['floatData', 'int32Data', 'int64Data', 'uint64Data', 'doubleData'] as const;
type TypedField = (typeof TYPED_FIELDS)[number];

/** Which typed repeated field carries each dtype (onnx.proto TensorProto comments). */
const TYPED_FIELD: Record<DType, TypedField> = {
  float32: 'floatData',
  float16: 'int32Data', bfloat16: 'int32Data',
  int8: 'int32Data', uint8: 'int32Data', int16: 'int32Data', uint16: 'int32Data', int32: 'int32Data', bool: 'int32Data',
  int64: 'int64Data',
  uint32: 'uint64Data', uint64: 'uint64Data',
  float64: 'doubleData',
};

const TYPED_FIELD_ONNX_NAME: Record<TypedField, string> = {
  floatData: 'float_data', int32Data: 'int32_data', int64Data: 'int64_data', uint64Data: 'uint64_data', doubleData: 'double_data',
};

const DATA_LOCATION_EXTERNAL = 1;

export function tensorLabel(t: TensorProto, ctx: TensorDecodeContext): string {
  return t.name ? `tensor ${quoteName(t.name)}` : (ctx.label ?? 'an unnamed tensor');
}

export function decodeTensor(t: TensorProto, ctx: TensorDecodeContext = {}): ConstTensor {
  const label = tensorLabel(t, ctx);
  const dtype = dtypeFromCode(t.dataType, label);
  const shape = (t.dims ?? []).map(int64ToNumber);
  const count = checkedElementCount(shape, label);
  if (t.segment) fail('FM_UNSUPPORTED_OP', `${label} is a segment of a larger tensor (TensorProto.segment); segmented tensors are not supported, re-export the model without segments`);

  if (t.dataLocation === DATA_LOCATION_EXTERNAL) {
    return { dtype, shape, data: decodeExternal(t, dtype, count, label, ctx) };
  }
  if (t.rawData && t.rawData.length > 0) {
    return { dtype, shape, data: decodeRaw(t.rawData, dtype, count, label) };
  }
  return { dtype, shape, data: decodeTypedField(t, dtype, count, label) };
}

function decodeExternal(t: TensorProto, dtype: DType, count: number, label: string, ctx: TensorDecodeContext): HostData {
  const entries = new Map<string, string>();
  for (const e of t.externalData ?? []) {
    if (entries.has(e.key ?? '')) fail('FM_EXTERNAL_DATA', `${label} lists external_data key ${quoteName(e.key ?? '')} twice`);
    entries.set(e.key ?? '', e.value ?? '');
  }
  if (!ctx.external) {
    fail('FM_EXTERNAL_DATA', `${label} stores its data externally (location ${quoteName(entries.get('location') ?? '')}); ` +
      'importOnnx(bytes) needs options.baseDir (the folder holding the model and its data files), or use importOnnxFile');
  }
  const bytes = ctx.external.read(entries, count * bytesPerElement(dtype), label);
  return decodeRaw(bytes, dtype, count, label);
}

const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;

/**
 * float32 bytes as a Float32Array: in place when `bytes` is a whole buffer of its own (external
 * data is read into a fresh buffer per tensor: no second copy of a 5 GB model), otherwise one
 * memcpy (a view into the model file must not keep the file's buffer alive, and may be unaligned).
 */
function float32Copy(bytes: Uint8Array, count: number): Float32Array {
  if (bytes.byteOffset === 0 && bytes.byteLength === bytes.buffer.byteLength && bytes.buffer instanceof ArrayBuffer) {
    return new Float32Array(bytes.buffer, 0, count);
  }
  const out = new Float32Array(count);
  new Uint8Array(out.buffer).set(bytes);
  return out;
}

/** Little-endian bytes -> host data. `bytes` may be an unaligned view into the model buffer. */
export function decodeRaw(bytes: Uint8Array, dtype: DType, count: number, label: string): HostData {
  const expected = count * bytesPerElement(dtype);
  if (bytes.length !== expected) {
    fail('FM_ONNX_INVALID', `${label}: raw_data holds ${bytes.length} bytes but ${dtype} dims need ${count} x ${bytesPerElement(dtype)} = ${expected} bytes`);
  }
  if (dtype === 'float32' && LITTLE_ENDIAN) return float32Copy(bytes, count);
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = hostArrayFor(dtype, count);
  switch (dtype) {
    case 'float32': for (let i = 0; i < count; i++) out[i] = view.getFloat32(4 * i, true); break;
    case 'float64': for (let i = 0; i < count; i++) out[i] = view.getFloat64(8 * i, true); break;
    case 'float16': for (let i = 0; i < count; i++) out[i] = halfBitsToNumber(view.getUint16(2 * i, true)); break;
    case 'bfloat16': for (let i = 0; i < count; i++) out[i] = bfloat16BitsToNumber(view.getUint16(2 * i, true)); break;
    case 'int8': for (let i = 0; i < count; i++) out[i] = view.getInt8(i); break;
    case 'uint8': for (let i = 0; i < count; i++) out[i] = view.getUint8(i); break;
    case 'bool': for (let i = 0; i < count; i++) out[i] = view.getUint8(i) !== 0 ? 1 : 0; break;
    case 'int16': for (let i = 0; i < count; i++) out[i] = view.getInt16(2 * i, true); break;
    case 'uint16': for (let i = 0; i < count; i++) out[i] = view.getUint16(2 * i, true); break;
    case 'int32': for (let i = 0; i < count; i++) out[i] = view.getInt32(4 * i, true); break;
    case 'uint32': for (let i = 0; i < count; i++) out[i] = view.getUint32(4 * i, true); break;
    // hi * 2^32 is exact, so the sum rounds once: the same value Number(BigInt) would give
    case 'int64': for (let i = 0; i < count; i++) out[i] = view.getInt32(8 * i + 4, true) * 2 ** 32 + view.getUint32(8 * i, true); break;
    case 'uint64': for (let i = 0; i < count; i++) out[i] = view.getUint32(8 * i + 4, true) * 2 ** 32 + view.getUint32(8 * i, true); break;
  }
  return out;
}

function decodeTypedField(t: TensorProto, dtype: DType, count: number, label: string): HostData {
  const dims = `[${(t.dims ?? []).map(int64ToNumber).join(', ')}]`;
  const present = TYPED_FIELDS.filter((f) => (t[f]?.length ?? 0) > 0);
  if ((t.stringData?.length ?? 0) > 0) fail('FM_ONNX_INVALID', `${label} is ${dtype} but carries string_data`);
  if (present.length === 0) {
    if (count === 0) return hostArrayFor(dtype, 0);
    fail('FM_ONNX_INVALID', `${label} (${dtype}, dims ${dims}) has no data: raw_data, the typed data fields and external data are all empty`);
  }
  const field = TYPED_FIELD[dtype];
  if (present.length > 1 || present[0] !== field) {
    fail('FM_ONNX_INVALID', `${label} is ${dtype} but stores its values in ${present.map((f) => TYPED_FIELD_ONNX_NAME[f]).join(' and ')}; ` +
      `ONNX stores ${dtype} in ${TYPED_FIELD_ONNX_NAME[field]} or raw_data`);
  }
  const values = t[field]!;
  if (values.length !== count) {
    fail('FM_ONNX_INVALID', `${label}: ${TYPED_FIELD_ONNX_NAME[field]} holds ${values.length} values but dims ${dims} need ${count}`);
  }
  const out = hostArrayFor(dtype, count);
  const convert = typedValueConverter(dtype);
  for (let i = 0; i < count; i++) out[i] = convert(values[i]);
  return out;
}

/**
 * int32_data carries the narrow types widened to int32, and float16/bfloat16 as their bit
 * patterns in the low 16 bits; wrapping to the type's width matches a C cast.
 */
function typedValueConverter(dtype: DType): (v: unknown) => number {
  switch (dtype) {
    case 'float32': case 'float64': return (v) => Number(v);
    case 'float16': return (v) => halfBitsToNumber(Number(v) & 0xffff);
    case 'bfloat16': return (v) => bfloat16BitsToNumber(Number(v) & 0xffff);
    case 'int8': return (v) => (Number(v) << 24) >> 24;
    case 'uint8': return (v) => Number(v) & 0xff;
    case 'int16': return (v) => (Number(v) << 16) >> 16;
    case 'uint16': return (v) => Number(v) & 0xffff;
    case 'int32': return (v) => Number(v) | 0;
    case 'bool': return (v) => (Number(v) !== 0 ? 1 : 0);
    case 'uint32': return (v) => int64ToNumber(v) % 2 ** 32;
    case 'int64': case 'uint64': return int64ToNumber;
  }
}

/** IEEE 754 binary16 bits -> number (exact: every half is representable as float32). */
export function halfBitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 10) & 0x1f;
  const mantissa = bits & 0x3ff;
  if (exponent === 0) return sign * mantissa * 2 ** -24;
  if (exponent === 0x1f) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (1024 + mantissa) * 2 ** (exponent - 25);
}

/** bfloat16 is the upper half of a float32: 8 exponent bits, 7 mantissa bits. */
export function bfloat16BitsToNumber(bits: number): number {
  const sign = bits & 0x8000 ? -1 : 1;
  const exponent = (bits >>> 7) & 0xff;
  const mantissa = bits & 0x7f;
  if (exponent === 0) return sign * mantissa * 2 ** -133;
  if (exponent === 0xff) return mantissa ? Number.NaN : sign * Number.POSITIVE_INFINITY;
  return sign * (128 + mantissa) * 2 ** (exponent - 134);
}
