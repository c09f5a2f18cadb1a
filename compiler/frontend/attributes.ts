/**
 * AttributeProto -> Attr. Subgraph attributes (If/Loop/Scan bodies) are kept only as a marker;
 * namesReadBySubgraphs gives the outer values the bodies read, so that the node can be ordered
 * after their producers.
 */
import onnxProto from 'onnx-proto';
import { fail, quoteName } from '../errors.js';
import type { Attr, Attrs } from '../ir/types.js';
import { decodeTensor, int64ToNumber, type ExternalDataSource } from './tensor-decode.js';

type AttributeProto = onnxProto.onnx.IAttributeProto;
type GraphProto = onnxProto.onnx.IGraphProto;

const T = onnxProto.onnx.AttributeProto.AttributeType;

const TYPE_NAMES: Record<number, string> = Object.fromEntries(
  Object.entries(T).filter(([, v]) => typeof v === 'number').map(([k, v]) => [v as number, k]),
);

const own = (a: AttributeProto, field: keyof AttributeProto) => Object.prototype.hasOwnProperty.call(a, field) && a[field] != null;
const nonEmpty = (list: unknown[] | null | undefined) => (list?.length ?? 0) > 0;

/**
 * Attributes written before `type` became mandatory (IR version 1-2 exporters) leave it
 * UNDEFINED; the field that carries a value tells the type.
 */
function effectiveType(a: AttributeProto): number {
  if (a.type) return a.type;
  if (own(a, 'f')) return T.FLOAT;
  if (own(a, 'i')) return T.INT;
  if (own(a, 's')) return T.STRING;
  if (own(a, 't')) return T.TENSOR;
  if (own(a, 'g')) return T.GRAPH;
  if (nonEmpty(a.floats)) return T.FLOATS;
  if (nonEmpty(a.ints)) return T.INTS;
  if (nonEmpty(a.strings)) return T.STRINGS;
  if (nonEmpty(a.tensors)) return T.TENSORS;
  if (nonEmpty(a.graphs)) return T.GRAPHS;
  return T.UNDEFINED;
}

const utf8 = new TextDecoder('utf-8');

function convertOne(a: AttributeProto, where: string, external: ExternalDataSource | undefined): Attr {
  const type = effectiveType(a);
  switch (type) {
    case T.FLOAT: return { type: 'float', value: a.f ?? 0 };
    case T.INT: return { type: 'int', value: int64ToNumber(a.i ?? 0) };
    case T.STRING: return { type: 'string', value: utf8.decode(a.s ?? new Uint8Array()) };
    case T.FLOATS: return { type: 'floats', value: Array.from(a.floats ?? [], Number) };
    case T.INTS: return { type: 'ints', value: Array.from(a.ints ?? [], int64ToNumber) };
    case T.STRINGS: return { type: 'strings', value: (a.strings ?? []).map((s) => utf8.decode(s)) };
    case T.TENSOR:
      if (!a.t) fail('FM_ONNX_INVALID', `${where} has type TENSOR but no tensor`);
      return { type: 'tensor', value: decodeTensor(a.t, { label: where, external }) };
    case T.GRAPH: case T.GRAPHS:
      return { type: 'graph' };
    case T.UNDEFINED:
      fail('FM_ONNX_INVALID', `${where} has no type and no value`);
    default:
      fail('FM_UNSUPPORTED_OP', `${where} has type ${TYPE_NAMES[type] ?? type}, which flashmemc does not support ` +
        '(sparse tensors, tensor lists and type protos); convert it to a dense form before compiling');
  }
}

export function convertAttributes(attributes: readonly AttributeProto[], nodeLabel: string, external: ExternalDataSource | undefined): Attrs {
  const attrs: Attrs = {};
  for (const a of attributes) {
    const name = a.name ?? '';
    const where = `attribute ${quoteName(name)} of ${nodeLabel}`;
    if (!name) fail('FM_ONNX_INVALID', `${nodeLabel} has an attribute without a name`);
    if (Object.prototype.hasOwnProperty.call(attrs, name)) fail('FM_ONNX_INVALID', `${nodeLabel} has attribute ${quoteName(name)} twice`);
    attrs[name] = convertOne(a, where, external);
  }
  return attrs;
}

/**
 * Every value name the bodies read (recursively, iteratively so deep nesting cannot overflow the
 * stack). Names defined inside a body may be included too; the caller only keeps those produced
 * in the outer graph, which ONNX's single-assignment rule makes real references.
 */
export function namesReadBySubgraphs(subgraphs: readonly GraphProto[]): Set<string> {
  const names = new Set<string>();
  const pending = [...subgraphs];
  for (let g = pending.pop(); g; g = pending.pop()) {
    for (const n of g.node ?? []) {
      for (const input of n.input ?? []) if (input) names.add(input);
      for (const a of n.attribute ?? []) {
        if (a.g) pending.push(a.g);
        if (a.graphs) pending.push(...a.graphs);
      }
    }
    for (const out of g.output ?? []) if (out.name) names.add(out.name);
  }
  return names;
}
