/**
 * The fusion passes in Before/After form (like TVM's structural-equality pass tests): a small
 * ONNX graph is imported, the pipeline prefix in front of the pass runs, and the pass's dump of
 * the graph is compared with the text written here before and after the pass. Each pass has
 * positive cases (the pattern is rewritten) and negative ones (it must be left as it is).
 *
 * The dumps need no normalisation: dumpGraph prints names, types, attributes and constant counts
 * only (no weight bytes, hashes, timings or paths), and every name comes from the model below or
 * from the pass's deterministic naming. It prints no domains, so the few fused nodes whose domain
 * matters (FUSED_DOMAIN vs ONNX) are checked beside the text; weights the pass computes (folded
 * BatchNorm) are checked by value. A pass leaves the constants it stops reading in the graph
 * (they stay counted on the `constants:` line); eliminate-dead-nodes drops them later.
 *
 * Writing a new case: FLASHMEM_PRINT_DUMPS=1 npx vitest run test/passes/before-after.test.ts
 * prints both dumps; read them before pasting them in.
 */
import { describe, expect, it } from 'vitest';
import { buildModel, type NodeSpec, type TensorSpec, type ValueSpec } from '../../fixtures/onnx-builder.js';
import { importOnnx } from '../../compiler/frontend/onnx.js';
import { FUSED_DOMAIN } from '../../compiler/ops/domains.js';
import type { Graph } from '../../compiler/ir/types.js';
import { beforeAndAfter, passesBefore, runPasses } from '../harness/passes.js';

type Initializer = TensorSpec & { name: string };

const f32 = (name: string, shape: number[], data: number[]): Initializer => ({ name, dtype: 'float32', shape, data });
const scalar = (name: string, value: number): Initializer => f32(name, [], [value]);
const i64 = (name: string, data: number[]): Initializer => ({ name, dtype: 'int64', shape: [data.length], data });
const input = (name: string, shape: number[]): ValueSpec => ({ name, dtype: 'float32', shape });
const output = (name: string): ValueSpec => ({ name, dtype: 'float32' });
const node = (name: string, opType: string, inputs: string[], outputs: string[], attrs?: NodeSpec['attrs']): NodeSpec =>
  ({ name, opType, inputs, outputs, attrs });

function graphOf(spec: { opset?: number; inputs: ValueSpec[]; outputs: ValueSpec[]; initializers?: Initializer[]; nodes: NodeSpec[] }): Graph {
  return importOnnx(buildModel({ graphName: 'g', opset: spec.opset ?? 17, ...spec }));
}

/** The pass's dumps before and after it; prints them when FLASHMEM_PRINT_DUMPS is set (writing a new case). */
function dumps(graph: Graph, pass: string) {
  const result = beforeAndAfter(graph, pass);
  if (process.env.FLASHMEM_PRINT_DUMPS) console.log(`--- before ${pass}\n${result.before}--- after\n${result.after}`);
  return result;
}

/**
 * A dump written indented in the test: the first line break and the common indentation go, so
 * the literal reads as the pass's text output (one line per value, node or output).
 */
function dump(strings: TemplateStringsArray): string {
  const lines = strings.raw.join('').replace(/^\n/, '').replace(/\n[ ]*$/, '\n').split('\n');
  const indent = Math.min(...lines.filter((l) => l.trim()).map((l) => l.length - l.trimStart().length));
  return lines.map((l) => l.slice(indent)).join('\n');
}

/** The graph after the pipeline up to and including `pass`. */
const through = (graph: Graph, pass: string) => runPasses(graph, [...passesBefore(pass), pass]).graph;

const range = (n: number, scale = 0.1, offset = 0) => Array.from({ length: n }, (_, i) => offset + scale * ((i % 7) - 3));

// ------------------------------------------------------------------------------------------------

