/**
 * Bytes -> onnx-proto messages. protobufjs throws plain Errors (truncation, bad wire types, over-long
 * varints) or RangeError (stack overflow on deeply nested messages); every one becomes
 * FM_ONNX_PARSE naming the source and, where the bytes look like another known format, saying so.
 */
import onnxProto from 'onnx-proto';
import { fail } from '../errors.js';
import { int64ToNumber } from './tensor-decode.js';

const { onnx } = onnxProto;

/** Protobuf's own limit; bigger models keep their weights in external data files. */
export const MAX_PROTOBUF_BYTES = 2 * 1024 ** 3;

const HINT = 'check that the file is a complete .onnx model (not truncated by a download or copy) and re-export it if needed';

function startsWith(bytes: Uint8Array, prefix: readonly number[], at = 0): boolean {
  return bytes.length >= at + prefix.length && prefix.every((b, i) => bytes[at + i] === b);
}

const ascii = (s: string) => Array.from(s, (c) => c.charCodeAt(0));

/** Names formats people mistake for ONNX, from their magic bytes. */
export function sniffForeignFormat(bytes: Uint8Array): string | undefined {
  if (startsWith(bytes, ascii('PK\x03\x04'))) return 'a ZIP archive (a PyTorch checkpoint or a zipped model?)';
  if (startsWith(bytes, ascii('ORTM'), 4)) return 'an ONNX Runtime .ort (flatbuffer) model';
  if (startsWith(bytes, ascii('TFL3'), 4)) return 'a TensorFlow Lite model';
  if (startsWith(bytes, ascii('\x89HDF'))) return 'an HDF5 file (a Keras model?)';
  if (startsWith(bytes, ascii('GGUF'))) return 'a GGUF file';
  if (startsWith(bytes, [0x80]) && bytes.length > 1 && bytes[1]! <= 5) return 'a Python pickle';
  if (startsWith(bytes, ascii('\x1f\x8b'))) return 'a gzip file (decompress it first)';
  const head = new TextDecoder().decode(bytes.subarray(0, 64)).trimStart();
  if (head.startsWith('{') || head.startsWith('<') || head.startsWith('ir_version')) return 'a text file (JSON, HTML or ONNX text format?)';
  return undefined;
}

function parseFailure(what: string, source: string, bytes: Uint8Array, cause: unknown): never {
  const foreign = sniffForeignFormat(bytes);
  const reason = cause instanceof RangeError && /call stack/i.test(cause.message)
    ? 'messages are nested too deeply to decode'
    : cause instanceof Error ? cause.message : String(cause);
  fail('FM_ONNX_PARSE', `${source} is not a valid ONNX ${what}: ${reason}` +
    (foreign ? `; the bytes look like ${foreign}` : `; ${HINT}`), cause);
}

function checkMessageSize(what: string, source: string, bytes: Uint8Array): void {
  if (bytes.length >= MAX_PROTOBUF_BYTES) {
    fail('FM_ONNX_PARSE', `${source} is ${bytes.length} bytes; protobuf cannot hold an ONNX ${what} of 2 GiB or more, ` +
      'so weights this large must be stored as external data (onnx.save_model(..., save_as_external_data=True))');
  }
}

/**
 * Decodes a ModelProto and checks it is one: random bytes often decode as *some* protobuf
 * message, so bytes without an ir_version or without any opset_import are refused here. A model
 * that has both but lacks a graph or a default-domain opset is structurally invalid instead,
 * which onnx.ts reports.
 */
export function decodeModel(bytes: Uint8Array, source: string): onnxProto.onnx.ModelProto {
  checkMessageSize('model', source, bytes);
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(bytes);
  } catch (e) {
    parseFailure('model', source, bytes, e);
  }
  const missing = [
    !(int64ToNumber(model.irVersion) >= 1) && 'ir_version',
    !(model.opsetImport?.length) && 'opset_import',
  ].filter(Boolean);
  if (missing.length > 0) {
    const foreign = sniffForeignFormat(bytes);
    fail('FM_ONNX_PARSE', `${source} is not an ONNX model: it decodes as protobuf but has no ${missing.join(' and no ')}` +
      (foreign ? `; the bytes look like ${foreign}` : `; ${HINT}`));
  }
  return model;
}

/** Decodes a serialized TensorProto (an ONNX test-data `input_0.pb`). */
export function decodeTensorProto(bytes: Uint8Array, source: string): onnxProto.onnx.TensorProto {
  checkMessageSize('tensor', source, bytes);
  let tensor: onnxProto.onnx.TensorProto;
  try {
    tensor = onnx.TensorProto.decode(bytes);
  } catch (e) {
    parseFailure('tensor', source, bytes, e);
  }
  if (!tensor.dataType) fail('FM_ONNX_PARSE', `${source} is not an ONNX TensorProto: it has no data_type; ${HINT}`);
  return tensor;
}
