/**
 * The contract every operator family implements (one file per family in compiler/ops/):
 * a shape rule, an optional CPU evaluator used by constant folding, a cost class used by the
 * load scheduler, and a lowering that emits shape-specialised WGSL kernels.
 */
import type { ConstTensor, FusedActivation, Node, TensorType } from '../ir/types.js';

/**
 * FlashMem's operator classes: how much extra memory traffic a kernel tolerates while it carries
 * weight loads (elementwise ~300%, reusable Conv/MatMul ~20%, hierarchical LayerNorm/Softmax 0%).
 * 'data-movement' kernels (copies, transposes) behave like elementwise; 'view' ops emit no kernel.
 */
export type CostClass = 'elementwise' | 'reusable' | 'hierarchical' | 'data-movement' | 'view';

export interface ShapeContext {
  readonly node: Node;
  readonly opset: number;
  /** undefined where an optional input is omitted */
  readonly inputs: readonly (TensorType | undefined)[];
  /** constant data of inputs where it is known at compile time */
  readonly consts: readonly (ConstTensor | undefined)[];
}

export interface OpDef {
  readonly opTypes: readonly string[];
  readonly costClass: CostClass;
  /** Output types. Throws FlashmemError (FM_SHAPE / FM_UNSUPPORTED_OP) on invalid input. */
  inferTypes(ctx: ShapeContext): TensorType[];
  /** CPU evaluation when every present input is constant; enables constant folding. */
  fold?(ctx: ShapeContext, inputs: readonly (ConstTensor | undefined)[]): ConstTensor[];
  /**
   * fold() needs only the input types, not their data (Shape, Size): the folding pass calls it
   * even when inputs are runtime tensors.
   */
  readonly foldNeedsOnlyTypes?: boolean;
  /** Output 0 is input 0's storage reinterpreted (Reshape, Flatten, Squeeze, Identity...). */
  readonly view?: boolean;
  /** The kernels of this op apply ctx.activation to each output element before storing it. */
  readonly fusesActivation?: boolean;
  /** Emit the kernels computing the outputs. Absent only for view ops. */
  lower?(ctx: LowerContext): void;
}

/** A tensor as seen by lowering: id is unique within the model; data set for constants. */
export interface LowerTensor {
  readonly id: string;
  readonly type: TensorType;
  readonly data?: ConstTensor;
}

export interface KernelSpec {
  /** short label for schedules and profiles, e.g. 'conv2d_3x3'; never contains model names */
  label: string;
  /** complete WGSL source; entry point `main`; binding i of group 0 is bindings[i] */
  wgsl: string;
  bindings: LowerTensor[];
  workgroups: [number, number, number];
}

export interface TargetLimits {
  maxStorageBufferBindingSize: number;
  maxBufferSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupsPerDimension: number;
  maxComputeInvocationsPerWorkgroup: number;
  maxComputeWorkgroupSizeX: number;
  maxComputeWorkgroupStorageSize: number;
}

/** WebGPU's default (guaranteed) limits, with the 4-storage-buffer cap of compatibility mode lifted to core's 8. */
export const DEFAULT_LIMITS: TargetLimits = {
  maxStorageBufferBindingSize: 128 * 1024 * 1024,
  maxBufferSize: 256 * 1024 * 1024,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupsPerDimension: 65535,
  maxComputeInvocationsPerWorkgroup: 256,
  maxComputeWorkgroupSizeX: 256,
  maxComputeWorkgroupStorageSize: 16384,
};

/** WebGPU compatibility-mode defaults (e.g. OpenGL ES devices): at most 4 storage buffers per stage. */
export const COMPAT_LIMITS: TargetLimits = { ...DEFAULT_LIMITS, maxStorageBuffersPerShaderStage: 4, maxComputeWorkgroupStorageSize: 16384 };

export const LIMIT_PRESETS: Readonly<Record<string, TargetLimits>> = { webgpu: DEFAULT_LIMITS, compat: COMPAT_LIMITS };

export interface LowerContext {
  readonly node: Node;
  readonly opset: number;
  readonly inputs: readonly (LowerTensor | undefined)[];
  readonly outputs: readonly LowerTensor[];
  /** activation to apply before storing outputs (only when the op declares fusesActivation) */
  readonly activation?: FusedActivation;
  readonly limits: TargetLimits;
  /** Append a dispatch. Kernels of one node run in the order they are added. */
  kernel(spec: KernelSpec): void;
  /** Register a derived constant (re-laid-out or pre-combined weights) and return it. */
  constant(label: string, tensor: ConstTensor): LowerTensor;
  /** A scratch activation tensor that lives only while this node's kernels run. */
  scratch(label: string, type: TensorType): LowerTensor;
}
