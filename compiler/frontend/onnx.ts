/**
 * The ONNX frontend: ModelProto bytes -> graph IR. The result holds the graph inputs (with fully
 * static types) and the initializers as values; node outputs are typed later by shape inference.
 *
 * Order of work: decode, model-level checks (graph, opset), structural checks on names only,
 * then tensors, so that a broken model fails before any weight is decoded.
 */
import * as path from 'node:path';
import type onnxProto from 'onnx-proto';
import { fail, quoteName } from '../errors.js';
import type { ConstTensor, Graph, Node, Subgraph, Value } from '../ir/types.js';
import { convertAttributes, namesReadBySubgraphs } from './attributes.js';
import { externalDataSource, readProtobufFile } from './external-data.js';
import { resolveInputTypes } from './graph-inputs.js';
import { decodeModel, decodeTensorProto } from './parse.js';
import { decodeTensor, int64ToNumber, type ExternalDataSource } from './tensor-decode.js';
import { validateAndOrder, type NodeRefs } from './validate.js';
import { FUSED_DOMAIN } from '../ops/domains.js';
import { makeConst } from '../ir/tensor.js';

type GraphProto = onnxProto.onnx.IGraphProto;
type NodeProto = onnxProto.onnx.INodeProto;
type OperatorSetIdProto = onnxProto.onnx.IOperatorSetIdProto;

export interface ImportOptions {
  /** fixes symbolic/unknown input dims: input name -> full shape */
  inputShapes?: Record<string, number[]>;
  /**
   * like inputShapes, but only for the inputs of those names this model has (a multi-model
   * compile's unqualified --input-shape applies to every model with that input); inputShapes wins
   */
  sharedInputShapes?: Record<string, number[]>;
  /** folder that external data must resolve inside; importOnnxFile defaults it to the model's folder */
  baseDir?: string;
  /**
   * inputs frozen to constants (`--input-value`): each becomes an initializer of the input's
   * dtype, so the passes fold what depends on it. `shape` defaults to the declared rank filled
   * with 1s for one value, or [n] for n values of a rank-1 input.
   */
  inputValues?: Record<string, FrozenInput>;
}

export interface FrozenInput {
  shape?: number[];
  values: ArrayLike<number>;
}

/** Default-domain opsets flashmemc knows the semantics of. */
export const MIN_OPSET = 1;
export const MAX_OPSET = 23;

export function importOnnxFile(file: string, options: ImportOptions = {}): Graph {
  const bytes = readProtobufFile(file, 'model file');
  const baseDir = options.baseDir ?? path.dirname(path.resolve(file));
  return importModel(bytes, { ...options, baseDir }, `model file ${quoteName(file)}`);
}

export function importOnnx(bytes: Uint8Array, options: ImportOptions = {}): Graph {
  return importModel(bytes, options, 'the in-memory model');
}

/**
 * A serialized TensorProto, such as an ONNX test-data `input_0.pb`; external data resolves in
 * the file's folder.
 */
export function readTensorFile(file: string): ConstTensor {
  const proto = decodeTensorProto(readProtobufFile(file, 'tensor file'), `tensor file ${quoteName(file)}`);
  return decodeTensor(proto, { label: `the tensor in ${quoteName(file)}`, external: externalDataSource(path.dirname(path.resolve(file))) });
}

function importModel(bytes: Uint8Array, options: ImportOptions, source: string): Graph {
  const model = decodeModel(bytes, source);
  if (!model.graph) fail('FM_ONNX_INVALID', `${source} has no graph`);
  const opset = defaultOpset(model.opsetImport ?? [], source);
  return convertGraph(model.graph, opset, options);
}

function defaultOpset(imports: readonly OperatorSetIdProto[], source: string): number {
  const defaults = imports.filter((o) => !o.domain || o.domain === 'ai.onnx');
  const versions = [...new Set(defaults.map((o) => int64ToNumber(o.version)))];
  if (versions.length === 0) {
    const listed = imports.map((o) => `${quoteName(o.domain ?? '')} v${int64ToNumber(o.version)}`).join(', ');
    fail('FM_ONNX_INVALID', `${source} imports no opset of the default ONNX domain (opset_import lists ${listed || 'nothing'})`);
  }
  if (versions.length > 1) fail('FM_ONNX_INVALID', `${source} imports the default ONNX domain at several versions (${versions.join(', ')})`);
  const version = versions[0]!;
  if (!(version >= MIN_OPSET && version <= MAX_OPSET)) {
    fail('FM_UNSUPPORTED_OP', `${source} uses default-domain opset ${version}; flashmemc supports opsets ${MIN_OPSET} to ${MAX_OPSET} ` +
      '(convert the model with onnx.version_converter)');
  }
  return version;
}

