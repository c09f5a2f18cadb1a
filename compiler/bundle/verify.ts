/**
 * Verifies a bundle folder without a GPU, the way an app would load it, in two layers:
 * 1. here, with the compiler's zod schemas: manifest.json (format and version first), the sha256 of
 *    runtime.js and schedule.json, and schedule.json; then runtime.js must be byte-identical to the
 *    runtime this flashmemc generates for the format version, or the bundle is refused as foreign
 *    (FM_BUNDLE_FOREIGN): its author may have rewritten it and recomputed every hash;
 * 2. this package's own runtime (own-runtime.ts), through its verifyBundle(): every check loadBundle
 *    makes before GPU work (cross references, bounds of every step against the target limits) and
 *    the sha256 of every file.
 * The bundle's runtime.js is read and compared, never imported.
 */
import { createHash, type KeyObject } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { z } from 'zod';
import { fail } from '../errors.js';
import { checkBundleSignature, rawPublicKeyBase64 } from './sign.js';
import { compareWithOwnRuntime, foreignRuntimeMessage, importOwnRuntime } from './own-runtime.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { manifestSchema, type FileEntry, type Manifest, type ManifestModel } from '../../schemas/manifest.js';
import { scheduleSchema } from '../../schemas/schedule.js';

export interface VerifyBundleOptions {
  /** refuse the bundle unless signature.json is by one of these Ed25519 public keys (bundle/sign.ts parsePublicKey), checked before anything else */
  trustedKeys?: readonly KeyObject[];
  /** WebGPU limits to check the schedule against; default: WebGPU's defaults raised to the manifest's requiredLimits */
  limits?: Record<string, number>;
}

export interface VerifyReport {
  models: ManifestModel[];
  /** files verified, manifest.json included */
  files: number;
  /** their bytes */
  bytes: number;
}

const MANIFEST = 'manifest.json';
/** as the runtime: a manifest lists files and signatures only */
const MAX_MANIFEST_BYTES = 16 << 20;

export async function verifyBundleDir(bundleDir: string, options: VerifyBundleOptions = {}): Promise<VerifyReport> {
  const dir = resolve(bundleDir);
  if (options.trustedKeys) await checkBundleSignature(dir, options.trustedKeys);
  const manifest = await readManifest(dir);
  const runtimeEntry = onlyFile(manifest, 'runtime', 'runtime.js');
  const runtimeBytes = await readHashed(dir, runtimeEntry);
  const scheduleEntry = onlyFile(manifest, 'schedule', 'schedule.json');
  parseWith(scheduleSchema, parseJson(await readHashed(dir, scheduleEntry), scheduleEntry.path), scheduleEntry.path);
  const comparison = compareWithOwnRuntime(runtimeBytes);
  if (comparison.foreign) fail('FM_BUNDLE_FOREIGN', foreignRuntimeMessage(dir, comparison));
  const runtime = await importOwnRuntime();
  // the runtime checks the signature again over the manifest bytes it reads itself: no swap in between
  const trustedKeys = options.trustedKeys?.map((key) => rawPublicKeyBase64(key));
  return (await runtime.verifyBundle(dir, { limits: options.limits, trustedKeys })) as VerifyReport;
}

async function readManifest(dir: string): Promise<Manifest> {
  const bytes = await readBundleFile(dir, MANIFEST);
  if (bytes.length > MAX_MANIFEST_BYTES) fail('FM_BUNDLE_INVALID', `${MANIFEST} is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const json = parseJson(bytes, MANIFEST);
  const header = (typeof json === 'object' && json !== null ? json : {}) as { format?: unknown; formatVersion?: unknown };
  if (header.format !== 'flashmemc-bundle') {
    fail('FM_BUNDLE_VERSION', `${MANIFEST} has format ${JSON.stringify(header.format)}, not "flashmemc-bundle": ${dir} is not a flashmemc bundle`);
  }
  if (header.formatVersion !== FORMAT_VERSION) {
    fail('FM_BUNDLE_VERSION', `the bundle has format version ${JSON.stringify(header.formatVersion)}, this flashmemc reads version ${FORMAT_VERSION}: recompile the model`);
  }
  return parseWith(manifestSchema, json, MANIFEST);
}

function onlyFile(manifest: Manifest, kind: FileEntry['kind'], path: string): FileEntry {
  const entries = manifest.files.filter((entry) => entry.kind === kind);
  if (entries.length !== 1 || entries[0]!.path !== path) {
    fail('FM_BUNDLE_INVALID', `${MANIFEST} must list exactly one ${kind} file, ${path}; it lists ${entries.map((e) => JSON.stringify(e.path)).join(', ') || 'none'}`);
  }
  return entries[0]!;
}

async function readHashed(dir: string, entry: FileEntry): Promise<Buffer> {
  const bytes = await readBundleFile(dir, entry.path);
  if (bytes.length !== entry.size) {
    fail('FM_BUNDLE_HASH', `${entry.path} has ${bytes.length} bytes, the manifest says ${entry.size} (truncated or replaced)`);
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  if (actual !== entry.sha256) fail('FM_BUNDLE_HASH', `${entry.path} has sha256 ${actual}, the manifest says ${entry.sha256} (tampered or corrupt)`);
  return bytes;
}

async function readBundleFile(dir: string, path: string): Promise<Buffer> {
  try {
    return await readFile(join(dir, path));
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    if (code === 'ENOENT') fail('FM_BUNDLE_INVALID', `bundle file ${path} is missing (${join(dir, path)})`, error);
    fail('FM_IO', `reading bundle file ${join(dir, path)} failed: ${(error as Error).message}`, error);
  }
}

function parseJson(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    fail('FM_BUNDLE_INVALID', `${file} is not valid UTF-8 JSON: ${(error as Error).message}`, error);
  }
}

function parseWith<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  const result = schema.safeParse(value);
  if (!result.success) fail('FM_BUNDLE_INVALID', `${file} does not match the bundle format:\n${z.prettifyError(result.error)}`);
  return result.data;
}
