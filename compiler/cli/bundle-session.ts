/**
 * Opens a bundle with this package's own runtime (bundle/own-runtime.ts: the code every bundle's
 * runtime.js is generated from, never the bundle's copy, which an attacker may have rewritten), on a
 * Dawn device created here with the limits the manifest requires.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { FlashmemError } from '../errors.js';
import type { Manifest } from '../../schemas/manifest.js';
import { compareWithOwnRuntime, foreignRuntimeMessage, importOwnRuntime } from '../bundle/own-runtime.js';
import { createNodeDevice } from '../target/webgpu.js';
import type { NumericArray } from './npy.js';

export interface RuntimeStats {
  loadMs: number;
  lastRunMs: number;
  runs: number;
  peakGpuBytes: number;
  liveGpuBytes: number;
  [key: string]: unknown;
}

export interface RuntimeSession {
  run(inputs: Record<string, NumericArray>): Promise<Record<string, NumericArray>>;
  run(model: string, inputs: Record<string, NumericArray>): Promise<Record<string, NumericArray>>;
  stats(): RuntimeStats;
  dispose(): void;
}

/** loadBundle options of the generated runtime (runtime-template/runtime.ts LoadOptions) besides the device */
export interface RuntimeLoadOptions {
  streamedWeights?: 'memory' | 'storage';
  readAheadBytes?: number;
  gpuTimeline?: boolean;
  uploads?: 'queue' | 'mapped';
  readFile?: (path: string, range?: { offset: number; length: number }) => Promise<Uint8Array>;
  /** raw Ed25519 public keys, base64: the bundle must be signed by one (runtime-template/signature.ts) */
  trustedKeys?: string[];
  runTimeoutMs?: number;
  maxGpuBytes?: number;
}


export function readManifest(bundleDir: string): Manifest {
  try {
    return JSON.parse(readFileSync(join(bundleDir, 'manifest.json'), 'utf8')) as Manifest;
  } catch (e) {
    throw new FlashmemError('FM_BUNDLE_INVALID', `${bundleDir} has no readable manifest.json: ${(e as Error).message}`);
  }
}

export interface OpenedBundle {
  session: RuntimeSession;
  manifest: Manifest;
  device: GPUDevice;
  ownsDevice: boolean;
  /** the bundle's runtime.js differs from this flashmemc's (never executed either way), with the message to show */
  foreignRuntime?: string;
}

/** Opens a bundle; creates a device for it unless `device` (shared, e.g. by tests) is given. */
export async function openBundle(
  bundleDir: string, options: { backend?: string; device?: GPUDevice; load?: RuntimeLoadOptions } = {},
): Promise<OpenedBundle> {
  const manifest = readManifest(bundleDir);
  const runtime = await importOwnRuntime();
  const device = options.device ?? (await createNodeDevice({ backend: options.backend, limits: manifest.requiredLimits })).device;
  try {
    const session = (await runtime.loadBundle(resolve(bundleDir), { ...options.load, device })) as RuntimeSession;
    return { session, manifest, device, ownsDevice: !options.device, foreignRuntime: foreignRuntimeOf(bundleDir) };
  } catch (error) {
    if (!options.device) device.destroy();
    throw error;
  }
}

/** The foreign-runtime message when the bundle's runtime.js (already hash-checked by loadBundle) is not this flashmemc's; undefined when it is. */
function foreignRuntimeOf(bundleDir: string): string | undefined {
  let bytes: Buffer;
  try {
    bytes = readFileSync(join(bundleDir, 'runtime.js'));
  } catch {
    return `${bundleDir}/runtime.js could not be read; the bundle ran with flashmemc's own runtime`;
  }
  const comparison = compareWithOwnRuntime(bytes);
  return comparison.foreign ? foreignRuntimeMessage(bundleDir, comparison) : undefined;
}
