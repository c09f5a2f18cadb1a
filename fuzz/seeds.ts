/**
 * Fuzz seeds: the ONNX conformance models read in place (CONFORMANCE_DIR), the committed corpus,
 * and small built-in models made with fixtures/onnx-builder.ts that exercise each op family,
 * shape-constant subgraphs and external data. Seeds are listed by path and read when picked, so
 * memory does not grow with the number of seeds.
 */
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import { buildModel, buildModelProto, randomFloats, type ModelSpec } from '../fixtures/onnx-builder.js';
import { CONFORMANCE_DIR } from '../test/harness/paths.js';
import type { AuxFile, FuzzInput } from './exec.js';
import { listCases, loadCase } from './cases.js';

const { onnx } = onnxProto;

export const FUZZ_DIR = path.dirname(fileURLToPath(import.meta.url));
export const CORPUS_DIR = path.join(FUZZ_DIR, 'corpus');

export interface Seed {
  name: string;
  /** slow seeds (large constant subgraphs) are picked rarely */
  slow: boolean;
  load(): Pick<FuzzInput, 'model' | 'files'>;
}

const f32 = (shape: number[], seed: number) => ({ dtype: 'float32' as const, shape, data: randomFloats(shape.reduce((a, b) => a * b, 1), seed) });
const i64 = (values: number[]) => ({ dtype: 'int64' as const, shape: [values.length], data: values });