describe('fold-channel-affine', () => {
  const bn = (convOutIsGraphOutput: boolean) => graphOf({
    inputs: [input('x', [1, 2, 4, 4])],
    outputs: [output('y'), ...(convOutIsGraphOutput ? [output('c')] : [])],
    initializers: [
      f32('w', [3, 2, 3, 3], range(54)), f32('scale', [3], [1, 2, 0.5]), f32('bias', [3], [0.1, -0.2, 0.3]),
      f32('mean', [3], [0.5, -1, 0]), f32('var', [3], [4, 1, 0.25]),
    ],
    nodes: [
      node('conv', 'Conv', ['x', 'w'], ['c'], { pads: [1, 1, 1, 1] }),
      node('bn', 'BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['y'], { epsilon: 0 }),
    ],
  });

  it('folds an inference BatchNormalization into the Conv before it', () => {
    const graph = bn(false);
    const { before, after } = dumps(graph, 'fold-channel-affine');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[1,2,4,4]
      constants: 5 (66 elements)
      "c":float32[1,3,4,4] = Conv("x":float32[1,2,4,4], "w":const float32[3,2,3,3]) {pads=[1,1,1,1]}  # "conv"
      "y":float32[1,3,4,4] = BatchNormalization("c":float32[1,3,4,4], "scale":const float32[3], "bias":const float32[3], "mean":const float32[3], "var":const float32[3]) {epsilon=0}  # "bn"
      output "y": float32[1,3,4,4]
    `);
    expect(after).toBe(dump`
      graph "g" opset 17
      input "x": float32[1,2,4,4]
      constants: 7 (123 elements)
      "y":float32[1,3,4,4] = Conv("x":float32[1,2,4,4], "w__bnfolded":const float32[3,2,3,3], "conv__bnbias":const float32[3]) {pads=[1,1,1,1]}  # "conv"
      output "y": float32[1,3,4,4]
    `);
    // bias' = bias - mean * scale / sqrt(var + eps); weights scaled per output channel by scale / sqrt(var + eps)
    const folded = through(graph, 'fold-channel-affine');
    expect(Array.from(folded.values.get('conv__bnbias')!.data!.data)).toEqual([0.1 - 0.5 * 1 / 2, -0.2 + 1 * 2 / 1, 0.3].map(Math.fround));
    expect(folded.values.get('w__bnfolded')!.data!.data[27]).toBeCloseTo(range(54)[27]! * 2, 6);
  });

  it('leaves the pair when the Conv output is also a graph output', () => {
    const { before, after } = dumps(bn(true), 'fold-channel-affine');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[1,2,4,4]
      constants: 5 (66 elements)
      "c":float32[1,3,4,4] = Conv("x":float32[1,2,4,4], "w":const float32[3,2,3,3]) {pads=[1,1,1,1]}  # "conv"
      "y":float32[1,3,4,4] = BatchNormalization("c":float32[1,3,4,4], "scale":const float32[3], "bias":const float32[3], "mean":const float32[3], "var":const float32[3]) {epsilon=0}  # "bn"
      output "y": float32[1,3,4,4]
      output "c": float32[1,3,4,4]
    `);
    expect(after).toBe(before);
  });

  it('leaves a BatchNormalization whose statistics are runtime inputs', () => {
    const graph = graphOf({
      inputs: [input('x', [1, 2, 4, 4]), input('mean', [3])],
      outputs: [output('y')],
      initializers: [f32('w', [3, 2, 1, 1], range(6)), f32('scale', [3], [1, 1, 1]), f32('bias', [3], [0, 0, 0]), f32('var', [3], [1, 1, 1])],
      nodes: [
        node('conv', 'Conv', ['x', 'w'], ['c']),
        node('bn', 'BatchNormalization', ['c', 'scale', 'bias', 'mean', 'var'], ['y']),
      ],
    });
    const { before, after } = dumps(graph, 'fold-channel-affine');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[1,2,4,4]
      input "mean": float32[3]
      constants: 4 (15 elements)
      "c":float32[1,3,4,4] = Conv("x":float32[1,2,4,4], "w":const float32[3,2,1,1])  # "conv"
      "y":float32[1,3,4,4] = BatchNormalization("c":float32[1,3,4,4], "scale":const float32[3], "bias":const float32[3], "mean":float32[3], "var":const float32[3])  # "bn"
      output "y": float32[1,3,4,4]
    `);
    expect(after).toBe(before);
  });
});

// ------------------------------------------------------------------------------------------------

describe('fuse-layernorm', () => {
  /** opset 14's decomposed LayerNorm over the last axis of x [2, 3, 4], with gamma and beta */
  const decomposed = (opts: { meanAlsoRead?: boolean } = {}) => graphOf({
    opset: 14,
    inputs: [input('x', [2, 3, 4])],
    outputs: [output('y'), ...(opts.meanAlsoRead ? [output('m')] : [])],
    initializers: [scalar('two', 2), scalar('eps', 1e-5), f32('gamma', [4], [1, 2, 3, 4]), f32('beta', [4], [0, 0.5, 0, 0.5])],
    nodes: [
      node('mean', 'ReduceMean', ['x'], ['mu'], { axes: [-1] }),
      node('sub', 'Sub', ['x', 'mu'], ['d']),
      node('pow', 'Pow', ['d', 'two'], ['d2']),
      node('var', 'ReduceMean', ['d2'], ['v'], { axes: [-1] }),
      node('add_eps', 'Add', ['v', 'eps'], ['ve']),
      node('sqrt', 'Sqrt', ['ve'], ['s']),
      node('div', 'Div', ['d', 's'], ['n']),
      node('mul_gamma', 'Mul', ['n', 'gamma'], ['ng']),
      node('add_beta', 'Add', ['ng', 'beta'], ['y']),
      ...(opts.meanAlsoRead ? [node('read_mean', 'Identity', ['mu'], ['m'])] : []),
    ],
  });

  it('fuses ReduceMean / Sub / Pow / ReduceMean / Add / Sqrt / Div / Mul / Add into LayerNormalization (fused domain below opset 17)', () => {
    const graph = decomposed();
    const { before, after } = dumps(graph, 'fuse-layernorm');
    expect(before).toBe(dump`
      graph "g" opset 14
      input "x": float32[2,3,4]
      constants: 4 (10 elements)
      "mu":float32[2,3,1] = ReduceMean("x":float32[2,3,4]) {axes=[-1]}  # "mean"
      "d":float32[2,3,4] = Sub("x":float32[2,3,4], "mu":float32[2,3,1])  # "sub"
      "d2":float32[2,3,4] = Pow("d":float32[2,3,4], "two":const float32[])  # "pow"
      "v":float32[2,3,1] = ReduceMean("d2":float32[2,3,4]) {axes=[-1]}  # "var"
      "ve":float32[2,3,1] = Add("v":float32[2,3,1], "eps":const float32[])  # "add_eps"
      "s":float32[2,3,1] = Sqrt("ve":float32[2,3,1])  # "sqrt"
      "n":float32[2,3,4] = Div("d":float32[2,3,4], "s":float32[2,3,1])  # "div"
      "ng":float32[2,3,4] = Mul("n":float32[2,3,4], "gamma":const float32[4])  # "mul_gamma"
      "y":float32[2,3,4] = Add("ng":float32[2,3,4], "beta":const float32[4])  # "add_beta"
      output "y": float32[2,3,4]
    `);
    expect(after).toBe(dump`
      graph "g" opset 14
      input "x": float32[2,3,4]
      constants: 4 (10 elements)
      "y":float32[2,3,4] = LayerNormalization("x":float32[2,3,4], "gamma":const float32[4], "beta":const float32[4]) {axis=2 epsilon=0.000009999999747378752}  # "mean__layernorm"
      output "y": float32[2,3,4]
    `);
    expect(through(graph, 'fuse-layernorm').nodes.map((n) => n.domain)).toEqual([FUSED_DOMAIN]);
  });

  it('fuses the Mul(d, Reciprocal(s)) form without affine parameters into ONNX LayerNormalization with ones as scale (opset 18 axes input)', () => {
    const graph = graphOf({
      opset: 18,
      inputs: [input('x', [2, 3, 4])],
      outputs: [output('y')],
      initializers: [i64('last', [-1]), scalar('eps', 1e-6)],
      nodes: [
        node('mean', 'ReduceMean', ['x', 'last'], ['mu']),
        node('sub', 'Sub', ['x', 'mu'], ['d']),
        node('square', 'Mul', ['d', 'd'], ['d2']),
        node('var', 'ReduceMean', ['d2', 'last'], ['v']),
        node('add_eps', 'Add', ['v', 'eps'], ['ve']),
        node('sqrt', 'Sqrt', ['ve'], ['s']),
        node('recip', 'Reciprocal', ['s'], ['r']),
        node('mul', 'Mul', ['d', 'r'], ['y']),
      ],
    });
    const { before, after } = dumps(graph, 'fuse-layernorm');
    expect(before).toBe(dump`
      graph "g" opset 18
      input "x": float32[2,3,4]
      constants: 2 (2 elements)
      "mu":float32[2,3,1] = ReduceMean("x":float32[2,3,4], "last":const int64[1])  # "mean"
      "d":float32[2,3,4] = Sub("x":float32[2,3,4], "mu":float32[2,3,1])  # "sub"
      "d2":float32[2,3,4] = Mul("d":float32[2,3,4], "d":float32[2,3,4])  # "square"
      "v":float32[2,3,1] = ReduceMean("d2":float32[2,3,4], "last":const int64[1])  # "var"
      "ve":float32[2,3,1] = Add("v":float32[2,3,1], "eps":const float32[])  # "add_eps"
      "s":float32[2,3,1] = Sqrt("ve":float32[2,3,1])  # "sqrt"
      "r":float32[2,3,1] = Reciprocal("s":float32[2,3,1])  # "recip"
      "y":float32[2,3,4] = Mul("d":float32[2,3,4], "r":float32[2,3,1])  # "mul"
      output "y": float32[2,3,4]
    `);
    expect(after).toBe(dump`
      graph "g" opset 18
      input "x": float32[2,3,4]
      constants: 3 (6 elements)
      "y":float32[2,3,4] = LayerNormalization("x":float32[2,3,4], "mean__ln_scale":const float32[4]) {axis=2 epsilon=9.999999974752427e-7}  # "mean__layernorm"
      output "y": float32[2,3,4]
    `);
    const fused = through(graph, 'fuse-layernorm');
    expect(fused.nodes.map((n) => n.domain)).toEqual(['']);
    expect(Array.from(fused.values.get('mean__ln_scale')!.data!.data)).toEqual([1, 1, 1, 1]);
  });

  it('keeps the nodes when the mean has a reader outside the pattern', () => {
    const { before, after } = dumps(decomposed({ meanAlsoRead: true }), 'fuse-layernorm');
    expect(before).toBe(dump`
      graph "g" opset 14
      input "x": float32[2,3,4]
      constants: 4 (10 elements)
      "mu":float32[2,3,1] = ReduceMean("x":float32[2,3,4]) {axes=[-1]}  # "mean"
      "d":float32[2,3,4] = Sub("x":float32[2,3,4], "mu":float32[2,3,1])  # "sub"
      "d2":float32[2,3,4] = Pow("d":float32[2,3,4], "two":const float32[])  # "pow"
      "v":float32[2,3,1] = ReduceMean("d2":float32[2,3,4]) {axes=[-1]}  # "var"
      "ve":float32[2,3,1] = Add("v":float32[2,3,1], "eps":const float32[])  # "add_eps"
      "s":float32[2,3,1] = Sqrt("ve":float32[2,3,1])  # "sqrt"
      "n":float32[2,3,4] = Div("d":float32[2,3,4], "s":float32[2,3,1])  # "div"
      "ng":float32[2,3,4] = Mul("n":float32[2,3,4], "gamma":const float32[4])  # "mul_gamma"
      "y":float32[2,3,4] = Add("ng":float32[2,3,4], "beta":const float32[4])  # "add_beta"
      "m":float32[2,3,1] = Identity("mu":float32[2,3,1])  # "read_mean"
      output "y": float32[2,3,4]
      output "m": float32[2,3,1]
    `);
    expect(after).toBe(before);
  });
});

// ------------------------------------------------------------------------------------------------

describe('fuse-gelu', () => {
  /** x * 0.5 * (1 + erf(x / sqrt 2)) on x [2, 8] */
  const erfGelu = (opts: { erfAlsoRead?: boolean; divisor?: number } = {}) => graphOf({
    inputs: [input('x', [2, 8])],
    outputs: [output('y'), ...(opts.erfAlsoRead ? [output('e')] : [])],
    initializers: [scalar('sqrt2', opts.divisor ?? Math.SQRT2), scalar('one', 1), scalar('half', 0.5)],
    nodes: [
      node('div', 'Div', ['x', 'sqrt2'], ['xs']),
      node('erf', 'Erf', ['xs'], ['e']),
      node('add', 'Add', ['e', 'one'], ['e1']),
      node('mul_x', 'Mul', ['x', 'e1'], ['xe']),
      node('mul_half', 'Mul', ['xe', 'half'], ['y']),
    ],
  });

  it('fuses the erf form into one Gelu (approximate none)', () => {
    const graph = erfGelu();
    const { before, after } = dumps(graph, 'fuse-gelu');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,8]
      constants: 3 (3 elements)
      "xs":float32[2,8] = Div("x":float32[2,8], "sqrt2":const float32[])  # "div"
      "e":float32[2,8] = Erf("xs":float32[2,8])  # "erf"
      "e1":float32[2,8] = Add("e":float32[2,8], "one":const float32[])  # "add"
      "xe":float32[2,8] = Mul("x":float32[2,8], "e1":float32[2,8])  # "mul_x"
      "y":float32[2,8] = Mul("xe":float32[2,8], "half":const float32[])  # "mul_half"
      output "y": float32[2,8]
    `);
    expect(after).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,8]
      constants: 3 (3 elements)
      "y":float32[2,8] = Gelu("x":float32[2,8]) {approximate="none"}  # "erf__gelu"
      output "y": float32[2,8]
    `);
    expect(through(graph, 'fuse-gelu').nodes.map((n) => n.domain)).toEqual([FUSED_DOMAIN]);
  });

  it('fuses x * sigmoid(1.702 x) into QuickGelu', () => {
    const graph = graphOf({
      inputs: [input('x', [2, 8])],
      outputs: [output('y')],
      initializers: [scalar('alpha', 1.702)],
      nodes: [node('scale', 'Mul', ['x', 'alpha'], ['ax']), node('sigmoid', 'Sigmoid', ['ax'], ['s']), node('gate', 'Mul', ['x', 's'], ['y'])],
    });
    const { before, after } = dumps(graph, 'fuse-gelu');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,8]
      constants: 1 (1 elements)
      "ax":float32[2,8] = Mul("x":float32[2,8], "alpha":const float32[])  # "scale"
      "s":float32[2,8] = Sigmoid("ax":float32[2,8])  # "sigmoid"
      "y":float32[2,8] = Mul("x":float32[2,8], "s":float32[2,8])  # "gate"
      output "y": float32[2,8]
    `);
    expect(after).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,8]
      constants: 1 (1 elements)
      "y":float32[2,8] = QuickGelu("x":float32[2,8]) {alpha=1.7020000219345093}  # "sigmoid__gelu"
      output "y": float32[2,8]
    `);
  });

  it('keeps the nodes when the Erf output has a reader outside the pattern', () => {
    const { before, after } = dumps(erfGelu({ erfAlsoRead: true }), 'fuse-gelu');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,8]
      constants: 3 (3 elements)
      "xs":float32[2,8] = Div("x":float32[2,8], "sqrt2":const float32[])  # "div"
      "e":float32[2,8] = Erf("xs":float32[2,8])  # "erf"
      "e1":float32[2,8] = Add("e":float32[2,8], "one":const float32[])  # "add"
      "xe":float32[2,8] = Mul("x":float32[2,8], "e1":float32[2,8])  # "mul_x"
      "y":float32[2,8] = Mul("xe":float32[2,8], "half":const float32[])  # "mul_half"
      output "y": float32[2,8]
      output "e": float32[2,8]
    `);
    expect(after).toBe(before);
  });

  it('keeps a near-GELU with the wrong constant (x / 1.5)', () => {
    const { before, after } = dumps(erfGelu({ divisor: 1.5 }), 'fuse-gelu');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,8]
      constants: 3 (3 elements)
      "xs":float32[2,8] = Div("x":float32[2,8], "sqrt2":const float32[])  # "div"
      "e":float32[2,8] = Erf("xs":float32[2,8])  # "erf"
      "e1":float32[2,8] = Add("e":float32[2,8], "one":const float32[])  # "add"
      "xe":float32[2,8] = Mul("x":float32[2,8], "e1":float32[2,8])  # "mul_x"
      "y":float32[2,8] = Mul("xe":float32[2,8], "half":const float32[])  # "mul_half"
      output "y": float32[2,8]
    `);
    expect(after).toBe(before);
  });
});

// ------------------------------------------------------------------------------------------------

describe('fuse-attention', () => {
  /** softmax(q kt / sqrt 8) v on heads [1, 2, 5, 8] */
  const sdpa = (opts: { probsAlsoRead?: boolean } = {}) => graphOf({
    inputs: [input('q', [1, 2, 5, 8]), input('kt', [1, 2, 8, 5]), input('v', [1, 2, 5, 8])],
    outputs: [output('y'), ...(opts.probsAlsoRead ? [output('p')] : [])],
    initializers: [scalar('sqrt_d', Math.sqrt(8))],
    nodes: [
      node('qk', 'MatMul', ['q', 'kt'], ['scores']),
      node('scale', 'Div', ['scores', 'sqrt_d'], ['scaled']),
      node('softmax', 'Softmax', ['scaled'], ['p'], { axis: -1 }),
      node('pv', 'MatMul', ['p', 'v'], ['y']),
    ],
  });

  it('fuses MatMul / Div / Softmax / MatMul into one Attention', () => {
    const graph = sdpa();
    const { before, after } = dumps(graph, 'fuse-attention');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "q": float32[1,2,5,8]
      input "kt": float32[1,2,8,5]
      input "v": float32[1,2,5,8]
      constants: 1 (1 elements)
      "scores":float32[1,2,5,5] = MatMul("q":float32[1,2,5,8], "kt":float32[1,2,8,5])  # "qk"
      "scaled":float32[1,2,5,5] = Div("scores":float32[1,2,5,5], "sqrt_d":const float32[])  # "scale"
      "p":float32[1,2,5,5] = Softmax("scaled":float32[1,2,5,5]) {axis=-1}  # "softmax"
      "y":float32[1,2,5,8] = MatMul("p":float32[1,2,5,5], "v":float32[1,2,5,8])  # "pv"
      output "y": float32[1,2,5,8]
    `);
    expect(after).toBe(dump`
      graph "g" opset 17
      input "q": float32[1,2,5,8]
      input "kt": float32[1,2,8,5]
      input "v": float32[1,2,5,8]
      constants: 1 (1 elements)
      "y":float32[1,2,5,8] = Attention("q":float32[1,2,5,8], "kt":float32[1,2,8,5], "v":float32[1,2,5,8]) {scale=0.3535533966440824 causal=0}  # "softmax__attention"
      output "y": float32[1,2,5,8]
    `);
    expect(through(graph, 'fuse-attention').nodes.map((n) => n.domain)).toEqual([FUSED_DOMAIN]);
  });

  it('absorbs the head-splitting Transposes of q, k, v and the merging one of the result as permutations', () => {
    const graph = graphOf({
      inputs: [input('q', [1, 5, 2, 8]), input('k', [1, 5, 2, 8]), input('v', [1, 5, 2, 8])],
      outputs: [output('y')],
      initializers: [scalar('inv_sqrt_d', 1 / Math.sqrt(8))],
      nodes: [
        node('q_heads', 'Transpose', ['q'], ['qh'], { perm: [0, 2, 1, 3] }),
        node('k_heads', 'Transpose', ['k'], ['kth'], { perm: [0, 2, 3, 1] }),
        node('v_heads', 'Transpose', ['v'], ['vh'], { perm: [0, 2, 1, 3] }),
        node('qk', 'MatMul', ['qh', 'kth'], ['scores']),
        node('scale', 'Mul', ['scores', 'inv_sqrt_d'], ['scaled']),
        node('softmax', 'Softmax', ['scaled'], ['p'], { axis: -1 }),
        node('pv', 'MatMul', ['p', 'vh'], ['o']),
        node('merge', 'Transpose', ['o'], ['y'], { perm: [0, 2, 1, 3] }),
      ],
    });
    const { before, after } = dumps(graph, 'fuse-attention');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "q": float32[1,5,2,8]
      input "k": float32[1,5,2,8]
      input "v": float32[1,5,2,8]
      constants: 1 (1 elements)
      "qh":float32[1,2,5,8] = Transpose("q":float32[1,5,2,8]) {perm=[0,2,1,3]}  # "q_heads"
      "kth":float32[1,2,8,5] = Transpose("k":float32[1,5,2,8]) {perm=[0,2,3,1]}  # "k_heads"
      "vh":float32[1,2,5,8] = Transpose("v":float32[1,5,2,8]) {perm=[0,2,1,3]}  # "v_heads"
      "scores":float32[1,2,5,5] = MatMul("qh":float32[1,2,5,8], "kth":float32[1,2,8,5])  # "qk"
      "scaled":float32[1,2,5,5] = Mul("scores":float32[1,2,5,5], "inv_sqrt_d":const float32[])  # "scale"
      "p":float32[1,2,5,5] = Softmax("scaled":float32[1,2,5,5]) {axis=-1}  # "softmax"
      "o":float32[1,2,5,8] = MatMul("p":float32[1,2,5,5], "vh":float32[1,2,5,8])  # "pv"
      "y":float32[1,5,2,8] = Transpose("o":float32[1,2,5,8]) {perm=[0,2,1,3]}  # "merge"
      output "y": float32[1,5,2,8]
    `);
    expect(after).toBe(dump`
      graph "g" opset 17
      input "q": float32[1,5,2,8]
      input "k": float32[1,5,2,8]
      input "v": float32[1,5,2,8]
      constants: 1 (1 elements)
      "y":float32[1,5,2,8] = Attention("q":float32[1,5,2,8], "k":float32[1,5,2,8], "v":float32[1,5,2,8]) {scale=0.3535533845424652 causal=0 perm_q=[0,2,1,3] perm_kt=[0,2,3,1] perm_v=[0,2,1,3] perm_out=[0,2,1,3]}  # "softmax__attention"
      output "y": float32[1,5,2,8]
    `);
  });

  it('keeps the nodes when the probabilities have a reader outside the pattern', () => {
    const { before, after } = dumps(sdpa({ probsAlsoRead: true }), 'fuse-attention');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "q": float32[1,2,5,8]
      input "kt": float32[1,2,8,5]
      input "v": float32[1,2,5,8]
      constants: 1 (1 elements)
      "scores":float32[1,2,5,5] = MatMul("q":float32[1,2,5,8], "kt":float32[1,2,8,5])  # "qk"
      "scaled":float32[1,2,5,5] = Div("scores":float32[1,2,5,5], "sqrt_d":const float32[])  # "scale"
      "p":float32[1,2,5,5] = Softmax("scaled":float32[1,2,5,5]) {axis=-1}  # "softmax"
      "y":float32[1,2,5,8] = MatMul("p":float32[1,2,5,5], "v":float32[1,2,5,8])  # "pv"
      output "y": float32[1,2,5,8]
      output "p": float32[1,2,5,5]
    `);
    expect(after).toBe(before);
  });
});

