/**
 * The kernel program: what lowering produces from the graph IR and what memory planning and
 * load scheduling consume. Tensors are flat typed byte ranges; kernels bind them by id.
 */
import type { ConstTensor, TensorType } from '../ir/types.js';
import type { CostClass } from '../ops/op.js';
import type { KernelSource, ShaderCode, TextureShape } from '../kernel/types.js';

export type TensorRole = 'input' | 'weight' | 'activation' | 'scratch';

export interface ProgramTensor {
  id: string;
  type: TensorType;
  role: TensorRole;
  /** weights only */
  data?: ConstTensor;
  /** view ops: this tensor is the storage of another (root) tensor, reinterpreted */
  aliasOf?: string;
  /** bytes on the GPU (4 per element: f32 or i32; texels x 16 for textures) */
  bytes: number;
  /** weights stored as an rgba32float texture_2d_array (data holds the texels); absent: a buffer range */
  texture?: TextureShape;
}

export interface ProgramKernel extends ShaderCode {
  label: string;
  /** the WGSL in parts, for kernel rewriting (carriers) */
  source: KernelSource;
  bindings: string[];
  /** indices of the bindings the WGSL declares read-only storage (kernel/types.ts KernelSpec.readOnly) */
  readOnly?: number[];
  workgroups: [number, number, number];
  /** the graph node this kernel computes */
  node: string;
  opType: string;
  costClass: CostClass;
}

export interface KernelProgram {
  tensors: Map<string, ProgramTensor>;
  kernels: ProgramKernel[];
  /** graph inputs and outputs, as tensor ids (outputs may alias inputs or weights) */
  inputs: string[];
  outputs: string[];
  /**
   * A joint program of several model calls in sequence (compiler/schedule/sequence.ts): each
   * call's inputs are written just before its first kernel and its outputs read right after its
   * last, instead of the whole program's inputs and outputs.
   */
  calls?: ProgramCall[];
  /**
   * Decoder state (a KV cache) kept on the GPU between runs: each state is a buffer of its own.
   * `inputs` are tensors read straight from a state buffer (not written by the app), `outputs`
   * tensors whose rows the runtime copies into one after the kernels (compiler/compile-decoder.ts).
   */
  state?: ProgramState;
}

export interface ProgramState {
  /** bytes of each state buffer */
  buffers: number[];
  /** tensor id -> state index */
  inputs: Map<string, number>;
  outputs: Map<string, number>;
  /** where output rows land in their state: from row 0 (a prefill) or from the run's position (a decode step) */
  writeAt: 'start' | 'position';
}

export interface ProgramCall {
  model: string;
  firstKernel: number;
  lastKernel: number;
  /** tensor ids in the order of the model's input and output signature */
  inputs: string[];
  outputs: string[];
}

/** Follows view aliases to the tensor that owns the storage. */
export function storageRoot(program: KernelProgram, id: string): ProgramTensor {
  let t = program.tensors.get(id);
  if (!t) throw new Error(`unknown tensor ${id}`);
  while (t.aliasOf) t = program.tensors.get(t.aliasOf)!;
  return t;
}


/** The runtime reads every output back through one mapped buffer of their total size. */
export function readbackBytes(program: KernelProgram): number {
  return program.outputs.reduce((s, id) => s + program.tensors.get(id)!.bytes, 0);
}
