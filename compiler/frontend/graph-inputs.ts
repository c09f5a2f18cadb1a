/**
 * Graph input types: element type and shape from the ValueInfoProto, with symbolic or missing
 * dims fixed by the caller's inputShapes. flashmemc compiles for one static shape, so every
 * input dim must end up known.
 */
import type onnxProto from 'onnx-proto';
import { fail, quoteName } from '../errors.js';
import type { TensorType } from '../ir/types.js';
import { checkedElementCount, dtypeFromCode, int64ToNumber } from './tensor-decode.js';

type ValueInfoProto = onnxProto.onnx.IValueInfoProto;

/** A declared dim: a number, a symbol (dim_param), or unknown (neither set). */
type DeclaredDim = number | { symbol: string } | null;

interface DeclaredInput {
  name: string;
  /** undefined when the input has no shape at all (unknown rank) */
  dims: DeclaredDim[] | undefined;
}

function declaredDims(info: ValueInfoProto): DeclaredDim[] | undefined {
  const shape = info.type?.tensorType?.shape;
  if (!shape) return undefined;
  return (shape.dim ?? []).map((d) => {
    if (Object.prototype.hasOwnProperty.call(d, 'dimValue') && d.dimValue != null) return int64ToNumber(d.dimValue);
    if (d.dimParam) return { symbol: d.dimParam };
    return null;
  });
}

function formatDim(d: DeclaredDim): string {
  return typeof d === 'number' ? String(d) : d ? d.symbol : '?';
}

function formatDeclared(input: DeclaredInput): string {
  return `${quoteName(input.name)} ${input.dims ? `[${input.dims.map(formatDim).join(', ')}]` : '(unknown rank)'}`;
}

/** The CLI spelling of an input name: bare when it survives a shell unquoted, else JSON-quoted. */
function cliName(name: string): string {
  return /^[\w./:-]+$/.test(name) ? name : quoteName(name);
}

/** A symbol as a placeholder in a hint; a model-provided symbol cannot make the message huge. */
function symbolPlaceholder(symbol: string): string {
  return `<${symbol.length > 64 ? `${symbol.slice(0, 64)}…` : symbol}>`;
}

function inputShapeHint(input: DeclaredInput): string {
  const dims = input.dims ? input.dims.map((d) => (typeof d === 'number' ? String(d) : symbolPlaceholder(d ? d.symbol : 'd'))) : ['<d0>', '<d1>', '...'];
  return `--input-shape ${cliName(input.name)}=${dims.join('x')} (API: options.inputShapes)`;
}

function tensorTypeOf(info: ValueInfoProto, what: string) {
  const type = info.type;
  if (!type) fail('FM_DTYPE', `${what} has no type; flashmemc needs the element type of every graph input`);
  if (!type.tensorType) {
    const kind = type.sequenceType ? 'a sequence' : type.mapType ? 'a map' : type.optionalType ? 'an optional' : type.sparseTensorType ? 'a sparse tensor' : 'not a tensor';
    fail('FM_DTYPE', `${what} is ${kind}; flashmemc only supports dense tensor inputs`);
  }
  return type.tensorType;
}

function listInputs(inputs: readonly DeclaredInput[]): string {
  return inputs.length ? inputs.map(formatDeclared).join(', ') : '(none)';
}

function checkOverrides(declared: readonly DeclaredInput[], overrides: Record<string, number[]>): void {
  const byName = new Map(declared.map((d) => [d.name, d]));
  for (const [name, shape] of Object.entries(overrides)) {
    const input = byName.get(name);
    const inputs = `the model's inputs are: ${listInputs(declared)}`;
    if (!input) fail('FM_BAD_ARGUMENT', `input shape given for ${quoteName(name)}, which is not a model input; ${inputs}`);
    if (!Array.isArray(shape) || shape.some((d) => typeof d !== 'number' || !Number.isInteger(d))) {
      fail('FM_BAD_ARGUMENT', `input shape for ${quoteName(name)} must be a list of integers, got ${JSON.stringify(shape)}; ${inputs}`);
    }
    if (input.dims && input.dims.length !== shape.length) {
      fail('FM_BAD_ARGUMENT', `input shape [${shape.join(', ')}] for ${quoteName(name)} has rank ${shape.length}, but the model declares rank ${input.dims.length}; ${inputs}`);
    }
    input.dims?.forEach((d, i) => {
      // a negative declared dim is an exporter's "unknown", so an override may fix it
      if (typeof d === 'number' && d >= 0 && d !== shape[i]) {
        fail('FM_BAD_ARGUMENT', `input shape [${shape.join(', ')}] for ${quoteName(name)} sets dim ${i} to ${shape[i]}, but the model fixes it to ${d}; ${inputs}`);
      }
    });
  }
}

function resolveShape(input: DeclaredInput, override: number[] | undefined, what: string): number[] {
  if (override) return [...override];
  if (!input.dims) {
    fail('FM_UNKNOWN_DIM', `${what} has no declared shape (unknown rank); give its full shape with ${inputShapeHint(input)}`);
  }
  return input.dims.map((d, i) => {
    if (typeof d === 'number') return d;
    const symbol = d ? `symbolic (${quoteName(d.symbol)})` : 'unknown';
    fail('FM_UNKNOWN_DIM', `${what} dim ${i} is ${symbol}; fix it with ${inputShapeHint(input)}`);
  });
}

/**
 * TensorTypes of the graph inputs (initializer-backed inputs already removed by the caller), in
 * order. Overrides naming anything else are refused so typos surface instead of being ignored.
 */
export function resolveInputTypes(inputs: readonly ValueInfoProto[], overrides: Record<string, number[]> = {}): TensorType[] {
  const declared: DeclaredInput[] = inputs.map((info) => ({ name: info.name ?? '', dims: declaredDims(info) }));
  checkOverrides(declared, overrides);
  return inputs.map((info, k) => {
    const input = declared[k]!;
    const what = `graph input ${quoteName(input.name)}`;
    const dtype = dtypeFromCode(tensorTypeOf(info, what).elemType, what);
    const override = Object.prototype.hasOwnProperty.call(overrides, input.name) ? overrides[input.name] : undefined;
    const shape = resolveShape(input, override, what);
    checkedElementCount(shape, what);
    return { dtype, shape };
  });
}
