import { describe, expect, it } from 'vitest';
import { importOnnx, type ImportOptions } from '../../compiler/frontend/onnx.js';
import type { ValueSpec } from '../../fixtures/onnx-builder.js';
import { encodeModel, expectFmError, modelProto } from './helpers.js';

/** y = Add(x, b) with `x` declared as given and `b` a constant that is also listed as an input (IR 3 style). */
function model(x: ValueSpec, patch?: (p: ReturnType<typeof modelProto>) => void): Uint8Array {
  const proto = modelProto({
    inputs: [x, { name: 'b', dtype: 'float32', shape: [1] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [{ name: 'b', dtype: 'float32', shape: [1], data: [1] }],
    nodes: [{ opType: 'Add', inputs: ['x', 'b'], outputs: ['y'] }],
  });
  patch?.(proto);
  return encodeModel(proto);
}

const load = (bytes: Uint8Array, options?: ImportOptions) => () => importOnnx(bytes, options);

describe('graph input types', () => {
  it('fixed shapes pass through; inputs that are initializers become constants', () => {
    const g = importOnnx(model({ name: 'x', dtype: 'float32', shape: [2, 3] }));
    expect(g.inputs).toEqual(['x']);
    expect(g.values.get('x')).toEqual({ name: 'x', type: { dtype: 'float32', shape: [2, 3] } });
    expect(g.values.get('b')!.data, 'the initializer-backed input keeps its data').toBeDefined();
  });

  it('symbolic and unknown dims are fixed by inputShapes', () => {
    const g = importOnnx(model({ name: 'x', dtype: 'float16', shape: ['batch', 3, null] }), { inputShapes: { x: [4, 3, 7] } });
    expect(g.values.get('x')!.type).toEqual({ dtype: 'float16', shape: [4, 3, 7] });
  });

  it('an input without any shape takes its full shape from inputShapes', () => {
    const g = importOnnx(model({ name: 'x', dtype: 'int64' }), { inputShapes: { x: [5] } });
    expect(g.values.get('x')!.type).toEqual({ dtype: 'int64', shape: [5] });
  });

  it('an override that repeats the declared fixed dims is accepted; scalars and empty dims are fine', () => {
    expect(importOnnx(model({ name: 'x', dtype: 'float32', shape: [2, 3] }), { inputShapes: { x: [2, 3] } }).values.get('x')!.type.shape).toEqual([2, 3]);
    expect(importOnnx(model({ name: 'x', dtype: 'float32', shape: [] })).values.get('x')!.type.shape).toEqual([]);
    expect(importOnnx(model({ name: 'x', dtype: 'float32', shape: [0, 4] })).values.get('x')!.type.shape).toEqual([0, 4]);
  });
});

describe('graph input errors', () => {
  it('a symbolic dim without an override is FM_UNKNOWN_DIM with the dim, its symbol and a --input-shape hint', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: [1, 'seq', 8] })), 'FM_UNKNOWN_DIM', '"x"', 'dim 1', '"seq"', '--input-shape x=1x<seq>x8');
  });
  it('an unknown dim and an unknown rank are FM_UNKNOWN_DIM', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: [null, 3] })), 'FM_UNKNOWN_DIM', '"x"', 'dim 0', 'unknown', '--input-shape x=');
    expectFmError(load(model({ name: 'x', dtype: 'float32' })), 'FM_UNKNOWN_DIM', '"x"', 'unknown rank', '--input-shape x=');
  });
  it('names that a shell would split are quoted in the hint', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: ['n'] }, (p) => {
      p.graph.input![0]!.name = 'my input';
      p.graph.node![0]!.input![0] = 'my input';
    })), 'FM_UNKNOWN_DIM', '--input-shape "my input"=<n>');
  });
  it('inputShapes for an unknown input is FM_BAD_ARGUMENT listing the inputs and their declared shapes', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: ['batch', 3] }), { inputShapes: { X: [1, 3] } }),
      'FM_BAD_ARGUMENT', '"X"', 'not a model input', '"x" [batch, 3]');
  });
  it('inputShapes for an initializer-backed (constant) input is FM_BAD_ARGUMENT', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: [2] }), { inputShapes: { b: [1] } }), 'FM_BAD_ARGUMENT', '"b"', '"x" [2]');
  });
  it('inputShapes of the wrong rank is FM_BAD_ARGUMENT', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: ['batch', 3] }), { inputShapes: { x: [1, 3, 1] } }),
      'FM_BAD_ARGUMENT', '"x"', 'rank 3', 'rank 2', '"x" [batch, 3]');
  });
  it('inputShapes contradicting a fixed dim is FM_BAD_ARGUMENT', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: ['batch', 3] }), { inputShapes: { x: [1, 4] } }),
      'FM_BAD_ARGUMENT', '"x"', 'dim 1', 'fixes it to 3', '"x" [batch, 3]');
  });
  it('non-integer dims in inputShapes are FM_BAD_ARGUMENT', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: ['n'] }), { inputShapes: { x: [1.5] } }), 'FM_BAD_ARGUMENT', '"x"', '1.5');
  });
  it('negative dims (declared or given) and overflowing element counts are FM_SHAPE', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: ['n', 2] }), { inputShapes: { x: [-1, 2] } }), 'FM_SHAPE', '"x"', '-1');
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: [-1, 2] })), 'FM_SHAPE', '"x"', '-1');
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: ['a', 'b'] }), { inputShapes: { x: [65536, 65537] } }), 'FM_SHAPE', '"x"', '2^31');
  });
  it('a declared -1 (an exporter\'s "unknown") may be fixed by an override', () => {
    expect(importOnnx(model({ name: 'x', dtype: 'float32', shape: [-1, 2] }), { inputShapes: { x: [3, 2] } }).values.get('x')!.type.shape).toEqual([3, 2]);
  });
  it('unknown, string and non-tensor element types are FM_DTYPE', () => {
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: [1] }, (p) => { p.graph.input![0]!.type!.tensorType!.elemType = 0; })), 'FM_DTYPE', '"x"', 'UNDEFINED');
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: [1] }, (p) => { p.graph.input![0]!.type!.tensorType!.elemType = 8; })), 'FM_DTYPE', '"x"', 'STRING');
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: [1] }, (p) => {
      p.graph.input![0]!.type = { sequenceType: { elemType: { tensorType: { elemType: 1 } } } };
    })), 'FM_DTYPE', '"x"', 'sequence');
    expectFmError(load(model({ name: 'x', dtype: 'float32', shape: [1] }, (p) => { p.graph.input![0]!.type = null; })), 'FM_DTYPE', '"x"', 'no type');
  });
});
