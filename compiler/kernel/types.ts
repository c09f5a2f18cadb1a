/**
 * What a kernel binds and what a built kernel is: the vocabulary shared by the kernel builder,
 * the op families that use it and lowering, which records built kernels in the program.
 */
import type { ConstTensor, TensorType } from '../ir/types.js';

/** Texture geometry of a weight (see texture-layout.ts): width in texels. */
export interface TextureShape {
  width: number;
  height: number;
  layers: number;
}

/** A tensor as seen by lowering: id is unique within the model; data set for constants. */
export interface LowerTensor {
  readonly id: string;
  readonly type: TensorType;
  readonly data?: ConstTensor;
  /** set for weights stored as a texture: data then holds the texels (rgba32float, padded rows) */
  readonly texture?: TextureShape;
  /**
   * set by lowering where a storage binding of this tensor may be read-only storage
   * (`var<storage, read>`): a constant that lives in a buffer no dispatch writes. WebGPU forbids
   * read-only and writable storage of one buffer in one dispatch, so tensors of the activation
   * arena (which every kernel writes) never are.
   */
  readonly readOnly?: boolean;
}

/** A `@builtin` parameter of a kernel's entry point. */
export interface EntryParam {
  builtin: 'global_invocation_id' | 'workgroup_id' | 'local_invocation_id' | 'local_invocation_index' | 'num_workgroups';
  name: string;
  type: 'vec3<u32>' | 'u32';
}

/**
 * A kernel's WGSL in the parts kernel rewriting needs (compiler/lower/carrier.ts): `wgsl` is
 * exactly `${header}${entry point}${trailer}`, where the entry point is
 * `@compute @workgroup_size(<workgroupSize>)\nfn main(<params>) {<body>}`.
 */
export interface KernelSource {
  /** bindings, workgroup memory and helper functions: everything before the entry point */
  header: string;
  /** @workgroup_size as written: [x], [x, y] or [x, y, z] */
  workgroupSize: readonly number[];
  params: readonly EntryParam[];
  /** the entry point's body, without its braces */
  body: string;
  /** text after the entry point (usually a newline) */
  trailer: string;
}

/** A shader as the bundle needs it: its WGSL and what the device must allow to run it. */
export interface ShaderCode {
  /** complete WGSL source; entry point `main`; binding i of group 0 is the kernel's binding i */
  wgsl: string;
  /** the entry point's @workgroup_size */
  workgroupSize: [number, number, number];
  /** bytes of var<workgroup> memory the kernel declares */
  workgroupBytes: number;
}

/** A built kernel: WGSL and everything about it that lowering, memory planning and the bundle need. */
export interface KernelSpec extends ShaderCode {
  /** device features the kernel's `enable` directives need (absent: none) */
  features?: readonly string[];
  /** short label for schedules and profiles, e.g. 'conv2d_3x3'; never contains model names */
  label: string;
  bindings: LowerTensor[];
  /** indices of the storage bindings the WGSL declares `var<storage, read>` (read-only-storage in the bind group layout) */
  readOnly: number[];
  /**
   * an upper bound of the loop iterations one invocation runs, all loops together, where the
   * template knows it grows with a dimension (kernel/limits.ts DEVICE_LOOP_LIMIT refuses more)
   */
  loopTrips?: number;
  workgroups: [number, number, number];
  /** the WGSL in parts, for kernel rewriting */
  source: KernelSource;
}
