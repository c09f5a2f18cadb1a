/**
 * Shape inference and constant folding, in one walk over the (topologically sorted) nodes:
 * Reshape targets and Slice bounds usually come from Shape -> Gather -> Concat subgraphs, so
 * shapes downstream are only known once those subgraphs are folded. A node is folded when its
 * op can be evaluated on the host and every present input is constant (or the op needs only
 * input types, like Shape); its outputs become constants and the node disappears.
 */
import { FlashmemError, fail, quoteName } from '../errors.js';
import { valueOf } from '../ir/graph.js';
import type { ConstTensor, Graph, Node, TensorType, Value } from '../ir/types.js';
import { numElements } from '../ir/types.js';
import { opFor } from '../ops/index.js';
import type { OpDef, ShapeContext } from '../ops/op.js';
import { inlineIf, selectIf } from './inline-if.js';
import { startLoop, stepLoop, type LoopSplice, type LoopState } from './unroll-loop.js';

/** Folded constants larger than this stay computed on the GPU instead (e.g. a huge Expand). */
const MAX_FOLDED_ELEMENTS = 1 << 26;
/** Ops whose outputs are weights however large they are (within MAX_ALWAYS_FOLD_BYTES). */
const ALWAYS_FOLD = new Set(['Constant', 'ConstantOfShape']);
/**
 * Host bytes (Float32Array or Float64Array, see HostData) beyond which even an ALWAYS_FOLD output
 * is left to its GPU kernel: a forged ConstantOfShape must not make the compiler allocate
 * gigabytes before any limit check.
 */
const MAX_ALWAYS_FOLD_BYTES = 2 ** 30;
const MAX_ELEMENTS = 2 ** 31;

export function inferShapesAndFold(graph: Graph): Graph {
  const values = new Map(graph.values);
  const kept: Node[] = [];
  const nodes = [...graph.nodes];
  const outerNames = new Set(graph.nodes.flatMap((n) => n.outputs));
  /** the Where nodes selecting the outputs of an If with a run-time condition, and that If's name */
  const selects = new Map<Node, string>();
  /** the step markers of Loops being unrolled */
  const loops = new Map<Node, LoopState>();
  for (let at = 0; at < nodes.length; at++) {
    const node = nodes[at]!;
    if (node.opType === 'If' && node.domain === '') {
      // the branches' nodes take the If's place in the walk: they fold and get shapes next
      const cond = node.inputs[0] ? values.get(node.inputs[0])?.data : undefined;
      const isTaken = (name: string) => values.has(name) || outerNames.has(name);
      const inlined = cond ? inlineIf(node, cond, isTaken) : selectIf(node, isTaken);
      if (!cond) for (const select of (inlined as ReturnType<typeof selectIf>).selects) selects.set(select, node.name);
      for (const v of inlined.values) values.set(v.name, v);
      nodes.splice(at + 1, 0, ...inlined.nodes);
      continue;
    }
    if (node.opType === 'Loop' && node.domain === '') {
      const started = startLoop(node, node.inputs.map((name) => (name ? values.get(name)?.data : undefined)), graph.opset, isTakenIn(values, outerNames));
      spliceLoop(started.splice, started.state, nodes, at, values, loops);
      continue;
    }
    const loop = loops.get(node);
    if (loop) {
      // a step marker of an unrolled Loop: the body's condition has folded by now, or it never will
      spliceLoop(stepLoop(loop, values.get(node.inputs[0]!)?.data, isTakenIn(values, outerNames)), loop, nodes, at, values, loops);
      continue;
    }
    const ifName = selects.get(node);
    if (ifName !== undefined) checkSelect(node, ifName, values);
    const def = opFor(node, graph.opset);
    requireFirstInput(node);
    const ctx = shapeContext({ ...graph, values }, node);
    const folded = tryFold(def, ctx);
    const types = folded ?? inferChecked(def, ctx);
    checkOutputs(node, types);
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const type = types[i];
      if (!type) fail('FM_SHAPE', `node ${quoteName(node.name)} (${node.opType}) has no output ${i}`);
      const data = folded ? (folded[i] as ConstTensor) : undefined;
      values.set(name, { name, type: { dtype: type.dtype, shape: [...type.shape] }, data });
    });
    if (!folded) kept.push(node);
  }
  return { ...graph, values, nodes: kept };
}

const isTakenIn = (values: Map<string, Value>, outer: Set<string>) => (name: string) => values.has(name) || outer.has(name);

/** Puts an unrolled Loop's next nodes after position `at` of the walk, its constants into `values`. */
function spliceLoop(splice: LoopSplice, state: LoopState, nodes: Node[], at: number, values: Map<string, Value>, loops: Map<Node, LoopState>): void {
  for (const v of splice.values) values.set(v.name, v);
  if (splice.marker) loops.set(splice.marker, state);
  nodes.splice(at + 1, 0, ...splice.nodes);
}

