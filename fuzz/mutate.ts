/**
 * The structured mutator. Two levels:
 *  - bytes: truncation, bit flips, byte overwrites, chunk duplication/deletion/insertion, and
 *    corruption of protobuf length prefixes (found by walking the wire format);
 *  - structure: the model decoded with onnx-proto, mutated (dims, dtypes, op types, domains,
 *    opsets, names, edges, attributes, initializer data, external data and the files around the
 *    model) and re-encoded.
 * Every mutation is deterministic given the Rng, and returns a short description for the log.
 */
import onnxProto from 'onnx-proto';
import protobuf from 'protobufjs';
import { supportedOps } from '../compiler/ops/index.js';
import type { AuxFile, FuzzInput } from './exec.js';
import { OUTSIDE_DIR, OUTSIDE_SECRET } from './exec.js';
import { Mulberry32 } from '../fixtures/random.js';

const { onnx } = onnxProto;
type ModelProto = onnxProto.onnx.ModelProto;
type IGraphProto = onnxProto.onnx.IGraphProto;
type INodeProto = onnxProto.onnx.INodeProto;
type ITensorProto = onnxProto.onnx.ITensorProto;
type IAttributeProto = onnxProto.onnx.IAttributeProto;
type IValueInfoProto = onnxProto.onnx.IValueInfoProto;

const LongCtor = protobuf.util.Long as unknown as { fromString(v: string, unsigned?: boolean): protobuf.Long };
const I64_MAX = LongCtor.fromString('9223372036854775807');
const I64_MIN = LongCtor.fromString('-9223372036854775808');
const AT = onnx.AttributeProto.AttributeType;

/** Models bigger than this after a mutation are not run (memory stays bounded). */
const MAX_MUTANT_BYTES = 16 * 1024 * 1024;

// ---------------------------------------------------------------------------------------------
// Randomness

/** mulberry32 with the draws the mutator needs. */
export class Rng extends Mulberry32 {
  /** integer in [0, n) */
  int(n: number): number {
    return Math.floor(this.next() * n);
  }
  range(lo: number, hi: number): number {
    return lo + this.int(hi - lo + 1);
  }
  chance(p: number): boolean {
    return this.next() < p;
  }
  pick<T>(list: readonly T[]): T {
    return list[this.int(list.length)]!;
  }
  weighted<T>(items: readonly (readonly [number, T])[]): T {
    const total = items.reduce((s, [w]) => s + w, 0);
    let r = this.next() * total;
    for (const [w, v] of items) {
      r -= w;
      if (r < 0) return v;
    }
    return items[items.length - 1]![1];
  }
}

// ---------------------------------------------------------------------------------------------
// Interesting values

const INTERESTING_INTS = [
  0, 1, -1, 2, -2, 3, 4, 5, 7, 8, 16, 255, 256, 1023, 4096, 65535, 65536, 1e6,
  2 ** 31 - 1, 2 ** 31, -(2 ** 31), 2 ** 32, 2 ** 40, 2 ** 53, -(2 ** 53),
];
const INTERESTING_FLOATS = [0, -0, 1, -1, 0.5, 1e-45, 1e-7, 3.4e38, -3.4e38, 1e300, Number.NaN, Number.POSITIVE_INFINITY, Number.NEGATIVE_INFINITY];
const INTERESTING_DIMS = [0, 1, 2, 3, -1, -2, 65536, 2 ** 31, 2 ** 32, 2 ** 40, 2 ** 53, 1e6];
const DTYPE_CODES = [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17, 21, 23, 24, 99, -1];
const COMMON_DTYPES = [1, 7, 6, 9, 10, 11, 2, 3, 16, 12];

function interestingInt(rng: Rng): number | protobuf.Long {
  if (rng.chance(0.08)) return rng.pick([I64_MAX, I64_MIN]);
  return rng.chance(0.6) ? rng.pick(INTERESTING_INTS) : rng.range(-4, 8);
}

function interestingDim(rng: Rng): number | protobuf.Long {
  if (rng.chance(0.08)) return rng.pick([I64_MAX, I64_MIN]);
  return rng.pick(INTERESTING_DIMS);
}

const ATTR_NAMES = [
  'axis', 'axes', 'kernel_shape', 'strides', 'pads', 'dilations', 'group', 'perm', 'keepdims', 'epsilon', 'alpha', 'beta',
  'gamma', 'transA', 'transB', 'mode', 'value', 'to', 'split', 'starts', 'ends', 'shape', 'allowzero', 'auto_pad', 'ceil_mode',
  'count_include_pad', 'storage_order', 'min', 'max', 'blocksize', 'coordinate_transformation_mode', 'nearest_mode',
  'cubic_coeff_a', 'exclude_outside', 'output_padding', 'output_shape', 'num_outputs', 'noop_with_empty_axes',
  'select_last_index', 'scales', 'sizes', 'size', 'bias', 'lambd', 'exclusive', 'reverse', 'fmod', 'broadcast',
  'detect_negative', 'detect_positive', 'training_mode', 'spatial', 'approximate', 'antialias', 'keep_aspect_ratio_policy',
  'momentum', 'is_test', 'consumed_inputs', 'saturate', 'then_branch', 'body', 'value_float', 'value_ints', 'value_floats',
  'value_int', 'value_string', 'sparse_value',
];

