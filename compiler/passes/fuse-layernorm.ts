/**
 * Fuses the decomposed LayerNorm that exporters emit below opset 17 (torch.onnx TorchScript,
 * tf2onnx) into one LayerNormalization kernel instead of six to nine elementwise and reduction
 * kernels:
 *
 *   mean = ReduceMean(x, trailing axes, keepdims)   d = Sub(x, mean)
 *   var  = ReduceMean(Pow(d, 2) | Mul(d, d))        s = Sqrt(Add(var, eps))
 *   n    = Div(d, s) | Mul(d, Reciprocal(s))        y = [Add(] [Mul(] n, gamma [)], beta [)]
 *
 * Every intermediate must be read only inside the pattern (d by its two uses), so a graph that
 * needs e.g. the mean elsewhere keeps its nodes. The result is ONNX LayerNormalization from
 * opset 17, and the same op in FUSED_DOMAIN below it.
 */
import { attrInt, attrInts } from '../ir/attrs.js';
import { constToInts } from '../ir/tensor.js';
import type { Graph, Node } from '../ir/types.js';
import { FUSED_DOMAIN } from '../ops/domains.js';
import {
  constOf, freshName, indexGraph, isOnnx, onnxNode, otherInput, readers, rewriteNodes, sameShape, scalarOf, shapeOf, soleReader, type GraphIndex,
} from './pattern.js';

interface LayerNormMatch {
  nodes: Node[];
  x: string;
  axis: number;
  epsilon: number;
  gamma?: string;
  beta?: string;
  output: string;
}

export function fuseLayerNorm(graph: Graph): Graph {
  const index = indexGraph(graph);
  const removed = new Set<Node>();
  const replacementAt = new Map<Node, Node>();
  const values = new Map(graph.values);
  const g: Graph = { ...graph, values };
  for (const node of graph.nodes) {
    if (!isOnnx(node, 'ReduceMean') || removed.has(node)) continue;
    const m = matchLayerNorm(index, node);
    if (!m || m.nodes.some((n) => removed.has(n))) continue;
    const normRank = shapeOf(index, m.x)!.length - m.axis;
    let scale = m.gamma && paramOverNormDims(g, m.gamma, normRank);
    const beta = m.beta && paramOverNormDims(g, m.beta, normRank);
    if (!scale) {
      // LayerNormalization requires Scale: ones over the normalised dims
      const shape = shapeOf(index, m.x)!.slice(m.axis);
      scale = freshName(g, `${node.name}__ln_scale`);
      const n = shape.reduce((a, b) => a * b, 1);
      values.set(scale, { name: scale, type: { dtype: 'float32', shape }, data: { dtype: 'float32', shape, data: new Float32Array(n).fill(1) } });
    }
    const fused: Node = {
      name: `${node.name}__layernorm`,
      opType: 'LayerNormalization',
      domain: graph.opset >= 17 ? '' : FUSED_DOMAIN,
      inputs: [m.x, scale, ...(beta ? [beta] : [])],
      outputs: [m.output],
      attrs: { axis: { type: 'int', value: m.axis }, epsilon: { type: 'float', value: m.epsilon } },
    };
    m.nodes.forEach((n) => removed.add(n));
    replacementAt.set(m.nodes[m.nodes.length - 1]!, fused);
  }
  if (removed.size === 0) return graph;
  return { ...g, nodes: rewriteNodes(graph, removed, replacementAt) };
}

/**
 * A gamma/beta constant with leading 1s beyond the normalised rank (e.g. [1, 1, H]) is re-declared
 * without them: LayerNormalization's Scale and B broadcast over the normalised dims only.
 */
function paramOverNormDims(graph: Graph, name: string, normRank: number): string {
  const c = graph.values.get(name)!.data!;
  if (c.shape.length <= normRank) return name;
  const shape = c.shape.slice(c.shape.length - normRank);
  const fresh = freshName(graph, `${name}__ln_param`);
  graph.values.set(fresh, { name: fresh, type: { dtype: c.dtype, shape }, data: { ...c, shape } });
  return fresh;
}

/** Reduced axes of a ReduceMean when they are the trailing axes of a rank-`rank` input with keepdims. */
function trailingAxes(index: GraphIndex, node: Node, rank: number): number | undefined {
  if (attrInt(node, 'keepdims', 1) !== 1) return undefined;
  const raw = node.inputs[1] ? constOf(index, node.inputs[1]) : undefined;
  const axes = raw ? constToInts(raw) : attrInts(node, 'axes');
  if (!axes || axes.length === 0) return undefined;
  const norm = [...new Set(axes.map((a) => (a < 0 ? a + rank : a)))].sort((a, b) => a - b);
  if (norm.length !== axes.length || norm[norm.length - 1] !== rank - 1) return undefined;
  if (norm.some((a, i) => a !== norm[0]! + i)) return undefined;
  return norm[0];
}

