/**
 * The target's limits as they apply to a kernel, checked in one place: every built kernel goes
 * through checkKernelLimits when lowering records it, and templates that can split work call
 * bindingFits / checkBindable before choosing how to split.
 */
import { fail } from '../errors.js';
import { numElements, type TensorType } from '../ir/types.js';
import { textureLimits, type TargetLimits } from '../target/limits.js';
import type { KernelSpec, LowerTensor } from './types.js';

/** every tensor element takes 4 bytes on the GPU (f32 or i32) */
export const GPU_ELEMENT_BYTES = 4;

/** bytes a tensor of this type takes in a storage binding */
export function bindingBytes(type: TensorType): number {
  return numElements(type.shape) * GPU_ELEMENT_BYTES;
}

export function bindingFits(type: TensorType, limits: TargetLimits): boolean {
  return bindingBytes(type) <= limits.maxStorageBufferBindingSize;
}

/** Refuses (FM_LIMIT, naming `where`) a kernel that breaks one of the target's limits. */
export function checkKernelLimits(where: string, spec: KernelSpec, limits: TargetLimits): void {
  const at = `${where} kernel ${spec.label}`;
  const storage = spec.bindings.filter((b) => !b.texture);
  const textures = spec.bindings.length - storage.length;
  if (storage.length > limits.maxStorageBuffersPerShaderStage) {
    fail('FM_LIMIT', `${at} binds ${storage.length} storage buffers; the target allows ${limits.maxStorageBuffersPerShaderStage}`);
  }
  if (textures > textureLimits(limits).maxSampledTexturesPerShaderStage) {
    fail('FM_LIMIT', `${at} binds ${textures} textures; the target allows ${textureLimits(limits).maxSampledTexturesPerShaderStage}`);
  }
  for (const b of storage) {
    const bytes = bindingBytes(b.type);
    if (bytes > limits.maxStorageBufferBindingSize) {
      fail('FM_LIMIT', `${at} binds a tensor [${b.type.shape}] of ${bytes} bytes; the target's maxStorageBufferBindingSize is ${limits.maxStorageBufferBindingSize}`);
    }
  }
  const [x, y, z] = spec.workgroupSize;
  if (x * y * z > limits.maxComputeInvocationsPerWorkgroup || x > limits.maxComputeWorkgroupSizeX) {
    fail('FM_LIMIT', `${at} uses workgroups of ${x}x${y}x${z}; the target allows ${limits.maxComputeInvocationsPerWorkgroup} invocations (x <= ${limits.maxComputeWorkgroupSizeX})`);
  }
  if (spec.workgroupBytes > limits.maxComputeWorkgroupStorageSize) {
    fail('FM_LIMIT', `${at} needs ${spec.workgroupBytes} bytes of workgroup memory; the target allows ${limits.maxComputeWorkgroupStorageSize}`);
  }
  if (spec.loopTrips !== undefined && spec.loopTrips >= DEVICE_LOOP_LIMIT) {
    fail('FM_LIMIT', `${at} would run ${spec.loopTrips} loop iterations in one invocation; llvmpipe stops an invocation's loops after ${DEVICE_LOOP_LIMIT} in all, which would give wrong results, and this kernel cannot split its loop yet`);
  }
  if (spec.workgroups.some((n) => n > limits.maxComputeWorkgroupsPerDimension)) {
    fail('FM_LIMIT', `${at} dispatches [${spec.workgroups}] workgroups; the target allows ${limits.maxComputeWorkgroupsPerDimension} per dimension`);
  }
}

/**
 * Refuses (FM_LIMIT) tensors a kernel must bind whole but that exceed one storage binding, for
 * templates that cannot split them; `what to do` is the caller's advice.
 */
export function checkBindable(where: string, tensors: readonly LowerTensor[], limits: TargetLimits, advice: string): void {
  for (const t of tensors) {
    const bytes = bindingBytes(t.type);
    if (bytes > limits.maxStorageBufferBindingSize) {
      fail('FM_LIMIT', `${where}: a [${t.type.shape}] tensor (${bytes} bytes) exceeds maxStorageBufferBindingSize (${limits.maxStorageBufferBindingSize} bytes); ${advice}`);
    }
  }
}

/**
 * The most loop iterations a kernel lets one invocation run, all its loops together. Mesa's
 * llvmpipe ends an invocation's loops after 65,535 iterations in total (one counter per shader,
 * shared by nested and consecutive loops: measured here, a 300x300 nest stops at 65,101), which
 * would silently truncate a long reduction. Kernels whose loop counts grow with a dimension
 * (MatMul/Gemm K, reduced axes, normalised rows, softmax lengths) split that dimension so each
 * invocation stays under this bound, leaving room for the loops a kernel also runs (a carrier's
 * copy loop, reduction trees).
 */
export const MAX_LOOP_TRIPS = 16384;

/** llvmpipe's own count (LP_MAX_TGSI_LOOP_ITERATIONS): a kernel declaring more trips would return wrong results there. */
export const DEVICE_LOOP_LIMIT = 65535;
