/** Shared pieces of the frontend tests: proto builders beyond fixtures/onnx-builder, error assertions, paths. */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import protobuf from 'protobufjs';
import { afterAll, expect } from 'vitest';
import { FlashmemError, type ErrorCode } from '../../compiler/errors.js';
import { buildModelProto, type ModelSpec } from '../../fixtures/onnx-builder.js';

export const { onnx } = onnxProto;
export type IModelProto = onnxProto.onnx.IModelProto;
export type ITensorProto = onnxProto.onnx.ITensorProto;

/** protobufjs's Long class (from the `long` package), typed for building int64 fields. */
export const Long = protobuf.util.Long as unknown as {
  fromString(value: string, unsigned?: boolean): protobuf.Long;
  fromNumber(value: number, unsigned?: boolean): protobuf.Long;
};

export const REPO_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** The ONNX conformance folder, or undefined (with the path we looked at) when it is absent. */
export function conformanceDir(): { dir: string; present: boolean } {
  const dir = path.resolve(REPO_ROOT, process.env.FLASHMEM_CONFORMANCE_DIR ?? '../shared/conformance/onnx');
  return { dir, present: existsSync(path.join(dir, 'light')) };
}

export function encodeModel(proto: IModelProto): Uint8Array {
  return onnx.ModelProto.encode(onnx.ModelProto.create(proto as onnxProto.onnx.ModelProto)).finish();
}

/** A fixture model as a mutable proto, for tests that need fields the builder does not model. */
export function modelProto(spec: ModelSpec): IModelProto & { graph: onnxProto.onnx.IGraphProto } {
  return buildModelProto(spec) as IModelProto & { graph: onnxProto.onnx.IGraphProto };
}

/** y = Identity(W) with W the given initializer: the smallest model that carries a tensor. */
export function modelWithInitializer(tensor: ITensorProto): Uint8Array {
  const proto = modelProto({
    inputs: [],
    outputs: [{ name: 'y', dtype: 'float32' }],
    nodes: [{ opType: 'Identity', inputs: [tensor.name ?? 'W'], outputs: ['y'] }],
  });
  proto.graph.initializer = [tensor];
  return encodeModel(proto);
}

/** Asserts `fn` throws a FlashmemError with `code` whose message contains every `mentions` string. */
export function expectFmError(fn: () => unknown, code: ErrorCode, ...mentions: string[]): FlashmemError {
  let thrown: unknown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  expect(thrown, `expected ${code} to be thrown`).toBeInstanceOf(FlashmemError);
  const err = thrown as FlashmemError;
  expect(err.code, err.message).toBe(code);
  for (const m of mentions) expect(err.message).toContain(m);
  return err;
}

/** A fresh temporary folder removed after the test file. */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(path.join(tmpdir(), `flashmem-${prefix}-`));
  afterAll(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** Little-endian bytes of `values` as `dtype`, written with DataView independently of the decoder. */
export function leBytes(dtype: string, values: readonly (number | bigint)[]): Uint8Array {
  const size: Record<string, number> = {
    float32: 4, float64: 8, int8: 1, uint8: 1, bool: 1, int16: 2, uint16: 2, int32: 4, uint32: 4, int64: 8, uint64: 8, float16: 2, bfloat16: 2,
  };
  const n = size[dtype]!;
  const view = new DataView(new ArrayBuffer(values.length * n));
  values.forEach((v, i) => {
    const o = i * n;
    switch (dtype) {
      case 'float32': view.setFloat32(o, Number(v), true); break;
      case 'float64': view.setFloat64(o, Number(v), true); break;
      case 'int8': view.setInt8(o, Number(v)); break;
      case 'uint8': case 'bool': view.setUint8(o, Number(v)); break;
      case 'int16': view.setInt16(o, Number(v), true); break;
      case 'uint16': case 'float16': case 'bfloat16': view.setUint16(o, Number(v), true); break;
      case 'int32': view.setInt32(o, Number(v), true); break;
      case 'uint32': view.setUint32(o, Number(v), true); break;
      case 'int64': view.setBigInt64(o, BigInt(v), true); break;
      case 'uint64': view.setBigUint64(o, BigInt(v), true); break;
    }
  });
  return new Uint8Array(view.buffer);
}
