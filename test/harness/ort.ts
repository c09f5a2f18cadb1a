/** Reference numerics: run an ONNX model on onnxruntime-node (CPU). */
import * as ort from 'onnxruntime-node';

export interface RefTensor {
  dims: number[];
  data: Float32Array | Int32Array | BigInt64Array | Uint8Array | Float64Array;
  type: string;
}

export async function runOrt(model: Uint8Array, feeds: Record<string, { dtype: string; shape: number[]; data: ArrayLike<number> }>): Promise<Record<string, RefTensor>> {
  const session = await ort.InferenceSession.create(model, { graphOptimizationLevel: 'disabled', logSeverityLevel: 3 });
  const ortFeeds: Record<string, ort.Tensor> = {};
  for (const [name, t] of Object.entries(feeds)) ortFeeds[name] = new ort.Tensor(ortType(t.dtype), toTyped(t.dtype, t.data), t.shape);
  const out = await session.run(ortFeeds);
  const result: Record<string, RefTensor> = {};
  for (const [name, t] of Object.entries(out)) result[name] = { dims: [...t.dims], data: t.data as RefTensor['data'], type: t.type };
  await session.release();
  return result;
}

function ortType(dtype: string): 'float32' | 'int32' | 'int64' | 'bool' | 'uint8' | 'int8' | 'float64' {
  return dtype as never;
}

function toTyped(dtype: string, data: ArrayLike<number>) {
  switch (dtype) {
    case 'float32': return Float32Array.from(data);
    case 'float64': return Float64Array.from(data);
    case 'int32': return Int32Array.from(data);
    case 'int64': return BigInt64Array.from(Array.from(data, (v) => BigInt(Math.trunc(v))));
    case 'bool': case 'uint8': return Uint8Array.from(data);
    case 'int8': return Int8Array.from(data);
    default: throw new Error(`toTyped: ${dtype}`);
  }
}
