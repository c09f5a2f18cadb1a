/**
 * Writes a bundle folder: schedule.json, shaders/<sha256-prefix>.wgsl, weights/<n>.bin,
 * runtime.js + runtime.d.ts, and manifest.json last, listing every other file with its size and
 * sha256. Writing is atomic: everything goes into a fresh sibling temp folder that replaces the
 * output folder only when complete; on failure the output folder is left as it was, and only a
 * folder holding exactly a bundle is ever replaced (output-folder.ts). The bytes are
 * reproducible: no timestamps, fixed key order, 2-space JSON.
 */
import type { KeyObject } from 'node:crypto';
import { SIGNATURE_PATH } from '../../schemas/signature.js';
import { signatureOf } from './sign.js';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { mkdir, open, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { z } from 'zod';
import { fail, quoteName } from '../errors.js';
import { assertOutputReplaceable, ioFailure, type OutputOptions, replaceOutputFolder } from './output-folder.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { manifestSchema, modelEntry, type FileEntry, type Manifest } from '../../schemas/manifest.js';
import { scheduleSchema, type Schedule } from '../../schemas/schedule.js';
import type { BundleContents, ShardSource } from './contents.js';
import { generateRuntime, packageRoot, type GeneratedRuntime } from './runtime-gen.js';
import { shaderPath } from '../schedule/build.js';
import { verifyBundleDir } from './verify.js';

export { shaderPath };

export interface WriteBundleOptions extends OutputOptions {
  /** runtime.js and runtime.d.ts to ship; default: generateRuntime() */
  runtime?: GeneratedRuntime;
  /** sign the bundle: signature.json (bundle/sign.ts) is written with the other files, before the folder appears at outDir */
  signingKey?: KeyObject;
  /**
   * run the runtime's own verifier (verify.ts verifyBundleDir) on the bundle in its temporary
   * folder, before it replaces outDir: a bundle the runtime would refuse is an FM_BUNDLE_SELF_CHECK
   * failure and is never written. The compile drivers set it; fixtures writing hostile bundles do not.
   */
  selfCheck?: boolean;
}

export interface WrittenBundle {
  /** the manifest's file list: every file but manifest.json, sorted by path */
  files: FileEntry[];
  /** bytes of all files of the bundle, manifest.json included */
  totalBytes: number;
}

const MANIFEST = 'manifest.json';
const SCHEDULE = 'schedule.json';
const RUNTIME_JS = 'runtime.js';
const RUNTIME_DTS = 'runtime.d.ts';
const SHADER_PATH = /^shaders\/([0-9a-f]{8,64})\.wgsl$/;
const SHARD_PATH = /^weights\/[A-Za-z0-9_.-]+$/;

export async function writeBundle(outDir: string, contents: BundleContents, options: WriteBundleOptions = {}): Promise<WrittenBundle> {
  // before anything else: a folder that may not be replaced should not cost the contents' checks
  await assertOutputReplaceable(outDir, options);
  const schedule = checkContents(contents);
  const runtime = options.runtime ?? generateRuntime();
  return replaceOutputFolder(outDir, options, async (temp) => {
    const written = await writeFiles(temp, contents, schedule, runtime, options.signingKey);
    if (options.selfCheck) await selfCheck(temp);
    return written;
  });
}

/** The runtime's verifier on the written files; what it refuses is the compiler's bug, not the model's. */
async function selfCheck(dir: string): Promise<void> {
  try {
    await verifyBundleDir(dir);
  } catch (error) {
    if (!(error instanceof Error) || !/^FM_\w+: /.test(error.message)) throw error;
    fail('FM_BUNDLE_SELF_CHECK', `flashmemc's own runtime refuses the bundle this compile produced (a compiler bug; nothing was written): ${error.message}`, error);
  }
}

// ------------------------------------------------------------------------------------ contents

/** Checks that the schedule, the shader sources and the shard sources describe the same files. */
function checkContents(contents: BundleContents): Schedule {
  const schedule = parseOrFail(scheduleSchema, contents.schedule, 'the schedule');
  parseOrFail(z.array(modelEntry).min(1), contents.models, 'the model signatures');
  checkModelNames(contents, schedule);
  checkShaders(contents, schedule);
  checkShards(contents, schedule);
  return schedule;
}

function parseOrFail<T>(schema: z.ZodType<T>, value: unknown, what: string): T {
  const result = schema.safeParse(value);
  if (!result.success) fail('FM_BUNDLE_INVALID', `${what} does not match the bundle format:\n${z.prettifyError(result.error)}`);
  return result.data;
}

function checkModelNames(contents: BundleContents, schedule: Schedule): void {
  const signed = contents.models.map((model) => model.name).sort();
  const scheduled = schedule.models.map((model) => model.model).sort();
  if (new Set(signed).size !== signed.length || signed.join('\0') !== scheduled.join('\0')) {
    fail('FM_BUNDLE_INVALID', `the models with signatures (${signed.map(quoteName).join(', ')}) and the scheduled models (${scheduled.map(quoteName).join(', ')}) must be the same, each once`);
  }
}

function checkShaders(contents: BundleContents, schedule: Schedule): void {
  const listed = new Set(schedule.shaders);
  if (listed.size !== schedule.shaders.length) fail('FM_BUNDLE_INVALID', 'schedule.shaders lists a shader twice');
  for (const path of listed) {
    const source = contents.shaders.get(path);
    if (source === undefined) fail('FM_BUNDLE_INVALID', `schedule.shaders names ${path}, which the bundle contents lack`);
    const hash = SHADER_PATH.exec(path)?.[1];
    if (!hash || !sha256Hex(source).startsWith(hash)) {
      fail('FM_BUNDLE_INVALID', `shader file ${path} is not named by its content's sha256 (expected ${shaderPath(source)}; use shaderPath())`);
    }
  }
  const unlisted = [...contents.shaders.keys()].find((path) => !listed.has(path));
  if (unlisted) fail('FM_BUNDLE_INVALID', `shader ${unlisted} is not in schedule.shaders`);
}

function checkShards(contents: BundleContents, schedule: Schedule): void {
  if (contents.shards.length !== schedule.shards.length) {
    fail('FM_BUNDLE_INVALID', `${contents.shards.length} shard sources for ${schedule.shards.length} shards in schedule.shards`);
  }
  const paths = new Set<string>();
  contents.shards.forEach((source, i) => {
    const declared = schedule.shards[i]!;
    if (source.path !== declared.path || source.size !== declared.size) {
      fail('FM_BUNDLE_INVALID', `shard source ${i} is ${source.path} (${source.size} bytes), schedule.shards[${i}] is ${declared.path} (${declared.size} bytes)`);
    }
    if (!SHARD_PATH.test(source.path)) fail('FM_BUNDLE_INVALID', `shard path ${quoteName(source.path)} must be weights/<name>`);
    if (paths.has(source.path)) fail('FM_BUNDLE_INVALID', `shard ${source.path} is listed twice`);
    paths.add(source.path);
  });
}

// --------------------------------------------------------------------------------------- files

async function writeFiles(dir: string, contents: BundleContents, schedule: Schedule, runtime: GeneratedRuntime, signingKey: KeyObject | undefined): Promise<WrittenBundle> {
  if (contents.shaders.size > 0) await mkdirOrFail(dir, 'shaders');
  if (contents.shards.length > 0) await mkdirOrFail(dir, 'weights');
  const files: FileEntry[] = [await writeText(dir, SCHEDULE, 'schedule', canonicalJson(schedule))];
  for (const path of [...contents.shaders.keys()].sort()) files.push(await writeText(dir, path, 'shader', contents.shaders.get(path)!));
  for (const shard of contents.shards) files.push(await writeShard(dir, shard));
  files.push(await writeText(dir, RUNTIME_JS, 'runtime', runtime.js));
  files.push(await writeText(dir, RUNTIME_DTS, 'types', runtime.dts));
  files.sort((a, b) => (a.path < b.path ? -1 : a.path > b.path ? 1 : 0));
  const manifest = buildManifest(contents, files);
  const manifestBytes = Buffer.from(canonicalJson(manifest));
  await writeFileOrFail(dir, MANIFEST, manifestBytes);
  if (signingKey) await writeFileOrFail(dir, SIGNATURE_PATH, Buffer.from(canonicalJson(signatureOf(manifestBytes, signingKey))));
  const totalBytes = files.reduce((sum, file) => sum + file.size, manifestBytes.length);
  return { files, totalBytes };
}

function buildManifest(contents: BundleContents, files: FileEntry[]): Manifest {
  const manifest: Manifest = {
    format: 'flashmemc-bundle',
    formatVersion: FORMAT_VERSION,
    generator: { name: 'flashmemc', version: generatorVersion() },
    models: contents.models,
    requiredLimits: Object.fromEntries(Object.entries(contents.requiredLimits).sort(([a], [b]) => (a < b ? -1 : 1))),
    requiredFeatures: [...new Set(contents.requiredFeatures)].sort(),
    files,
  };
  return parseOrFail(manifestSchema, manifest, MANIFEST);
}

let version: string | undefined;
function generatorVersion(): string {
  version ??= (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
  return version;
}

/** JSON with 2-space indent; the zod-parsed values have their keys in schema order, so bytes are stable. */
function canonicalJson(value: unknown): string {
  return `${JSON.stringify(value, null, 2)}\n`;
}

function sha256Hex(data: string | Uint8Array): string {
  return createHash('sha256').update(data).digest('hex');
}

async function writeText(dir: string, path: string, kind: FileEntry['kind'], text: string): Promise<FileEntry> {
  const bytes = Buffer.from(text, 'utf8');
  await writeFileOrFail(dir, path, bytes);
  return { path, kind, size: bytes.length, sha256: sha256Hex(bytes) };
}

/** Bytes per verified block of a weight shard (manifest `blocks`): the runtime's unit of range reads. */
export const SHARD_BLOCK_BYTES = 1 << 20;

/** Streams a shard piece by piece, hashing as it goes (whole file and per block), so no shard is ever whole in memory. */
async function writeShard(dir: string, shard: ShardSource): Promise<FileEntry> {
  const hash = createHash('sha256');
  const blocks = new BlockHasher(SHARD_BLOCK_BYTES);
  let written = 0;
  const handle = await open(join(dir, shard.path), 'wx').catch((error: unknown) => ioFailure(`creating ${shard.path}`, error));
  try {
    for (const piece of shard.pieces()) {
      written += piece.byteLength;
      if (written > shard.size) fail('FM_BUNDLE_INVALID', `shard ${shard.path} produced more than its declared ${shard.size} bytes`);
      hash.update(piece);
      blocks.update(piece);
      await writeAll(handle, piece, shard.path);
    }
  } finally {
    await handle.close();
  }
  if (written !== shard.size) fail('FM_BUNDLE_INVALID', `shard ${shard.path} produced ${written} bytes, it declared ${shard.size}`);
  return { path: shard.path, kind: 'weights', size: written, sha256: hash.digest('hex'), blocks: { size: SHARD_BLOCK_BYTES, sha256: blocks.digests() } };
}

/** sha256 of consecutive fixed-size blocks of a byte stream fed in arbitrary pieces. */
class BlockHasher {
  private readonly hashes: string[] = [];
  private current = createHash('sha256');
  private filled = 0;

  constructor(private readonly blockBytes: number) {}

  update(piece: Uint8Array): void {
    let at = 0;
    while (at < piece.byteLength) {
      const take = Math.min(this.blockBytes - this.filled, piece.byteLength - at);
      this.current.update(piece.subarray(at, at + take));
      this.filled += take;
      at += take;
      if (this.filled === this.blockBytes) this.finishBlock();
    }
  }

  digests(): string[] {
    if (this.filled > 0) this.finishBlock();
    return this.hashes;
  }

  private finishBlock(): void {
    this.hashes.push(this.current.digest('hex'));
    this.current = createHash('sha256');
    this.filled = 0;
  }
}

async function writeAll(handle: Awaited<ReturnType<typeof open>>, bytes: Uint8Array, path: string): Promise<void> {
  let done = 0;
  while (done < bytes.byteLength) {
    const { bytesWritten } = await handle.write(bytes, done, bytes.byteLength - done).catch((error: unknown) => ioFailure(`writing ${path}`, error));
    done += bytesWritten;
  }
}

// ------------------------------------------------------------------------------------ fs errors

// messages name the files by their path in the bundle: the folder they are written to is a temporary
// sibling of the output folder, which replaceOutputFolder names

async function mkdirOrFail(dir: string, path: string): Promise<void> {
  await mkdir(join(dir, path), { recursive: true }).catch((error: unknown) => ioFailure(`creating ${path}/`, error));
}

async function writeFileOrFail(dir: string, path: string, bytes: Uint8Array): Promise<void> {
  await writeFile(join(dir, path), bytes, { flag: 'wx' }).catch((error: unknown) => ioFailure(`writing ${path}`, error));
}
