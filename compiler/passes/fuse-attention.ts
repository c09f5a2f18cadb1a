/**
 * Fuses scaled-dot-product attention into one Attention kernel (FUSED_DOMAIN):
 *
 *   MatMul(Q, Kt) [* c | / c] [Where(causal, s, -big)] [+ mask] -> Softmax(last axis) -> MatMul(., V)
 *
 * as torch.onnx (TorchScript: Div by sqrt(d), GPT-2's Where on a sliced causal buffer, the
 * additive attention mask; dynamo's sdpa decomposition: Q and Kt each scaled by sqrt(scale)) and
 * optimum export it. Also absorbed, when only the pattern reads them:
 *  - scalar Muls on Q or Kt (their product becomes the scale);
 *  - Transposes producing Q, Kt or V (heads split by Reshape + Transpose): the kernel reads the
 *    Transpose's input through permuted strides; two Transposes in a row compose;
 *  - a Transpose of the result (heads merged back), written permuted.
 * A constant mask that is causal (0 / True on and below the diagonal aligned to the last key,
 * very negative / False above), optionally banded (GPT-Neo local attention), becomes the kernel's
 * causal/window attributes; any other constant Where mask becomes an additive constant mask.
 */
import { FlashmemError } from '../errors.js';
import { attrInt, attrInts } from '../ir/attrs.js';
import type { Attrs, ConstTensor, Graph, Node } from '../ir/types.js';
import { FUSED_DOMAIN } from '../ops/domains.js';
import { opFor } from '../ops/index.js';
import { broadcastStrides } from '../kernel/strides.js';
import {
  constOf, freshName, indexGraph, isOnnx, onnxNode, otherInput, rewriteNodes, sameShape, scalarOf, shapeOf, soleReader, type GraphIndex,
} from './pattern.js';

/** Scores at or below this are "masked out": exp() of them relative to any real score is 0 in f32. */
const MASKED = -1e4;

interface Operand {
  name: string;
  perm?: number[];
}

interface MaskInfo {
  causal: boolean;
  window: number;
  /** additive mask value (runtime or constant) */
  additive?: string;
}

interface AttentionMatch {
  nodes: Node[];
  q: Operand;
  kt: Operand;
  v: Operand;
  scale: number;
  mask: MaskInfo;
  outPerm?: number[];
  output: string;
  /** constants the rewrite must add (converted Where masks) */
  newConsts: { name: string; tensor: ConstTensor }[];
}

export function fuseAttention(graph: Graph): Graph {
  const index = indexGraph(graph);
  const removed = new Set<Node>();
  const replacementAt = new Map<Node, Node>();
  const values = new Map(graph.values);
  const g: Graph = { ...graph, values };
  for (const softmax of graph.nodes) {
    if (!isOnnx(softmax, 'Softmax') || removed.has(softmax)) continue;
    const m = matchAttention(index, g, softmax);
    if (!m || m.nodes.some((n) => removed.has(n))) continue;
    const node = attentionNode(softmax, m);
    if (!typesCheck(g, node, m)) continue;
    for (const c of m.newConsts) values.set(c.name, { name: c.name, type: { dtype: c.tensor.dtype, shape: c.tensor.shape }, data: c.tensor });
    m.nodes.forEach((n) => removed.add(n));
    const sink = graph.nodes.filter((n) => m.nodes.includes(n)).at(-1)!;
    replacementAt.set(sink, node);
  }
  if (removed.size === 0) return graph;
  return { ...g, nodes: rewriteNodes(graph, removed, replacementAt) };
}

function attentionNode(softmax: Node, m: AttentionMatch): Node {
  const attrs: Attrs = {
    scale: { type: 'float', value: m.scale },
    causal: { type: 'int', value: m.mask.causal ? 1 : 0 },
  };
  if (m.mask.window > 0) attrs.window = { type: 'int', value: m.mask.window };
  if (m.q.perm) attrs.perm_q = { type: 'ints', value: m.q.perm };
  if (m.kt.perm) attrs.perm_kt = { type: 'ints', value: m.kt.perm };
  if (m.v.perm) attrs.perm_v = { type: 'ints', value: m.v.perm };
  if (m.outPerm) attrs.perm_out = { type: 'ints', value: m.outPerm };
  return {
    name: `${softmax.name}__attention`, opType: 'Attention', domain: FUSED_DOMAIN,
    inputs: [m.q.name, m.kt.name, m.v.name, ...(m.mask.additive ? [m.mask.additive] : [])],
    outputs: [m.output], attrs,
  };
}

