/**
 * Imports the ONNX conformance models in place (read-only, never copied into the repo) and checks
 * the result against independent readers: onnxruntime's view of inputs/outputs, a plain
 * onnx-proto decode for node and initializer counts, and the test-data tensors for input shapes.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import * as ort from 'onnxruntime-node';
import { describe, expect, it } from 'vitest';
import { importOnnxFile, readTensorFile } from '../../compiler/frontend/onnx.js';
import type onnxProto from 'onnx-proto';
import { conformanceDir, expectFmError, onnx } from './helpers.js';

const conformance = conformanceDir();
const suite = conformance.present ? describe : describe.skip;
const skipNote = conformance.present ? '' : ` (skipped: no conformance data at ${conformance.dir}; set FLASHMEM_CONFORMANCE_DIR)`;

const DTYPE_NAMES: Record<number, string> = { 1: 'float32', 6: 'int32', 7: 'int64', 9: 'bool', 11: 'float64' };

/**
 * What onnxruntime and a bare protobuf decode say about a model. Old-opset models that ORT no
 * longer loads (legacy broadcast attributes) fall back to the declared inputs minus initializers.
 */
async function reference(file: string) {
  const raw = onnx.ModelProto.decode(readFileSync(file)).graph as onnxProto.onnx.GraphProto;
  const common = { nodeCount: raw.node.length, initializers: raw.initializer.map((t) => t.name!) };
  let session: ort.InferenceSession;
  try {
    session = await ort.InferenceSession.create(file, { logSeverityLevel: 3 });
  } catch {
    const constants = new Set<string>(common.initializers);
    return {
      ...common,
      inputs: raw.input.filter((i) => !constants.has(i.name!)).map((i) => ({
        name: i.name!, type: DTYPE_NAMES[i.type!.tensorType!.elemType!], shape: i.type!.tensorType!.shape!.dim!.map((d) => Number(d.dimValue)),
      })),
      outputs: raw.output.map((o) => o.name!),
    };
  }
  try {
    return {
      ...common,
      inputs: session.inputMetadata.map((m) => (m.isTensor ? { name: m.name, type: m.type, shape: [...m.shape] } : { name: m.name })),
      outputs: [...session.outputNames],
    };
  } finally {
    await session.release();
  }
}

async function expectImportMatchesReference(file: string) {
  const graph = importOnnxFile(file);
  const ref = await reference(file);
  expect(graph.nodes).toHaveLength(ref.nodeCount);
  expect(graph.inputs).toEqual(ref.inputs.map((i) => i.name));
  for (const input of ref.inputs) {
    const type = graph.values.get(input.name)!.type;
    expect({ name: input.name, type: type.dtype, shape: type.shape }).toEqual(input);
  }
  expect(graph.outputs).toEqual(ref.outputs);
  for (const name of ref.initializers) expect(graph.values.get(name)?.data, `initializer ${name}`).toBeDefined();
  return graph;
}

suite(`conformance models import${skipNote}`, () => {
  const lightDir = path.join(conformance.dir, 'light');
  const lightModels = conformance.present ? readdirSync(lightDir).filter((f) => f.endsWith('.onnx')).sort() : [];

  it('finds the light models', () => {
    expect(lightModels.length).toBeGreaterThanOrEqual(9);
  });

  for (const name of lightModels) {
    it(`light/${name}`, async () => {
      const graph = await expectImportMatchesReference(path.join(lightDir, name));
      expect(graph.opset).toBe(9);
      expect(graph.inputs, 'IR 3 weights listed as inputs are constants, not inputs').toHaveLength(1);
    });
  }

  for (const [group, model] of [
    ['pytorch-converted', 'test_Conv2d'], ['pytorch-converted', 'test_Embedding'], ['pytorch-converted', 'test_GLU_dim'],
    ['pytorch-converted', 'test_PixelShuffle'], ['pytorch-operator', 'test_operator_addmm'], ['pytorch-operator', 'test_operator_non_float_params'],
  ] as const) {
    it(`${group}/${model}: inputs match the reference and the test-data tensors`, async () => {
      const folder = path.join(conformance.dir, group, model);
      const graph = await expectImportMatchesReference(path.join(folder, 'model.onnx'));
      graph.inputs.forEach((name, i) => {
        const file = path.join(folder, 'test_data_set_0', `input_${i}.pb`);
        if (!existsSync(file)) return;
        const independent = onnx.TensorProto.decode(readFileSync(file));
        expect(graph.values.get(name)!.type.shape).toEqual(independent.dims.map(Number));
        // readTensorFile (used by `flashmemc run`) agrees with the raw decode
        const viaFrontend = readTensorFile(file);
        expect(viaFrontend.shape).toEqual(independent.dims.map(Number));
        expect(viaFrontend.data.length).toBe(viaFrontend.shape.reduce((a, b) => a * b, 1));
      });
    });
  }

  it('simple/test_sequence_model8: a symbolic input dim needs --input-shape, and is fixed by it', async () => {
    const file = path.join(conformance.dir, 'simple', 'test_sequence_model8', 'model.onnx');
    expectFmError(() => importOnnxFile(file), 'FM_UNKNOWN_DIM', '"X"', 'dim 0', '"n"', '--input-shape X=<n>');
    const graph = importOnnxFile(file, { inputShapes: { X: [6] } });
    expect(graph.values.get('X')!.type).toEqual({ dtype: 'float32', shape: [6] });
  });

  it('simple/test_strnorm_*: string inputs are FM_DTYPE', () => {
    const file = path.join(conformance.dir, 'simple', 'test_strnorm_model_monday_casesensintive_lower', 'model.onnx');
    expectFmError(() => importOnnxFile(file), 'FM_DTYPE', '"x"', 'STRING');
  });
});