/** The attributes each op reads, so that attribute mutations mostly hit code that looks at them. */
const POOL_ATTRS = ['kernel_shape', 'strides', 'pads', 'dilations', 'ceil_mode', 'count_include_pad', 'storage_order', 'auto_pad'];
const OP_ATTRS: Record<string, readonly string[]> = {
  Conv: ['kernel_shape', 'strides', 'pads', 'dilations', 'group', 'auto_pad'],
  ConvTranspose: ['kernel_shape', 'strides', 'pads', 'dilations', 'group', 'auto_pad', 'output_padding', 'output_shape'],
  MaxPool: POOL_ATTRS, AveragePool: POOL_ATTRS, LpPool: POOL_ATTRS,
  Gemm: ['alpha', 'beta', 'transA', 'transB'],
  Transpose: ['perm'],
  Softmax: ['axis'], LogSoftmax: ['axis'], Concat: ['axis'], Gather: ['axis'], GatherElements: ['axis'], Flatten: ['axis'],
  Split: ['axis', 'split', 'num_outputs'], CumSum: ['exclusive', 'reverse'],
  ArgMax: ['axis', 'keepdims', 'select_last_index'], ArgMin: ['axis', 'keepdims', 'select_last_index'],
  ReduceMean: ['axes', 'keepdims', 'noop_with_empty_axes'], ReduceSum: ['axes', 'keepdims', 'noop_with_empty_axes'],
  ReduceMax: ['axes', 'keepdims'], ReduceMin: ['axes', 'keepdims'], ReduceProd: ['axes', 'keepdims'], ReduceL2: ['axes', 'keepdims'],
  Squeeze: ['axes'], Unsqueeze: ['axes'], Slice: ['starts', 'ends', 'axes'],
  Pad: ['pads', 'mode', 'value', 'paddings'],
  Resize: ['mode', 'coordinate_transformation_mode', 'nearest_mode', 'cubic_coeff_a', 'exclude_outside', 'antialias', 'keep_aspect_ratio_policy', 'axes'],
  Upsample: ['mode', 'scales'],
  DepthToSpace: ['blocksize', 'mode'], SpaceToDepth: ['blocksize'],
  Cast: ['to', 'saturate'], Clip: ['min', 'max'],
  Elu: ['alpha'], LeakyRelu: ['alpha'], Selu: ['alpha', 'gamma'], HardSigmoid: ['alpha', 'beta'],
  LRN: ['size', 'alpha', 'beta', 'bias'],
  BatchNormalization: ['epsilon', 'momentum', 'training_mode', 'spatial', 'is_test', 'consumed_inputs'],
  InstanceNormalization: ['epsilon'],
  Reshape: ['allowzero', 'shape'], ConstantOfShape: ['value'], Constant: ['value', 'value_float', 'value_floats', 'value_int', 'value_ints', 'value_string', 'sparse_value'],
  Shrink: ['lambd', 'bias'], Gelu: ['approximate'], Mod: ['fmod'], IsInf: ['detect_negative', 'detect_positive'],
  Add: ['broadcast', 'axis'], Mul: ['broadcast', 'axis'], Sub: ['broadcast', 'axis'], Div: ['broadcast', 'axis'],
  Dropout: ['ratio', 'is_test', 'seed'],
};

const STRINGS = [
  '', 'NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID', 'constant', 'reflect', 'edge', 'wrap', 'nearest', 'linear', 'cubic',
  'half_pixel', 'pytorch_half_pixel', 'asymmetric', 'align_corners', 'tf_crop_and_resize', 'round_prefer_floor', 'floor',
  'ceil', 'DCR', 'CRD', 'none', 'tanh', 'stretch', 'not_larger', 'garbage', '\u0000', '..', 'é', 'x'.repeat(5000),
];

const UNKNOWN_OPS = ['If', 'Loop', 'Scan', 'LSTM', 'NonZero', 'TopK', 'Einsum', 'FooBar', '', 'relu', 'Conv ', 'Add\u0000', 'x'.repeat(300)];
const DOMAINS = ['', 'ai.onnx', 'com.microsoft', 'ai.onnx.ml', 'ai.onnx.preview.training', 'custom.domain', 'x'.repeat(300)];

let opListCache: string[] | undefined;
function opTypes(): string[] {
  opListCache ??= supportedOps();
  return opListCache;
}

// ---------------------------------------------------------------------------------------------
// Protobuf wire format

function varint(value: number | bigint): number[] {
  let v = BigInt.asUintN(64, BigInt(value));
  const out: number[] = [];
  do {
    let b = Number(v & 0x7fn);
    v >>= 7n;
    if (v > 0n) b |= 0x80;
    out.push(b);
  } while (v > 0n);
  return out;
}

function tag(field: number, wire: number): number[] {
  return varint((field << 3) | wire);
}

interface LenField { lenPos: number; lenEnd: number; start: number; end: number }

function readVarint(b: Uint8Array, pos: number, end: number): { value: number; next: number } | undefined {
  let value = 0;
  let mul = 1;
  for (let i = 0; i < 10; i++) {
    if (pos + i >= end) return undefined;
    const byte = b[pos + i]!;
    value += (byte & 0x7f) * mul;
    mul *= 128;
    if (!(byte & 0x80)) return { value, next: pos + i + 1 };
  }
  return undefined;
}

/** Records the length-delimited fields of [start, end) when it parses as a message, recursing into sub-messages. */
function walkMessage(b: Uint8Array, start: number, end: number, depth: number, out: LenField[]): boolean {
  let pos = start;
  const found: LenField[] = [];
  while (pos < end) {
    const t = readVarint(b, pos, end);
    if (!t || t.value === 0) return false;
    const wire = t.value % 8;
    pos = t.next;
    if (wire === 0) {
      const v = readVarint(b, pos, end);
      if (!v) return false;
      pos = v.next;
    } else if (wire === 1) pos += 8;
    else if (wire === 5) pos += 4;
    else if (wire === 2) {
      const len = readVarint(b, pos, end);
      if (!len || len.next + len.value > end) return false;
      const field = { lenPos: pos, lenEnd: len.next, start: len.next, end: len.next + len.value };
      found.push(field);
      if (depth < 12 && len.value > 1) walkMessage(b, field.start, field.end, depth + 1, found);
      pos = field.end;
    } else return false;
    if (pos > end) return false;
  }
  out.push(...found);
  return true;
}

export function lengthFields(bytes: Uint8Array): LenField[] {
  const out: LenField[] = [];
  walkMessage(bytes, 0, bytes.length, 0, out);
  return out;
}

function splice(b: Uint8Array, start: number, end: number, insert: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(b.length - (end - start) + insert.length);
  out.set(b.subarray(0, start), 0);
  out.set(insert, start);
  out.set(b.subarray(end), start + insert.length);
  return out;
}

// ---------------------------------------------------------------------------------------------
// Byte-level mutators

type ByteMutator = (b: Uint8Array, rng: Rng) => [Uint8Array, string] | undefined;

