/**
 * Fuses GELU written out in elementwise ops into one Gelu / QuickGelu node (FUSED_DOMAIN), which
 * the fuse-activations pass can then fold into the MatMul producing its input.
 *
 * Exporters spell GELU many ways: x * 0.5 * (1 + erf(x / sqrt 2)) (torch nn.GELU, BERT, ViT),
 * 0.5 * x * (1 + tanh(sqrt(2/pi) * (x + 0.044715 * x^3))) (GPT-2 gelu_new, with Pow or x*x*x),
 * x * 0.5 * (1 + tanh(x * 0.7978845608 * (1 + 0.044715 * x * x))) (FastGelu), x * sigmoid(1.702 x)
 * (QuickGELU; SiLU with 1). Rather than listing node orders, the pass collects the elementwise
 * subgraph around each Erf / Tanh / Sigmoid that computes a function of one value x with scalar
 * constants only, evaluates it on sample points and compares with the GELU forms. Every value
 * inside the subgraph but its result must be read only inside it.
 */
import type { Graph, Node } from '../ir/types.js';
import { FUSED_DOMAIN } from '../ops/domains.js';
import { erfHost } from '../kernel/math.js';
import { indexGraph, isOnnx, readOnlyBy, rewriteNodes, sameShape, scalarOf, shapeOf, soleReader, type GraphIndex } from './pattern.js';

type Scalar1 = (a: number) => number;
type Scalar2 = (a: number, b: number) => number;

const UNARY: Readonly<Record<string, Scalar1>> = {
  Tanh: Math.tanh, Erf: erfHost, Sigmoid: (a) => 1 / (1 + Math.exp(-a)), Sqrt: Math.sqrt, Neg: (a) => -a, Reciprocal: (a) => 1 / a,
};
const BINARY: Readonly<Record<string, Scalar2>> = {
  Add: (a, b) => a + b, Sub: (a, b) => a - b, Mul: (a, b) => a * b, Div: (a, b) => a / b, Pow: (a, b) => a ** b,
};

const SAMPLES = [-6, -3, -2, -1.3, -0.7, -0.2, 0, 0.15, 0.5, 1, 1.7, 2.5, 4, 7];
/** f32 constants (0.044715, sqrt(2/pi)) are off by ~1e-8; tanh- and erf-GELU differ by up to 2e-4 */
const TOLERANCE = 1e-5;

type GeluForm = { opType: 'Gelu'; approximate: 'none' | 'tanh' } | { opType: 'QuickGelu'; alpha: number };

interface Region {
  /** in graph order */
  nodes: Node[];
  x: string;
}

export function fuseGelu(graph: Graph): Graph {
  const index = indexGraph(graph);
  const removed = new Set<Node>();
  const replacementAt = new Map<Node, Node>();
  for (const anchor of graph.nodes) {
    if (!(isOnnx(anchor, 'Erf') || isOnnx(anchor, 'Tanh') || isOnnx(anchor, 'Sigmoid')) || removed.has(anchor)) continue;
    const match = matchAround(index, anchor);
    if (!match || match.region.nodes.some((n) => removed.has(n))) continue;
    const sink = match.region.nodes[match.region.nodes.length - 1]!;
    const attrs: Node['attrs'] = match.form.opType === 'Gelu'
      ? { approximate: { type: 'string', value: match.form.approximate } }
      : { alpha: { type: 'float', value: match.form.alpha } };
    match.region.nodes.forEach((n) => removed.add(n));
    replacementAt.set(sink, {
      name: `${anchor.name}__gelu`, opType: match.form.opType, domain: FUSED_DOMAIN,
      inputs: [match.region.x], outputs: [sink.outputs[0]!], attrs,
    });
  }
  if (removed.size === 0) return graph;
  return { ...graph, nodes: rewriteNodes(graph, removed, replacementAt) };
}

/** An elementwise node of one of the tables whose constant operands are scalars. */
function eligible(index: GraphIndex, node: Node | undefined): node is Node {
  if (!node || node.domain !== '' || node.outputs.length !== 1) return false;
  if (UNARY[node.opType]) return node.inputs.length === 1;
  if (!BINARY[node.opType] || node.inputs.length !== 2) return false;
  return node.inputs.every((name) => index.graph.values.get(name)?.data === undefined || scalarOf(index, name) !== undefined);
}

