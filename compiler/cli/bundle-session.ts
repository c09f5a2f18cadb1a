/**
 * Opens a bundle with the bundle's own generated runtime (runtime.js), on a Dawn device created
 * here with the limits the manifest requires: the CLI runs exactly what an app would ship.
 */
import { readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { FlashmemError } from '../errors.js';
import type { Manifest } from '../../schemas/manifest.js';
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
}

interface RuntimeModule {
  loadBundle(dir: string, options?: RuntimeLoadOptions & { device?: GPUDevice }): Promise<RuntimeSession>;
}

export function readManifest(bundleDir: string): Manifest {
  try {
    return JSON.parse(readFileSync(join(bundleDir, 'manifest.json'), 'utf8')) as Manifest;
  } catch (e) {
    throw new FlashmemError('FM_BUNDLE_INVALID', `${bundleDir} has no readable manifest.json: ${(e as Error).message}`);
  }
}

/** Opens a bundle; creates a device for it unless `device` (shared, e.g. by tests) is given. */
export async function openBundle(
  bundleDir: string, options: { backend?: string; device?: GPUDevice; load?: RuntimeLoadOptions } = {},
): Promise<{ session: RuntimeSession; manifest: Manifest; device: GPUDevice; ownsDevice: boolean }> {
  const manifest = readManifest(bundleDir);
  const runtime = (await import(pathToFileURL(resolve(bundleDir, 'runtime.js')).href)) as RuntimeModule;
  const device = options.device ?? (await createNodeDevice({ backend: options.backend, limits: manifest.requiredLimits })).device;
  const session = await runtime.loadBundle(resolve(bundleDir), { ...options.load, device });
  return { session, manifest, device, ownsDevice: !options.device };
}
