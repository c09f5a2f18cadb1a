/**
 * Folds a unary activation (Relu, Clip, Sigmoid, ...) into the kernel producing its input when
 * that kernel can apply it on store (OpDef.fusesActivation) and nothing else reads the
 * pre-activation value: one kernel and one activation round trip through memory fewer.
 */
import { consumers, producers } from '../ir/graph.js';
import { residualOperand } from '../ops/matmul/geometry.js';
import type { Graph, Node } from '../ir/types.js';
import { clipBoundsAsAttrs, isFusableActivation } from '../ops/activation.js';
import { opFor } from '../ops/index.js';

export function fuseActivations(graph: Graph): Graph {
  const values = new Map(graph.values);
  const uses = consumers(graph);
  const producedBy = producers(graph);
  const removed = new Set<Node>();
  const fused = new Map<Node, Node>();

  for (const act of graph.nodes) {
    if (!isFusableActivation(act, graph.opset)) continue;
    const source = act.inputs[0]!;
    const original = producedBy.get(source);
    if (!original) continue;
    const producer = fused.get(original) ?? original;
    if (producer.fusedActivation || producer.outputs.length !== 1) continue;
    // a fused residual is added after the activation: fusing one now would apply it to the sum
    if (residualOperand(producer, producer.inputs)) continue;
    if (!opFor(producer, graph.opset).fusesActivation) continue;
    if (uses.get(source)?.length !== 1 || graph.outputs.includes(source)) continue;
    if (values.get(source)?.type.dtype !== 'float32') continue;
    const consts = act.inputs.map((name) => (name ? values.get(name)?.data : undefined));
    const attrs = act.opType === 'Clip' ? clipBoundsAsAttrs(act, consts) : act.attrs;
    if (!attrs) continue;

    fused.set(original, { ...producer, outputs: [act.outputs[0]!], fusedActivation: { opType: act.opType, attrs } });
    removed.add(act);
    values.delete(source);
  }
  const nodes = graph.nodes.filter((n) => !removed.has(n)).map((n) => fused.get(n) ?? n);
  return { ...graph, values, nodes };
}
