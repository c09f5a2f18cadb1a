/**
 * Folds per-channel affine steps into what produces them. A step is an inference
 * BatchNormalization, or a Mul or Add of a constant holding one value per channel (axis 1): all
 * are y[c] = a[c] x[c] + b[c]. A step after a Conv folds into the Conv (per-output-channel
 * rescaled weights and a new bias); a step after another step merges with it into one
 * BatchNormalization (mean 0, variance 1, epsilon 0, so its scale and bias are a and b). Each fold
 * saves a full pass over the activation (one dispatch) and, for streaming, the parameters' loads.
 * Caffe exports write BatchNorm + Scale as BatchNormalization, Mul, Add: DenseNet-121 had 121 Mul
 * and 121 Add dispatches after its convs and batch norms.
 */
import { attrFloat, attrInt } from '../ir/attrs.js';
import { consumers, producers } from '../ir/graph.js';
import type { ConstTensor, Graph, Node, Value } from '../ir/types.js';
import { batchNormScaleShift } from '../ops/normalization.js';

/** y = a x + b per channel */
interface ChannelAffine {
  /** the non-constant operand */
  input: string;
  a: Float64Array;
  b: Float64Array;
}

const isOnnx = (node: Node) => node.domain === '' || node.domain === 'ai.onnx';

/** `t` as one value per channel of a [N, C, ...] operand of rank `rank` (shape [C, 1, ...] or [1, C, 1, ...] or [C] for rank 2). */
function perChannel(t: ConstTensor, rank: number, channels: number): Float64Array | undefined {
  if (t.dtype !== 'float32' || t.shape.length > rank || rank < 2) return undefined;
  const padded = [...new Array<number>(rank - t.shape.length).fill(1), ...t.shape];
  if (padded.some((d, i) => d !== (i === 1 ? channels : 1))) return undefined;
  return Float64Array.from(t.data, Number);
}

/** The affine step `node` computes, or undefined. */
function affineOf(node: Node, values: ReadonlyMap<string, Value>): ChannelAffine | undefined {
  if (!isOnnx(node) || node.fusedActivation || node.outputs.filter(Boolean).length !== 1) return undefined;
  const data = (name: string | undefined) => (name ? values.get(name)?.data : undefined);
  if (node.opType === 'BatchNormalization') {
    if (attrInt(node, 'training_mode', 0) !== 0) return undefined;
    const x = values.get(node.inputs[0]!);
    const [scale, bias, mean, variance] = node.inputs.slice(1, 5).map(data);
    if (!x || x.data || x.type.dtype !== 'float32' || !scale || !bias || !mean || !variance) return undefined;
    const { scale: a, shift: b } = batchNormScaleShift(scale, bias, mean, variance, attrFloat(node, 'epsilon', 1e-5));
    return a.length === x.type.shape[1] ? { input: node.inputs[0]!, a, b } : undefined;
  }
  if ((node.opType !== 'Mul' && node.opType !== 'Add') || node.inputs.length !== 2) return undefined;
  for (const side of [0, 1]) {
    const x = values.get(node.inputs[side]!);
    const c = data(node.inputs[1 - side]);
    if (!x || x.data || !c || x.type.dtype !== 'float32') continue;
    const v = perChannel(c, x.type.shape.length, x.type.shape[1] ?? 0);
    if (!v) continue;
    return node.opType === 'Mul'
      ? { input: node.inputs[side]!, a: v, b: new Float64Array(v.length) }
      : { input: node.inputs[side]!, a: new Float64Array(v.length).fill(1), b: v };
  }
  return undefined;
}

const f32Const = (shape: number[], data: ArrayLike<number>): ConstTensor => ({ dtype: 'float32', shape, data: Float32Array.from(data) });

function addConst(values: Map<string, Value>, base: string, t: ConstTensor): string {
  const name = uniqueName(values, base);
  values.set(name, { name, type: { dtype: t.dtype, shape: t.shape }, data: t });
  return name;
}

