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
  /**
   * Ops whose constant weight can be stored as a 2.5D texture (Conv, MatMul, Gemm): its rows and
   * reduction length, or undefined where this node's weight cannot (runtime weight, integer type...).
   */
  textureWeight?(ctx: ShapeContext): TextureWeightCandidate | undefined;
}

/** A weight that the layout-selection pass may store as a texture: `rows` rows of `reduction` values. */
export interface TextureWeightCandidate {
  /** which layout cost of the device profile prices it */
  costKind: 'conv' | 'matmul';
  /** output channels (Conv) or output columns N (MatMul/Gemm) */
  rows: number;
  /** values reduced per output: C/group * kernel taps (Conv) or K (MatMul/Gemm) */
  reduction: number;
}

/** Where a weight lives on the GPU: a storage-buffer range, or an rgba32float texture_2d_array. */
export type WeightLayout = 'buffer' | 'texture';

/** Texture geometry of a weight (see compiler/codegen/texture-layout.ts): width in texels. */
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
  /** texture limits (absent in older limits files): WebGPU's defaults apply, see textureLimits */
  maxTextureDimension2D?: number;
  maxTextureArrayLayers?: number;
  maxSampledTexturesPerShaderStage?: number;
}

/** The texture limits of a target, WebGPU's core defaults where the target does not name them. */
export function textureLimits(limits: TargetLimits): Required<Pick<TargetLimits, 'maxTextureDimension2D' | 'maxTextureArrayLayers' | 'maxSampledTexturesPerShaderStage'>> {
  return {
    maxTextureDimension2D: limits.maxTextureDimension2D ?? 8192,
    maxTextureArrayLayers: limits.maxTextureArrayLayers ?? 256,
    maxSampledTexturesPerShaderStage: limits.maxSampledTexturesPerShaderStage ?? 16,
  };
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
  maxTextureDimension2D: 8192,
  maxTextureArrayLayers: 256,
  maxSampledTexturesPerShaderStage: 16,
};

/** WebGPU compatibility-mode defaults (e.g. OpenGL ES devices): at most 4 storage buffers per stage. */
export const COMPAT_LIMITS: TargetLimits = { ...DEFAULT_LIMITS, maxStorageBuffersPerShaderStage: 4, maxComputeWorkgroupStorageSize: 16384, maxTextureDimension2D: 4096 };

export const LIMIT_PRESETS: Readonly<Record<string, TargetLimits>> = { webgpu: DEFAULT_LIMITS, compat: COMPAT_LIMITS };

/**
 * Gemv-shaped MatMul/Gemm (M <= 4, long K): 'split-k' spreads K over a workgroup and reduces in
 * workgroup memory (a real GPU needs the parallelism); 'tiled' keeps one invocation per 4 columns
 * over all of K, faster on software rasterisers where barriers cost coroutine switches.
 */
export type GemvKernel = 'split-k' | 'tiled';

export interface LowerContext {
  readonly node: Node;
  readonly opset: number;
  readonly inputs: readonly (LowerTensor | undefined)[];
  readonly outputs: readonly LowerTensor[];
  /** activation to apply before storing outputs (only when the op declares fusesActivation) */
  readonly activation?: FusedActivation;
  readonly limits: TargetLimits;
  /** the layout the layout-selection pass chose for this node's weight ('buffer' when absent) */
  readonly weightLayout?: WeightLayout;
  /** the kernel for few rows x long K (ops/matmul.ts): 'split-k' (default) or 'tiled' for software rasterisers */
  readonly gemvKernel?: GemvKernel;
  /** Append a dispatch. Kernels of one node run in the order they are added. */
  kernel(spec: KernelSpec): void;
  /** Register a derived constant (re-laid-out or pre-combined weights) and return it. */
  constant(label: string, tensor: ConstTensor): LowerTensor;
  /** Register a derived constant stored as a texture: `texels` holds layers x height x width x 4 values. */
  textureConstant?(label: string, shape: TextureShape, texels: Float32Array): LowerTensor;
  /** A scratch activation tensor that lives only while this node's kernels run. */
  scratch(label: string, type: TensorType): LowerTensor;
}