// ------------------------------------------------------------------------------------------------

describe('fuse-activations', () => {
  const convRelu = (opts: { convOutAlsoRead?: boolean } = {}) => graphOf({
    inputs: [input('x', [1, 2, 4, 4])],
    outputs: [output('y'), ...(opts.convOutAlsoRead ? [output('c')] : [])],
    initializers: [f32('w', [3, 2, 1, 1], range(6)), f32('b', [3], [0.1, 0.2, 0.3])],
    nodes: [node('conv', 'Conv', ['x', 'w', 'b'], ['c']), node('relu', 'Relu', ['c'], ['y'])],
  });

  it('folds Relu into the Conv producing its input', () => {
    const { before, after } = dumps(convRelu(), 'fuse-activations');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[1,2,4,4]
      constants: 2 (9 elements)
      "c":float32[1,3,4,4] = Conv("x":float32[1,2,4,4], "w":const float32[3,2,1,1], "b":const float32[3])  # "conv"
      "y":float32[1,3,4,4] = Relu("c":float32[1,3,4,4])  # "relu"
      output "y": float32[1,3,4,4]
    `);
    expect(after).toBe(dump`
      graph "g" opset 17
      input "x": float32[1,2,4,4]
      constants: 2 (9 elements)
      "y":float32[1,3,4,4] = Conv +Relu("x":float32[1,2,4,4], "w":const float32[3,2,1,1], "b":const float32[3])  # "conv"
      output "y": float32[1,3,4,4]
    `);
  });

  it('folds Clip with constant bounds into MatMul, the bounds becoming attributes', () => {
    const graph = graphOf({
      inputs: [input('x', [2, 4])],
      outputs: [output('y')],
      initializers: [f32('w', [4, 3], range(12)), scalar('lo', 0), scalar('hi', 6)],
      nodes: [node('matmul', 'MatMul', ['x', 'w'], ['h']), node('clip', 'Clip', ['h', 'lo', 'hi'], ['y'])],
    });
    const { before, after } = dumps(graph, 'fuse-activations');
    // (dumpGraph names the fused activation only: its attributes are checked below)
    expect(through(graph, 'fuse-activations').nodes[0]!.fusedActivation?.attrs).toEqual({ min: { type: 'float', value: 0 }, max: { type: 'float', value: 6 } });
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,4]
      constants: 3 (14 elements)
      "h":float32[2,3] = MatMul("x":float32[2,4], "w":const float32[4,3])  # "matmul"
      "y":float32[2,3] = Clip("h":float32[2,3], "lo":const float32[], "hi":const float32[])  # "clip"
      output "y": float32[2,3]
    `);
    expect(after).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,4]
      constants: 3 (14 elements)
      "y":float32[2,3] = MatMul +Clip("x":float32[2,4], "w":const float32[4,3])  # "matmul"
      output "y": float32[2,3]
    `);
  });

  it('keeps the Relu when the Conv output is also a graph output', () => {
    const { before, after } = dumps(convRelu({ convOutAlsoRead: true }), 'fuse-activations');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[1,2,4,4]
      constants: 2 (9 elements)
      "c":float32[1,3,4,4] = Conv("x":float32[1,2,4,4], "w":const float32[3,2,1,1], "b":const float32[3])  # "conv"
      "y":float32[1,3,4,4] = Relu("c":float32[1,3,4,4])  # "relu"
      output "y": float32[1,3,4,4]
      output "c": float32[1,3,4,4]
    `);
    expect(after).toBe(before);
  });

  it('keeps a second activation: a kernel carries at most one', () => {
    const graph = graphOf({
      inputs: [input('x', [2, 4])],
      outputs: [output('y')],
      initializers: [f32('w', [4, 3], range(12))],
      nodes: [node('matmul', 'MatMul', ['x', 'w'], ['h']), node('relu', 'Relu', ['h'], ['r']), node('sigmoid', 'Sigmoid', ['r'], ['y'])],
    });
    const { before, after } = dumps(graph, 'fuse-activations');
    expect(before).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,4]
      constants: 1 (12 elements)
      "h":float32[2,3] = MatMul("x":float32[2,4], "w":const float32[4,3])  # "matmul"
      "r":float32[2,3] = Relu("h":float32[2,3])  # "relu"
      "y":float32[2,3] = Sigmoid("r":float32[2,3])  # "sigmoid"
      output "y": float32[2,3]
    `);
    expect(after).toBe(dump`
      graph "g" opset 17
      input "x": float32[2,4]
      constants: 1 (12 elements)
      "r":float32[2,3] = MatMul +Relu("x":float32[2,4], "w":const float32[4,3])  # "matmul"
      "y":float32[2,3] = Sigmoid("r":float32[2,3])  # "sigmoid"
      output "y": float32[2,3]
    `);
  });
});
