/**
 * Small graph queries shared by the fusion passes: a fused pattern may only swallow a value when
 * nothing outside the pattern reads it (another node or a graph output).
 */
import { consumers, producers } from '../ir/graph.js';
import type { ConstTensor, Graph, Node } from '../ir/types.js';
import { numElements } from '../ir/types.js';

export interface GraphIndex {
  graph: Graph;
  uses: Map<string, Node[]>;
  producedBy: Map<string, Node>;
  outputs: ReadonlySet<string>;
}

export function indexGraph(graph: Graph): GraphIndex {
  return { graph, uses: consumers(graph), producedBy: producers(graph), outputs: new Set(graph.outputs) };
}

/**
 * A node of the default ONNX domain with this op type. (No type predicate: its false branch would
 * narrow a Node to never where the same node is tested for several op types.)
 */
export function isOnnx(node: Node | undefined, opType: string): boolean {
  return !!node && node.domain === '' && node.opType === opType;
}

/** `node` when it is an ONNX node of this op type. */
export function onnxNode(node: Node | undefined, opType: string): Node | undefined {
  return isOnnx(node, opType) ? node : undefined;
}

/** Constant data of a value, if it is an initializer or a folded constant. */
export function constOf(index: GraphIndex, name: string | undefined): ConstTensor | undefined {
  return name ? index.graph.values.get(name)?.data : undefined;
}

/** The single value of a one-element constant. */
export function scalarOf(index: GraphIndex, name: string | undefined): number | undefined {
  const c = constOf(index, name);
  return c && numElements(c.shape) === 1 ? c.data[0] : undefined;
}

/** Nodes reading `name` (each node once, even if it reads the value twice). */
export function readers(index: GraphIndex, name: string): Node[] {
  return [...new Set(index.uses.get(name) ?? [])];
}

/** The only node reading `name`, when the value is not also a graph output. */
export function soleReader(index: GraphIndex, name: string): Node | undefined {
  const r = readers(index, name);
  return r.length === 1 && !index.outputs.has(name) ? r[0] : undefined;
}

/** Whether every reader of `name` is one of `allowed` and it is not a graph output. */
export function readOnlyBy(index: GraphIndex, name: string, allowed: ReadonlySet<Node>): boolean {
  return !index.outputs.has(name) && readers(index, name).every((n) => allowed.has(n));
}

export function shapeOf(index: GraphIndex, name: string): number[] | undefined {
  return index.graph.values.get(name)?.type.shape;
}

export function sameShape(a: readonly number[] | undefined, b: readonly number[] | undefined): boolean {
  return !!a && !!b && a.length === b.length && a.every((d, i) => d === b[i]);
}

/** For a binary node reading `known`, its other input ('' when both inputs are `known`). */
export function otherInput(node: Node, known: string): string | undefined {
  if (node.inputs[0] === known) return node.inputs[1];
  if (node.inputs[1] === known) return node.inputs[0];
  return undefined;
}

/**
 * Rebuilds the node list: `removed` nodes disappear and each replacement node takes the place of
 * the last removed node of its pattern (replacements are keyed by that node), which keeps the
 * list topologically ordered because the pattern's inputs precede all of its nodes.
 */
export function rewriteNodes(graph: Graph, removed: ReadonlySet<Node>, replacementAt: ReadonlyMap<Node, Node>): Node[] {
  return graph.nodes.flatMap((n) => {
    const r = replacementAt.get(n);
    if (r) return [r];
    return removed.has(n) ? [] : [n];
  });
}

/** A fresh value name starting with `base`. */
export function freshName(graph: Graph, base: string): string {
  let name = base;
  for (let i = 1; graph.values.has(name); i++) name = `${base}_${i}`;
  return name;
}