const BYTE_MUTATORS: readonly (readonly [number, string, ByteMutator])[] = [
  [3, 'truncate', (b, rng) => {
    if (b.length === 0) return undefined;
    const at = rng.chance(0.3) ? b.length - rng.range(1, Math.min(16, b.length)) : rng.int(b.length);
    return [b.slice(0, at), `truncate to ${at} of ${b.length} bytes`];
  }],
  [3, 'bitflip', (b, rng) => {
    if (b.length === 0) return undefined;
    const out = b.slice();
    const n = rng.range(1, 8);
    for (let i = 0; i < n; i++) out[rng.int(out.length)]! ^= 1 << rng.int(8);
    return [out, `flip ${n} bits`];
  }],
  [2, 'overwrite', (b, rng) => {
    if (b.length === 0) return undefined;
    const out = b.slice();
    const at = rng.int(out.length);
    const v = rng.pick([0, 0xff, 0x7f, 0x80, 0x01, 0x08, 0x12, 0x1a, 0x3a, rng.int(256)]);
    out[at] = v;
    return [out, `byte ${at} := 0x${v.toString(16)}`];
  }],
  [1, 'duplicate-chunk', (b, rng) => {
    if (b.length < 2) return undefined;
    const a = rng.int(b.length);
    const len = Math.min(b.length - a, rng.range(1, 512));
    const at = rng.int(b.length + 1);
    return [splice(b, at, at, b.subarray(a, a + len)), `duplicate ${len} bytes from ${a} at ${at}`];
  }],
  [1, 'delete-chunk', (b, rng) => {
    if (b.length < 2) return undefined;
    const a = rng.int(b.length);
    const len = Math.min(b.length - a, rng.range(1, 256));
    return [splice(b, a, a + len, []), `delete ${len} bytes at ${a}`];
  }],
  [1, 'insert-random', (b, rng) => {
    const at = rng.int(b.length + 1);
    const ins = Array.from({ length: rng.range(1, 64) }, () => rng.int(256));
    return [splice(b, at, at, ins), `insert ${ins.length} random bytes at ${at}`];
  }],
  [4, 'length-prefix', (b, rng) => {
    const fields = lengthFields(b);
    if (fields.length === 0) return undefined;
    const f = rng.pick(fields);
    const len = f.end - f.start;
    const choice = rng.int(9);
    const newLen = [len + 1, Math.max(0, len - 1), 0, len * 2 + 1, 0x7fffffff, 2 ** 32 + len, 2 ** 53, len + 1000, 2 ** 31][choice]!;
    if (choice === 8 && rng.chance(0.5)) {
      // an over-long varint (11 continuation bytes)
      return [splice(b, f.lenPos, f.lenEnd, [...new Array(10).fill(0xff), 0x01]), `length at ${f.lenPos}: over-long varint`];
    }
    return [splice(b, f.lenPos, f.lenEnd, varint(newLen)), `length at ${f.lenPos}: ${len} -> ${newLen}`];
  }],
  [1, 'drop-field-bytes', (b, rng) => {
    const fields = lengthFields(b);
    if (fields.length === 0) return undefined;
    const f = rng.pick(fields);
    if (f.end === f.start) return undefined;
    const cut = rng.range(1, f.end - f.start);
    return [splice(b, f.end - cut, f.end, []), `cut the last ${cut} bytes of the field at ${f.start} (prefix kept)`];
  }],
];

export function mutateBytes(b: Uint8Array, rng: Rng, log: string[]): Uint8Array {
  const n = rng.chance(0.7) ? 1 : rng.range(2, 4);
  for (let i = 0; i < n; i++) {
    const [, name, fn] = rng.weighted(BYTE_MUTATORS.map((m) => [m[0], m] as const));
    const r = fn(b, rng);
    if (!r) continue;
    b = r[0];
    log.push(`bytes/${name}: ${r[1]}`);
  }
  return b;
}

// ---------------------------------------------------------------------------------------------
// Structural mutators

interface Ctx {
  model: ModelProto;
  files: AuxFile[];
  rng: Rng;
  /** raw bytes appended to the encoded GraphProto (deep nesting that protobufjs could not encode recursively) */
  extraGraphBytes?: Uint8Array;
  fresh: number;
}

const graphOf = (c: Ctx): IGraphProto => (c.model.graph ??= onnx.GraphProto.create({ name: 'g' }));
const nodesOf = (c: Ctx): INodeProto[] => (graphOf(c).node ??= []);
const initsOf = (c: Ctx): ITensorProto[] => (graphOf(c).initializer ??= []);
const freshName = (c: Ctx, base: string) => `${base}_fz${c.fresh++}`;

/** Every value name produced in the graph: inputs, initializers, node outputs. */
function valueNames(c: Ctx): string[] {
  const g = graphOf(c);
  return [
    ...(g.input ?? []).map((i) => i.name ?? ''),
    ...(g.initializer ?? []).map((t) => t.name ?? ''),
    ...(g.node ?? []).flatMap((n) => n.output ?? []),
  ].filter(Boolean);
}

function pickNode(c: Ctx): INodeProto | undefined {
  const nodes = nodesOf(c);
  return nodes.length ? c.rng.pick(nodes) : undefined;
}

function valueInfos(c: Ctx): IValueInfoProto[] {
  const g = graphOf(c);
  return [...(g.input ?? []), ...(g.output ?? []), ...(g.valueInfo ?? [])];
}

/** Little-endian bytes of `values` for an ONNX dtype code (unknown codes: 4 bytes per value). */
function encodeValues(code: number, values: readonly number[]): Uint8Array {
  const size = ({ 1: 4, 2: 1, 3: 1, 4: 2, 5: 2, 6: 4, 7: 8, 9: 1, 10: 2, 11: 8, 12: 4, 13: 8, 16: 2 } as Record<number, number>)[code] ?? 4;
  const view = new DataView(new ArrayBuffer(values.length * size));
  values.forEach((v, i) => {
    const o = i * size;
    switch (code) {
      case 1: view.setFloat32(o, v, true); break;
      case 11: view.setFloat64(o, v, true); break;
      case 7: case 13: view.setBigInt64(o, BigInt.asIntN(64, BigInt(Number.isFinite(v) ? Math.trunc(Math.max(-(2 ** 63), Math.min(2 ** 63 - 1, v))) : 0)), true); break;
      default:
        if (size === 1) view.setUint8(o, v & 0xff);
        else if (size === 2) view.setUint16(o, v & 0xffff, true);
        else view.setInt32(o, v | 0, true);
    }
  });
  return new Uint8Array(view.buffer);
}

function randomValues(rng: Rng, code: number, n: number): number[] {
  const isFloat = code === 1 || code === 10 || code === 11 || code === 16;
  return Array.from({ length: n }, () => {
    if (isFloat) return rng.chance(0.5) ? rng.pick(INTERESTING_FLOATS) : rng.next() * 4 - 2;
    return rng.chance(0.5) ? rng.pick(INTERESTING_INTS) : rng.range(-3, 6);
  });
}

