/**
 * Input tensors for `flashmemc run`: from a folder of `<input name>.npy` files or ONNX test-data
 * `input_<i>.pb` files, or deterministic random values.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlashmemError, quoteName } from '../errors.js';
import type { DType } from '../ir/types.js';
import { seededRandom } from '../../fixtures/onnx-builder.js';
import { readTensorFile } from '../frontend/onnx.js';
import { readNpy, safeFileName, type NumericArray } from './npy.js';
import type { ManifestModel } from '../../schemas/manifest.js';

export type InputMap = Record<string, NumericArray>;

export function typedArrayFor(dtype: DType, values: ArrayLike<number>): NumericArray {
  switch (dtype) {
    case 'float32': case 'float16': case 'bfloat16': return Float32Array.from(values);
    case 'float64': return Float64Array.from(values);
    case 'int64': return BigInt64Array.from(Array.from(values, (v) => BigInt(Math.trunc(v))));
    case 'uint64': return BigUint64Array.from(Array.from(values, (v) => BigInt(Math.max(0, Math.trunc(v)))));
    case 'int32': return Int32Array.from(values);
    case 'uint32': return Uint32Array.from(values);
    case 'int16': return Int16Array.from(values);
    case 'uint16': return Uint16Array.from(values);
    case 'int8': return Int8Array.from(values);
    case 'uint8': case 'bool': return Uint8Array.from(values);
  }
}

export function randomInputs(model: ManifestModel, seed: number): InputMap {
  const rnd = seededRandom(seed);
  const out: InputMap = {};
  for (const sig of model.inputs) {
    const n = sig.shape.reduce((a, b) => a * b, 1);
    const isFloat = sig.dtype.startsWith('float') || sig.dtype === 'bfloat16';
    // integers in [0, 10): valid as indices for most embedding-like inputs of small test models
    const values = Array.from({ length: n }, () => (isFloat ? rnd() * 2 - 1 : sig.dtype === 'bool' ? (rnd() < 0.5 ? 0 : 1) : Math.floor(rnd() * 10)));
    out[sig.name] = typedArrayFor(sig.dtype, values);
  }
  return out;
}

export function inputsFromDir(model: ManifestModel, dir: string): InputMap {
  const out: InputMap = {};
  model.inputs.forEach((sig, i) => {
    const npy = join(dir, `${safeFileName(sig.name)}.npy`);
    const pb = join(dir, `input_${i}.pb`);
    if (existsSync(npy)) {
      const arr = readNpy(readFileSync(npy), npy);
      out[sig.name] = arr.dtype === sig.dtype ? arr.data : typedArrayFor(sig.dtype, Array.from(arr.data as ArrayLike<number | bigint>, Number));
    } else if (existsSync(pb)) {
      const t = readTensorFile(pb);
      out[sig.name] = typedArrayFor(sig.dtype, t.data);
    } else {
      throw new FlashmemError('FM_INPUT', `no file for input ${quoteName(sig.name)} in ${dir}: expected ${safeFileName(sig.name)}.npy or input_${i}.pb`);
    }
  });
  return out;
}