/** The fused node must infer exactly the type of the value it replaces; anything else keeps the graph. */
function typesCheck(graph: Graph, node: Node, m: AttentionMatch): boolean {
  const inputs = node.inputs.map((name) => graph.values.get(name)?.type ?? m.newConsts.find((c) => c.name === name)?.tensor);
  try {
    const [t] = opFor(node, graph.opset).inferTypes({ node, opset: graph.opset, inputs, consts: node.inputs.map(() => undefined) });
    return !!t && sameShape(t.shape, graph.values.get(m.output)?.type.shape);
  } catch (e) {
    if (e instanceof FlashmemError) return false;
    throw e;
  }
}

function softmaxOnLastAxis(index: GraphIndex, softmax: Node): boolean {
  const rank = shapeOf(index, softmax.inputs[0]!)?.length ?? 0;
  const legacy = index.graph.opset < 13;
  const axis = attrInt(softmax, 'axis', legacy ? 1 : -1);
  return rank >= 2 && (axis === -1 || axis === rank - 1);
}

function matchAttention(index: GraphIndex, graph: Graph, softmax: Node): AttentionMatch | undefined {
  if (index.graph.values.get(softmax.outputs[0]!)?.type.dtype !== 'float32' || !softmaxOnLastAxis(index, softmax)) return undefined;
  const pv = onnxNode(soleReader(index, softmax.outputs[0]!), 'MatMul');
  if (!pv || pv.inputs[0] !== softmax.outputs[0]) return undefined;
  const nodes: Node[] = [softmax, pv];
  const scoreShape = shapeOf(index, softmax.inputs[0]!)!;

  // walk up from the Softmax input: masks (nearest the Softmax) then a scale, then MatMul(Q, Kt)
  const mask: MaskInfo = { causal: false, window: 0 };
  const newConsts: AttentionMatch['newConsts'] = [];
  let scale = 1;
  let scaled = false;
  let current = softmax.inputs[0]!;
  for (let step = 0; step < 4; step++) {
    const producer = index.producedBy.get(current);
    if (!producer || soleReader(index, current) === undefined) return undefined;
    if (isOnnx(producer, 'MatMul')) break;
    if (!sameShape(shapeOf(index, producer.outputs[0]!), scoreShape)) return undefined;
    let next: string | undefined;
    if (isOnnx(producer, 'Where') && !scaled) {
      next = absorbWhere(index, graph, producer, scoreShape, mask, newConsts);
    } else if (isOnnx(producer, 'Add') && !scaled) {
      next = absorbAddMask(index, producer, scoreShape, mask);
    } else if ((isOnnx(producer, 'Mul') || isOnnx(producer, 'Div')) && !scaled) {
      const [a, b] = producer.inputs as [string, string];
      const c = scalarOf(index, b) ?? (producer.opType === 'Mul' ? scalarOf(index, a) : undefined);
      if (c === undefined || c === 0) return undefined;
      scale *= producer.opType === 'Div' ? 1 / c : c;
      next = scalarOf(index, b) !== undefined ? a : b;
      scaled = true;
    }
    if (!next) return undefined;
    nodes.push(producer);
    current = next;
  }
  const qk = onnxNode(index.producedBy.get(current), 'MatMul');
  if (!qk || soleReader(index, current) === undefined) return undefined;
  nodes.push(qk);

  const q = absorbOperand(index, qk.inputs[0]!, nodes, true);
  const kt = absorbOperand(index, qk.inputs[1]!, nodes, true);
  const v = absorbOperand(index, pv.inputs[1]!, nodes, false);
  if (!q || !kt || !v) return undefined;
  scale *= q.scale * kt.scale;

  let output = pv.outputs[0]!;
  let outPerm: number[] | undefined;
  const after = onnxNode(soleReader(index, output), 'Transpose');
  if (after) {
    outPerm = transposePerm(index, after);
    output = after.outputs[0]!;
    nodes.push(after);
  }
  return { nodes, q: q.operand, kt: kt.operand, v: v.operand, scale, mask, outPerm, output, newConsts };
}

function transposePerm(index: GraphIndex, node: Node): number[] {
  const rank = shapeOf(index, node.inputs[0]!)!.length;
  return attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
}

/**
 * Follows scalar Muls (Q and Kt only) and Transposes read only by the pattern up from `name`; the
 * absorbed nodes join `nodes`.
 */
