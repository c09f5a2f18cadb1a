import { fail } from '../errors.js';
import { ConstTensor, DType, HostData, isFloat, numElements } from './types.js';

export function hostArrayFor(dtype: DType, length: number): HostData {
  return dtype === 'float32' || dtype === 'float16' || dtype === 'bfloat16'
    ? new Float32Array(length)
    : new Float64Array(length);
}

export function makeConst(dtype: DType, shape: number[], values: ArrayLike<number>): ConstTensor {
  const n = numElements(shape);
  if (values.length !== n) fail('FM_SHAPE', `constant of shape [${shape}] needs ${n} values, got ${values.length}`);
  const data = hostArrayFor(dtype, n);
  for (let i = 0; i < n; i++) data[i] = normalizeValue(dtype, values[i]!);
  return { dtype, shape: [...shape], data };
}

export function scalarConst(dtype: DType, value: number): ConstTensor {
  return makeConst(dtype, [], [value]);
}

/** Apply the integer/bool semantics of `dtype` to a JS number (truncation, wrap-around is not modelled). */
export function normalizeValue(dtype: DType, v: number): number {
  if (isFloat(dtype)) return v;
  if (dtype === 'bool') return v !== 0 ? 1 : 0;
  return Number.isFinite(v) ? Math.trunc(v) : v;
}

/** Integer view of a constant, for shape-like inputs (Reshape shape, Slice starts, axes...). */
export function constToInts(t: ConstTensor): number[] {
  return Array.from(t.data, (v) => Number(v));
}