/** Both branches of a run-time If must give one shape and dtype, and the condition must be one element. */
function checkSelect(select: Node, ifName: string, values: Map<string, Value>): void {
  const [cond, a, b] = select.inputs.map((name) => values.get(name)?.type);
  const same = a && b && a.dtype === b.dtype && a.shape.length === b.shape.length && a.shape.every((d, i) => d === b.shape[i]);
  if (!cond || numElements(cond.shape) !== 1 || !same) {
    fail('FM_UNSUPPORTED_OP', `node ${quoteName(ifName)} (If): its condition is computed at run time and its branches give ` +
      `${a ? `${a.dtype} [${a.shape}]` : '?'} and ${b ? `${b.dtype} [${b.shape}]` : '?'}; flashmemc runs both branches and selects on the GPU only when they agree in shape and dtype (freeze the inputs the condition depends on with --input-value)`);
  }
}

function shapeContext(graph: Graph, node: Node): ShapeContext {
  const inputs = node.inputs.map((name) => (name ? valueOf(graph, name, node).type : undefined));
  const consts = node.inputs.map((name) => (name ? graph.values.get(name)?.data : undefined));
  return { node, opset: graph.opset, inputs, consts };
}

function tryFold(def: OpDef, ctx: ShapeContext): ConstTensor[] | undefined {
  if (!def.fold) return undefined;
  const allConstant = ctx.node.inputs.every((name, i) => !name || ctx.consts[i] !== undefined);
  if (!allConstant && !def.foldNeedsOnlyTypes) return undefined;
  // sizes are checked before folding allocates anything, for every op
  const types = inferChecked(def, ctx);
  checkOutputs(ctx.node, types);
  const tooBig = ALWAYS_FOLD.has(ctx.node.opType)
    ? types.some((t) => numElements(t.shape) * hostBytesPerElement(t) > MAX_ALWAYS_FOLD_BYTES)
    : types.some((t) => numElements(t.shape) > MAX_FOLDED_ELEMENTS);
  if (tooBig) return undefined;
  const folded = withNodeContext(ctx.node, () => def.fold!(ctx, ctx.consts));
  checkShapes(ctx.node, folded, 'folds to');
  return folded;
}

/** HostData stores float32/float16/bfloat16 as Float32Array and everything else as Float64Array. */
function hostBytesPerElement(t: TensorType): number {
  return t.dtype === 'float32' || t.dtype === 'float16' || t.dtype === 'bfloat16' ? 4 : 8;
}

/** The op's output types, with exceptions and malformed results attributed to the node. */
function inferChecked(def: OpDef, ctx: ShapeContext): TensorType[] {
  const types = withNodeContext(ctx.node, () => def.inferTypes(ctx));
  checkShapes(ctx.node, types, 'infers');
  return types;
}

/**
 * An op rule that returns something other than a list of {dtype, shape} (typically when a
 * required input or attribute is missing and the rule did not check) is reported on the node.
 */
function checkShapes(node: Node, types: unknown, verb: string): asserts types is TensorType[] {
  const bad = !Array.isArray(types)
    ? 'no list of types'
    : types.findIndex((t) => !t || typeof (t as TensorType).dtype !== 'string' || !Array.isArray((t as TensorType).shape));
  if (bad === -1) return;
  const what = typeof bad === 'string' ? bad : `no valid type for output ${bad}`;
  fail('FM_ONNX_INVALID', `node ${quoteName(node.name)} (${node.opType}) ${verb} ${what}; check its inputs (${node.inputs.length} given) and attributes`);
}

function checkOutputs(node: Node, types: TensorType[]): void {
  for (const t of types) {
    if (t.shape.some((d) => !Number.isInteger(d) || d < 0)) {
      fail('FM_SHAPE', `node ${quoteName(node.name)} (${node.opType}) infers an invalid output shape [${t.shape}]`);
    }
    if (numElements(t.shape) > MAX_ELEMENTS) {
      fail('FM_LIMIT', `node ${quoteName(node.name)} (${node.opType}) output [${t.shape}] has more than 2^31 elements`);
    }
  }
}

/** Non-FlashmemError exceptions from op code are bugs or unforeseen input: name the node. */
function withNodeContext<T>(node: Node, fn: () => T): T {
  try {
    return fn();
  } catch (e) {
    if (e instanceof FlashmemError) throw e;
    throw new FlashmemError('FM_ONNX_INVALID', `node ${quoteName(node.name)} (${node.opType}): ${(e as Error).message}`, { cause: e });
  }
}

/** Ops without inputs are sources (Constant); for every other op the first input is required. */
const SOURCE_OPS = new Set(['Constant']);

function requireFirstInput(node: Node): void {
  if (!SOURCE_OPS.has(node.opType) && !node.inputs[0]) {
    fail('FM_ONNX_INVALID', `node ${quoteName(node.name)} (${node.opType}) has no first input; it is required`);
  }
}