function absorbOperand(index: GraphIndex, name: string, nodes: Node[], scalable: boolean): { operand: Operand; scale: number } | undefined {
  let current = name;
  let perm: number[] | undefined;
  let scale = 1;
  for (let step = 0; step < 4; step++) {
    const producer = index.producedBy.get(current);
    if (!producer || soleReader(index, current) === undefined) break;
    if (isOnnx(producer, 'Transpose')) {
      const p = transposePerm(index, producer);
      // reading transpose(transpose(z, inner), perm): axis i of the result is axis inner[perm[i]] of z
      perm = perm ? perm.map((i) => p[i]!) : p;
      nodes.push(producer);
      current = producer.inputs[0]!;
      continue;
    }
    if (scalable && isOnnx(producer, 'Mul')) {
      const [a, b] = producer.inputs as [string, string];
      const c = scalarOf(index, b) ?? scalarOf(index, a);
      if (c === undefined) break;
      scale *= c;
      nodes.push(producer);
      current = scalarOf(index, b) !== undefined ? a : b;
      continue;
    }
    break;
  }
  if (index.graph.values.get(current)?.type.dtype !== 'float32') return undefined;
  return { operand: { name: current, perm }, scale };
}

/** Where(cond, scores, fill) with constant cond and a very negative scalar fill. */
function absorbWhere(index: GraphIndex, graph: Graph, where: Node, scoreShape: number[], mask: MaskInfo, newConsts: AttentionMatch['newConsts']): string | undefined {
  const [condName, scores, fillName] = where.inputs as [string, string, string];
  const cond = constOf(index, condName);
  const fill = scalarOf(index, fillName);
  if (!cond || fill === undefined || !(fill <= MASKED) || mask.causal || mask.additive) return undefined;
  const keep = (i: number) => cond.data[i] !== 0;
  const band = causalBand(cond.shape, scoreShape, keep);
  if (band) {
    mask.causal = true;
    mask.window = band.window;
    return scores;
  }
  const name = freshName(graph, `${where.name}__mask`);
  const data = new Float32Array(cond.data.length);
  for (let i = 0; i < data.length; i++) data[i] = keep(i) ? 0 : fill;
  newConsts.push({ name, tensor: { dtype: 'float32', shape: [...cond.shape], data } });
  mask.additive = name;
  return scores;
}

/** Add(scores, mask): a constant causal mask becomes attributes, anything else stays additive. */
function absorbAddMask(index: GraphIndex, add: Node, scoreShape: number[], mask: MaskInfo): string | undefined {
  for (const scores of add.inputs) {
    const other = otherInput(add, scores);
    if (!other || other === scores || !sameShape(shapeOf(index, scores), scoreShape)) continue;
    if (index.graph.values.get(other)?.type.dtype !== 'float32') return undefined;
    const c = constOf(index, other);
    const band = c && !mask.causal ? causalBand(c.shape, scoreShape, (i) => c.data[i] === 0, (i) => c.data[i]! <= MASKED) : undefined;
    if (band) {
      mask.causal = true;
      mask.window = band.window;
      return scores;
    }
    if (mask.additive) return undefined;
    mask.additive = other;
    return scores;
  }
  return undefined;
}

/**
 * Whether a mask (read through `keep`, broadcast to the scores) keeps exactly the keys
 * [q + offset - window + 1, q + offset] of query q, offset = keys - queries, the same for every
 * batch entry. Returns the window (0: unbounded). `masked` confirms the dropped entries.
 */
function causalBand(maskShape: readonly number[], scoreShape: readonly number[], keep: (i: number) => boolean, masked: (i: number) => boolean = () => true): { window: number } | undefined {
  const rank = scoreShape.length;
  if (maskShape.length > rank) return undefined;
  const strides = broadcastStrides(maskShape, scoreShape);
  // the mask must not vary over batch dims
  if (strides.slice(0, -2).some((s) => s !== 0)) return undefined;
  const [queries, keys] = scoreShape.slice(-2) as [number, number];
  const [sq, sk] = strides.slice(-2) as [number, number];
  if (queries > 1 && sq === 0) return undefined;
  const offset = keys - queries;
  let window = 0;
  for (let q = 0; q < queries; q++) {
    let first = -1;
    let last = -1;
    for (let k = 0; k < keys; k++) {
      const i = q * sq + k * sk;
      if (keep(i)) {
        if (first < 0) first = k;
        else if (last !== k - 1) return undefined;
        last = k;
      } else if (!masked(i)) {
        return undefined;
      }
    }
    if (last !== q + offset || first < 0) return undefined;
    const seen = last - first + 1;
    if (first > 0) {
      if (window !== 0 && window !== seen) return undefined;
      window = seen;
    }
  }
  // rows whose window reached key 0 must agree with the window found elsewhere
  if (window > 0) {
    for (let q = 0; q < queries; q++) {
      if (q + offset - window >= 0 && keep(q * sq + (q + offset - window) * sk)) return undefined;
    }
  }
  return { window };
}
