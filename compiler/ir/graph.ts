/** Queries over the graph IR used by several passes. */
import { fail, quoteName } from '../errors.js';
import type { Graph, Node, Value } from './types.js';

/** `node "name" (OpType)`, the way every error message names a node */
export function describeNode(node: Node): string {
  return `node ${quoteName(node.name)} (${node.opType})`;
}

export function valueOf(graph: Graph, name: string, node?: Node): Value {
  const v = graph.values.get(name);
  if (!v) {
    const where = node ? ` (input of node ${quoteName(node.name)}, ${node.opType})` : '';
    fail('FM_ONNX_INVALID', `value ${quoteName(name)}${where} has no type: it is produced by no node, input or initializer`);
  }
  return v;
}

/** name -> nodes consuming it */
export function consumers(graph: Graph): Map<string, Node[]> {
  const map = new Map<string, Node[]>();
  for (const node of graph.nodes) {
    for (const input of node.inputs) {
      if (!input) continue;
      const list = map.get(input);
      if (list) list.push(node);
      else map.set(input, [node]);
    }
  }
  return map;
}

/** name -> producing node */
export function producers(graph: Graph): Map<string, Node> {
  const map = new Map<string, Node>();
  for (const node of graph.nodes) for (const out of node.outputs) if (out) map.set(out, node);
  return map;
}

export function isConstant(graph: Graph, name: string): boolean {
  return graph.values.get(name)?.data !== undefined;
}

export function cloneGraph(graph: Graph): Graph {
  return {
    ...graph,
    inputs: [...graph.inputs],
    outputs: [...graph.outputs],
    values: new Map(graph.values),
    nodes: graph.nodes.map((n) => ({ ...n, inputs: [...n.inputs], outputs: [...n.outputs], attrs: { ...n.attrs } })),
  };
}

/**
 * The outer-scope values a control-flow node's bodies read (names a body uses but does not
 * define, through nested bodies too): inputs of the node that its `inputs` do not list.
 */
export function outerReads(node: Node): string[] {
  const reads = new Set<string>();
  for (const body of Object.values(node.subgraphs ?? {})) {
    const own = new Set([...body.inputs, ...body.values.keys(), ...body.nodes.flatMap((n) => n.outputs)]);
    const uses = [...body.outputs, ...body.nodes.flatMap((n) => [...n.inputs, ...outerReads(n)])];
    for (const name of uses) if (name && !own.has(name)) reads.add(name);
  }
  return [...reads];
}