/** Small models covering the op families and the shape-constant idioms exporters produce. */
export const BUILTIN_SPECS: Record<string, ModelSpec> = {
  mlp: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 8] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [{ name: 'W1', ...f32([8, 16], 1) }, { name: 'b1', ...f32([16], 2) }, { name: 'W2', ...f32([16, 4], 3) }],
    nodes: [
      { opType: 'MatMul', inputs: ['x', 'W1'], outputs: ['h0'] },
      { opType: 'Add', inputs: ['h0', 'b1'], outputs: ['h1'] },
      { opType: 'Relu', inputs: ['h1'], outputs: ['h2'] },
      { opType: 'MatMul', inputs: ['h2', 'W2'], outputs: ['h3'] },
      { opType: 'Softmax', inputs: ['h3'], outputs: ['y'], attrs: { axis: -1 } },
    ],
  },
  convnet: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 3, 8, 8] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [
      { name: 'W', ...f32([4, 3, 3, 3], 4) }, { name: 'B', ...f32([4], 5) },
      { name: 'scale', ...f32([4], 6) }, { name: 'bias', ...f32([4], 7) }, { name: 'mean', ...f32([4], 8) },
      { name: 'var', dtype: 'float32', shape: [4], data: [1, 2, 3, 4] },
      { name: 'Wfc', ...f32([10, 64], 9) }, { name: 'bfc', ...f32([10], 10) },
    ],
    nodes: [
      { opType: 'Conv', inputs: ['x', 'W', 'B'], outputs: ['c'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], strides: [1, 1], dilations: [1, 1], group: 1 } },
      { opType: 'BatchNormalization', inputs: ['c', 'scale', 'bias', 'mean', 'var'], outputs: ['bn'], attrs: { epsilon: 1e-5 } },
      { opType: 'Relu', inputs: ['bn'], outputs: ['r'] },
      { opType: 'MaxPool', inputs: ['r'], outputs: ['p'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { opType: 'Flatten', inputs: ['p'], outputs: ['f'], attrs: { axis: 1 } },
      { opType: 'Gemm', inputs: ['f', 'Wfc', 'bfc'], outputs: ['y'], attrs: { transB: 1, alpha: 1, beta: 1 } },
    ],
  },
  depthwise: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4, 6, 6] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [{ name: 'W', ...f32([4, 1, 3, 3], 11) }, { name: 'Wt', ...f32([4, 2, 2, 2], 12) }],
    nodes: [
      { opType: 'Conv', inputs: ['x', 'W'], outputs: ['c'], attrs: { kernel_shape: [3, 3], group: 4, strides: [2, 2], auto_pad: 'SAME_UPPER' } },
      { opType: 'Clip', inputs: ['c'], outputs: ['r'], attrs: { min: 0, max: 6 } },
      { opType: 'ConvTranspose', inputs: ['r', 'Wt'], outputs: ['t'], attrs: { kernel_shape: [2, 2], strides: [2, 2] } },
      { opType: 'AveragePool', inputs: ['t'], outputs: ['a'], attrs: { kernel_shape: [3, 3], pads: [1, 1, 1, 1], count_include_pad: 1 } },
      { opType: 'GlobalAveragePool', inputs: ['a'], outputs: ['y'] },
    ],
    opset: 11,
  },
  reshapeChain: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3, 4] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [
      { name: 'idx', dtype: 'int64', shape: [], data: [0] }, { name: 'minus1', ...i64([-1]) },
      { name: 'axes0', ...i64([0]) }, { name: 'starts', ...i64([0, 1]) }, { name: 'ends', ...i64([2, 1000]) },
      { name: 'sl_axes', ...i64([0, 1]) }, { name: 'steps', ...i64([1, 2]) },
    ],
    nodes: [
      { opType: 'Shape', inputs: ['x'], outputs: ['s'] },
      { opType: 'Gather', inputs: ['s', 'idx'], outputs: ['d0'], attrs: { axis: 0 } },
      { opType: 'Unsqueeze', inputs: ['d0', 'axes0'], outputs: ['d0v'] },
      { opType: 'Concat', inputs: ['d0v', 'minus1'], outputs: ['target'], attrs: { axis: 0 } },
      { opType: 'Reshape', inputs: ['x', 'target'], outputs: ['r'] },
      { opType: 'Transpose', inputs: ['r'], outputs: ['t'], attrs: { perm: [1, 0] } },
      { opType: 'Slice', inputs: ['t', 'starts', 'ends', 'sl_axes', 'steps'], outputs: ['sl'] },
      { opType: 'Unsqueeze', inputs: ['sl', 'axes0'], outputs: ['u'] },
      { opType: 'Squeeze', inputs: ['u', 'axes0'], outputs: ['y'] },
    ],
  },
  elementwise: {
    inputs: [{ name: 'a', dtype: 'float32', shape: [2, 3] }, { name: 'b', dtype: 'float32', shape: [3] }],
    outputs: [{ name: 'y', dtype: 'float32' }, { name: 'z', dtype: 'int32' }],
    initializers: [{ name: 'two', dtype: 'float32', shape: [], data: [2] }],
    nodes: [
      { opType: 'Add', inputs: ['a', 'b'], outputs: ['s'] },
      { opType: 'Mul', inputs: ['s', 'two'], outputs: ['m'] },
      { opType: 'Greater', inputs: ['m', 'b'], outputs: ['g'] },
      { opType: 'Where', inputs: ['g', 'm', 'a'], outputs: ['w'] },
      { opType: 'Pow', inputs: ['w', 'two'], outputs: ['p'] },
      { opType: 'Sqrt', inputs: ['p'], outputs: ['q'] },
      { opType: 'Sum', inputs: ['q', 'a', 'b'], outputs: ['y'] },
      { opType: 'Cast', inputs: ['y'], outputs: ['z'], attrs: { to: 6 } },
    ],
  },
  constants: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [{ name: 'shape', ...i64([2, 3]) }, { name: 'reps', ...i64([1, 2]) }, { name: 'eshape', ...i64([2, 1, 1]) }],
    nodes: [
      { opType: 'Constant', inputs: [], outputs: ['c'], attrs: { value: { tensor: { dtype: 'float32', shape: [3], data: [1, 2, 3] } } } },
      { opType: 'ConstantOfShape', inputs: ['shape'], outputs: ['cs'], attrs: { value: { tensor: { dtype: 'float32', shape: [1], data: [0.5] } } } },
      { opType: 'Add', inputs: ['cs', 'c'], outputs: ['k'] },
      { opType: 'Mul', inputs: ['x', 'k'], outputs: ['m'] },
      { opType: 'Tile', inputs: ['m', 'reps'], outputs: ['t'] },
      { opType: 'Expand', inputs: ['t', 'eshape'], outputs: ['y'] },
    ],
  },
  rangeCumsum: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [5] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [
      { name: 'start', dtype: 'float32', shape: [], data: [0] }, { name: 'limit', dtype: 'float32', shape: [], data: [5] },
      { name: 'delta', dtype: 'float32', shape: [], data: [1] }, { name: 'ax', dtype: 'int32', shape: [], data: [0] },
    ],
    nodes: [
      { opType: 'Range', inputs: ['start', 'limit', 'delta'], outputs: ['r'] },
      { opType: 'Add', inputs: ['x', 'r'], outputs: ['s'] },
      { opType: 'CumSum', inputs: ['s', 'ax'], outputs: ['y'], attrs: { exclusive: 0, reverse: 0 } },
    ],
  },
  reductions: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3, 4] }],
    outputs: [{ name: 'y', dtype: 'float32' }, { name: 'am', dtype: 'int64' }],
    initializers: [{ name: 'axes', ...i64([1]) }],
    nodes: [
      { opType: 'ReduceMean', inputs: ['x'], outputs: ['m'], attrs: { axes: [2], keepdims: 1 } },
      { opType: 'Sub', inputs: ['x', 'm'], outputs: ['d'] },
      { opType: 'ReduceSum', inputs: ['d', 'axes'], outputs: ['s'], attrs: { keepdims: 0 } },
      { opType: 'LogSoftmax', inputs: ['s'], outputs: ['y'], attrs: { axis: 1 } },
      { opType: 'ArgMax', inputs: ['x'], outputs: ['am'], attrs: { axis: 2, keepdims: 0 } },
    ],
    opset: 13,
  },
  normalization: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 4, 5, 5] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [{ name: 'g', ...f32([4], 13) }, { name: 'b', ...f32([4], 14) }, { name: 'lg', ...f32([5], 15) }, { name: 'lb', ...f32([5], 16) }],
    nodes: [
      { opType: 'InstanceNormalization', inputs: ['x', 'g', 'b'], outputs: ['i'], attrs: { epsilon: 1e-5 } },
      { opType: 'LRN', inputs: ['i'], outputs: ['l'], attrs: { size: 3, alpha: 1e-4, beta: 0.75, bias: 1 } },
      { opType: 'Softsign', inputs: ['l'], outputs: ['y'] },
    ],
  },
  resizePad: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [1, 2, 4, 4] }],
    outputs: [{ name: 'y', dtype: 'float32' }, { name: 'y2', dtype: 'float32' }],
    initializers: [
      { name: 'pads', ...i64([0, 0, 1, 1, 0, 0, 1, 1]) }, { name: 'roi', dtype: 'float32', shape: [0], data: [] },
      { name: 'scales', dtype: 'float32', shape: [4], data: [1, 1, 2, 2] }, { name: 'split', ...i64([1, 1]) },
    ],
    nodes: [
      { opType: 'Pad', inputs: ['x', 'pads'], outputs: ['p'], attrs: { mode: 'reflect' } },
      { opType: 'Resize', inputs: ['p', 'roi', 'scales'], outputs: ['r'], attrs: { mode: 'nearest', coordinate_transformation_mode: 'asymmetric', nearest_mode: 'floor' } },
      { opType: 'Split', inputs: ['r', 'split'], outputs: ['y', 'y2'], attrs: { axis: 1 } },
    ],
  },
  gatherMisc: {
    inputs: [{ name: 'x', dtype: 'float32', shape: [6, 4] }, { name: 'ids', dtype: 'int64', shape: [3] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [{ name: 'Wemb', ...f32([10, 4], 17) }, { name: 'uaxes', ...i64([0, 1]) }],
    nodes: [
      { opType: 'Gather', inputs: ['Wemb', 'ids'], outputs: ['e'], attrs: { axis: 0 } },
      { opType: 'Transpose', inputs: ['x'], outputs: ['xt'], attrs: { perm: [1, 0] } },
      { opType: 'MatMul', inputs: ['e', 'xt'], outputs: ['mm'] },
      { opType: 'DepthToSpace', inputs: ['mm4'], outputs: ['d'], attrs: { blocksize: 1 } },
      { opType: 'Unsqueeze', inputs: ['mm', 'uaxes'], outputs: ['mm4'] },
      { opType: 'Flatten', inputs: ['d'], outputs: ['fl'], attrs: { axis: 2 } },
      { opType: 'Gelu', inputs: ['fl'], outputs: ['y'] },
    ],
    opset: 20,
  },
};

/** The mlp seed with W1 stored in `weights.bin` next to the model (offset 16, after a small header). */
export function externalDataSeed(): Pick<FuzzInput, 'model' | 'files'> {
  const proto = buildModelProto(BUILTIN_SPECS.mlp!);
  const w1 = proto.graph!.initializer!.find((t) => t.name === 'W1')!;
  const raw = w1.rawData as Uint8Array;
  const file = new Uint8Array(16 + raw.length);
  file.set(raw, 16);
  w1.rawData = new Uint8Array();
  w1.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  w1.externalData = [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '16' }, { key: 'length', value: String(raw.length) }];
  const model = onnx.ModelProto.encode(onnx.ModelProto.create(proto as onnxProto.onnx.ModelProto)).finish();
  const files: AuxFile[] = [{ name: 'weights.bin', kind: 'file', bytes: file }];
  return { model, files };
}

