/**
 * Opens a bundle with this package's own runtime (bundle/own-runtime.ts: the code every bundle's
 * runtime.js is generated from, never the bundle's copy, which an attacker may have rewritten), on a
 * Dawn device created here with the limits the manifest requires.
 */
import { resolve } from 'node:path';
import { z } from 'zod';
import { fail, quoteName } from '../errors.js';
import { readBundleFileSync } from '../bundle/safe-read.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { LIMIT_NAME, manifestSchema, type Manifest } from '../../schemas/manifest.js';
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


/** as the runtime: a manifest lists files and signatures only */
const MAX_MANIFEST_BYTES = 16 << 20;
/** as the runtime's cap on files read whole */
const MAX_RUNTIME_BYTES = 64 << 20;

/**
 * manifest.json of a bundle folder, read as the runtime reads it (a regular file inside the folder,
 * no symlinks: compiler/bundle/safe-read.ts) and checked before anything uses it: format and
 * version first (FM_BUNDLE_VERSION), then the schema (FM_BUNDLE_INVALID), so that a hostile
 * manifest never reaches device creation (requiredLimits) unchecked.
 */
export function readManifest(bundleDir: string): Manifest {
  const json = parseManifestJson(readBundleFileSync(bundleDir, 'manifest.json', { maxBytes: MAX_MANIFEST_BYTES }));
  const header = (typeof json === 'object' && json !== null ? json : {}) as { format?: unknown; formatVersion?: unknown; requiredLimits?: unknown };
  if (header.format !== 'flashmemc-bundle') {
    fail('FM_BUNDLE_VERSION', `manifest.json has format ${shortJson(header.format)}, not "flashmemc-bundle": ${quoteName(bundleDir)} is not a flashmemc bundle`);
  }
  if (header.formatVersion !== FORMAT_VERSION) {
    fail('FM_BUNDLE_VERSION', `the bundle has format version ${shortJson(header.formatVersion)}, this flashmemc reads version ${FORMAT_VERSION}: recompile the model`);
  }
  // zod drops a "__proto__" key of a record silently; the name check sees every own key
  const limitNames = typeof header.requiredLimits === 'object' && header.requiredLimits !== null ? Object.keys(header.requiredLimits) : [];
  const badLimit = limitNames.find((name) => !LIMIT_NAME.test(name));
  if (badLimit !== undefined) fail('FM_BUNDLE_INVALID', `manifest.json: requiredLimits names ${quoteName(badLimit)}, which is not a WebGPU limit`);
  const parsed = manifestSchema.safeParse(json);
  if (!parsed.success) fail('FM_BUNDLE_INVALID', `manifest.json does not match the bundle format:\n${z.prettifyError(parsed.error)}`);
  return parsed.data;
}

function parseManifestJson(bytes: Uint8Array): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    fail('FM_BUNDLE_INVALID', `manifest.json is not valid UTF-8 JSON: ${(error as Error).message.slice(0, 200)}`, error);
  }
}

function shortJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
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
  bundleDir: string, options: { backend?: string; dawnToggles?: readonly string[]; device?: GPUDevice; load?: RuntimeLoadOptions } = {},
): Promise<OpenedBundle> {
  const manifest = readManifest(bundleDir);
  const runtime = await importOwnRuntime();
  const device = options.device ?? (await createNodeDevice({ backend: options.backend, dawnToggles: options.dawnToggles, limits: manifest.requiredLimits })).device;
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
    bytes = readBundleFileSync(bundleDir, 'runtime.js', { maxBytes: MAX_RUNTIME_BYTES });
  } catch {
    return `${bundleDir}/runtime.js could not be read; the bundle ran with flashmemc's own runtime`;
  }
  const comparison = compareWithOwnRuntime(bytes);
  return comparison.foreign ? foreignRuntimeMessage(bundleDir, comparison) : undefined;
}
