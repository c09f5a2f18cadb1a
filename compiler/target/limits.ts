/**
 * The target device as the compiler sees it: its WebGPU limits (presets, or a JSON file of
 * overrides) and the device-dependent choices that follow from its profile.
 */
import { readFileSync } from 'node:fs';
import { FlashmemError } from '../errors.js';
import type { DeviceProfile } from '../../schemas/profile.js';

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
/** MatMul/Gemm with M > 1: 'tiled' (registers only, ops/matmul/tiled.ts) or 'blocked' (workgroup-memory tiles, ops/matmul/blocked.ts) */
export type GemmKernel = 'tiled' | 'blocked';

/** The MatMul/Gemm kernel variants a device profile asks for. */
export interface KernelChoices {
  gemv: GemvKernel;
  gemm: GemmKernel;
  /**
   * Workgroups a product should have to keep the device busy: split-K and blocked kernels whose
   * output blocks are fewer split K across workgroups (partial sums, one extra dispatch). Unset:
   * never (a software rasteriser runs on a few CPU cores, where more workgroups only add work).
   */
  occupancyWorkgroups?: number;
  /**
   * force the blocked GEMM's block instead of choosing by shape (benchmarks, tuning): 4-row and
   * 4-column groups per invocation (1 or 2: 64 or 128 rows/columns) and the K step
   */
  gemmBlock?: { rm: 1 | 2; rn: 1 | 2; bk: 8 | 16 | 32 };
  /** B rows the split-K gemv loads per trip of its K loop (default 4; a real GPU's profile asks for 16) */
  gemvUnroll?: number;
}

/** A real GPU: about 8 resident workgroups of 256 invocations on each of ~132 SMs (H100/H200). */
const GPU_OCCUPANCY_WORKGROUPS = 1024;


/** A preset name or a JSON file whose numeric fields override the default limits. */
export function resolveTargetLimits(spec: string): TargetLimits {
  const preset = LIMIT_PRESETS[spec];
  if (preset) return preset;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(spec, 'utf8'));
  } catch (e) {
    throw new FlashmemError('FM_BAD_ARGUMENT', `--target-limits ${JSON.stringify(spec)} is neither a preset (${Object.keys(LIMIT_PRESETS).join(', ')}) nor a readable JSON file: ${(e as Error).message}`);
  }
  const limits: TargetLimits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof TargetLimits)[]) {
    const value = (parsed as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new FlashmemError('FM_BAD_ARGUMENT', `--target-limits: ${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    limits[key] = value;
  }
  return limits;
}

/**
 * Software rasterisers (llvmpipe, SwiftShader, lavapipe) run a workgroup as loops on CPU cores,
 * where barriers cost coroutine switches and workgroup memory is ordinary memory: the split-K
 * gemv's barriers cost more than its parallelism gains (VGG-19 on llvmpipe: 1.40 s tiled vs 1.67 s
 * split-K per run), and so do the blocked GEMM's. Real GPUs need both.
 */
export function kernelChoicesFor(profile: DeviceProfile): KernelChoices {
  const { device, description, backend } = profile.device;
  const software = /llvmpipe|swiftshader|lavapipe|softpipe/i.test(`${device} ${description} ${backend}`);
  return software ? { gemv: 'tiled', gemm: 'tiled' } : { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: GPU_OCCUPANCY_WORKGROUPS, gemvUnroll: 16 };
}