function matchLayerNorm(index: GraphIndex, meanNode: Node): LayerNormMatch | undefined {
  const x = meanNode.inputs[0]!;
  const xShape = shapeOf(index, x);
  if (!xShape || index.graph.values.get(x)?.type.dtype !== 'float32') return undefined;
  const axis = trailingAxes(index, meanNode, xShape.length);
  if (axis === undefined) return undefined;
  const mean = meanNode.outputs[0]!;

  const sub = onnxNode(soleReader(index, mean), 'Sub');
  if (!sub || sub.inputs[0] !== x || sub.inputs[1] !== mean) return undefined;
  const d = sub.outputs[0]!;
  const dReaders = readers(index, d);
  if (dReaders.length !== 2 || index.outputs.has(d)) return undefined;

  // the square: Pow(d, 2) or Mul(d, d)
  const square = dReaders.find((n) => (isOnnx(n, 'Pow') && n.inputs[0] === d && scalarOf(index, n.inputs[1]) === 2) ||
    (isOnnx(n, 'Mul') && n.inputs[0] === d && n.inputs[1] === d));
  const divider = dReaders.find((n) => n !== square);
  if (!square || !divider) return undefined;
  const varNode = onnxNode(soleReader(index, square.outputs[0]!), 'ReduceMean');
  if (!varNode || trailingAxes(index, varNode, xShape.length) !== axis) return undefined;
  const addEps = onnxNode(soleReader(index, varNode.outputs[0]!), 'Add');
  if (!addEps) return undefined;
  const epsilon = scalarOf(index, otherInput(addEps, varNode.outputs[0]!));
  if (epsilon === undefined || !(epsilon >= 0)) return undefined;
  const sqrt = onnxNode(soleReader(index, addEps.outputs[0]!), 'Sqrt');
  if (!sqrt) return undefined;

  // d / s, or d * (1 / s)
  const nodes: Node[] = [meanNode, sub, square, varNode, addEps, sqrt];
  let normalized: Node;
  if (isOnnx(divider, 'Div') && divider.inputs[0] === d && divider.inputs[1] === sqrt.outputs[0]) {
    if (soleReader(index, sqrt.outputs[0]!) !== divider) return undefined;
    normalized = divider;
  } else {
    const recip = onnxNode(soleReader(index, sqrt.outputs[0]!), 'Reciprocal');
    if (!recip || !isOnnx(divider, 'Mul') || otherInput(divider, d) !== recip.outputs[0]) return undefined;
    if (soleReader(index, recip.outputs[0]!) !== divider) return undefined;
    nodes.push(recip);
    normalized = divider;
  }
  nodes.push(normalized);

  const affine = matchAffine(index, normalized.outputs[0]!, xShape, axis);
  return { nodes: [...nodes, ...affine.nodes], x, axis, epsilon, gamma: affine.gamma, beta: affine.beta, output: affine.output };
}

/** Optional Mul by a constant gamma then Add of a constant beta, both over the normalised dims only. */
function matchAffine(index: GraphIndex, n: string, xShape: readonly number[], axis: number): { nodes: Node[]; gamma?: string; beta?: string; output: string } {
  const result: { nodes: Node[]; gamma?: string; beta?: string; output: string } = { nodes: [], output: n };
  const param = (candidate: Node | undefined, opType: string, from: string): string | undefined => {
    const node = onnxNode(candidate, opType);
    if (!node) return undefined;
    const other = otherInput(node, from);
    const c = constOf(index, other);
    // the parameter must not broadcast X itself (the output keeps X's shape) nor reach the kept axes
    if (!c || c.dtype !== 'float32' || !sameShape(shapeOf(index, node.outputs[0]!), xShape)) return undefined;
    const lead = c.shape.length - (xShape.length - axis);
    if (c.shape.some((dim, i) => i < lead && dim !== 1)) return undefined;
    return other;
  };
  let next = soleReader(index, n);
  const gamma = param(next, 'Mul', n);
  if (gamma) {
    result.nodes.push(next!);
    result.gamma = gamma;
    result.output = next!.outputs[0]!;
    next = soleReader(index, result.output);
  }
  const beta = param(next, 'Add', result.output);
  if (beta) {
    result.nodes.push(next!);
    result.beta = beta;
    result.output = next!.outputs[0]!;
  }
  return result;
}