/** Conv(x, W, bias) followed by `step`: the Conv with W[o] * a[o] and bias[o] * a[o] + b[o]. */
function foldIntoConv(conv: Node, step: ChannelAffine, output: string, values: Map<string, Value>): Node | undefined {
  const weight = values.get(conv.inputs[1]!)?.data;
  const bias = conv.inputs[2] ? values.get(conv.inputs[2])?.data : undefined;
  if (!weight || weight.dtype !== 'float32' || (conv.inputs[2] && !bias)) return undefined;
  const outChannels = weight.shape[0]!;
  if (step.a.length !== outChannels || (bias && bias.data.length !== outChannels)) return undefined;
  const perOut = weight.data.length / outChannels;
  const w = new Float32Array(weight.data.length);
  for (let o = 0; o < outChannels; o++) for (let j = 0; j < perOut; j++) w[o * perOut + j] = Number(weight.data[o * perOut + j]) * step.a[o]!;
  const b = Array.from({ length: outChannels }, (_, o) => (bias ? Number(bias.data[o]) : 0) * step.a[o]! + step.b[o]!);
  // a weight folded again keeps one suffix
  const weightName = addConst(values, `${conv.inputs[1]!.replace(/__bnfolded(_\d+)?$/, '')}__bnfolded`, { dtype: 'float32', shape: [...weight.shape], data: w });
  const biasName = addConst(values, `${conv.name}__bnbias`, f32Const([outChannels], b));
  return { ...conv, inputs: [conv.inputs[0]!, weightName, biasName], outputs: [output] };
}

/** Two steps in a row as one BatchNormalization: a2 (a1 x + b1) + b2. */
function mergeSteps(first: Node, firstStep: ChannelAffine, second: ChannelAffine, output: string, values: Map<string, Value>): Node {
  const n = second.a.length;
  const a = Array.from({ length: n }, (_, c) => second.a[c]! * firstStep.a[c]!);
  const b = Array.from({ length: n }, (_, c) => second.a[c]! * firstStep.b[c]! + second.b[c]!);
  const base = (first.name || output).replace(/__affine$/, '');
  const inputs = [
    firstStep.input,
    addConst(values, `${base}__affine_scale`, f32Const([n], a)),
    addConst(values, `${base}__affine_bias`, f32Const([n], b)),
    addConst(values, `${base}__affine_mean`, f32Const([n], new Float64Array(n))),
    addConst(values, `${base}__affine_var`, f32Const([n], new Float64Array(n).fill(1))),
  ];
  return { name: `${base}__affine`, opType: 'BatchNormalization', domain: '', inputs, outputs: [output], attrs: { epsilon: { type: 'float', value: 0 } } };
}

/** One fold, or undefined when none applies. */
function foldOnce(graph: Graph, values: Map<string, Value>): Graph | undefined {
  const uses = consumers(graph);
  const producedBy = producers(graph);
  for (const node of graph.nodes) {
    const step = affineOf(node, values);
    if (!step || step.a.length !== values.get(step.input)?.type.shape[1]) continue;
    const producer = producedBy.get(step.input);
    if (!producer || producer.fusedActivation || uses.get(step.input)?.length !== 1 || graph.outputs.includes(step.input)) continue;
    const output = node.outputs.find(Boolean)!;
    let replacement: Node | undefined;
    if (producer.opType === 'Conv' && isOnnx(producer)) replacement = foldIntoConv(producer, step, output, values);
    else {
      const first = affineOf(producer, values);
      if (first) replacement = mergeSteps(producer, first, step, output, values);
    }
    if (!replacement) continue;
    values.delete(step.input);
    return { ...graph, values, nodes: graph.nodes.filter((n) => n !== node).map((n) => (n === producer ? replacement! : n)) };
  }
  return undefined;
}

export function foldChannelAffine(graph: Graph): Graph {
  const values = new Map(graph.values);
  let current: Graph = { ...graph, values };
  for (let next = foldOnce(current, values); next; next = foldOnce(current, values)) current = next;
  return current;
}

export function uniqueName(values: ReadonlyMap<string, unknown>, base: string): string {
  let name = base;
  for (let i = 1; values.has(name); i++) name = `${base}_${i}`;
  return name;
}