/** A small tensor, usually well-formed. */
function randomTensor(rng: Rng, name: string): ITensorProto {
  const code = rng.chance(0.8) ? rng.pick(COMMON_DTYPES) : rng.pick(DTYPE_CODES);
  const rank = rng.weighted([[2, 0], [4, 1], [2, 2], [1, 3], [1, 4]] as const);
  const dims = Array.from({ length: rank }, () => (rng.chance(0.1) ? rng.pick([0, 7, 16]) : rng.range(1, 4)));
  const count = dims.reduce((a, b) => a * b, 1);
  const t: ITensorProto = { name, dataType: code, dims, rawData: encodeValues(code, randomValues(rng, code, count)) };
  if (rng.chance(0.1)) t.rawData = (t.rawData as Uint8Array).subarray(0, Math.max(0, (t.rawData as Uint8Array).length - rng.range(1, 3)));
  return t;
}

function attrValue(rng: Rng, name: string, kind?: number): IAttributeProto {
  const type = kind ?? rng.weighted([[4, AT.INT], [4, AT.INTS], [2, AT.FLOAT], [1, AT.FLOATS], [2, AT.STRING], [1, AT.STRINGS], [1, AT.TENSOR], [1, AT.GRAPH], [1, AT.SPARSE_TENSOR], [1, AT.UNDEFINED]] as const);
  const a: IAttributeProto = { name, type };
  switch (type) {
    case AT.INT: a.i = interestingInt(rng); break;
    case AT.INTS: {
      const n = rng.weighted([[2, 0], [4, 1], [4, 2], [3, 3], [3, 4], [1, 6], [1, 8], [1, 100_000]] as const);
      const wild = rng.chance(0.4);
      a.ints = Array.from({ length: n }, () => (n <= 10 && wild ? interestingInt(rng) : rng.range(-3, 9)));
      break;
    }
    case AT.FLOAT: a.f = rng.pick(INTERESTING_FLOATS); break;
    case AT.FLOATS: a.floats = Array.from({ length: rng.range(0, 6) }, () => rng.pick(INTERESTING_FLOATS)); break;
    case AT.STRING: a.s = rng.chance(0.8) ? new TextEncoder().encode(rng.pick(STRINGS)) : Uint8Array.from({ length: rng.range(1, 8) }, () => rng.int(256)); break;
    case AT.STRINGS: a.strings = Array.from({ length: rng.range(0, 4) }, () => new TextEncoder().encode(rng.pick(STRINGS))); break;
    case AT.TENSOR: a.t = randomTensor(rng, rng.chance(0.5) ? '' : 'attr_tensor'); break;
    case AT.GRAPH: a.g = { name: 'sub', node: [{ opType: 'Identity', input: ['x'], output: ['sub_out'] }], output: [{ name: 'sub_out' }] }; break;
    case AT.SPARSE_TENSOR: a.sparseTensor = { values: randomTensor(rng, 'sv'), dims: [4] }; break;
    default: break;
  }
  return a;
}

type Mutator = (c: Ctx) => string | undefined;

