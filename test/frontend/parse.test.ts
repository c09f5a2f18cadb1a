import { execFileSync } from 'node:child_process';
import { closeSync, ftruncateSync, mkdirSync, openSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { FlashmemError } from '../../compiler/errors.js';
import { importOnnx, importOnnxFile, readTensorFile } from '../../compiler/frontend/onnx.js';
import { buildModel, seededRandom } from '../../fixtures/onnx-builder.js';
import { conformanceDir, encodeModel, expectFmError, tempDir } from './helpers.js';

const conformance = conformanceDir();
const tiny = buildModel({ inputs: [{ name: 'x', dtype: 'float32', shape: [2] }], outputs: [{ name: 'y', dtype: 'float32' }], nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }] });

/** Imports bytes and reports how it ended: a graph, a FlashmemError code, or any other exception (a bug). */
function outcome(bytes: Uint8Array): string {
  try {
    importOnnx(bytes);
    return 'ok';
  } catch (e) {
    return e instanceof FlashmemError ? e.code : `unexpected ${(e as Error)?.name}: ${(e as Error)?.message}`;
  }
}

/**
 * A model nested `depth` times through graph -> node -> attribute -> graph. The lengths are
 * computed inside out first, so the bytes are written in one pass.
 */
function deeplyNestedModel(depth: number): Uint8Array {
  const tags = [0x3a]; // ModelProto.graph
  for (let i = 0; i < depth; i++) tags.push(0x0a, 0x2a, 0x32); // GraphProto.node, NodeProto.attribute, AttributeProto.g
  const varint = (v: number) => { const out: number[] = []; while (v > 0x7f) { out.push((v & 0x7f) | 0x80); v >>>= 7; } out.push(v); return out; };
  const lengths = new Array<number>(tags.length);
  let inner = 0;
  for (let i = tags.length - 1; i >= 0; i--) {
    lengths[i] = inner;
    inner = 1 + varint(inner).length + inner;
  }
  const out: number[] = [];
  tags.forEach((tag, i) => out.push(tag, ...varint(lengths[i]!)));
  return Uint8Array.from(out);
}

describe('bytes that are not an ONNX model', () => {
  it('empty input and arbitrary protobuf are "not an ONNX model"', () => {
    expectFmError(() => importOnnx(new Uint8Array(0)), 'FM_ONNX_PARSE', 'the in-memory model', 'not an ONNX model');
    // field 4 (domain) only: valid protobuf, but no ir_version, graph or opset_import
    expectFmError(() => importOnnx(Uint8Array.from([0x22, 0x01, 0x61])), 'FM_ONNX_PARSE', 'not an ONNX model', 'ir_version');
  });
  it('an ir_version of 0, or no opset_import at all, is not a model even with a graph', () => {
    expectFmError(() => importOnnx(encodeModel({ irVersion: 0, graph: { name: 'g' }, opsetImport: [{ domain: '', version: 13 }] })), 'FM_ONNX_PARSE', 'not an ONNX model', 'ir_version');
    expectFmError(() => importOnnx(encodeModel({ irVersion: 8, graph: { name: 'g' } })), 'FM_ONNX_PARSE', 'not an ONNX model', 'opset_import');
  });
  it('corrupt varints and invalid wire types are FM_ONNX_PARSE', () => {
    expectFmError(() => importOnnx(Uint8Array.from([0x08, ...new Array(11).fill(0xff), 0x01])), 'FM_ONNX_PARSE', 'the in-memory model');
    // field 15 is unknown to ModelProto, so protobufjs checks its wire type (7 does not exist)
    expectFmError(() => importOnnx(Uint8Array.from([0x7f, 0x00])), 'FM_ONNX_PARSE', 'wire type');
  });
  it('foreign formats are named from their magic bytes', () => {
    const zip = Uint8Array.from([...'PK\x03\x04'].map((c) => c.charCodeAt(0)).concat(new Array(60).fill(0x17)));
    expectFmError(() => importOnnx(zip), 'FM_ONNX_PARSE', 'ZIP');
    const ort = Uint8Array.from([0x10, 0, 0, 0, ...[...'ORTM'].map((c) => c.charCodeAt(0)), ...new Array(40).fill(0xf7)]);
    expectFmError(() => importOnnx(ort), 'FM_ONNX_PARSE', '.ort');
    expectFmError(() => importOnnx(new TextEncoder().encode('{"ir_version": 8, "graph": {}}')), 'FM_ONNX_PARSE', 'text file');
  });
  it('deep nesting (stack overflow inside protobufjs) is FM_ONNX_PARSE', () => {
    expectFmError(() => importOnnx(deeplyNestedModel(60_000)), 'FM_ONNX_PARSE', 'nested too deeply');
  });
});

