/**
 * Shape inference and constant folding, in one walk over the (topologically sorted) nodes:
 * Reshape targets and Slice bounds usually come from Shape -> Gather -> Concat subgraphs, so
 * shapes downstream are only known once those subgraphs are folded. A node is folded when its
 * op can be evaluated on the host and every present input is constant (or the op needs only
 * input types, like Shape); its outputs become constants and the node disappears.
 */
import { FlashmemError, fail, quoteName } from '../errors.js';
import { valueOf } from '../ir/graph.js';
import type { ConstTensor, Graph, Node, TensorType } from '../ir/types.js';
import { numElements } from '../ir/types.js';
import { opFor } from '../ops/index.js';
import type { OpDef, ShapeContext } from '../ops/op.js';

/** Folded constants larger than this stay computed on the GPU instead (e.g. a huge Expand). */
const MAX_FOLDED_ELEMENTS = 1 << 26;
/** Ops whose outputs are weights however large they are. */
const ALWAYS_FOLD = new Set(['Constant', 'ConstantOfShape']);
const MAX_ELEMENTS = 2 ** 31;

export function inferShapesAndFold(graph: Graph): Graph {
  const values = new Map(graph.values);
  const kept: Node[] = [];
  for (const node of graph.nodes) {
    const def = opFor(node, graph.opset);
    const ctx = shapeContext({ ...graph, values }, node);
    const folded = tryFold(def, ctx);
    const types = folded ?? withNodeContext(node, () => def.inferTypes(ctx));
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

function shapeContext(graph: Graph, node: Node): ShapeContext {
  const inputs = node.inputs.map((name) => (name ? valueOf(graph, name, node).type : undefined));
  const consts = node.inputs.map((name) => (name ? graph.values.get(name)?.data : undefined));
  return { node, opset: graph.opset, inputs, consts };
}

function tryFold(def: OpDef, ctx: ShapeContext): ConstTensor[] | undefined {
  if (!def.fold) return undefined;
  const allConstant = ctx.node.inputs.every((name, i) => !name || ctx.consts[i] !== undefined);
  if (!allConstant && !def.foldNeedsOnlyTypes) return undefined;
  if (!ALWAYS_FOLD.has(ctx.node.opType)) {
    const types = withNodeContext(ctx.node, () => def.inferTypes(ctx));
    if (types.some((t) => numElements(t.shape) > MAX_FOLDED_ELEMENTS)) return undefined;
  }
  return withNodeContext(ctx.node, () => def.fold!(ctx, ctx.consts));
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
