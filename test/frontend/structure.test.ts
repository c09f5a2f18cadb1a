import { describe, expect, it } from 'vitest';
import { importOnnx } from '../../compiler/frontend/onnx.js';
import type { ModelSpec, NodeSpec } from '../../fixtures/onnx-builder.js';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { encodeModel, expectFmError, modelProto, Long } from './helpers.js';

const f32 = (name: string, shape: number[] = [2]) => ({ name, dtype: 'float32' as const, shape });

function chain(nodes: NodeSpec[], extra: Partial<ModelSpec> = {}): ModelSpec {
  return { inputs: [f32('x')], outputs: [f32('y')], nodes, ...extra };
}
const relu = (input: string, output: string, name?: string): NodeSpec => ({ opType: 'Relu', inputs: [input], outputs: [output], name });
const load = (spec: ModelSpec) => () => importOnnx(buildModel(spec));

describe('node order and naming', () => {
  it('nodes already in order keep their ONNX order', () => {
    const g = importOnnx(buildModel(chain([relu('x', 'a', 'n0'), relu('x', 'b', 'n1'), { opType: 'Add', name: 'n2', inputs: ['a', 'b'], outputs: ['y'] }])));
    expect(g.nodes.map((n) => n.name)).toEqual(['n0', 'n1', 'n2']);
  });

  it('out-of-order nodes are sorted, moving a node only as far as its producers require', () => {
    const g = importOnnx(buildModel(chain([
      { opType: 'Add', name: 'sum', inputs: ['a', 'c'], outputs: ['y'] },
      relu('b', 'c', 'third'),
      relu('x', 'a', 'first'),
      relu('x', 'b', 'second'),
      relu('x', 'unused', 'independent'),
    ])));
    expect(g.nodes.map((n) => n.name)).toEqual(['first', 'second', 'third', 'sum', 'independent']);
  });

  it('unnamed nodes get unique <OpType>_<index> names that avoid the model\'s own names', () => {
    const proto = modelProto(chain([relu('x', 'a'), relu('a', 'b', 'Relu_0'), relu('b', 'c'), relu('c', 'y', 'dup'), relu('x', 'z', 'dup')]));
    proto.graph.node![0]!.name = '';
    proto.graph.node![2]!.name = '';
    const names = importOnnx(encodeModel(proto)).nodes.map((n) => n.name);
    expect(names[0]).not.toBe('Relu_0');
    expect(names[0]).toMatch(/^Relu_0_\d+$/);
    expect(names[1]).toBe('Relu_0');
    expect(names[2]).toBe('Relu_2');
    expect(new Set(names).size).toBe(names.length);
  });

  it('opset, graph name, inputs, outputs, domain and omitted optional inputs are carried over', () => {
    const g = importOnnx(buildModel({
      opset: 11, graphName: 'net', inputs: [f32('x')], outputs: [f32('y')],
      nodes: [{ opType: 'Clip', domain: 'ai.onnx', inputs: ['x', '', 'hi'], outputs: ['y'] }],
      initializers: [{ name: 'hi', dtype: 'float32', shape: [], data: [6] }],
    }));
    expect(g).toMatchObject({ name: 'net', opset: 11, inputs: ['x'], outputs: ['y'] });
    expect(g.nodes[0]).toMatchObject({ opType: 'Clip', domain: '', inputs: ['x', '', 'hi'], outputs: ['y'] });
    expect([...g.values.keys()].sort()).toEqual(['hi', 'x']);
  });

  it('a node whose subgraph reads an outer value is ordered after that value\'s producer', () => {
    const proto = modelProto(chain([
      { opType: 'If', name: 'branch', inputs: ['cond'], outputs: ['y'] },
      { opType: 'Relu', name: 'producer', inputs: ['x'], outputs: ['outer'] },
      { opType: 'Identity', name: 'condition', inputs: ['flag'], outputs: ['cond'] },
    ], { inputs: [f32('x'), { name: 'flag', dtype: 'bool', shape: [] }] }));
    const body = { name: 'then', node: [{ opType: 'Identity', input: ['outer'], output: ['r'] }], output: [{ name: 'r' }] };
    proto.graph.node![0]!.attribute = [{ name: 'then_branch', type: 5, g: body }, { name: 'else_branch', type: 5, g: body }];
    const g = importOnnx(encodeModel(proto));
    expect(g.nodes.map((n) => n.name)).toEqual(['producer', 'condition', 'branch']);
    expect(g.nodes[2]!.attrs.then_branch).toEqual({ type: 'graph' });
  });
});