describe('model files', () => {
  const dir = tempDir('parse');

  it('a missing file, a directory or a FIFO is FM_IO naming the path (without blocking)', () => {
    expectFmError(() => importOnnxFile(path.join(dir, 'missing.onnx')), 'FM_IO', 'missing.onnx');
    mkdirSync(path.join(dir, 'folder.onnx'));
    expectFmError(() => importOnnxFile(path.join(dir, 'folder.onnx')), 'FM_IO', 'folder.onnx', 'directory');
    execFileSync('mkfifo', [path.join(dir, 'pipe.onnx')]);
    expectFmError(() => importOnnxFile(path.join(dir, 'pipe.onnx')), 'FM_IO', 'pipe.onnx', 'FIFO');
  });
  it('files over 2 GiB are refused before reading', () => {
    const file = path.join(dir, 'huge.onnx');
    const fd = openSync(file, 'w');
    try { ftruncateSync(fd, 2 * 1024 ** 3 + 1); } finally { closeSync(fd); }
    const start = performance.now();
    expectFmError(() => importOnnxFile(file), 'FM_ONNX_PARSE', 'huge.onnx', '2 GiB', 'external data');
    expect(performance.now() - start).toBeLessThan(1000);
  });
  it('a valid model file imports', () => {
    const file = path.join(dir, 'tiny.onnx');
    writeFileSync(file, tiny);
    expect(importOnnxFile(file).nodes).toHaveLength(1);
  });
  it('readTensorFile refuses a model file as a tensor', () => {
    const file = path.join(dir, 'tiny2.onnx');
    writeFileSync(file, tiny);
    expect(() => readTensorFile(file)).toThrow(FlashmemError);
  });
});

const suite = conformance.present ? describe : describe.skip;
suite(conformance.present ? 'damaged conformance models' : `damaged conformance models (skipped: no conformance data at ${conformance.dir}; set FLASHMEM_CONFORMANCE_DIR)`, () => {
  const modelPath = path.join(conformance.dir, 'light', 'light_bvlc_alexnet.onnx');
  const original = () => new Uint8Array(readFileSync(modelPath));
  const dir = tempDir('damaged');

  it('the undamaged model imports', () => {
    expect(outcome(original())).toBe('ok');
  });

  it('a truncated file is FM_ONNX_PARSE naming the file', () => {
    const bytes = original();
    const file = path.join(dir, 'truncated_alexnet.onnx');
    writeFileSync(file, bytes.subarray(0, bytes.length >> 1));
    expectFmError(() => importOnnxFile(file), 'FM_ONNX_PARSE', 'truncated_alexnet.onnx', 'truncated');
  });

  it('every truncation point fails with a FlashmemError, almost always FM_ONNX_PARSE', () => {
    const bytes = original();
    const codes = new Map<string, number>();
    for (let cut = 0; cut < bytes.length; cut += 3) {
      const code = outcome(bytes.slice(0, cut));
      codes.set(code, (codes.get(code) ?? 0) + 1);
    }
    expect([...codes.keys()].filter((c) => !c.startsWith('FM_'))).toEqual([]);
    expect(codes.has('ok')).toBe(false);
    expect(codes.get('FM_ONNX_PARSE')! / [...codes.values()].reduce((a, b) => a + b)).toBeGreaterThan(0.9);
  });

  it('a leading byte with an invalid wire type (wrong magic) is FM_ONNX_PARSE naming the file', () => {
    const bytes = original();
    bytes[0] = 0x07; // field 0, wire type 7: no protobuf message starts like this
    const file = path.join(dir, 'bad_magic.onnx');
    writeFileSync(file, bytes);
    expectFmError(() => importOnnxFile(file), 'FM_ONNX_PARSE', 'bad_magic.onnx');
  });

  it('random bit flips end in a graph or a FlashmemError, never another exception', () => {
    const rnd = seededRandom(1234);
    const unexpected: string[] = [];
    const codes = new Set<string>();
    for (let trial = 0; trial < 400; trial++) {
      const bytes = original();
      for (let flips = 1 + Math.floor(rnd() * 3); flips > 0; flips--) {
        const bit = Math.floor(rnd() * bytes.length * 8);
        bytes[bit >> 3]! ^= 1 << (bit & 7);
      }
      const code = outcome(bytes);
      codes.add(code);
      if (!code.startsWith('FM_') && code !== 'ok') unexpected.push(`trial ${trial}: ${code}`);
    }
    expect(unexpected).toEqual([]);
    expect(codes.has('FM_ONNX_PARSE'), `codes seen: ${[...codes].join(', ')}`).toBe(true);
  });
});