function builtinSeeds(): Seed[] {
  const seeds: Seed[] = Object.entries(BUILTIN_SPECS).map(([name, spec]) => {
    const model = buildModel(spec);
    return { name: `builtin:${name}`, slow: false, load: () => ({ model, files: [] }) };
  });
  const ext = externalDataSeed();
  seeds.push({ name: 'builtin:external-data', slow: false, load: () => ext });
  return seeds;
}

function walkOnnx(dir: string): string[] {
  const out: string[] = [];
  for (const entry of readdirSync(dir, { withFileTypes: true }).sort((a, b) => a.name.localeCompare(b.name))) {
    const p = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walkOnnx(p));
    else if (entry.isFile() && entry.name.endsWith('.onnx')) out.push(p);
  }
  return out;
}

/** Conformance models whose weights are ConstantOfShape subgraphs (the light/ folder) take seconds to compile. */
function conformanceSeeds(): Seed[] {
  if (!existsSync(CONFORMANCE_DIR)) return [];
  return walkOnnx(CONFORMANCE_DIR).map((file) => ({
    name: `conformance:${path.relative(CONFORMANCE_DIR, file)}`,
    slow: file.includes(`${path.sep}light${path.sep}`) || statSync(file).size > 32 * 1024,
    load: () => ({ model: readFileSync(file), files: [] }),
  }));
}

export interface SeedOptions {
  /** conformance models as seeds (default: when present) */
  conformance?: boolean;
  /** the committed corpus as seeds (default true) */
  corpus?: boolean;
}

export function loadSeeds(options: SeedOptions = {}): Seed[] {
  const seeds = builtinSeeds();
  if (options.conformance !== false) seeds.push(...conformanceSeeds());
  if (options.corpus !== false) {
    for (const c of listCases(CORPUS_DIR)) {
      if (c.sidecar.knownCrash) continue;
      seeds.push({ name: `corpus:${c.name}`, slow: false, load: () => loadCase(c) });
    }
  }
  return seeds;
}

