/**
 * The graph IR: a static-shape dataflow graph. Every value has a known dtype and shape after
 * shape inference; constants carry their data. Names are the model's names and are never
 * emitted into generated code (codegen refers to values by position).
 */
export type DType =
  | 'float32' | 'float16' | 'float64' | 'bfloat16'
  | 'int8' | 'uint8' | 'int16' | 'uint16' | 'int32' | 'uint32' | 'int64' | 'uint64'
  | 'bool';

export const FLOAT_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'float64', 'bfloat16']);

export function isFloat(dtype: DType): boolean {
  return FLOAT_DTYPES.has(dtype);
}

/**
 * Constant data lives on the host as JS numbers: float types as Float32Array (float64 kept
 * as Float64Array), every integer and bool type as Float64Array (int64 sentinels such as
 * INT64_MAX in Slice ends lose precision but keep their order, which is all shape math needs).
 */
export type HostData = Float32Array | Float64Array;

export interface TensorType {
  dtype: DType;
  shape: number[];
}

export interface ConstTensor extends TensorType {
  data: HostData;
}

export type Attr =
  | { type: 'int'; value: number }
  | { type: 'float'; value: number }
  | { type: 'string'; value: string }
  | { type: 'ints'; value: number[] }
  | { type: 'floats'; value: number[] }
  | { type: 'strings'; value: string[] }
  | { type: 'tensor'; value: ConstTensor }
  | { type: 'graph' };

export type Attrs = Record<string, Attr>;

/** A unary activation folded into the kernel that produces its input (see passes/fuse-activation). */
export interface FusedActivation {
  opType: string;
  attrs: Attrs;
}

export interface Value {
  name: string;
  type: TensorType;
  /** set for initializers and folded constants */
  data?: ConstTensor;
}

export interface Node {
  name: string;
  opType: string;
  domain: string;
  /** '' marks an omitted optional input */
  inputs: string[];
  outputs: string[];
  attrs: Attrs;
  fusedActivation?: FusedActivation;
  /**
   * the bodies of control-flow nodes (If's then_branch / else_branch), by attribute name; their
   * attrs entry stays the { type: 'graph' } marker. Inlined by infer-shapes when they can be.
   */
  subgraphs?: Record<string, Subgraph>;
}

/** A control-flow body: nodes in order, its initializers, its formal inputs and its outputs. Names not defined inside are outer-scope references. */
export interface Subgraph {
  inputs: string[];
  outputs: string[];
  values: Map<string, Value>;
  nodes: Node[];
}

export interface Graph {
  name: string;
  /** opset version of the default ONNX domain */
  opset: number;
  inputs: string[];
  outputs: string[];
  values: Map<string, Value>;
  nodes: Node[];
}

export function numElements(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}