/**
 * Unique node names: a model's own names are kept (later duplicates get a suffix) and unnamed
 * nodes become `<OpType>_<index>`, avoiding every name the model already uses.
 */
function assignNodeNames(nodes: readonly NodeProto[]): string[] {
  const taken = new Set(nodes.map((n) => n.name).filter((n): n is string => !!n));
  const assigned = new Set<string>();
  // next suffix to try per base name, so that many duplicates stay linear
  const nextSuffix = new Map<string, number>();
  return nodes.map((n, index) => {
    const base = n.name || `${n.opType || 'Node'}_${index}`;
    let name = base;
    let k = nextSuffix.get(base) ?? 1;
    while (assigned.has(name) || (name !== n.name && taken.has(name))) name = `${base}_${k++}`;
    nextSuffix.set(base, k);
    assigned.add(name);
    return name;
  });
}

function nodeRefs(nodes: readonly NodeProto[], names: readonly string[]): NodeRefs[] {
  return nodes.map((n, i) => {
    if (!n.opType) fail('FM_ONNX_INVALID', `node ${quoteName(names[i]!)} has no op_type`);
    const subgraphs = (n.attribute ?? []).flatMap((a) => [...(a.g ? [a.g] : []), ...(a.graphs ?? [])]);
    return {
      name: names[i]!,
      opType: n.opType,
      inputs: n.input ?? [],
      outputs: n.output ?? [],
      implicitInputs: subgraphs.length ? namesReadBySubgraphs(subgraphs) : [],
    };
  });
}

function checkNoSparseInitializers(g: GraphProto): void {
  const sparse = g.sparseInitializer ?? [];
  if (sparse.length > 0) {
    const name = sparse[0]!.values?.name ?? '';
    fail('FM_UNSUPPORTED_OP', `sparse initializer ${quoteName(name)}: sparse initializers are not supported; store the weights densely`);
  }
}

function convertGraph(g: GraphProto, opset: number, options: ImportOptions): Graph {
  checkNoSparseInitializers(g);
  const protoNodes = g.node ?? [];
  const names = assignNodeNames(protoNodes);
  const refs = nodeRefs(protoNodes, names);
  const initializerProtos = g.initializer ?? [];
  const inputInfos = g.input ?? [];
  const outputs = (g.output ?? []).map((o) => o.name ?? '');
  const order = validateAndOrder({
    inputs: inputInfos.map((i) => i.name ?? ''),
    initializers: initializerProtos.map((t) => t.name ?? ''),
    nodes: refs,
    outputs,
  });

  // input types first: a missing --input-shape should not wait for gigabytes of weights to decode
  const initializerNames = new Set(initializerProtos.map((t) => t.name!));
  const runtimeInputs = inputInfos.filter((i) => !initializerNames.has(i.name!));
  const shared = Object.entries(options.sharedInputShapes ?? {}).filter(([name]) => runtimeInputs.some((i) => i.name === name));
  const frozen = options.inputValues ?? {};
  const frozenShapes = Object.fromEntries(Object.entries(frozen).map(([name, value]) => [name, frozenShape(runtimeInputs, name, value)]));
  const inputTypes = resolveInputTypes(runtimeInputs, { ...Object.fromEntries(shared), ...options.inputShapes, ...frozenShapes });

  const external = options.baseDir === undefined ? undefined : externalDataSource(options.baseDir);
  const values = new Map<string, Value>();
  runtimeInputs.forEach((info, k) => {
    const name = info.name!;
    const value = Object.prototype.hasOwnProperty.call(frozen, name) ? frozen[name] : undefined;
    values.set(name, { name, type: inputTypes[k]!, ...(value ? { data: frozenData(name, inputTypes[k]!, value) } : {}) });
  });
  for (const t of initializerProtos) {
    const data = decodeTensor(t, { external });
    values.set(t.name!, { name: t.name!, type: { dtype: data.dtype, shape: data.shape }, data });
  }

  return {
    name: g.name ?? '',
    opset,
    inputs: runtimeInputs.map((i) => i.name!).filter((name) => !Object.prototype.hasOwnProperty.call(frozen, name)),
    outputs,
    values,
    nodes: order.map((i) => convertNode(protoNodes[i]!, refs[i]!, external)),
  };
}

