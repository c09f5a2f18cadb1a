/**
 * Structural checks on the graph's names (before any tensor is decoded, so a broken model fails
 * fast) and a stable topological order: nodes already in order keep their ONNX order, and a
 * node is moved only as far as its producers require.
 */
import { fail, quoteName } from '../errors.js';

export interface NodeRefs {
  /** unique node name (see onnx.ts naming of unnamed nodes) */
  name: string;
  opType: string;
  /** '' marks an omitted optional input or output */
  inputs: readonly string[];
  outputs: readonly string[];
  /** outer-scope values read by subgraph attributes; they order the node but are not checked */
  implicitInputs: Iterable<string>;
}

export interface GraphRefs {
  /** every graph input, including those that are also initializers */
  inputs: readonly string[];
  initializers: readonly string[];
  nodes: readonly NodeRefs[];
  outputs: readonly string[];
}

const nodeLabel = (n: NodeRefs) => `node ${quoteName(n.name)} (${n.opType})`;

type Producer = { kind: 'input' } | { kind: 'initializer' } | { kind: 'node'; index: number };

function describeProducer(p: Producer, nodes: readonly NodeRefs[]): string {
  return p.kind === 'node' ? nodeLabel(nodes[p.index]!) : `a graph ${p.kind}`;
}

function collectProducers(g: GraphRefs): Map<string, Producer> {
  const producers = new Map<string, Producer>();
  const seenInitializers = new Set<string>();
  for (const name of g.initializers) {
    if (!name) fail('FM_ONNX_INVALID', 'the graph has an initializer without a name');
    if (seenInitializers.has(name)) fail('FM_ONNX_INVALID', `initializer ${quoteName(name)} is defined twice`);
    seenInitializers.add(name);
    producers.set(name, { kind: 'initializer' });
  }
  const seenInputs = new Set<string>();
  for (const name of g.inputs) {
    if (!name) fail('FM_ONNX_INVALID', 'the graph has an input without a name');
    if (seenInputs.has(name)) fail('FM_ONNX_INVALID', `graph input ${quoteName(name)} is listed twice`);
    seenInputs.add(name);
    // an input that is also an initializer is a constant (IR < 4 models list every weight as an input)
    if (!producers.has(name)) producers.set(name, { kind: 'input' });
  }
  g.nodes.forEach((node, index) => {
    for (const out of node.outputs) {
      if (!out) continue;
      const earlier = producers.get(out);
      if (earlier) {
        fail('FM_ONNX_INVALID', `value ${quoteName(out)} is produced twice: by ${describeProducer(earlier, g.nodes)} and by ${nodeLabel(node)}; ` +
          'ONNX graphs assign every value once');
      }
      producers.set(out, { kind: 'node', index });
    }
  });
  return producers;
}

function checkReferences(g: GraphRefs, producers: ReadonlyMap<string, Producer>): void {
  for (const node of g.nodes) {
    node.inputs.forEach((input, k) => {
      if (input && !producers.has(input)) {
        fail('FM_ONNX_INVALID', `${nodeLabel(node)} input ${k} reads ${quoteName(input)}, which no node, graph input or initializer produces`);
      }
    });
  }
  const seenOutputs = new Set<string>();
  for (const out of g.outputs) {
    if (!out) fail('FM_ONNX_INVALID', 'the graph has an output without a name');
    if (seenOutputs.has(out)) fail('FM_ONNX_INVALID', `graph output ${quoteName(out)} is listed twice`);
    seenOutputs.add(out);
    if (!producers.has(out)) fail('FM_ONNX_INVALID', `graph output ${quoteName(out)} is not produced by any node, graph input or initializer`);
  }
}

/** For each node, the distinct indices of the nodes it reads from (a self-edge marks a 1-cycle). */
function nodeDependencies(g: GraphRefs, producers: ReadonlyMap<string, Producer>): number[][] {
  return g.nodes.map((node) => {
    const deps = new Set<number>();
    const add = (name: string) => {
      const p = name ? producers.get(name) : undefined;
      if (p?.kind === 'node') deps.add(p.index);
    };
    node.inputs.forEach(add);
    for (const name of node.implicitInputs) add(name);
    return [...deps];
  });
}

/** Binary min-heap of node indices: Kahn's algorithm always emits the earliest ready node. */
function heapPush(heap: number[], v: number): void {
  let i = heap.push(v) - 1;
  while (i > 0) {
    const parent = (i - 1) >> 1;
    if (heap[parent]! <= v) break;
    heap[i] = heap[parent]!;
    i = parent;
  }
  heap[i] = v;
}

function heapPop(heap: number[]): number {
  const top = heap[0]!;
  const last = heap.pop()!;
  if (heap.length > 0) {
    let i = 0;
    for (;;) {
      const l = 2 * i + 1;
      if (l >= heap.length) break;
      const child = l + 1 < heap.length && heap[l + 1]! < heap[l]! ? l + 1 : l;
      if (heap[child]! >= last) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
  }
  return top;
}

/** Walks back along unfinished dependencies until a node repeats: that node lies on a cycle. */
function findCycle(deps: readonly number[][], done: readonly boolean[], start: number): number[] {
  const visitedAt = new Map<number, number>();
  const path: number[] = [];
  let current = start;
  while (!visitedAt.has(current)) {
    visitedAt.set(current, path.length);
    path.push(current);
    current = deps[current]!.find((d) => !done[d])!;
  }
  return path.slice(visitedAt.get(current)!).reverse();
}

function topologicalOrder(g: GraphRefs, deps: readonly number[][]): number[] {
  const n = g.nodes.length;
  const consumers: number[][] = Array.from({ length: n }, () => []);
  const pending = deps.map((d) => d.length);
  deps.forEach((d, i) => d.forEach((p) => consumers[p]!.push(i)));
  const ready: number[] = [];
  pending.forEach((count, i) => { if (count === 0) heapPush(ready, i); });
  const order: number[] = [];
  const done = new Array<boolean>(n).fill(false);
  while (ready.length > 0) {
    const i = heapPop(ready);
    order.push(i);
    done[i] = true;
    for (const c of consumers[i]!) if (--pending[c]! === 0) heapPush(ready, c);
  }
  if (order.length < n) {
    const cycle = findCycle(deps, done, done.indexOf(false));
    const shown = cycle.slice(0, 8).map((i) => quoteName(g.nodes[i]!.name));
    const path = [...shown, cycle.length > 8 ? '…' : shown[0]!].join(' -> ');
    fail('FM_ONNX_INVALID', `${nodeLabel(g.nodes[cycle[0]!]!)} is part of a cycle (${path}); ONNX graphs must be acyclic`);
  }
  return order;
}

/** Validates names and references, and returns node indices in a stable topological order. */
export function validateAndOrder(g: GraphRefs): number[] {
  const producers = collectProducers(g);
  checkReferences(g, producers);
  return topologicalOrder(g, nodeDependencies(g, producers));
}