describe('attributes', () => {
  it('every attribute type converts to the Attr union (int64 via Long)', () => {
    const proto = modelProto(chain([{ opType: 'Custom', domain: 'com.example', inputs: ['x'], outputs: ['y'] }], { extraOpsets: [{ domain: 'com.example', version: 1 }] }));
    const T = { FLOAT: 1, INT: 2, STRING: 3, TENSOR: 4, GRAPH: 5, FLOATS: 6, INTS: 7, STRINGS: 8, GRAPHS: 10 };
    const enc = (s: string) => new TextEncoder().encode(s);
    proto.graph.node![0]!.attribute = [
      { name: 'f', type: T.FLOAT, f: 0.5 },
      { name: 'i', type: T.INT, i: Long.fromString('-9223372036854775807') },
      { name: 's', type: T.STRING, s: enc('héllo') },
      { name: 't', type: T.TENSOR, t: { dataType: 7, dims: [2], int64Data: [3, -4] } },
      { name: 'g', type: T.GRAPH, g: { name: 'body' } },
      { name: 'fs', type: T.FLOATS, floats: [1.5, -2] },
      { name: 'is', type: T.INTS, ints: [1, Long.fromNumber(-2), 2 ** 40] },
      { name: 'ss', type: T.STRINGS, strings: [enc('a'), enc('')] },
      { name: 'gs', type: T.GRAPHS, graphs: [{ name: 'b1' }, { name: 'b2' }] },
      { name: 'empty_ints', type: T.INTS },
    ];
    const attrs = importOnnx(encodeModel(proto)).nodes[0]!.attrs;
    expect(attrs.f).toEqual({ type: 'float', value: 0.5 });
    expect(attrs.i).toEqual({ type: 'int', value: Number(-9223372036854775807n) });
    expect(attrs.s).toEqual({ type: 'string', value: 'héllo' });
    expect(attrs.t).toMatchObject({ type: 'tensor', value: { dtype: 'int64', shape: [2] } });
    expect(attrs.t!.type === 'tensor' && Array.from(attrs.t!.value.data)).toEqual([3, -4]);
    expect(attrs.g).toEqual({ type: 'graph' });
    expect(attrs.fs).toEqual({ type: 'floats', value: [1.5, -2] });
    expect(attrs.is).toEqual({ type: 'ints', value: [1, -2, 2 ** 40] });
    expect(attrs.ss).toEqual({ type: 'strings', value: ['a', ''] });
    expect(attrs.gs).toEqual({ type: 'graph' });
    expect(attrs.empty_ints).toEqual({ type: 'ints', value: [] });
  });

  it('attributes without a type (IR 1-2 exporters) take the type of the field that is set', () => {
    const proto = modelProto(chain([{ opType: 'LeakyRelu', inputs: ['x'], outputs: ['y'] }]));
    proto.graph.node![0]!.attribute = [{ name: 'alpha', f: 0.25 }, { name: 'axes', ints: [0, 1] }, { name: 'mode', s: new TextEncoder().encode('x') }];
    const attrs = importOnnx(encodeModel(proto)).nodes[0]!.attrs;
    expect(attrs).toEqual({ alpha: { type: 'float', value: 0.25 }, axes: { type: 'ints', value: [0, 1] }, mode: { type: 'string', value: 'x' } });
  });

  it('a huge ints attribute imports (memory stays proportional to the file)', () => {
    const proto = modelProto(chain([{ opType: 'Relu', name: 'big', inputs: ['x'], outputs: ['y'] }]));
    const ints = Array.from({ length: 1_000_000 }, (_, i) => i % 1000);
    proto.graph.node![0]!.attribute = [{ name: 'many', type: 7, ints }];
    const attr = importOnnx(encodeModel(proto)).nodes[0]!.attrs.many!;
    expect(attr.type === 'ints' && attr.value.length).toBe(1_000_000);
    expect(attr.type === 'ints' && attr.value[999_999]).toBe(999);
  });

  it('sparse tensor, tensor-list and type-proto attributes are FM_UNSUPPORTED_OP', () => {
    for (const [type, label] of [[11, 'SPARSE_TENSOR'], [9, 'TENSORS'], [13, 'TYPE_PROTO']] as const) {
      const proto = modelProto(chain([relu('x', 'y', 'r')]));
      proto.graph.node![0]!.attribute = [{ name: 'weird', type }];
      expectFmError(() => importOnnx(encodeModel(proto)), 'FM_UNSUPPORTED_OP', '"weird"', '"r"', label);
    }
  });

  it('duplicate attribute names and untyped empty attributes are FM_ONNX_INVALID', () => {
    const dup = modelProto(chain([relu('x', 'y', 'r')]));
    dup.graph.node![0]!.attribute = [{ name: 'alpha', type: 1, f: 1 }, { name: 'alpha', type: 1, f: 2 }];
    expectFmError(() => importOnnx(encodeModel(dup)), 'FM_ONNX_INVALID', '"r"', '"alpha"', 'twice');
    const empty = modelProto(chain([relu('x', 'y', 'r')]));
    empty.graph.node![0]!.attribute = [{ name: 'nothing' }];
    expectFmError(() => importOnnx(encodeModel(empty)), 'FM_ONNX_INVALID', '"r"', '"nothing"', 'no type');
  });
});

