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
import { resolve } from 'node:path';
import { z } from 'zod';
import { fail } from '../errors.js';
import { readBundleFileSync } from './safe-read.js';
import { checkBundleSignature, rawPublicKeyBase64 } from './sign.js';
import { compareWithOwnRuntime, foreignRuntimeMessage, importOwnRuntime } from './own-runtime.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { manifestSchema, type FileEntry, type Manifest, type ManifestModel } from '../../schemas/manifest.js';
import { scheduleSchema } from '../../schemas/schedule.js';

export interface VerifyBundleOptions {
  /** refuse (FM_BUNDLE_BOUNDS) a bundle whose schedule allocates more GPU bytes than this */
  maxGpuBytes?: number;
  /** refuse (FM_BUNDLE_BOUNDS) a bundle a run of which dispatches more workgroups than this */
  maxWorkgroupsPerRun?: number;
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
  /** GPU bytes loading it allocates (buffers, textures, readback), at most its declared peak */
  gpuBytes: number;
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
  return (await runtime.verifyBundle(dir, { limits: options.limits, trustedKeys, maxGpuBytes: options.maxGpuBytes, maxWorkgroupsPerRun: options.maxWorkgroupsPerRun })) as VerifyReport;
}

async function readManifest(dir: string): Promise<Manifest> {
  const bytes = await readBundleFile(dir, MANIFEST, MAX_MANIFEST_BYTES);
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
  if (entry.size > MAX_WHOLE_FILE_BYTES) fail('FM_BUNDLE_BOUNDS', `${entry.path} declares ${entry.size} bytes; files read whole may have at most ${MAX_WHOLE_FILE_BYTES}`);
  const bytes = await readBundleFile(dir, entry.path);
  if (bytes.length !== entry.size) {
    fail('FM_BUNDLE_HASH', `${entry.path} has ${bytes.length} bytes, the manifest says ${entry.size} (truncated or replaced)`);
  }
  const actual = createHash('sha256').update(bytes).digest('hex');
  // the digest of what was read is never told: through a hard link (safe-read.ts) the bytes may be a file's elsewhere
  if (actual !== entry.sha256) fail('FM_BUNDLE_HASH', `${entry.path} does not have the sha256 the manifest says, ${entry.sha256} (tampered or corrupt)`);
  return bytes;
}

/** Bundle files read whole here: capped (the runtime's caps), regular files only, no final symlink. */
const MAX_WHOLE_FILE_BYTES = 64 << 20;

async function readBundleFile(dir: string, path: string, cap = MAX_WHOLE_FILE_BYTES): Promise<Buffer> {
  return readBundleFileSync(dir, path, { maxBytes: cap });
}

function parseJson(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    fail('FM_BUNDLE_INVALID', `${file} is not valid UTF-8 JSON: ${(error as Error).message}`, error);
  }
}

/** the issues a refusal lists: a hostile schedule may hold millions */
const MAX_REPORTED_ISSUES = 5;

function parseWith<T>(schema: z.ZodType<T>, value: unknown, file: string): T {
  let result: ReturnType<typeof schema.safeParse>;
  try {
    result = schema.safeParse(value);
  } catch (error) {
    // zod collects every issue; millions of them overflow its stack
    if (error instanceof RangeError) fail('FM_BUNDLE_INVALID', `${file} does not match the bundle format (too many violations to list)`, error);
    throw error;
  }
  if (!result.success) {
    const { issues } = result.error;
    const shown = z.prettifyError(new z.ZodError(issues.slice(0, MAX_REPORTED_ISSUES)));
    const more = issues.length > MAX_REPORTED_ISSUES ? `\n(and ${issues.length - MAX_REPORTED_ISSUES} more)` : '';
    fail('FM_BUNDLE_INVALID', `${file} does not match the bundle format:\n${shown}${more}`);
  }
  return result.data;
}
