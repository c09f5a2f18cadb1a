/**
 * The contract every operator family implements (one file per family in compiler/ops/):
 * a shape rule, an optional CPU evaluator used by constant folding, a cost class used by the
 * load scheduler, and a lowering that emits shape-specialised WGSL kernels.
 */
import type { ConstTensor, FusedActivation, Node, TensorType } from '../ir/types.js';
import type { KernelSpec, LowerTensor, TextureShape } from '../kernel/types.js';
import type { KernelChoices, TargetLimits } from '../target/limits.js';

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
  /**
   * Set where the buffer layout has a workgroup-tiled kernel under these kernel choices (blocked
   * GEMM, split-K gemv) that the profile's texture/buffer ratio does not price: that ratio was
   * measured against the register-tiled buffer kernel, which is what the texture kernel mirrors.
   */
  bufferKernelIsTiled?(choices: KernelChoices): boolean;
}

/** Where a weight lives on the GPU: a storage-buffer range, or an rgba32float texture_2d_array. */
export type WeightLayout = 'buffer' | 'texture';

/** The layout chosen for one node's texture-capable weight (passes/select-weight-layout.ts decides, lowering obeys). */
export interface LayoutDecision {
  layout: WeightLayout;
  costKind: TextureWeightCandidate['costKind'];
  /** the texture geometry, when layout is 'texture' */
  texture?: TextureShape;
  /** why, for --dump-ir and inspect */
  reason: string;
}

/** node name -> decision, for every node with a texture-capable weight */
export type LayoutDecisions = Map<string, LayoutDecision>;

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
  readonly kernelChoices?: KernelChoices;
  /** Append a dispatch. Kernels of one node run in the order they are added. */
  kernel(spec: KernelSpec): void;
  /** Register a derived constant (re-laid-out or pre-combined weights) and return it. */
  constant(label: string, tensor: ConstTensor): LowerTensor;
  /** Register a derived constant stored as a texture: `texels` holds layers x height x width x 4 values. */
  textureConstant?(label: string, shape: TextureShape, texels: Float32Array): LowerTensor;
  /** A scratch activation tensor that lives only while this node's kernels run. */
  scratch(label: string, type: TensorType): LowerTensor;
}
