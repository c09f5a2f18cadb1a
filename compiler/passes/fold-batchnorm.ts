/**
 * Folds an inference BatchNormalization into the Conv that feeds it: y = scale*(conv(x)-mean)/
 * sqrt(var+eps)+bias is a Conv with per-output-channel rescaled weights and a new bias. Saves a
 * full pass over the activation and, for streaming, the BN parameters' loads.
 */
import { attrFloat, attrInt } from '../ir/attrs.js';
import { consumers, producers } from '../ir/graph.js';
import type { Graph, Node } from '../ir/types.js';
import { foldBatchNormIntoConv } from '../ops/normalization.js';

export function foldBatchNorm(graph: Graph): Graph {
  const values = new Map(graph.values);
  const uses = consumers(graph);
  const producedBy = producers(graph);
  const removed = new Set<Node>();
  const replaced = new Map<Node, Node>();
  const constData = (name: string | undefined) => (name ? values.get(name)?.data : undefined);

  for (const bn of graph.nodes) {
    if (bn.opType !== 'BatchNormalization' || bn.outputs.filter(Boolean).length !== 1) continue;
    if (attrInt(bn, 'training_mode', 0) !== 0) continue;
    const conv = producedBy.get(bn.inputs[0]!);
    if (!conv || conv.opType !== 'Conv' || conv.fusedActivation || replaced.has(conv)) continue;
    const convOut = conv.outputs[0]!;
    if (uses.get(convOut)?.length !== 1 || graph.outputs.includes(convOut)) continue;
    const [scale, bias, mean, variance] = bn.inputs.slice(1, 5).map(constData);
    const weight = constData(conv.inputs[1]);
    const convBias = conv.inputs[2] ? constData(conv.inputs[2]) : undefined;
    if (!scale || !bias || !mean || !variance || !weight || (conv.inputs[2] && !convBias)) continue;

    const folded = foldBatchNormIntoConv(weight, convBias, { scale, bias, mean, var: variance, epsilon: attrFloat(bn, 'epsilon', 1e-5) });
    const weightName = uniqueName(values, `${conv.inputs[1]}__bnfolded`);
    const biasName = uniqueName(values, `${conv.name}__bnbias`);
    values.set(weightName, { name: weightName, type: { dtype: folded.weight.dtype, shape: folded.weight.shape }, data: folded.weight });
    values.set(biasName, { name: biasName, type: { dtype: folded.bias.dtype, shape: folded.bias.shape }, data: folded.bias });
    replaced.set(conv, { ...conv, inputs: [conv.inputs[0]!, weightName, biasName], outputs: [bn.outputs[0]!] });
    removed.add(bn);
    values.delete(convOut);
  }
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => replaced.get(n) ?? n);
  return { ...graph, values, nodes };
}

export function uniqueName(values: ReadonlyMap<string, unknown>, base: string): string {
  let name = base;
  for (let i = 1; values.has(name); i++) name = `${base}_${i}`;
  return name;
}
