/**
 * Folds the bias Add that follows a MatMul into it (Linear layers: y = x W + b): a MatMul with a
 * constant 2-D B whose only reader is an Add of a constant holding one value per output column
 * becomes a MatMulBias node (FUSED_DOMAIN) whose kernels add the bias on store, as Gemm's add C.
 * One dispatch and one round trip of the activation through memory fewer per Linear layer
 * (BERT-base had 98 Add dispatches of its 213). The fuse-activations pass then folds a following
 * Relu/Gelu into the same kernels. Weights too large for one binding are left to the
 * split-large-weights pass, which splits MatMul and Gemm only.
 */
import { consumers, producers } from '../ir/graph.js';
import { numElements, type Graph, type Node } from '../ir/types.js';
import { FUSED_DOMAIN } from '../ops/domains.js';
import { MATMUL_BIAS } from '../ops/matmul/geometry.js';

const isOnnxOp = (node: Node, opType: string) => node.opType === opType && (node.domain === '' || node.domain === 'ai.onnx');

/** One value per column of an output [..., N]: shape [N], [1, N], [1, 1, N], ... */
function isColumnBias(shape: readonly number[], n: number, outRank: number): boolean {
  return shape.length >= 1 && shape.length <= outRank && shape[shape.length - 1] === n && numElements(shape) === n;
}

export function fuseMatMulBias(graph: Graph, maxWeightBytes: number): Graph {
  const values = new Map(graph.values);
  const uses = consumers(graph);
  const producedBy = producers(graph);
  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();
  for (const add of graph.nodes) {
    if (!isOnnxOp(add, 'Add') || add.inputs.length !== 2) continue;
    for (const side of [0, 1]) {
      const [product, bias] = [add.inputs[side]!, add.inputs[1 - side]!];
      const matmul = producedBy.get(product);
      if (!matmul || !isOnnxOp(matmul, 'MatMul') || fused.has(matmul) || matmul.fusedActivation) continue;
      if (uses.get(product)?.length !== 1 || graph.outputs.includes(product)) continue;
      const [out, weight, biasValue] = [values.get(product), values.get(matmul.inputs[1]!), values.get(bias)];
      if (!out || !weight?.data || !biasValue?.data || weight.type.shape.length !== 2) continue;
      if (out.type.dtype !== 'float32' || biasValue.type.dtype !== 'float32' || weight.type.dtype !== 'float32') continue;
      if (numElements(weight.type.shape) * 4 > maxWeightBytes) continue;
      const n = weight.type.shape[1]!;
      if (!isColumnBias(biasValue.type.shape, n, out.type.shape.length)) continue;
      fused.set(matmul, { ...matmul, opType: MATMUL_BIAS, domain: FUSED_DOMAIN, inputs: [matmul.inputs[0]!, matmul.inputs[1]!, bias], outputs: [add.outputs[0]!] });
      removed.add(add);
      values.delete(product);
      break;
    }
  }
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => fused.get(n) ?? n);
  return { ...graph, values, nodes };
}