/** The shape a frozen input's values take (checked against the declared shape by resolveInputTypes). */
function frozenShape(inputs: readonly onnxProto.onnx.IValueInfoProto[], name: string, value: FrozenInput): number[] {
  if (value.shape) return value.shape;
  const info = inputs.find((i) => i.name === name);
  if (!info) fail('FM_BAD_ARGUMENT', `--input-value names ${quoteName(name)}, which is not a model input; the inputs are ${inputs.map((i) => quoteName(i.name ?? '')).join(', ') || '(none)'}`);
  const rank = info.type?.tensorType?.shape?.dim?.length ?? 0;
  if (value.values.length === 1) return new Array<number>(rank).fill(1);
  if (rank === 1) return [value.values.length];
  fail('FM_BAD_ARGUMENT', `--input-value ${quoteName(name)}: ${value.values.length} values for an input of rank ${rank}; give a .npy file with its shape`);
}

function frozenData(name: string, type: { dtype: ConstTensor['dtype']; shape: number[] }, value: FrozenInput): ConstTensor {
  const count = type.shape.reduce((n, d) => n * d, 1);
  if (value.values.length !== count) {
    fail('FM_BAD_ARGUMENT', `--input-value ${quoteName(name)} has ${value.values.length} values; its shape [${type.shape.join(', ')}] holds ${count}`);
  }
  return makeConst(type.dtype, type.shape, value.values);
}

/** Control-flow ops whose bodies are converted (infer-shapes inlines them), by their graph attributes. */
const CONTROL_FLOW_BODIES: Record<string, readonly string[]> = { If: ['then_branch', 'else_branch'], Loop: ['body'] };

/** Bodies nest (an If inside a branch); deeper than this is refused rather than recursed into. */
const MAX_BODY_DEPTH = 32;

function convertBodies(n: NodeProto, label: string, external: ExternalDataSource | undefined, depth: number): Record<string, Subgraph> {
  if (depth >= MAX_BODY_DEPTH) fail('FM_UNSUPPORTED_OP', `${label}: control flow nested more than ${MAX_BODY_DEPTH} deep`);
  const bodies: Record<string, Subgraph> = {};
  for (const a of n.attribute ?? []) {
    if (a.name && CONTROL_FLOW_BODIES[n.opType!]!.includes(a.name) && a.g) bodies[a.name] = convertSubgraph(a.g, external, depth + 1);
  }
  return bodies;
}

/** A body's nodes (names unique within it; the inliner prefixes them), initializers, inputs and outputs. */
function convertSubgraph(g: GraphProto, external: ExternalDataSource | undefined, depth: number): Subgraph {
  checkNoSparseInitializers(g);
  const protoNodes = g.node ?? [];
  const refs = nodeRefs(protoNodes, assignNodeNames(protoNodes));
  const values = new Map<string, Value>();
  for (const t of g.initializer ?? []) {
    const data = decodeTensor(t, { external });
    values.set(t.name!, { name: t.name!, type: { dtype: data.dtype, shape: data.shape }, data });
  }
  return {
    inputs: (g.input ?? []).map((i) => i.name ?? ''),
    outputs: (g.output ?? []).map((o) => o.name ?? ''),
    values,
    nodes: protoNodes.map((node, i) => convertNode(node, refs[i]!, external, depth)),
  };
}

function convertNode(n: NodeProto, refs: NodeRefs, external: ExternalDataSource | undefined, depth = 0): Node {
  const label = `node ${quoteName(refs.name)} (${refs.opType})`;
  const domain = n.domain === 'ai.onnx' ? '' : (n.domain ?? '');
  // the fused ops trust the passes that build them: a model file may not name them
  if (domain === FUSED_DOMAIN) fail('FM_UNSUPPORTED_OP', `${label}: domain ${quoteName(domain)} is reserved for flashmemc's fused kernels`);
  const subgraphs = domain === '' && CONTROL_FLOW_BODIES[refs.opType] ? convertBodies(n, label, external, depth) : undefined;
  return {
    name: refs.name,
    opType: refs.opType,
    domain,
    inputs: [...refs.inputs],
    outputs: [...refs.outputs],
    attrs: convertAttributes(n.attribute ?? [], label, external),
    ...(subgraphs ? { subgraphs } : {}),
  };
}
