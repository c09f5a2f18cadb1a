/**
 * Removes nodes whose outputs never reach a graph output, and values nothing refers to (unused
 * initializers would otherwise be packed into weight shards and uploaded).
 */
import { outerReads, producers } from '../ir/graph.js';
import type { Graph, Node } from '../ir/types.js';

export function eliminateDeadNodes(graph: Graph): Graph {
  const producedBy = producers(graph);
  const live = new Set<Node>();
  const liveValues = new Set<string>([...graph.inputs, ...graph.outputs]);
  const stack = [...graph.outputs];
  while (stack.length > 0) {
    const node = producedBy.get(stack.pop()!);
    if (!node || live.has(node)) continue;
    live.add(node);
    // a control-flow node also reads the outer values its bodies use
    for (const input of [...node.inputs, ...outerReads(node)]) {
      if (!input) continue;
      liveValues.add(input);
      stack.push(input);
    }
  }
  const nodes = graph.nodes.filter((n) => live.has(n)).map((n) => dropUnusedOptionalOutputs(n, liveValues));
  for (const n of nodes) for (const out of n.outputs) if (out) liveValues.add(out);
  const values = new Map([...graph.values].filter(([name]) => liveValues.has(name)));
  return { ...graph, nodes, values };
}

/** Ops whose outputs after the first are optional extras (masks, indices, training statistics). */
const OPTIONAL_EXTRA_OUTPUTS = new Set(['Dropout', 'MaxPool', 'BatchNormalization', 'LayerNormalization']);

/** Unused optional outputs become '' (omitted), so ops need not produce what nobody reads. */
function dropUnusedOptionalOutputs(node: Node, liveValues: ReadonlySet<string>): Node {
  if (!OPTIONAL_EXTRA_OUTPUTS.has(node.opType)) return node;
  const outputs = node.outputs.map((name, i) => (i > 0 && !liveValues.has(name) ? '' : name));
  while (outputs.length > 1 && outputs[outputs.length - 1] === '') outputs.pop();
  return { ...node, outputs };
}
