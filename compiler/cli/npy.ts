/**
 * NumPy .npy (format 1.0/2.0/3.0) reading and writing for `flashmemc run --inputs/--save-outputs`.
 * Only little-endian, C-order numeric arrays.
 */
import { FlashmemError } from '../errors.js';
import type { DType } from '../ir/types.js';

export type NumericArray = Float32Array | Float64Array | Int32Array | BigInt64Array | Uint8Array | Int8Array | Int16Array | Uint16Array | Uint32Array | BigUint64Array;

const DESCR: Record<string, { dtype: DType; make: (b: ArrayBuffer) => NumericArray }> = {
  '<f4': { dtype: 'float32', make: (b) => new Float32Array(b) },
  '<f8': { dtype: 'float64', make: (b) => new Float64Array(b) },
  '<i4': { dtype: 'int32', make: (b) => new Int32Array(b) },
  '<i8': { dtype: 'int64', make: (b) => new BigInt64Array(b) },
  '|u1': { dtype: 'uint8', make: (b) => new Uint8Array(b) },
  '|i1': { dtype: 'int8', make: (b) => new Int8Array(b) },
  '|b1': { dtype: 'bool', make: (b) => new Uint8Array(b) },
  '<i2': { dtype: 'int16', make: (b) => new Int16Array(b) },
  '<u2': { dtype: 'uint16', make: (b) => new Uint16Array(b) },
  '<u4': { dtype: 'uint32', make: (b) => new Uint32Array(b) },
  '<u8': { dtype: 'uint64', make: (b) => new BigUint64Array(b) },
};

export interface NpyArray {
  dtype: DType;
  shape: number[];
  data: NumericArray;
}

export function readNpy(bytes: Uint8Array, label: string): NpyArray {
  const bad = (why: string): never => {
    throw new FlashmemError('FM_INPUT', `${label} is not a readable .npy file: ${why}`);
  };
  if (bytes.length < 10 || bytes[0] !== 0x93 || String.fromCharCode(...bytes.subarray(1, 6)) !== 'NUMPY') bad('bad magic');
  const major = bytes[6]!;
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const headerLen = major === 1 ? view.getUint16(8, true) : view.getUint32(8, true);
  const headerStart = major === 1 ? 10 : 12;
  if (headerStart + headerLen > bytes.length) bad('truncated header');
  const header = new TextDecoder().decode(bytes.subarray(headerStart, headerStart + headerLen));
  const descr = /'descr':\s*'([^']+)'/.exec(header)?.[1] ?? bad('no descr');
  if (/'fortran_order':\s*True/.test(header)) bad('Fortran order is not supported; save with np.ascontiguousarray');
  const shapeText = /'shape':\s*\(([^)]*)\)/.exec(header)?.[1] ?? bad('no shape');
  const shape = shapeText.split(',').map((s) => s.trim()).filter(Boolean).map(Number);
  const kind = DESCR[descr] ?? bad(`dtype ${descr} is not supported (little-endian numeric only)`);
  const count = shape.reduce((a, b) => a * b, 1);
  const dataStart = headerStart + headerLen;
  const elementBytes = Number(/\d+$/.exec(descr)![0]);
  if (bytes.length - dataStart < count * elementBytes) bad(`expected ${count * elementBytes} data bytes, file has ${bytes.length - dataStart}`);
  // a fresh, exactly sized copy: Node's Buffer#slice is a view on a larger pooled ArrayBuffer
  const copy = new Uint8Array(bytes.subarray(dataStart, dataStart + count * elementBytes)).buffer;
  return { dtype: kind.dtype, shape, data: kind.make(copy) };
}

const DESCR_OF: Partial<Record<DType, string>> = Object.fromEntries(Object.entries(DESCR).map(([d, k]) => [k.dtype, d]));

export function writeNpy(array: NpyArray): Uint8Array {
  const descr = DESCR_OF[array.dtype] ?? '<f4';
  const shape = array.shape.length === 1 ? `(${array.shape[0]},)` : `(${array.shape.join(', ')})`;
  let header = `{'descr': '${descr}', 'fortran_order': False, 'shape': ${shape}, }`;
  const total = 10 + header.length + 1;
  header += ' '.repeat((64 - (total % 64)) % 64) + '\n';
  const out = new Uint8Array(10 + header.length + array.data.byteLength);
  out.set([0x93, ...new TextEncoder().encode('NUMPY'), 1, 0]);
  new DataView(out.buffer).setUint16(8, header.length, true);
  out.set(new TextEncoder().encode(header), 10);
  out.set(new Uint8Array(array.data.buffer, array.data.byteOffset, array.data.byteLength), 10 + header.length);
  return out;
}

/** A file name derived from a tensor name that is safe on every filesystem. */
export function safeFileName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9._-]/g, '_').replace(/^\.+/, '_').slice(0, 120);
  return cleaned.length > 0 ? cleaned : 'unnamed';
}