const M: Record<string, readonly [number, Mutator]> = {
  dim: [6, (c) => {
    const { rng } = c;
    if (rng.chance(0.35)) {
      const inits = initsOf(c);
      if (inits.length === 0) return undefined;
      const t = rng.pick(inits);
      t.dims ??= [];
      if (t.dims.length === 0 || rng.chance(0.2)) {
        t.dims.push(interestingDim(rng));
        return `initializer ${t.name} dims += ${String(t.dims[t.dims.length - 1])}`;
      }
      const i = rng.int(t.dims.length);
      t.dims[i] = interestingDim(rng);
      return `initializer ${t.name} dim ${i} := ${String(t.dims[i])}`;
    }
    const infos = valueInfos(c);
    if (infos.length === 0) return undefined;
    const info = rng.pick(infos);
    const tt = (info.type ??= {}).tensorType ??= { elemType: 1 };
    const shape = tt.shape ??= { dim: [] };
    const dims = shape.dim ??= [];
    const variant = rng.int(7);
    if (variant === 0 || dims.length === 0) {
      dims.push({ dimValue: interestingDim(rng) });
      return `value ${info.name} dims += one`;
    }
    if (variant === 1) {
      shape.dim = [{ dimValue: 65536 }, { dimValue: 65536 }, { dimValue: 65536 }];
      return `value ${info.name} dims := 65536^3 (overflowing product)`;
    }
    if (variant === 2) {
      dims[rng.int(dims.length)] = { dimParam: rng.pick(['N', 'batch', '', 'x'.repeat(300)]) };
      return `value ${info.name} one dim symbolic`;
    }
    if (variant === 3) {
      dims[rng.int(dims.length)] = {};
      return `value ${info.name} one dim unknown`;
    }
    if (variant === 4) {
      delete tt.shape;
      return `value ${info.name} shape removed`;
    }
    if (variant === 5) {
      shape.dim = Array.from({ length: rng.pick([7, 33, 1000]) }, () => ({ dimValue: rng.pick([1, 2]) }));
      return `value ${info.name} rank ${shape.dim.length}`;
    }
    const i = rng.int(dims.length);
    dims[i] = { dimValue: interestingDim(rng) };
    return `value ${info.name} dim ${i} := ${String(dims[i]!.dimValue)}`;
  }],

  dtype: [4, (c) => {
    const { rng } = c;
    const code = rng.pick(DTYPE_CODES);
    const where = rng.int(3);
    if (where === 0 && initsOf(c).length) {
      const t = rng.pick(initsOf(c));
      t.dataType = code;
      return `initializer ${t.name} dtype := ${code}`;
    }
    if (where === 1 && valueInfos(c).length) {
      const info = rng.pick(valueInfos(c));
      ((info.type ??= {}).tensorType ??= {}).elemType = code;
      return `value ${info.name} elem_type := ${code}`;
    }
    const n = pickNode(c);
    if (!n) return undefined;
    (n.attribute ??= []).push({ name: 'to', type: AT.INT, i: code });
    return `node ${n.name} attribute to := ${code}`;
  }],

  opType: [4, (c) => {
    const n = pickNode(c);
    if (!n) return undefined;
    const { rng } = c;
    if (rng.chance(0.25)) {
      n.domain = rng.pick(DOMAINS);
      return `node ${n.name} domain := ${JSON.stringify(n.domain.slice(0, 40))}`;
    }
    n.opType = rng.chance(0.85) ? rng.pick(opTypes()) : rng.pick(UNKNOWN_OPS);
    return `node ${n.name} op_type := ${JSON.stringify(n.opType.slice(0, 40))}`;
  }],

  opset: [2, (c) => {
    const { rng, model } = c;
    const imports = model.opsetImport ??= [];
    const v = rng.int(6);
    if (v === 0) {
      model.opsetImport = imports.filter((o) => o.domain && o.domain !== 'ai.onnx');
      return 'opset: default domain removed';
    }
    if (v === 1) {
      imports.push({ domain: 'ai.onnx', version: rng.pick([1, 9, 13, 17]) });
      return 'opset: default domain imported twice';
    }
    if (v === 2) {
      imports.push({ domain: rng.pick(DOMAINS.slice(2)), version: interestingInt(rng) });
      return 'opset: unknown domain imported';
    }
    if (v === 3) {
      model.irVersion = rng.pick([0, -1, 1, 3, 99, I64_MAX] as (number | protobuf.Long)[]);
      return `ir_version := ${String(model.irVersion)}`;
    }
    const def = imports.find((o) => !o.domain || o.domain === 'ai.onnx');
    const version = rng.pick([0, -1, 1, 6, 7, 9, 10, 11, 13, 17, 18, 23, 24, 999, I64_MAX] as (number | protobuf.Long)[]);
    if (def) def.version = version;
    else imports.push({ domain: '', version });
    return `opset version := ${String(version)}`;
  }],

  names: [4, (c) => {
    const { rng } = c;
    const g = graphOf(c);
    const nodes = nodesOf(c);
    const v = rng.int(8);
    if (v === 0 && nodes.length >= 2) {
      const [a, b] = [rng.pick(nodes), rng.pick(nodes)];
      b.name = a.name;
      return `node ${b.name}: duplicate node name`;
    }
    if (v === 1 && nodes.length >= 2) {
      const a = rng.pick(nodes);
      const b = rng.pick(nodes.filter((n) => n !== a));
      if (!a.output?.length || !b.output?.length) return undefined;
      b.output[0] = a.output[0]!;
      return `value ${a.output[0]} produced twice`;
    }
    if (v === 2 && initsOf(c).length) {
      const t = rng.pick(initsOf(c));
      initsOf(c).push({ ...t, dims: [...(t.dims ?? [])] });
      return `initializer ${t.name} defined twice`;
    }
    if (v === 3 && g.input?.length) {
      const i = rng.pick(g.input);
      g.input.push(i);
      return `graph input ${i.name} listed twice`;
    }
    if (v === 4 && g.output?.length) {
      const o = rng.pick(g.output);
      g.output.push(o);
      return `graph output ${o.name} listed twice`;
    }
    if (v === 5) {
      const all = [...(g.input ?? []), ...(g.output ?? []), ...initsOf(c)];
      if (!all.length) return undefined;
      const x = rng.pick(all);
      const old = x.name;
      x.name = rng.pick(['', '\u0000', ' ', 'x'.repeat(400)]);
      return `name ${old} := ${JSON.stringify(x.name.slice(0, 10))}`;
    }
    if (v === 6 && nodes.length) {
      const n = rng.pick(nodes);
      if (!n.output?.length) return undefined;
      n.output[rng.int(n.output.length)] = '';
      return `node ${n.name}: an output name emptied`;
    }
    const n = pickNode(c);
    if (!n) return undefined;
    n.name = rng.pick(['', n.opType ? `${n.opType}_0` : 'n', 'x'.repeat(300), '"quoted"\n']);
    return `node name := ${JSON.stringify(n.name.slice(0, 12))}`;
  }],

  dangling: [3, (c) => {
    const { rng } = c;
    const n = pickNode(c);
    if (!n || rng.chance(0.2)) {
      const g = graphOf(c);
      (g.output ??= []).push({ name: freshName(c, 'missing_out'), type: { tensorType: { elemType: 1 } } });
      return 'graph output that nothing produces';
    }
    const inputs = n.input ??= [];
    const name = freshName(c, 'dangling');
    if (inputs.length === 0 || rng.chance(0.2)) inputs.push(name);
    else inputs[rng.int(inputs.length)] = name;
    return `node ${n.name} reads dangling ${name}`;
  }],

  cycle: [3, (c) => {
    const { rng } = c;
    const nodes = nodesOf(c);
    if (nodes.length === 0) return undefined;
    const i = rng.int(nodes.length);
    const j = rng.range(i, nodes.length - 1);
    const src = nodes[j]!;
    const dst = nodes[i]!;
    if (!src.output?.length || !src.output[0]) return undefined;
    const inputs = dst.input ??= [];
    if (inputs.length === 0) inputs.push(src.output[0]);
    else inputs[rng.int(inputs.length)] = src.output[0];
    return `cycle: node ${dst.name} reads ${src.output[0]} of later/same node ${src.name}`;
  }],

  attribute: [14, (c) => {
    const { rng } = c;
    const n = pickNode(c);
    if (!n) return undefined;
    const attrs = n.attribute ??= [];
    const v = rng.int(10);
    if (attrs.length && v < 5) {
      const k = rng.int(attrs.length);
      const old = attrs[k]!;
      const keepType = v < 3 && old.type ? old.type : undefined;
      attrs[k] = attrValue(rng, old.name ?? '', keepType);
      return `node ${n.name} attribute ${old.name} := new ${AT[attrs[k]!.type ?? 0]} value`;
    }
    if (attrs.length && v === 5) {
      const a = rng.pick(attrs);
      a.type = rng.pick([0, 1, 2, 3, 4, 5, 6, 7, 11, 13, 14, 99]) as onnxProto.onnx.AttributeProto.AttributeType;
      return `node ${n.name} attribute ${a.name} type field := ${a.type}`;
    }
    if (attrs.length && v === 6) {
      attrs.push({ ...rng.pick(attrs) });
      return `node ${n.name}: attribute listed twice`;
    }
    if (v === 7) {
      attrs.push({ ...attrValue(rng, 'x'), name: rng.pick(['', 'x'.repeat(300)]) });
      return `node ${n.name}: attribute with odd name`;
    }
    const known = OP_ATTRS[n.opType ?? ''];
    const name = known && rng.chance(0.75) ? rng.pick(known) : rng.pick(ATTR_NAMES);
    const i = attrs.findIndex((a) => a.name === name);
    const a = attrValue(rng, name);
    if (i >= 0) attrs[i] = a;
    else attrs.push(a);
    return `node ${n.name} attribute ${name} := ${AT[a.type ?? 0]}`;
  }],

  hugeAttributeList: [1, (c) => {
    const n = pickNode(c);
    if (!n) return undefined;
    const count = c.rng.pick([1000, 20_000]);
    const attrs = n.attribute ??= [];
    for (let i = 0; i < count; i++) attrs.push({ name: `a${i}`, type: AT.INT, i });
    return `node ${n.name}: ${count} extra attributes`;
  }],

  initializerData: [5, (c) => {
    const { rng } = c;
    const inits = initsOf(c);
    if (!inits.length) return undefined;
    const t = rng.pick(inits);
    const raw = t.rawData instanceof Uint8Array ? t.rawData : new Uint8Array();
    const v = rng.int(9);
    if (v === 0 && raw.length) {
      t.rawData = raw.subarray(0, rng.int(raw.length));
      return `initializer ${t.name} raw_data truncated`;
    }
    if (v === 1) {
      const extra = new Uint8Array(raw.length + rng.range(1, 9));
      extra.set(raw);
      t.rawData = extra;
      return `initializer ${t.name} raw_data extended`;
    }
    if (v === 2) {
      t.rawData = new Uint8Array();
      t.floatData = []; t.int32Data = []; t.int64Data = []; t.doubleData = []; t.uint64Data = [];
      return `initializer ${t.name} data removed`;
    }
    if (v === 3) {
      const field = rng.pick(['floatData', 'int32Data', 'int64Data', 'doubleData', 'uint64Data'] as const);
      const count = Math.max(1, Number((t.dims ?? []).reduce((a: number, d) => a * Number(d), 1)) || 1);
      t.rawData = new Uint8Array();
      (t as Record<string, unknown>)[field] = Array.from({ length: Math.min(count + rng.range(-1, 1), 4096) }, () => rng.range(-2, 5));
      return `initializer ${t.name} data moved to ${field}`;
    }
    if (v === 4) {
      t.segment = { begin: 0, end: 1 };
      return `initializer ${t.name} segment set`;
    }
    if (v === 5) {
      t.stringData = [new TextEncoder().encode('s')];
      return `initializer ${t.name} string_data set`;
    }
    if (v === 6) {
      t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
      if (rng.chance(0.5)) t.externalData = [];
      return `initializer ${t.name} marked EXTERNAL`;
    }
    // values: shape-like int64 initializers steer Reshape/Slice/Pad/Expand...; floats get NaN/Inf
    const code = t.dataType ?? 1;
    const count = Math.max(0, Math.round((t.dims ?? []).reduce((a: number, d) => a * Number(d), 1)));
    if (!(count > 0 && count <= 65536)) return undefined;
    const values = randomValues(rng, code, count);
    t.rawData = encodeValues(code, values);
    t.floatData = []; t.int32Data = []; t.int64Data = []; t.doubleData = []; t.uint64Data = [];
    return `initializer ${t.name} values := ${values.slice(0, 6).join(',')}${count > 6 ? ',…' : ''}`;
  }],

  constInput: [8, (c) => {
    const { rng } = c;
    const n = pickNode(c);
    if (!n) return undefined;
    const inputs = n.input ??= [];
    const name = freshName(c, 'const');
    let t: ITensorProto;
    if (rng.chance(0.4)) {
      // shape-like operands (Reshape shape, Slice starts, Pad pads, axes, repeats...) are int64 vectors
      const values = Array.from({ length: rng.range(0, 8) }, () => (rng.chance(0.7) ? rng.range(-3, 8) : rng.pick(INTERESTING_INTS)));
      t = { name, dataType: 7, dims: [values.length], rawData: encodeValues(7, values) };
    } else {
      t = randomTensor(rng, name);
    }
    initsOf(c).push(t);
    const k = inputs.length === 0 || rng.chance(0.2) ? inputs.length : rng.int(inputs.length);
    inputs[k] = name;
    return `node ${n.name} input ${k} := constant ${name} (dtype ${t.dataType}, dims [${(t.dims ?? []).join(',')}])`;
  }],

  nodeIO: [4, (c) => {
    const { rng } = c;
    const n = pickNode(c);
    if (!n) return undefined;
    const inputs = n.input ??= [];
    const outputs = n.output ??= [];
    const v = rng.int(8);
    if (v === 0 && inputs.length) {
      inputs.splice(rng.int(inputs.length), 1);
      return `node ${n.name}: an input removed`;
    }
    if (v === 7) {
      n.input = [];
      return `node ${n.name}: all inputs removed`;
    }
    if (v === 1) {
      const names = valueNames(c);
      const extra = rng.range(1, rng.chance(0.1) ? 5000 : 3);
      for (let i = 0; i < extra; i++) inputs.push(names.length && rng.chance(0.7) ? rng.pick(names) : '');
      return `node ${n.name}: ${extra} extra inputs`;
    }
    if (v === 2 && inputs.length) {
      inputs[rng.int(inputs.length)] = '';
      return `node ${n.name}: an input omitted ('')`;
    }
    if (v === 3 && outputs.length) {
      outputs.splice(rng.int(outputs.length), 1);
      return `node ${n.name}: an output removed`;
    }
    if (v === 4) {
      outputs.push(freshName(c, 'extra_out'));
      return `node ${n.name}: extra output`;
    }
    if (v === 5 && inputs.length >= 2) {
      const a = rng.int(inputs.length);
      const b = rng.int(inputs.length);
      [inputs[a], inputs[b]] = [inputs[b]!, inputs[a]!];
      return `node ${n.name}: inputs ${a} and ${b} swapped`;
    }
    const names = valueNames(c);
    if (!names.length || !inputs.length) return undefined;
    const k = rng.int(inputs.length);
    inputs[k] = rng.pick(names);
    return `node ${n.name}: input ${k} rewired to ${inputs[k]}`;
  }],

  graphIO: [3, (c) => {
    const { rng } = c;
    const g = graphOf(c);
    const v = rng.int(6);
    if (v === 0 && g.input?.length) {
      const i = g.input.splice(rng.int(g.input.length), 1)[0]!;
      return `graph input ${i.name} removed`;
    }
    if (v === 1) {
      g.output = [];
      return 'graph outputs removed';
    }
    if (v === 2) {
      const names = valueNames(c);
      if (!names.length) return undefined;
      const name = rng.pick(names);
      (g.output ??= []).push({ name, type: { tensorType: { elemType: 1 } } });
      return `graph output += ${name}`;
    }
    if (v === 3 && g.input?.length) {
      const info = rng.pick(g.input);
      const t = info.type ??= {};
      const kind = rng.int(4);
      if (kind === 0) delete info.type;
      else if (kind === 1) { delete t.tensorType; t.sequenceType = { elemType: { tensorType: { elemType: 1 } } }; }
      else if (kind === 2) { delete t.tensorType; t.mapType = { keyType: 7, valueType: { tensorType: { elemType: 1 } } }; }
      else delete t.tensorType;
      return `graph input ${info.name} type kind ${['removed', 'sequence', 'map', 'empty'][kind]}`;
    }
    if (v === 4 && g.input?.length) {
      const info = rng.pick(g.input);
      initsOf(c).push({ ...randomTensor(rng, info.name ?? ''), name: info.name });
      return `graph input ${info.name} also an initializer`;
    }
    const t = randomTensor(rng, freshName(c, 'unused'));
    (g.sparseInitializer ??= []).push({ values: t, indices: { name: 'idx', dataType: 7, dims: [1], rawData: encodeValues(7, [0]) }, dims: [4] });
    return 'sparse initializer added';
  }],

  nodes: [3, (c) => {
    const { rng } = c;
    const nodes = nodesOf(c);
    if (!nodes.length) return undefined;
    const v = rng.int(4);
    if (v === 0) {
      const n = nodes.splice(rng.int(nodes.length), 1)[0]!;
      return `node ${n.name} removed`;
    }
    if (v === 1) {
      const n = rng.pick(nodes);
      nodes.splice(rng.int(nodes.length + 1), 0, { ...n, attribute: [...(n.attribute ?? [])] });
      return `node ${n.name} duplicated (same outputs)`;
    }
    if (v === 2) {
      const n = rng.pick(nodes);
      const copy: INodeProto = { ...n, name: freshName(c, n.name || 'copy'), output: (n.output ?? []).map((o) => (o ? freshName(c, o) : '')) };
      nodes.push(copy);
      const g = graphOf(c);
      if (copy.output?.[0]) (g.output ??= []).push({ name: copy.output[0], type: { tensorType: { elemType: 1 } } });
      return `node ${n.name} duplicated with fresh outputs`;
    }
    const a = rng.int(nodes.length);
    const b = rng.int(nodes.length);
    [nodes[a], nodes[b]] = [nodes[b]!, nodes[a]!];
    return `nodes ${a} and ${b} swapped (topological order)`;
  }],

  subgraph: [1, (c) => {
    const { rng } = c;
    const n = pickNode(c);
    if (!n) return undefined;
    const names = valueNames(c);
    const body: IGraphProto = {
      name: 'body',
      node: [{ opType: 'Identity', input: [names.length ? rng.pick(names) : 'x'], output: ['body_out'] }],
      output: [{ name: rng.chance(0.5) ? 'body_out' : (n.output?.[0] ?? 'y') }],
    };
    (n.attribute ??= []).push(rng.chance(0.5) ? { name: 'then_branch', type: AT.GRAPH, g: body } : { name: 'branches', type: AT.GRAPHS, graphs: [body, body] });
    return `node ${n.name}: subgraph attribute (reads outer values)`;
  }],

  deepNesting: [1, (c) => {
    const depth = c.rng.pick([200, 5000, 40_000]);
    c.extraGraphBytes = deepNodeBytes(depth);
    return `a node nesting subgraphs ${depth} deep`;
  }],

  external: [5, (c) => mutateExternal(c)],
};

