/**
 * Verifying a bundle before any GPU work: manifest, schedule, shaders, cross references.
 */
import type { FileEntry, Manifest } from '../schemas/manifest.js';
import type { Schedule } from '../schemas/schedule.js';
import type { ModelInfo, TrustedKey } from './api.js';
import { fail, quote, shortJson } from './errors.js';
import { BUNDLE_FORMAT, BUNDLE_FORMAT_NAME, isPlainObject, MANIFEST_PATH, MAX_MANIFEST_BYTES, validateJson } from './format.js';
import { type BundleReader, checkBlock, parseJsonFile, readVerifiedFile } from './reader.js';
import { checkManifestSignature } from './signature.js';

export interface VerifiedBundle {
  manifest: Manifest;
  schedule: Schedule;
  /** WGSL source of schedule.shaders[i] */
  shaderSources: string[];
  /** manifest entry of schedule.shards[i] */
  shardFiles: FileEntry[];
  /** manifest model of schedule.models[i] */
  modelInfos: ModelInfo[];
  /** size of manifest.json */
  manifestBytes: number;
  /** the files already read and verified: the schedule and the shaders */
  verifiedFiles: Set<string>;
}

/**
 * Everything that can be checked without a device, but the shards' contents and the device
 * limits: format, schemas, the schedule's and shaders' sha256, cross references.
 */
export async function readVerifiedBundle(reader: BundleReader, trustedKeys?: readonly TrustedKey[]): Promise<VerifiedBundle> {
  const { manifest, manifestBytes } = await readManifest(reader, trustedKeys);
  const files = indexManifestFiles(manifest);
  checkFileSizes(manifest);
  const schedule = await readSchedule(reader, files);
  const shardFiles = schedule.shards.map((shard, i) => shardFile(shard, i, files));
  const modelInfos = matchModels(manifest, schedule);
  const shaderSources = await Promise.all(schedule.shaders.map((path, i) => readShader(reader, path, i, files)));
  const verifiedFiles = new Set([...files.values()].filter((entry) => entry.kind === 'schedule').map((entry) => entry.path).concat(schedule.shaders));
  return { manifest, schedule, shaderSources, shardFiles, modelInfos, manifestBytes, verifiedFiles };
}

async function readManifest(reader: BundleReader, trustedKeys: readonly TrustedKey[] | undefined): Promise<{ manifest: Manifest; manifestBytes: number }> {
  if (BUNDLE_FORMAT.formatVersion < 1) fail('FM_BUNDLE_VERSION', 'this runtime is the ungenerated template; use the runtime.js of a bundle');
  const bytes = await reader.read(MANIFEST_PATH, MAX_MANIFEST_BYTES + 1);
  if (bytes.length > MAX_MANIFEST_BYTES) fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} is larger than ${MAX_MANIFEST_BYTES} bytes`);
  // before anything the manifest says is believed
  if (trustedKeys !== undefined) await checkManifestSignature(reader, bytes, trustedKeys);
  const json = parseJsonFile(bytes, MANIFEST_PATH);
  if (!isPlainObject(json)) fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} is not a JSON object`);
  if (json.format !== BUNDLE_FORMAT_NAME) {
    fail('FM_BUNDLE_VERSION', `${MANIFEST_PATH} has format ${shortJson(json.format)}, not "${BUNDLE_FORMAT_NAME}": ${quote(reader.location)} is not a flashmemc bundle`);
  }
  if (json.formatVersion !== BUNDLE_FORMAT.formatVersion) {
    fail('FM_BUNDLE_VERSION', `the bundle has format version ${shortJson(json.formatVersion)}, this runtime reads version ${BUNDLE_FORMAT.formatVersion}: load it with the runtime.js inside the bundle, or recompile the model`);
  }
  return { manifest: validateJson<Manifest>(BUNDLE_FORMAT.schemas.manifest, json, MANIFEST_PATH), manifestBytes: bytes.length };
}

function indexManifestFiles(manifest: Manifest): Map<string, FileEntry> {
  const files = new Map<string, FileEntry>();
  for (const entry of manifest.files) {
    // the schema's path pattern admits '..' as a whole segment
    if (entry.path.split('/').some((segment) => segment === '.' || segment === '..')) {
      fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH}: file path ${quote(entry.path)} leaves the bundle folder`);
    }
    if (files.has(entry.path)) fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH}: file ${quote(entry.path)} is listed twice`);
    files.set(entry.path, entry);
  }
  return files;
}

/**
 * Files read whole (schedule, shaders, runtime files) are capped, and weight shards are read only in
 * blocks of capped size: no file of the bundle makes the runtime allocate more than these caps,
 * whatever sizes the manifest declares. The compiler's files are far below them (schedules of
 * billion-parameter models are a few MiB, blocks 1 MiB).
 */
const MAX_WHOLE_FILE_BYTES = 64 << 20;
const MAX_BLOCK_BYTES = 64 << 20;

