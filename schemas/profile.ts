/**
 * A device profile (FlashMem's on-device profiling, issue 3): per operator class, a kernel latency
 * model fitted from micro-benchmarks, the extra time a kernel pays per byte it carries alongside its
 * own work, the latency threshold of the class and the resulting load capacity, plus the host->GPU
 * upload bandwidth. `flashmemc profile` writes one; `flashmemc compile --profile` plans with it.
 *
 * A kernel's load capacity in bytes is
 *   capacityBytes = capacityBytesPerUs * predictedUs,   predictedUs = fixedUs + perByteUs * bytes + perFlopUs * flops
 * where capacityBytesPerUs = thresholdRatio / carryUsPerByte: the bytes whose carry cost stays within
 * thresholdRatio times the kernel's own latency.
 */
import { z } from 'zod';
import { uint } from './common.js';

export const PROFILE_FORMAT_VERSION = 1;

/** the operator classes that emit kernels (compiler/ops/op.ts CostClass, without 'view') */
export const PROFILED_CLASSES = ['elementwise', 'data-movement', 'reusable', 'hierarchical'] as const;
export type ProfiledClass = (typeof PROFILED_CLASSES)[number];

const nonNegative = z.number().finite().min(0);

/** absolute relative error |predicted - measured| / measured over a set of kernels */
export const errorSummary = z.object({
  count: uint,
  meanAbsRelError: nonNegative,
  maxAbsRelError: nonNegative,
}).strict();

/** t_us = fixedUs + perByteUs * bytes + perFlopUs * flops (bytes: all bound tensors; flops: compiler/profile/features.ts) */
export const latencyModel = z.object({
  fixedUs: nonNegative,
  perByteUs: nonNegative,
  perFlopUs: nonNegative,
}).strict();

export const classProfile = z.object({
  latency: latencyModel,
  /** FlashMem's latency threshold: carried bytes may slow the kernel by at most this fraction (3 = +300%) */
  thresholdRatio: nonNegative,
  /** measured extra kernel time per carried byte (fitted over a sweep of carried bytes) */
  carryUsPerByte: z.number().finite().positive(),
  /** thresholdRatio / carryUsPerByte: capacity in bytes per microsecond of predicted kernel latency */
  capacityBytesPerUs: nonNegative,
  /** op types and number of kernels measured for the fit */
  ops: z.array(z.string()).min(1),
  fitSamples: uint,
  /** latency prediction error on this class's held-out kernels */
  heldOut: errorSummary,
}).strict().refine(
  (c) => Math.abs(c.capacityBytesPerUs * c.carryUsPerByte - c.thresholdRatio) <= 1e-6 * Math.max(1, c.thresholdRatio),
  'capacityBytesPerUs must equal thresholdRatio / carryUsPerByte',
);

/** Ratio of kernel latency with weights in the 2.5D texture layout to the buffer layout (filled by a registered measurement). */
export const layoutCost = z.object({
  conv: z.object({ textureOverBuffer: z.number().finite().positive() }).strict().optional(),
  matmul: z.object({ textureOverBuffer: z.number().finite().positive() }).strict().optional(),
}).strict();

/**
 * Copy commands from host-visible (mapped) staging into GPU buffers, as the runtime's mapped
 * uploads record them between dispatches (measured by bench/upload-bandwidth.mjs). On a discrete
 * GPU behind one WebGPU queue they do not overlap compute: the load plan of `--stream-path copies`
 * prices every streamed byte and copy with them.
 */
export const mappedCopies = z.object({
  /** bandwidth of large copies, bytes per millisecond */
  bytesPerMs: z.number().finite().positive(),
  /** fixed time each copy adds between two dispatches, milliseconds */
  overheadMs: nonNegative,
}).strict();

export const deviceInfo = z.object({
  /** Dawn backend the profile was measured through, e.g. 'opengles', 'vulkan' */
  backend: z.string().min(1),
  vendor: z.string(),
  architecture: z.string(),
  device: z.string(),
  description: z.string(),
}).strict();

export const deviceProfileSchema = z.object({
  format: z.literal('flashmemc-device-profile'),
  formatVersion: z.literal(PROFILE_FORMAT_VERSION),
  /** short name recorded in compile reports and schedules, e.g. 'llvmpipe' */
  name: z.string().regex(/^[A-Za-z0-9_.-]{1,64}$/),
  device: deviceInfo,
  /** ISO 8601 time of the measurement */
  measuredAt: z.iso.datetime(),
  generator: z.object({ name: z.literal('flashmemc'), version: z.string() }).strict(),
  method: z.object({
    quick: z.boolean(),
    /** sweeps over every kernel; each kernel's latency is the median over sweeps */
    passes: uint.min(1),
    /** batch latency = wall time of many repeated dispatches in one submission / their number; median of `repeats` batches per sweep */
    repeats: uint.min(1),
    batchTargetMs: z.number().positive(),
  }).strict(),
  /** host->GPU bandwidth of queue.writeBuffer, bytes per millisecond (prices stalls in the load plan) */
  uploadBytesPerMs: z.number().finite().positive(),
  classes: z.object({
    elementwise: classProfile,
    'data-movement': classProfile,
    reusable: classProfile,
    hierarchical: classProfile,
  }).strict(),
  /** latency prediction error over every held-out kernel (never used in fitting) */
  heldOut: errorSummary,
  /** prediction error of latency while carrying bytes (model latency + carry cost) on held-out kernels */
  heldOutCarried: errorSummary,
  layoutCost: layoutCost.optional(),
  copies: mappedCopies.optional(),
}).strict();

export type DeviceProfile = z.infer<typeof deviceProfileSchema>;
export type ClassProfile = z.infer<typeof classProfile>;
export type LatencyModel = z.infer<typeof latencyModel>;
export type ErrorSummary = z.infer<typeof errorSummary>;
export type LayoutCost = z.infer<typeof layoutCost>;
export type MappedCopies = z.infer<typeof mappedCopies>;