/** An `If` node whose then_branch holds an If node... `depth` levels; built bottom-up without recursion. */
function deepNodeBytes(depth: number): Uint8Array {
  const enc = new TextEncoder();
  const opType = [...tag(4, 2), ...varint(2), ...enc.encode('If')];
  const attrName = [...tag(1, 2), ...varint(11), ...enc.encode('then_branch')];
  const attrType = [...tag(20, 0), ...varint(AT.GRAPH)];
  // sizes, innermost first: graph(k) = [node field] of node(k) = opType + [attribute field] of attr(k) = name + [g field] of graph(k-1) + type
  const graphLen: number[] = [0];
  const nodeLen: number[] = [0];
  const attrLen: number[] = [0];
  for (let k = 1; k <= depth; k++) {
    attrLen[k] = attrName.length + tag(6, 2).length + varint(graphLen[k - 1]!).length + graphLen[k - 1]! + attrType.length;
    nodeLen[k] = opType.length + tag(5, 2).length + varint(attrLen[k]!).length + attrLen[k]!;
    graphLen[k] = tag(1, 2).length + varint(nodeLen[k]!).length + nodeLen[k]!;
  }
  // the result is the node(depth) field of the outer graph: tag + len + node bytes
  const total = tag(1, 2).length + varint(nodeLen[depth]!).length + nodeLen[depth]!;
  const out = new Uint8Array(total);
  let pos = 0;
  const put = (bytes: readonly number[]) => { out.set(bytes, pos); pos += bytes.length; };
  put(tag(1, 2)); put(varint(nodeLen[depth]!));
  for (let k = depth; k >= 1; k--) {
    put(opType);
    put(tag(5, 2)); put(varint(attrLen[k]!));
    put(attrName);
    put(tag(6, 2)); put(varint(graphLen[k - 1]!));
    if (k > 1) { put(tag(1, 2)); put(varint(nodeLen[k - 1]!)); }
  }
  // the attribute types close the attributes innermost-first
  for (let k = 1; k <= depth; k++) put(attrType);
  return out;
}