function checkFileSizes(manifest: Manifest): void {
  for (const entry of manifest.files) {
    if (entry.blocks) {
      if (entry.blocks.size === 0 || entry.blocks.size > MAX_BLOCK_BYTES) {
        fail('FM_BUNDLE_BOUNDS', `${MANIFEST_PATH}: ${quote(entry.path)} has blocks of ${entry.blocks.size} bytes; this runtime reads blocks of 1 to ${MAX_BLOCK_BYTES} bytes`);
      }
    } else if (entry.size > MAX_WHOLE_FILE_BYTES) {
      fail('FM_BUNDLE_BOUNDS', `${MANIFEST_PATH}: ${quote(entry.path)} declares ${entry.size} bytes; files read whole may have at most ${MAX_WHOLE_FILE_BYTES}`);
    }
  }
}

/**
 * Verifies a listed file's contents: block by block for files with block hashes (the manifest's
 * block hashes authenticate every byte, and memory stays one block), else whole.
 */
export async function verifyFileContents(reader: BundleReader, entry: FileEntry): Promise<void> {
  if (!entry.blocks) {
    await readVerifiedFile(reader, entry);
    return;
  }
  for (let block = 0; block < entry.blocks.sha256.length; block++) {
    const offset = block * entry.blocks.size;
    await checkBlock(entry, block, await reader.readRange(entry.path, offset, Math.min(entry.blocks.size, entry.size - offset), entry.size));
  }
  // one byte past the declared end (readers that cannot stat, e.g. readFile hooks): a file that grew is not the file the manifest describes
  if ((await reader.readRange(entry.path, entry.size, 1, entry.size)).length !== 0) {
    fail('FM_BUNDLE_HASH', `${quote(entry.path)} has more than ${entry.size} bytes, the manifest says ${entry.size} (truncated or replaced)`);
  }
}

function listedFile(files: Map<string, FileEntry>, path: string, kind: FileEntry['kind'], referrer: string): FileEntry {
  const entry = files.get(path);
  if (!entry) fail('FM_BUNDLE_INVALID', `${referrer} names ${quote(path)}, which ${MANIFEST_PATH} does not list`);
  if (entry.kind !== kind) fail('FM_BUNDLE_INVALID', `${referrer} names ${quote(path)} as a ${kind} file, ${MANIFEST_PATH} lists it as ${entry.kind}`);
  return entry;
}

async function readSchedule(reader: BundleReader, files: Map<string, FileEntry>): Promise<Schedule> {
  const schedules = [...files.values()].filter((entry) => entry.kind === 'schedule');
  if (schedules.length !== 1) fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} lists ${schedules.length} schedule files, expected exactly one`);
  const entry = schedules[0]!;
  const json = parseJsonFile(await readVerifiedFile(reader, entry), entry.path);
  return validateJson<Schedule>(BUNDLE_FORMAT.schemas.schedule, json, entry.path);
}

function shardFile(shard: { path: string; size: number }, index: number, files: Map<string, FileEntry>): FileEntry {
  const entry = listedFile(files, shard.path, 'weights', `schedule.json shards[${index}]`);
  if (entry.size !== shard.size) {
    fail('FM_BUNDLE_INVALID', `schedule.json shards[${index}] (${quote(shard.path)}) has size ${shard.size}, ${MANIFEST_PATH} says ${entry.size}`);
  }
  const blocks = entry.blocks;
  if (!blocks) fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} lists no block hashes for ${quote(shard.path)}: recompile the model with this flashmemc`);
  if (blocks.sha256.length !== Math.ceil(entry.size / blocks.size)) {
    fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} lists ${blocks.sha256.length} block hashes for ${quote(shard.path)}, its ${entry.size} bytes make ${Math.ceil(entry.size / blocks.size)} blocks of ${blocks.size}`);
  }
  return entry;
}

async function readShader(reader: BundleReader, path: string, index: number, files: Map<string, FileEntry>): Promise<string> {
  const bytes = await readVerifiedFile(reader, listedFile(files, path, 'shader', `schedule.json shaders[${index}]`));
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    fail('FM_BUNDLE_INVALID', `${quote(path)} is not valid UTF-8`, error);
  }
}

/** Pairs schedule models with manifest models by name; both sides must name the same set. */
function matchModels(manifest: Manifest, schedule: Schedule): ModelInfo[] {
  const byName = new Map<string, ModelInfo>();
  for (const model of manifest.models) {
    if (byName.has(model.name)) fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} lists model ${quote(model.name)} twice`);
    byName.set(model.name, model);
  }
  const scheduled = new Set<string>();
  const infos = schedule.models.map((entry, i) => {
    const info = byName.get(entry.model);
    if (!info) fail('FM_BUNDLE_INVALID', `schedule.json models[${i}] is for model ${quote(entry.model)}, which ${MANIFEST_PATH} does not list`);
    if (scheduled.has(entry.model)) fail('FM_BUNDLE_INVALID', `schedule.json has two schedules for model ${quote(entry.model)}`);
    scheduled.add(entry.model);
    return info;
  });
  const unscheduled = manifest.models.find((model) => !scheduled.has(model.name));
  if (unscheduled) fail('FM_BUNDLE_INVALID', `model ${quote(unscheduled.name)} has no schedule in schedule.json`);
  return infos;
}