describe('structural errors', () => {
  it('a value produced by two nodes', () => {
    expectFmError(load(chain([relu('x', 'y', 'first'), relu('x', 'y', 'second')])), 'FM_ONNX_INVALID', '"y"', 'produced twice', '"first"', '"second"');
  });
  it('a node output that is also a graph input or an initializer', () => {
    expectFmError(load(chain([relu('x', 'x', 'self')])), 'FM_ONNX_INVALID', '"x"', 'produced twice', 'graph input', '"self"');
    expectFmError(load(chain([relu('x', 'w', 'over'), relu('w', 'y')], { initializers: [{ name: 'w', dtype: 'float32', shape: [1], data: [0] }] })),
      'FM_ONNX_INVALID', '"w"', 'initializer', '"over"');
  });
  it('a dangling node input', () => {
    expectFmError(load(chain([{ opType: 'Add', name: 'adder', inputs: ['x', 'ghost'], outputs: ['y'] }])), 'FM_ONNX_INVALID', '"adder"', 'input 1', '"ghost"');
  });
  it('a cycle reports a node on the cycle, not one downstream of it', () => {
    const err = expectFmError(load(chain([
      relu('c', 'y', 'downstream'),
      { opType: 'Add', name: 'b', inputs: ['x', 'c'], outputs: ['b_out'] },
      relu('b_out', 'c', 'c'),
    ])), 'FM_ONNX_INVALID', 'cycle');
    expect(err.message).toMatch(/^FM_ONNX_INVALID: node "(b|c)" /);
    expect(err.message).not.toContain('downstream');
  });
  it('a node reading its own output is a cycle', () => {
    expectFmError(load(chain([{ opType: 'Add', name: 'loop', inputs: ['x', 'y'], outputs: ['y'] }])), 'FM_ONNX_INVALID', '"loop"', 'cycle');
  });
  it('a graph output that nothing produces', () => {
    expectFmError(load(chain([relu('x', 'a')])), 'FM_ONNX_INVALID', 'graph output "y"', 'not produced');
  });
  it('duplicate initializer names', () => {
    const init = { name: 'w', dtype: 'float32' as const, shape: [1], data: [0] };
    expectFmError(load(chain([relu('x', 'y')], { initializers: [init, init] })), 'FM_ONNX_INVALID', 'initializer "w"', 'twice');
  });
  it('duplicate graph inputs', () => {
    expectFmError(load(chain([relu('x', 'y')], { inputs: [f32('x'), f32('x')] })), 'FM_ONNX_INVALID', 'graph input "x"', 'twice');
  });
  it('a node without op_type', () => {
    const proto = modelProto(chain([relu('x', 'y', 'anon')]));
    proto.graph.node![0]!.opType = '';
    expectFmError(() => importOnnx(encodeModel(proto)), 'FM_ONNX_INVALID', '"anon"', 'op_type');
  });
  it('sparse initializers are FM_UNSUPPORTED_OP', () => {
    const proto = modelProto(chain([relu('x', 'y')]));
    proto.graph.sparseInitializer = [{ values: { name: 'sp', dataType: 1, dims: [1], floatData: [1] }, indices: { dataType: 7, dims: [1], int64Data: [0] }, dims: [4] }];
    expectFmError(() => importOnnx(encodeModel(proto)), 'FM_UNSUPPORTED_OP', '"sp"', 'sparse');
  });
});

describe('model-level errors', () => {
  it('a model without a graph', () => {
    const proto = modelProto(chain([relu('x', 'y')]));
    delete (proto as { graph?: unknown }).graph;
    expectFmError(() => importOnnx(encodeModel(proto)), 'FM_ONNX_INVALID', 'has no graph');
  });
  it('no default-domain opset import', () => {
    const proto = modelProto(chain([relu('x', 'y')]));
    proto.opsetImport = [{ domain: 'com.microsoft', version: 1 }];
    expectFmError(() => importOnnx(encodeModel(proto)), 'FM_ONNX_INVALID', 'default ONNX domain', '"com.microsoft"');
  });
  it('"ai.onnx" counts as the default domain', () => {
    const proto = modelProto(chain([relu('x', 'y')]));
    proto.opsetImport = [{ domain: 'ai.onnx', version: 13 }];
    expect(importOnnx(encodeModel(proto)).opset).toBe(13);
  });
  it('opsets below 1 or above 23 are FM_UNSUPPORTED_OP', () => {
    for (const version of [0, 24]) {
      expectFmError(load(chain([relu('x', 'y')], { opset: version })), 'FM_UNSUPPORTED_OP', `opset ${version}`, '1 to 23');
    }
    expect(importOnnx(buildModel(chain([relu('x', 'y')], { opset: 23 }))).opset).toBe(23);
    expect(importOnnx(buildModel(chain([relu('x', 'y')], { opset: 1 }))).opset).toBe(1);
  });
});