/**
 * Eligible ancestors of `value` and the runtime values they start from (leaves). A value that is
 * produced by an ineligible node, or is a graph input, is a leaf.
 */
function upward(index: GraphIndex, value: string, nodes: Set<Node>, leaves: Set<string>): void {
  const producer = index.producedBy.get(value);
  if (!eligible(index, producer)) {
    leaves.add(value);
    return;
  }
  if (nodes.has(producer)) return;
  nodes.add(producer);
  for (const input of producer.inputs) if (scalarOf(index, input) === undefined) upward(index, input, nodes, leaves);
}

function matchAround(index: GraphIndex, anchor: Node): { region: Region; form: GeluForm } | undefined {
  const nodes = new Set<Node>();
  const leaves = new Set<string>();
  upward(index, anchor.outputs[0]!, nodes, leaves);
  if (leaves.size !== 1) return undefined;
  const x = [...leaves][0]!;
  const xType = index.graph.values.get(x)?.type;
  if (xType?.dtype !== 'float32') return undefined;

  let best: { region: Region; form: GeluForm } | undefined;
  let current = anchor.outputs[0]!;
  for (;;) {
    const next = soleReader(index, current);
    if (!eligible(index, next)) break;
    // a side branch (0.5 * x) must also be a function of x alone
    const grown = new Set(nodes);
    const sideLeaves = new Set<string>();
    for (const input of next.inputs) if (scalarOf(index, input) === undefined) upward(index, input, grown, sideLeaves);
    if ([...sideLeaves].some((l) => l !== x)) break;
    grown.add(next);
    nodes.clear();
    grown.forEach((n) => nodes.add(n));
    current = next.outputs[0]!;
    const region: Region = { nodes: index.graph.nodes.filter((n) => nodes.has(n)), x };
    const form = identify(index, region, anchor, current);
    if (form && sameShape(shapeOf(index, current), xType.shape) && closed(index, region, current)) best = { region, form };
  }
  return best;
}

/** Every value computed inside the region but its result is read only inside it. */
function closed(index: GraphIndex, region: Region, output: string): boolean {
  const inside = new Set(region.nodes);
  return region.nodes.every((n) => n.outputs[0] === output || readOnlyBy(index, n.outputs[0]!, inside));
}

/** Values of every region output for one value of x. */
function evaluate(index: GraphIndex, region: Region, x: number): Map<string, number> {
  const vals = new Map<string, number>([[region.x, x]]);
  const valueOf = (name: string) => vals.get(name) ?? scalarOf(index, name)!;
  for (const n of region.nodes) {
    const un = UNARY[n.opType];
    const v = un ? un(valueOf(n.inputs[0]!)) : BINARY[n.opType]!(valueOf(n.inputs[0]!), valueOf(n.inputs[1]!));
    vals.set(n.outputs[0]!, v);
  }
  return vals;
}

function matches(index: GraphIndex, region: Region, output: string, reference: (x: number) => number): boolean {
  return SAMPLES.every((x) => {
    const got = evaluate(index, region, x).get(output)!;
    const want = reference(x);
    return Math.abs(got - want) <= TOLERANCE * (1 + Math.abs(want));
  });
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);

function identify(index: GraphIndex, region: Region, anchor: Node, output: string): GeluForm | undefined {
  if (anchor.opType === 'Erf') {
    return matches(index, region, output, (x) => 0.5 * x * (1 + erfHost(x / Math.SQRT2))) ? { opType: 'Gelu', approximate: 'none' } : undefined;
  }
  if (anchor.opType === 'Tanh') {
    const ref = (x: number) => 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + 0.044715 * x * x * x)));
    return matches(index, region, output, ref) ? { opType: 'Gelu', approximate: 'tanh' } : undefined;
  }
  // x * sigmoid(alpha * x): alpha is what the region feeds the Sigmoid at x = 1
  const alpha = evaluate(index, region, 1).get(anchor.inputs[0]!);
  if (alpha === undefined || !(alpha > 0)) return undefined;
  return matches(index, region, output, (x) => x / (1 + Math.exp(-alpha * x))) ? { opType: 'QuickGelu', alpha: Math.fround(alpha) } : undefined;
}
