/**
 * manifest.json: what a bundle contains and what it needs from the device. Every other file of
 * the bundle is listed with its sha256; the runtime verifies them before any GPU work.
 */
import { z } from 'zod';
import { FORMAT_VERSION, bundlePath, dtype, sha256, uint } from './common.js';

export const tensorSignature = z.object({
  name: z.string(),
  dtype,
  shape: z.array(uint).max(16),
}).strict();

export const modelEntry = z.object({
  name: z.string().min(1),
  inputs: z.array(tensorSignature),
  outputs: z.array(tensorSignature),
  weightBytes: uint,
}).strict();

/**
 * Weight shards also carry a sha256 per fixed-size block, so the runtime can read and verify any
 * byte range (a streamed weight, an HTTP Range request) without reading the whole shard.
 */
export const blockHashes = z.object({
  /** bytes per block (a power of two); the last block may be shorter */
  size: z.number().int().min(4096).max(1 << 30).refine((n) => (n & (n - 1)) === 0, 'block size must be a power of two'),
  sha256: z.array(sha256),
}).strict();

/**
 * A WebGPU limit name (maxBufferSize, minStorageBufferOffsetAlignment...): max* maxima and min*
 * alignments. The pattern keeps out names of Object.prototype members ("toString", "__proto__",
 * "constructor"), which code looking limits up by name would find on every object, and bounds
 * the length, since messages name the limits.
 */
export const LIMIT_NAME = /^(max|min)[A-Z][A-Za-z0-9]{0,60}$/;
export const limitName = z.string().regex(LIMIT_NAME);

export const fileEntry = z.object({
  path: bundlePath,
  kind: z.enum(['schedule', 'shader', 'weights', 'runtime', 'types']),
  size: uint,
  sha256,
  blocks: blockHashes.optional(),
}).strict();

export const manifestSchema = z.object({
  format: z.literal('flashmemc-bundle'),
  formatVersion: z.literal(FORMAT_VERSION),
  generator: z.object({ name: z.literal('flashmemc'), version: z.string() }).strict(),
  models: z.array(modelEntry).min(1),
  /** WebGPU limits the schedule needs, requested at device creation */
  requiredLimits: z.record(limitName, uint),
  requiredFeatures: z.array(z.string()),
  files: z.array(fileEntry),
}).strict();

export type Manifest = z.infer<typeof manifestSchema>;
export type ManifestModel = z.infer<typeof modelEntry>;
export type FileEntry = z.infer<typeof fileEntry>;
export type BlockHashes = z.infer<typeof blockHashes>;