/** Moves an initializer's raw data to a file next to the model, then breaks the reference or the file. */
function mutateExternal(c: Ctx): string | undefined {
  const { rng } = c;
  const inits = initsOf(c);
  const withRaw = inits.filter((t) => t.rawData instanceof Uint8Array && t.rawData.length > 0);
  const already = inits.filter((t) => t.dataLocation === onnx.TensorProto.DataLocation.EXTERNAL);
  let t: ITensorProto;
  const log: string[] = [];
  if (already.length && rng.chance(0.5)) {
    t = rng.pick(already);
  } else if (withRaw.length) {
    t = rng.pick(withRaw);
    const raw = t.rawData as Uint8Array;
    const pad = rng.pick([0, 0, 8, 100]);
    const file = new Uint8Array(pad + raw.length);
    file.set(raw, pad);
    const fileName = rng.pick(['data.bin', 'weights/w.bin', 'model.onnx.data']);
    c.files.push({ name: fileName, kind: 'file', bytes: file });
    t.rawData = new Uint8Array();
    t.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
    t.externalData = [{ key: 'location', value: fileName }, { key: 'offset', value: String(pad) }, { key: 'length', value: String(raw.length) }];
    log.push(`initializer ${t.name} -> external ${fileName}@${pad}`);
    if (rng.chance(0.2)) return log.join('; ');
  } else return undefined;

  const entries = t.externalData ??= [];
  const set = (key: string, value: string) => {
    const e = entries.find((x) => x.key === key);
    if (e) e.value = value;
    else entries.push({ key, value });
  };
  const location = entries.find((x) => x.key === 'location')?.value ?? 'data.bin';
  const v = rng.int(12);
  if (v === 0) {
    const loc = rng.pick([
      `../${OUTSIDE_DIR}/${OUTSIDE_SECRET}`, '../../../../../../../../etc/passwd', `sub/../../${OUTSIDE_DIR}/${OUTSIDE_SECRET}`,
      '..', '../', `./../${OUTSIDE_DIR}/${OUTSIDE_SECRET}`, `sub/../${location}`,
    ]);
    set('location', loc);
    log.push(`location := ${loc}`);
  } else if (v === 1) {
    const loc = rng.pick(['/etc/passwd', '/dev/zero', '/dev/null', '/dev/urandom', '/proc/self/mem', 'C:\\Windows\\win.ini', '\\\\server\\share\\w.bin', '/']);
    set('location', loc);
    log.push(`location := ${loc}`);
  } else if (v === 2) {
    const [name, target] = rng.pick([
      ['link-out.bin', `../${OUTSIDE_DIR}/${OUTSIDE_SECRET}`], ['link-zero', '/dev/zero'], ['link-in.bin', location],
      ['link-dir', '..'], ['link-loop', 'link-loop'], ['link-dangling', 'nowhere.bin'], ['link-passwd', '/etc/passwd'],
    ] as const);
    c.files.push({ name, kind: 'symlink', target });
    set('location', name);
    log.push(`location := symlink ${name} -> ${target}`);
  } else if (v === 3) {
    c.files.push({ name: 'adir', kind: 'dir' });
    set('location', rng.pick(['adir', '.', 'adir/']));
    log.push('location := a directory');
  } else if (v === 4) {
    set('location', rng.pick(['missing.bin', '', 'data.bin\u0000.txt', 'x'.repeat(5000), 'ünï.bin', `${location}/`]));
    log.push('location := missing/odd');
  } else if (v === 5) {
    const off = rng.pick(['-1', '1', '99999999999', 'abc', '1e3', '18446744073709551616', '', ' 8', '0x10', '9007199254740993']);
    set('offset', off);
    log.push(`offset := ${off}`);
  } else if (v === 6) {
    const len = Number(entries.find((x) => x.key === 'length')?.value ?? 0);
    const l = rng.pick([String(len + 1), String(Math.max(0, len - 1)), '0', '-5', '99999999999999999999', 'x', '']);
    set('length', l);
    log.push(`length := ${l}`);
  } else if (v === 7) {
    entries.push({ key: 'location', value: rng.pick(['other.bin', location]) });
    log.push('location key twice');
  } else if (v === 8) {
    t.externalData = entries.filter((e) => e.key !== 'location');
    log.push('location key removed');
  } else if (v === 9) {
    const f = c.files.find((x) => x.name === location && x.kind === 'file');
    if (!f?.bytes) return undefined;
    f.bytes = f.bytes.subarray(0, rng.int(f.bytes.length));
    log.push(`${location} truncated to ${f.bytes.length} bytes`);
  } else if (v === 10) {
    c.files = c.files.filter((x) => x.name !== location);
    log.push(`${location} deleted`);
  } else {
    entries.push({ key: rng.pick(['checksum', 'basepath', '']), value: 'x' });
    log.push('extra external_data key');
  }
  return `external: ${log.join('; ')}`;
}

const STRUCTURAL = Object.entries(M).map(([name, [w, fn]]) => [w, [name, fn]] as const);

/** Encodes the mutated model, appending raw graph bytes (deep nesting) when a mutator left some. */
function encode(c: Ctx): Uint8Array {
  if (!c.extraGraphBytes) return onnx.ModelProto.encode(c.model).finish();
  const graph = graphOf(c);
  const graphBytes = onnx.GraphProto.encode(graph).finish();
  c.model.graph = null;
  const rest = onnx.ModelProto.encode(c.model).finish();
  const g = new Uint8Array(graphBytes.length + c.extraGraphBytes.length);
  g.set(graphBytes);
  g.set(c.extraGraphBytes, graphBytes.length);
  const head = [...tag(7, 2), ...varint(g.length)];
  const out = new Uint8Array(rest.length + head.length + g.length);
  out.set(rest);
  out.set(head, rest.length);
  out.set(g, rest.length + head.length);
  return out;
}

/** One fuzz input derived from a seed. */
export function mutate(seed: Pick<FuzzInput, 'model' | 'files'>, seedName: string, rng: Rng): FuzzInput {
  const log: string[] = [];
  let files = seed.files.map((f) => ({ ...f }));
  let model = seed.model;
  const mode = rng.weighted([[70, 'structure'], [15, 'both'], [15, 'bytes']] as const);
  if (mode !== 'bytes') {
    let decoded: ModelProto | undefined;
    try {
      decoded = onnx.ModelProto.decode(seed.model);
    } catch {
      decoded = undefined;
    }
    if (decoded) {
      const c: Ctx = { model: decoded, files, rng, fresh: 0 };
      const n = rng.chance(0.5) ? 1 : rng.range(2, 5);
      for (let i = 0; i < n; i++) {
        const [name, fn] = rng.weighted(STRUCTURAL);
        const desc = fn(c);
        if (desc) log.push(`${name}: ${desc}`);
      }
      try {
        model = encode(c);
        files = c.files;
      } catch (e) {
        log.push(`(encode failed: ${(e as Error).message}; bytes mutated instead)`);
        model = seed.model;
      }
    }
  }
  if (mode !== 'structure' || log.length === 0) model = mutateBytes(model, rng, log);
  if (model.length > MAX_MUTANT_BYTES) {
    log.push(`(truncated to ${MAX_MUTANT_BYTES} bytes)`);
    model = model.slice(0, MAX_MUTANT_BYTES);
  }
  return { model, files, seed: seedName, mutations: log };
}

// helpers for make-corpus.ts and minimisation
export { deepNodeBytes, encodeValues, varint, tag };
