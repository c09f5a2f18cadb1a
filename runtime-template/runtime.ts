/// <reference types="@webgpu/types" preserve="true" />
/**
 * flashmemc runtime: loads a flashmemc bundle (manifest.json, schedule.json, shaders/, weights/),
 * verifies all of it, and replays its schedule on WebGPU, in Node 20 (Dawn, through the `webgpu`
 * npm package) and in browsers.
 *
 * This file is a template. compiler/bundle/runtime-gen.ts fills in BUNDLE_FORMAT (the bundle
 * format's version and JSON Schemas) and emits it as each bundle's runtime.js and runtime.d.ts.
 * The bundle ships the runtime as one file, so this module imports nothing statically; Node
 * modules are imported dynamically, and only when running in Node.
 */

// =================================================================================================
// Public API types
// =================================================================================================

export type DType =
  | 'float32' | 'float16' | 'float64' | 'bfloat16' | 'int8' | 'uint8' | 'int16' | 'uint16'
  | 'int32' | 'uint32' | 'int64' | 'uint64' | 'bool';

export interface TensorInfo {
  readonly name: string;
  readonly dtype: DType;
  readonly shape: readonly number[];
}

export interface ModelInfo {
  readonly name: string;
  readonly inputs: readonly TensorInfo[];
  readonly outputs: readonly TensorInfo[];
  readonly weightBytes: number;
}

export type TypedArray =
  | Float32Array | Float64Array | Int8Array | Uint8Array | Int16Array | Uint16Array
  | Int32Array | Uint32Array | BigInt64Array | BigUint64Array;

/**
 * One input tensor, flattened in row-major order: the typed array matching its dtype (Float32Array
 * for float32/float16/bfloat16, Float64Array for float64, BigInt64Array for int64, Uint8Array for
 * bool and uint8, ...) or a plain array of numbers (bigints for 64-bit integers, booleans for bool).
 */
export type InputValue = TypedArray | readonly number[] | readonly bigint[] | readonly boolean[];
export type RunInputs = Readonly<Record<string, InputValue>>;
/** Output tensors by name, in the typed array matching each output's dtype (see InputValue). */
export type RunOutputs = Record<string, TypedArray>;

/** A byte range of a bundle file: `length` bytes from `offset`. */
export interface ByteRange {
  offset: number;
  length: number;
}

/**
 * Reads a file of the bundle by its path relative to the bundle (e.g. 'weights/0.bin'); with a
 * range, at most those bytes (fewer only when the file is shorter). The runtime copies the result
 * and checks its size and sha256 against the manifest, so a short or altered result is reported as
 * FM_BUNDLE_HASH; a rejection is reported as FM_IO (FM_BUNDLE_INVALID when its `code` is 'ENOENT').
 */
export type ReadFileHook = (path: string, range?: ByteRange) => Promise<Uint8Array>;

export interface LoadOptions {
  /** Run on this device. Its limits must cover the bundle's requiredLimits; dispose() leaves it alive. */
  device?: GPUDevice;
  /** Node only: the Dawn backend ('vulkan', 'opengles', ...). Default: env FLASHMEM_WEBGPU_BACKEND, else each in turn. */
  backend?: string;
  /**
   * Reads every bundle file (manifest.json included) through this function instead of node:fs or
   * fetch: custom storage (IndexedDB, a cache, an archive), or fault injection in tests.
   * `dirOrUrl` then only names the bundle in messages.
   */
  readFile?: ReadFileHook;
}

export interface VerifyOptions {
  /**
   * WebGPU limits to check the schedule against (e.g. a target device's). Default: WebGPU's
   * default limits, raised to the manifest's requiredLimits (what a device created for the bundle has).
   */
  limits?: Readonly<Record<string, number>>;
  /** as LoadOptions.readFile */
  readFile?: ReadFileHook;
}

export interface VerifySummary {
  models: readonly ModelInfo[];
  /** files verified, manifest.json included */
  files: number;
  /** bytes of those files */
  bytes: number;
}

export interface SessionStats {
  /** wall time of loadBundle, ms */
  loadMs: number;
  /** wall time of the last completed run from the moment it left the queue, ms */
  lastRunMs: number;
  /** completed runs */
  runs: number;
  /** most bytes of GPU buffers this session held at once (schedule buffers and readback buffers) */
  peakGpuBytes: number;
  /** bytes of GPU buffers this session holds now */
  liveGpuBytes: number;
  /** compute dispatches submitted, at load and in runs */
  dispatches: number;
  /** weight uploads (schedule `upload` steps), at load and in runs */
  uploads: number;
  uploadedBytes: number;
}

export interface FlashmemSession {
  /** the device the session runs on */
  readonly device: GPUDevice;
  readonly models: readonly ModelInfo[];
  /** Runs the bundle's only model. Concurrent calls are queued and run one after another. */
  run(inputs: RunInputs): Promise<RunOutputs>;
  /** Runs the named model of a multi-model bundle. */
  run(modelName: string, inputs: RunInputs): Promise<RunOutputs>;
  stats(): SessionStats;
  /** Destroys every GPU buffer of the session, and the device if the session created it. */
  dispose(): void;
}

/** The codes are those of the compiler (compiler/errors.ts). */
export type RuntimeErrorCode =
  | 'FM_BUNDLE_INVALID' | 'FM_BUNDLE_VERSION' | 'FM_BUNDLE_HASH' | 'FM_WEBGPU' | 'FM_INPUT' | 'FM_IO';

export class FlashmemRuntimeError extends Error {
  readonly code: RuntimeErrorCode;
  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'FlashmemRuntimeError';
    this.code = code;
  }
}

function fail(code: RuntimeErrorCode, message: string, cause?: unknown): never {
  throw new FlashmemRuntimeError(code, message, cause === undefined ? undefined : { cause });
}

function quote(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

/** Failures of WebGPU calls themselves (exceptions, rejected promises) are device failures. */
function asRuntimeError(error: unknown, what: string): FlashmemRuntimeError {
  if (error instanceof FlashmemRuntimeError) return error;
  return new FlashmemRuntimeError('FM_WEBGPU', `${what} failed: ${errorMessage(error)}`, { cause: error });
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

// =================================================================================================
// Bundle format (the generator replaces BUNDLE_FORMAT's initializer)
// =================================================================================================

type JsonSchema = boolean | { readonly [keyword: string]: unknown };

interface EmbeddedFormat {
  formatVersion: number;
  schemas: { manifest: JsonSchema; schedule: JsonSchema };
}

/** Filled in at generation time from schemas/*.ts; formatVersion 0 marks an ungenerated template. */
const BUNDLE_FORMAT: EmbeddedFormat = { formatVersion: 0, schemas: { manifest: false, schedule: false } };

const BUNDLE_FORMAT_NAME = 'flashmemc-bundle';
const MANIFEST_PATH = 'manifest.json';
/** a manifest lists files and signatures only; anything this large is not one */
const MAX_MANIFEST_BYTES = 16 << 20;

type FileKind = 'schedule' | 'shader' | 'weights' | 'runtime' | 'types';
interface FileEntry { path: string; kind: FileKind; size: number; sha256: string }

interface Manifest {
  format: string;
  formatVersion: number;
  generator: { name: string; version: string };
  models: ModelInfo[];
  requiredLimits: Record<string, number>;
  requiredFeatures: string[];
  files: FileEntry[];
}

interface Region { buffer: number; offset: number; size: number }
/** whole rows [y, y + rows) of one layer of a weight texture; size = rows * width * 16 */
interface TextureRegion { texture: number; layer: number; y: number; rows: number; size: number }
/** a dispatch binding of a whole weight texture (texture_2d_array<f32>) */
interface TextureBinding { texture: number }
/** a weight texture: 2.5D layout, 4 reduction values per rgba32float texel, always resident */
interface TextureDecl { format: 'rgba32float'; width: number; height: number; layers: number }
interface UploadStep { op: 'upload'; shard: number; shardOffset: number; dst: Region | TextureRegion; weight: string }
interface WriteInputStep { op: 'writeInput'; input: number; dst: Region }
interface ReadOutputStep { op: 'readOutput'; output: number; src: Region }
interface DispatchStep {
  op: 'dispatch';
  shader: number;
  bindings: (Region | TextureBinding)[];
  workgroups: [number, number, number];
  label: string;
  node: string;
}
interface CopyStep { op: 'copy'; src: Region; dst: Region; weight: string }
type Step = UploadStep | WriteInputStep | ReadOutputStep | DispatchStep | CopyStep;

interface ModelSchedule {
  model: string;
  strategy: 'preload' | 'stream';
  buffers: { role: 'weights' | 'activations' | 'staging'; size: number }[];
  textures?: TextureDecl[];
  init: Step[];
  run: Step[];
  plannedPeakBytes: number;
}

interface Schedule {
  formatVersion: number;
  shaders: string[];
  shards: { path: string; size: number }[];
  models: ModelSchedule[];
}

// =================================================================================================
// JSON Schema validation (the keywords zod's draft-2020-12 export uses)
// =================================================================================================

type KeywordCheck = (argument: unknown, value: unknown, path: string, schema: Readonly<Record<string, unknown>>) => string[];

/** keywords that never constrain a value */
const ANNOTATION_KEYWORDS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'default', 'examples']);
const MAX_REPORTED_VIOLATIONS = 5;

function schemaViolations(schema: JsonSchema, value: unknown, path = ''): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${pointer(path)}: no value is allowed here`];
  const violations: string[] = [];
  for (const [keyword, argument] of Object.entries(schema)) {
    if (ANNOTATION_KEYWORDS.has(keyword)) continue;
    const check = KEYWORD_CHECKS[keyword];
    // an unknown keyword may constrain values in ways this validator would silently accept
    if (!check) violations.push(`${pointer(path)}: schema keyword "${keyword}" is not supported by this runtime`);
    else violations.push(...check(argument, value, path, schema));
  }
  return violations;
}

function pointer(path: string): string {
  return path === '' ? '/' : path;
}

function childPath(path: string, key: string | number): string {
  return `${path}/${String(key).replace(/~/g, '~0').replace(/\//g, '~1')}`;
}

function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function hasJsonType(type: string, value: unknown): boolean {
  switch (type) {
    case 'integer': return typeof value === 'number' && Number.isInteger(value);
    case 'number': return typeof value === 'number' && Number.isFinite(value);
    case 'object': return isPlainObject(value);
    case 'array': return Array.isArray(value);
    case 'null': return value === null;
    default: return typeof value === type;
  }
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => key in b && jsonEqual(a[key], b[key]));
  }
  return false;
}

const compiledPatterns = new Map<string, RegExp>();
function compiledPattern(source: string): RegExp {
  let pattern = compiledPatterns.get(source);
  if (!pattern) compiledPatterns.set(source, (pattern = new RegExp(source, 'u')));
  return pattern;
}

function asSchemaList(argument: unknown): JsonSchema[] {
  return Array.isArray(argument) ? (argument as JsonSchema[]) : [];
}

/** Alternatives of oneOf/anyOf: report the one that came closest, so the message names the real problem. */
function closestAlternative(alternatives: JsonSchema[], value: unknown, path: string): string[] {
  const results = alternatives.map((alternative) => schemaViolations(alternative, value, path));
  return results.reduce((best, next) => (next.length < best.length ? next : best), results[0] ?? []);
}

const KEYWORD_CHECKS: Record<string, KeywordCheck> = {
  type: (type, value, path) => {
    const types = Array.isArray(type) ? (type as string[]) : [type as string];
    return types.some((t) => hasJsonType(t, value)) ? [] : [`${pointer(path)}: expected ${types.join(' or ')}, got ${jsonTypeOf(value)}`];
  },
  const: (expected, value, path) =>
    (jsonEqual(expected, value) ? [] : [`${pointer(path)}: must be ${JSON.stringify(expected)}`]),
  enum: (allowed, value, path) =>
    (asArray(allowed).some((a) => jsonEqual(a, value)) ? [] : [`${pointer(path)}: must be one of ${JSON.stringify(allowed)}`]),
  pattern: (source, value, path) =>
    (typeof value !== 'string' || compiledPattern(source as string).test(value) ? [] : [`${pointer(path)}: ${JSON.stringify(value)} does not match ${source}`]),
  minLength: (min, value, path) =>
    (typeof value !== 'string' || [...value].length >= (min as number) ? [] : [`${pointer(path)}: must have at least ${min} characters`]),
  minimum: (min, value, path) =>
    (typeof value !== 'number' || value >= (min as number) ? [] : [`${pointer(path)}: ${value} is below the minimum ${min}`]),
  maximum: (max, value, path) =>
    (typeof value !== 'number' || value <= (max as number) ? [] : [`${pointer(path)}: ${value} is above the maximum ${max}`]),
  minItems: (min, value, path) =>
    (!Array.isArray(value) || value.length >= (min as number) ? [] : [`${pointer(path)}: needs at least ${min} items, has ${value.length}`]),
  maxItems: (max, value, path) =>
    (!Array.isArray(value) || value.length <= (max as number) ? [] : [`${pointer(path)}: allows at most ${max} items, has ${value.length}`]),
  prefixItems: (schemas, value, path) => {
    if (!Array.isArray(value)) return [];
    return asSchemaList(schemas).flatMap((schema, i) => (i < value.length ? schemaViolations(schema, value[i], childPath(path, i)) : []));
  },
  items: (schema, value, path, parent) => {
    if (!Array.isArray(value)) return [];
    const first = asSchemaList(parent.prefixItems).length;
    return value.slice(first).flatMap((item, i) => schemaViolations(schema as JsonSchema, item, childPath(path, first + i)));
  },
  required: (names, value, path) => {
    if (!isPlainObject(value)) return [];
    return asArray(names).filter((name) => !Object.hasOwn(value, name as string)).map((name) => `${pointer(path)}: missing property "${name}"`);
  },
  properties: (properties, value, path) => {
    if (!isPlainObject(value)) return [];
    return Object.entries(properties as Record<string, JsonSchema>).flatMap(([key, schema]) =>
      (Object.hasOwn(value, key) ? schemaViolations(schema, value[key], childPath(path, key)) : []));
  },
  additionalProperties: (schema, value, path, parent) => {
    if (!isPlainObject(value)) return [];
    const declared = isPlainObject(parent.properties) ? parent.properties : {};
    return Object.keys(value).filter((key) => !Object.hasOwn(declared, key)).flatMap((key) =>
      (schema === false ? [`${pointer(path)}: unexpected property ${quote(key)}`] : schemaViolations(schema as JsonSchema, value[key], childPath(path, key))));
  },
  propertyNames: (schema, value, path) => {
    if (!isPlainObject(value)) return [];
    return Object.keys(value).flatMap((key) => schemaViolations(schema as JsonSchema, key, `${path}/<name ${quote(key)}>`));
  },
  anyOf: (alternatives, value, path) => {
    const list = asSchemaList(alternatives);
    if (list.some((alternative) => schemaViolations(alternative, value, path).length === 0)) return [];
    return [`${pointer(path)}: matches none of the ${list.length} allowed forms`, ...closestAlternative(list, value, path)];
  },
  oneOf: (alternatives, value, path) => {
    const list = asSchemaList(alternatives);
    const matching = list.filter((alternative) => schemaViolations(alternative, value, path).length === 0).length;
    if (matching === 1) return [];
    if (matching > 1) return [`${pointer(path)}: matches ${matching} of the allowed forms, exactly one is required`];
    return [`${pointer(path)}: matches none of the ${list.length} allowed forms`, ...closestAlternative(list, value, path)];
  },
};

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

function validateJson<T>(schema: JsonSchema, value: unknown, file: string): T {
  const violations = schemaViolations(schema, value);
  if (violations.length > 0) {
    const shown = violations.slice(0, MAX_REPORTED_VIOLATIONS).join('; ');
    const more = violations.length > MAX_REPORTED_VIOLATIONS ? ` (and ${violations.length - MAX_REPORTED_VIOLATIONS} more)` : '';
    fail('FM_BUNDLE_INVALID', `${file} does not match the bundle format: ${shown}${more}`);
  }
  return value as T;
}

// =================================================================================================
// Environment: Node or browser
// =================================================================================================

const IN_NODE = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/**
 * Imports a Node built-in or package by a computed specifier, so that browser bundlers that meet
 * runtime.js do not try to resolve Node modules.
 */
async function importNodeModule<T>(specifier: string): Promise<T> {
  return (await import(/* @vite-ignore */ specifier)) as T;
}

let keepAliveTimer: ReturnType<typeof setInterval> | undefined;
let keepAliveUsers = 0;

/**
 * Dawn-node's promises hold no event-loop handle: while one is pending Node may exit or stall.
 * Hold a timer for as long as any awaited GPU promise is pending.
 */
async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  if (!IN_NODE) return promise;
  if (keepAliveUsers++ === 0) keepAliveTimer = setInterval(() => {}, 1 << 30);
  try {
    return await promise;
  } finally {
    if (--keepAliveUsers === 0) clearInterval(keepAliveTimer);
  }
}

async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) fail('FM_WEBGPU', 'crypto.subtle is unavailable: load bundles from a secure context (https or localhost)');
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

// =================================================================================================
// Reading bundle files: node:fs for paths in Node, fetch for URLs
// =================================================================================================

interface BundleReader {
  /** where the bundle is, for messages */
  readonly location: string;
  /** Reads at most maxBytes bytes of a file of the bundle; a shorter result means the file is shorter. */
  read(path: string, maxBytes: number): Promise<Uint8Array<ArrayBuffer>>;
}

type NodeFs = typeof import('node:fs/promises');
type NodePath = typeof import('node:path');
type NodeUrl = typeof import('node:url');
type NodeModule = typeof import('node:module');

async function openBundleReader(dirOrUrl: string | URL, readFile?: ReadFileHook): Promise<BundleReader> {
  const location = typeof dirOrUrl === 'string' ? dirOrUrl : dirOrUrl.href;
  if (readFile !== undefined) {
    if (typeof readFile !== 'function') throw new TypeError('options.readFile must be a function');
    return hookReader(location, readFile);
  }
  if (/^https?:\/\//i.test(location)) return fetchReader(new URL(location));
  if (IN_NODE) {
    const { fileURLToPath } = await importNodeModule<NodeUrl>('node:url');
    return nodeFileReader(/^file:/i.test(location) ? fileURLToPath(location) : location);
  }
  return fetchReader(new URL(location, globalThis.location?.href));
}

async function nodeFileReader(root: string): Promise<BundleReader> {
  const fs = await importNodeModule<NodeFs>('node:fs/promises');
  const path = await importNodeModule<NodePath>('node:path');
  return {
    location: root,
    async read(relative, maxBytes) {
      const file = path.join(root, relative);
      let handle: Awaited<ReturnType<NodeFs['open']>>;
      try {
        handle = await fs.open(file, 'r');
      } catch (error) {
        throw fileReadError(relative, file, error);
      }
      try {
        const { size } = await handle.stat();
        const bytes = new Uint8Array(Math.min(size, maxBytes));
        let filled = 0;
        while (filled < bytes.length) {
          const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, filled);
          if (bytesRead === 0) break;
          filled += bytesRead;
        }
        return filled === bytes.length ? bytes : bytes.slice(0, filled);
      } catch (error) {
        throw fileReadError(relative, file, error);
      } finally {
        await handle.close();
      }
    },
  };
}

function fileReadError(relative: string, file: string, error: unknown): FlashmemRuntimeError {
  const missing = (error as { code?: string }).code === 'ENOENT';
  return missing
    ? new FlashmemRuntimeError('FM_BUNDLE_INVALID', `bundle file ${relative} is missing (${file})`, { cause: error })
    : new FlashmemRuntimeError('FM_IO', `reading bundle file ${relative} (${file}) failed: ${errorMessage(error)}`, { cause: error });
}

/** Reads through LoadOptions.readFile; results are copied, so the caller cannot change bytes after they were verified. */
function hookReader(location: string, readFile: ReadFileHook): BundleReader {
  return {
    location,
    async read(relative, maxBytes) {
      let result: unknown;
      try {
        result = await readFile(relative, { offset: 0, length: maxBytes });
      } catch (error) {
        throw error instanceof FlashmemRuntimeError ? error : fileReadError(relative, `${location}, through options.readFile`, error);
      }
      if (!(result instanceof Uint8Array)) {
        fail('FM_IO', `reading bundle file ${relative} through options.readFile gave ${describeValue(result)}, not a Uint8Array`);
      }
      return new Uint8Array(result.subarray(0, Math.min(result.length, maxBytes)));
    },
  };
}

function fetchReader(location: URL): BundleReader {
  // relative file paths resolve against the bundle folder only when the URL ends with '/'
  const base = location.href.endsWith('/') ? location : new URL(`${location.href}/`);
  return {
    location: base.href,
    async read(relative, maxBytes) {
      const url = new URL(relative, base);
      let response: Response;
      try {
        response = await fetch(url);
      } catch (error) {
        fail('FM_IO', `fetching bundle file ${relative} (${url.href}) failed: ${errorMessage(error)}`, error);
      }
      if (response.status === 404) fail('FM_BUNDLE_INVALID', `bundle file ${relative} is missing (404 at ${url.href})`);
      if (!response.ok) fail('FM_IO', `fetching bundle file ${relative} (${url.href}) failed: HTTP ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      return bytes.length > maxBytes ? bytes.slice(0, maxBytes) : bytes;
    },
  };
}

/** Reads a file listed in the manifest and checks its size and sha256. */
async function readVerifiedFile(reader: BundleReader, entry: FileEntry): Promise<Uint8Array<ArrayBuffer>> {
  // one byte more than declared, to notice files that grew
  const bytes = await reader.read(entry.path, entry.size + 1);
  if (bytes.length !== entry.size) {
    fail('FM_BUNDLE_HASH', `${entry.path} has ${bytes.length > entry.size ? 'more than' : 'only'} ${Math.min(bytes.length, entry.size)} bytes, the manifest says ${entry.size} (truncated or replaced)`);
  }
  const actual = await sha256Hex(bytes);
  if (actual !== entry.sha256) fail('FM_BUNDLE_HASH', `${entry.path} has sha256 ${actual}, the manifest says ${entry.sha256} (tampered or corrupt)`);
  return bytes;
}

function parseJsonFile(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    fail('FM_BUNDLE_INVALID', `${file} is not valid UTF-8 JSON: ${errorMessage(error)}`, error);
  }
}

// =================================================================================================
// Verifying a bundle before any GPU work: manifest, schedule, shaders, cross references
// =================================================================================================

interface VerifiedBundle {
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
async function readVerifiedBundle(reader: BundleReader): Promise<VerifiedBundle> {
  const { manifest, manifestBytes } = await readManifest(reader);
  const files = indexManifestFiles(manifest);
  const schedule = await readSchedule(reader, files);
  const shardFiles = schedule.shards.map((shard, i) => shardFile(shard, i, files));
  const modelInfos = matchModels(manifest, schedule);
  const shaderSources = await Promise.all(schedule.shaders.map((path, i) => readShader(reader, path, i, files)));
  const verifiedFiles = new Set([...files.values()].filter((entry) => entry.kind === 'schedule').map((entry) => entry.path).concat(schedule.shaders));
  return { manifest, schedule, shaderSources, shardFiles, modelInfos, manifestBytes, verifiedFiles };
}

async function readManifest(reader: BundleReader): Promise<{ manifest: Manifest; manifestBytes: number }> {
  if (BUNDLE_FORMAT.formatVersion < 1) fail('FM_BUNDLE_VERSION', 'this runtime is the ungenerated template; use the runtime.js of a bundle');
  const bytes = await reader.read(MANIFEST_PATH, MAX_MANIFEST_BYTES + 1);
  if (bytes.length > MAX_MANIFEST_BYTES) fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} is larger than ${MAX_MANIFEST_BYTES} bytes`);
  const json = parseJsonFile(bytes, MANIFEST_PATH);
  if (!isPlainObject(json)) fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} is not a JSON object`);
  if (json.format !== BUNDLE_FORMAT_NAME) {
    fail('FM_BUNDLE_VERSION', `${MANIFEST_PATH} has format ${JSON.stringify(json.format)}, not "${BUNDLE_FORMAT_NAME}": ${reader.location} is not a flashmemc bundle`);
  }
  if (json.formatVersion !== BUNDLE_FORMAT.formatVersion) {
    fail('FM_BUNDLE_VERSION', `the bundle has format version ${JSON.stringify(json.formatVersion)}, this runtime reads version ${BUNDLE_FORMAT.formatVersion}: load it with the runtime.js inside the bundle, or recompile the model`);
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

function listedFile(files: Map<string, FileEntry>, path: string, kind: FileKind, referrer: string): FileEntry {
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
    fail('FM_BUNDLE_INVALID', `schedule.json shards[${index}] (${shard.path}) has size ${shard.size}, ${MANIFEST_PATH} says ${entry.size}`);
  }
  return entry;
}

async function readShader(reader: BundleReader, path: string, index: number, files: Map<string, FileEntry>): Promise<string> {
  const bytes = await readVerifiedFile(reader, listedFile(files, path, 'shader', `schedule.json shaders[${index}]`));
  try {
    return new TextDecoder('utf-8', { fatal: true }).decode(bytes);
  } catch (error) {
    fail('FM_BUNDLE_INVALID', `${path} is not valid UTF-8`, error);
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

// =================================================================================================
// Bounds checks: every index, range and size of the schedule against the bundle and the device
// =================================================================================================

/** the device limits the bounds checks use (a GPUSupportedLimits has them all) */
interface BoundsLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupsPerDimension: number;
  minStorageBufferOffsetAlignment: number;
  maxTextureDimension2D: number;
  maxTextureArrayLayers: number;
  maxSampledTexturesPerShaderStage: number;
}

/** WebGPU's default limits: every device has at least these */
const WEBGPU_DEFAULT_LIMITS: Readonly<BoundsLimits> = {
  maxBufferSize: 268435456,
  maxStorageBufferBindingSize: 134217728,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupsPerDimension: 65535,
  minStorageBufferOffsetAlignment: 256,
  maxTextureDimension2D: 8192,
  maxTextureArrayLayers: 256,
  maxSampledTexturesPerShaderStage: 16,
};

/**
 * The limits verifyBundle checks against: the given target limits over WebGPU's defaults, or
 * without them the defaults improved by the manifest's requiredLimits (a device created for the
 * bundle has those). Limits named min* are alignments: smaller is better.
 */
function verificationLimits(manifest: Manifest, target: Readonly<Record<string, number>> | undefined): BoundsLimits {
  const limits: BoundsLimits = { ...WEBGPU_DEFAULT_LIMITS };
  for (const key of Object.keys(limits) as (keyof BoundsLimits)[]) {
    if (target !== undefined) {
      const value = target[key];
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
        throw new TypeError(`options.limits.${key} must be a positive integer, not ${String(value)}`);
      }
      limits[key] = value;
    } else {
      const required = manifest.requiredLimits[key];
      if (required !== undefined) limits[key] = key.startsWith('min') ? Math.min(limits[key], required) : Math.max(limits[key], required);
    }
  }
  return limits;
}

interface BoundsContext {
  info: ModelInfo;
  schedule: ModelSchedule;
  shaderCount: number;
  shardSizes: number[];
  limits: BoundsLimits;
}

function checkScheduleBounds(bundle: VerifiedBundle, limits: BoundsLimits): void {
  bundle.schedule.models.forEach((schedule, i) => {
    const context: BoundsContext = {
      info: bundle.modelInfos[i]!,
      schedule,
      shaderCount: bundle.schedule.shaders.length,
      shardSizes: bundle.schedule.shards.map((shard) => shard.size),
      limits,
    };
    checkBuffers(context);
    checkTextures(context);
    schedule.init.forEach((step, index) => checkStep(step, `init[${index}]`, context));
    schedule.run.forEach((step, index) => checkStep(step, `run[${index}]`, context));
    checkOutputsReadOnce(context);
  });
}

function modelWhere(context: BoundsContext): string {
  return `schedule.json model ${quote(context.info.name)}`;
}

function checkBuffers(context: BoundsContext): void {
  context.schedule.buffers.forEach((buffer, i) => {
    const where = `${modelWhere(context)} buffers[${i}]`;
    if (buffer.size % 4 !== 0) fail('FM_BUNDLE_INVALID', `${where}: size ${buffer.size} is not a multiple of 4`);
    if (buffer.size > context.limits.maxBufferSize) {
      fail('FM_BUNDLE_INVALID', `${where}: size ${buffer.size} exceeds the device's maxBufferSize ${context.limits.maxBufferSize}`);
    }
  });
}

function stepWhere(step: Step, at: string, context: BoundsContext): string {
  const what = step.op === 'dispatch' ? `dispatch ${quote(step.label)} of node ${quote(step.node)}` : step.op;
  return `${modelWhere(context)} ${at} (${what})`;
}

function checkStep(step: Step, at: string, context: BoundsContext): void {
  const where = stepWhere(step, at, context);
  const isInit = at.startsWith('init');
  switch (step.op) {
    case 'upload': return checkUpload(step, where, context, isInit);
    case 'dispatch': return checkDispatch(step, where, context);
    case 'copy': return checkCopy(step, where, context);
    case 'writeInput':
      if (isInit) fail('FM_BUNDLE_INVALID', `${where}: init steps run once at load and cannot write inputs`);
      return checkIoRegion(step.dst, context.info.inputs, step.input, 'input', where, context);
    case 'readOutput':
      if (isInit) fail('FM_BUNDLE_INVALID', `${where}: init steps run once at load and cannot read outputs`);
      return checkIoRegion(step.src, context.info.outputs, step.output, 'output', where, context);
  }
}

function checkRegion(region: Region, where: string, context: BoundsContext): void {
  const buffer = context.schedule.buffers[region.buffer];
  if (!buffer) fail('FM_BUNDLE_INVALID', `${where}: buffer ${region.buffer} does not exist (the model has ${context.schedule.buffers.length})`);
  if (region.offset % 4 !== 0 || region.size % 4 !== 0) {
    fail('FM_BUNDLE_INVALID', `${where}: region offset ${region.offset} and size ${region.size} must be multiples of 4`);
  }
  if (region.offset + region.size > buffer.size) {
    fail('FM_BUNDLE_INVALID', `${where}: region [${region.offset}, ${region.offset + region.size}) lies outside buffer ${region.buffer} of ${buffer.size} bytes`);
  }
}

/** bytes per rgba32float texel */
const TEXEL_BYTES = 16;

function isTextureRegion(dst: Region | TextureRegion): dst is TextureRegion {
  return 'texture' in dst;
}

function isTextureBinding(binding: Region | TextureBinding): binding is TextureBinding {
  return 'texture' in binding;
}

function checkTextures(context: BoundsContext): void {
  const { limits } = context;
  (context.schedule.textures ?? []).forEach((texture, i) => {
    const where = `${modelWhere(context)} textures[${i}]`;
    if (texture.width > limits.maxTextureDimension2D || texture.height > limits.maxTextureDimension2D) {
      fail('FM_BUNDLE_INVALID', `${where}: ${texture.width}x${texture.height} texels exceed the device's maxTextureDimension2D ${limits.maxTextureDimension2D}`);
    }
    if (texture.layers > limits.maxTextureArrayLayers) {
      fail('FM_BUNDLE_INVALID', `${where}: ${texture.layers} layers exceed the device's maxTextureArrayLayers ${limits.maxTextureArrayLayers}`);
    }
  });
}

function textureOf(index: number, where: string, context: BoundsContext): TextureDecl {
  const texture = context.schedule.textures?.[index];
  if (!texture) fail('FM_BUNDLE_INVALID', `${where}: texture ${index} does not exist (the model has ${context.schedule.textures?.length ?? 0})`);
  return texture;
}

/** A texture upload writes whole rows of one layer, straight from the shard: its size must be exactly those rows. */
function checkTextureRegion(dst: TextureRegion, where: string, context: BoundsContext): void {
  const texture = textureOf(dst.texture, where, context);
  if (dst.layer >= texture.layers || dst.y + dst.rows > texture.height) {
    fail('FM_BUNDLE_INVALID', `${where}: rows [${dst.y}, ${dst.y + dst.rows}) of layer ${dst.layer} lie outside texture ${dst.texture} (${texture.width}x${texture.height}x${texture.layers})`);
  }
  if (dst.size !== dst.rows * texture.width * TEXEL_BYTES) {
    fail('FM_BUNDLE_INVALID', `${where}: ${dst.size} bytes for ${dst.rows} rows of ${texture.width} texels (${dst.rows * texture.width * TEXEL_BYTES} bytes)`);
  }
}

function checkUpload(step: UploadStep, where: string, context: BoundsContext, isInit: boolean): void {
  if (isTextureRegion(step.dst)) {
    // texture weights are resident: uploaded once at load, never streamed by run steps
    if (!isInit) fail('FM_BUNDLE_INVALID', `${where}: texture uploads belong to init steps`);
    checkTextureRegion(step.dst, where, context);
  } else {
    checkRegion(step.dst, where, context);
  }
  const shardSize = context.shardSizes[step.shard];
  if (shardSize === undefined) fail('FM_BUNDLE_INVALID', `${where}: shard ${step.shard} does not exist (the bundle has ${context.shardSizes.length})`);
  if (step.shardOffset + step.dst.size > shardSize) {
    fail('FM_BUNDLE_INVALID', `${where}: weight ${quote(step.weight)} reads bytes [${step.shardOffset}, ${step.shardOffset + step.dst.size}) of shard ${step.shard}, which has ${shardSize}`);
  }
}

function checkCopy(step: CopyStep, where: string, context: BoundsContext): void {
  checkRegion(step.src, `${where} source`, context);
  checkRegion(step.dst, `${where} destination`, context);
  if (step.src.size !== step.dst.size) fail('FM_BUNDLE_INVALID', `${where}: copies ${step.src.size} bytes into a region of ${step.dst.size}`);
  if (step.src.buffer === step.dst.buffer) fail('FM_BUNDLE_INVALID', `${where}: source and destination are the same buffer`);
}

function checkIoRegion(region: Region, tensors: readonly TensorInfo[], index: number, kind: string, where: string, context: BoundsContext): void {
  checkRegion(region, where, context);
  const tensor = tensors[index];
  if (!tensor) fail('FM_BUNDLE_INVALID', `${where}: ${kind} ${index} does not exist (the model has ${tensors.length})`);
  // every GPU element is 4 bytes: f32 for float dtypes, i32 for integer and bool dtypes
  const expected = 4 * elementCount(tensor.shape);
  if (region.size !== expected) {
    fail('FM_BUNDLE_INVALID', `${where}: region of ${region.size} bytes for ${kind} ${quote(tensor.name)}, whose shape [${tensor.shape.join(', ')}] needs ${expected}`);
  }
}

function checkDispatch(step: DispatchStep, where: string, context: BoundsContext): void {
  const { limits } = context;
  if (step.shader >= context.shaderCount) fail('FM_BUNDLE_INVALID', `${where}: shader ${step.shader} does not exist (the bundle has ${context.shaderCount})`);
  const regions = step.bindings.filter((binding): binding is Region => !isTextureBinding(binding));
  const textures = step.bindings.length - regions.length;
  if (regions.length > limits.maxStorageBuffersPerShaderStage) {
    fail('FM_BUNDLE_INVALID', `${where}: ${regions.length} bindings exceed the device's maxStorageBuffersPerShaderStage ${limits.maxStorageBuffersPerShaderStage}`);
  }
  if (textures > limits.maxSampledTexturesPerShaderStage) {
    fail('FM_BUNDLE_INVALID', `${where}: ${textures} texture bindings exceed the device's maxSampledTexturesPerShaderStage ${limits.maxSampledTexturesPerShaderStage}`);
  }
  step.bindings.forEach((binding, i) => {
    if (isTextureBinding(binding)) textureOf(binding.texture, `${where} binding ${i}`, context);
    else checkBinding(binding, `${where} binding ${i}`, context);
  });
  checkBindingsDisjoint(regions, where);
  step.workgroups.forEach((count, axis) => {
    if (count > limits.maxComputeWorkgroupsPerDimension) {
      fail('FM_BUNDLE_INVALID', `${where}: ${count} workgroups along ${'xyz'[axis]} exceed the device's maxComputeWorkgroupsPerDimension ${limits.maxComputeWorkgroupsPerDimension}`);
    }
  });
}

function checkBinding(binding: Region, where: string, context: BoundsContext): void {
  const { limits } = context;
  checkRegion(binding, where, context);
  if (binding.size === 0) fail('FM_BUNDLE_INVALID', `${where}: a storage binding cannot be empty`);
  if (binding.offset % limits.minStorageBufferOffsetAlignment !== 0) {
    fail('FM_BUNDLE_INVALID', `${where}: offset ${binding.offset} is not a multiple of the device's minStorageBufferOffsetAlignment ${limits.minStorageBufferOffsetAlignment}`);
  }
  if (binding.size > limits.maxStorageBufferBindingSize) {
    fail('FM_BUNDLE_INVALID', `${where}: ${binding.size} bytes exceed the device's maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}`);
  }
}

/** Every binding is read_write storage, and WebGPU forbids writable bindings that alias. */
function checkBindingsDisjoint(bindings: Region[], where: string): void {
  bindings.forEach((a, i) => {
    bindings.slice(i + 1).forEach((b, k) => {
      const overlaps = a.buffer === b.buffer && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
      if (overlaps) fail('FM_BUNDLE_INVALID', `${where}: bindings ${i} and ${i + 1 + k} overlap in buffer ${a.buffer}`);
    });
  });
}

function checkOutputsReadOnce(context: BoundsContext): void {
  const reads = context.info.outputs.map(() => 0);
  for (const step of context.schedule.run) if (step.op === 'readOutput') reads[step.output]!++;
  reads.forEach((count, i) => {
    if (count !== 1) {
      fail('FM_BUNDLE_INVALID', `${modelWhere(context)}: output ${quote(context.info.outputs[i]!.name)} is read ${count} times per run, expected once`);
    }
  });
}

function elementCount(shape: readonly number[]): number {
  return shape.reduce((product, dim) => product * dim, 1);
}

// =================================================================================================
// Device
// =================================================================================================

interface AcquiredDevice {
  device: GPUDevice;
  /** created by the session, so destroyed by it */
  owned: boolean;
}

type DawnModule = { create(flags: string[]): GPU };
const DEFAULT_NODE_BACKENDS = ['vulkan', 'opengles'];

async function acquireDevice(manifest: Manifest, options: LoadOptions): Promise<AcquiredDevice> {
  if (options.device) {
    const missing = [...unmetLimits(options.device.limits, manifest.requiredLimits), ...unmetFeatures(options.device.features, manifest.requiredFeatures)];
    if (missing.length > 0) fail('FM_WEBGPU', `the given device does not meet the bundle's requirements: ${missing.join('; ')}`);
    return { device: options.device, owned: false };
  }
  return IN_NODE ? nodeDevice(manifest, options.backend) : browserDevice(manifest);
}

/** Limits named min* are alignments (smaller is better); the others are maxima (larger is better). */
function unmetLimits(available: GPUSupportedLimits, required: Record<string, number>): string[] {
  return Object.entries(required).flatMap(([name, value]) => {
    const have = (available as unknown as Record<string, unknown>)[name];
    if (typeof have !== 'number') return [`limit ${name} is unknown to this WebGPU implementation`];
    const met = name.startsWith('min') ? have <= value : have >= value;
    return met ? [] : [`limit ${name} is ${have}, the bundle needs ${value}`];
  });
}

function unmetFeatures(available: GPUSupportedFeatures, required: string[]): string[] {
  return required.filter((feature) => !available.has(feature)).map((feature) => `feature ${feature} is missing`);
}

async function requestAdapter(gpu: GPU): Promise<GPUAdapter | null> {
  return (await keepAlive(gpu.requestAdapter())) ??
    // compatibility-mode adapters (OpenGL ES) answer only this request
    (await keepAlive(gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions)));
}

async function deviceFromAdapter(adapter: GPUAdapter, manifest: Manifest, where: string): Promise<GPUDevice> {
  const missing = [...unmetLimits(adapter.limits, manifest.requiredLimits), ...unmetFeatures(adapter.features, manifest.requiredFeatures)];
  if (missing.length > 0) fail('FM_WEBGPU', `the WebGPU adapter (${where}) does not meet the bundle's requirements: ${missing.join('; ')}`);
  try {
    return await keepAlive(adapter.requestDevice({
      requiredLimits: manifest.requiredLimits,
      requiredFeatures: manifest.requiredFeatures as GPUFeatureName[],
    }));
  } catch (error) {
    fail('FM_WEBGPU', `requesting a WebGPU device (${where}) failed: ${errorMessage(error)}`, error);
  }
}

async function nodeDevice(manifest: Manifest, backend: string | undefined): Promise<AcquiredDevice> {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const dawn = await importDawn();
  const requested = backend ?? process.env.FLASHMEM_WEBGPU_BACKEND;
  const backends = requested ? [requested] : DEFAULT_NODE_BACKENDS;
  for (const name of backends) {
    const instance = dawnInstance(dawn, name);
    const adapter = await requestAdapter(instance);
    if (adapter) return { device: await deviceFromAdapter(adapter, manifest, `Dawn ${name}`), owned: true };
  }
  fail('FM_WEBGPU', `no WebGPU adapter on Dawn backend(s) ${backends.join(', ')}; set FLASHMEM_WEBGPU_BACKEND or pass options.device`);
}

const dawnInstances = new Map<string, GPU>();

/**
 * One Dawn instance per backend for the whole process: creating an instance loads and probes the
 * backend's driver, so sessions share one instead of each creating (and dropping) their own.
 */
function dawnInstance(dawn: DawnModule, backend: string): GPU {
  let instance = dawnInstances.get(backend);
  if (!instance) dawnInstances.set(backend, (instance = dawn.create([`backend=${backend}`])));
  return instance;
}

/** The `webgpu` package resolves from the app, not from the bundle folder runtime.js sits in. */
async function importDawn(): Promise<DawnModule> {
  try {
    return await importNodeModule<DawnModule>('webgpu');
  } catch (direct) {
    try {
      const { createRequire } = await importNodeModule<NodeModule>('node:module');
      const { pathToFileURL } = await importNodeModule<NodeUrl>('node:url');
      const { join } = await importNodeModule<NodePath>('node:path');
      const resolved = createRequire(join(process.cwd(), 'noop.js')).resolve('webgpu');
      return await importNodeModule<DawnModule>(pathToFileURL(resolved).href);
    } catch {
      fail('FM_WEBGPU', `the 'webgpu' package (Dawn for Node) could not be imported (${errorMessage(direct)}): install it (npm install webgpu) or pass options.device`, direct);
    }
  }
}

async function browserDevice(manifest: Manifest): Promise<AcquiredDevice> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) fail('FM_WEBGPU', 'this browser has no WebGPU (navigator.gpu is missing)');
  const adapter = await requestAdapter(gpu);
  if (!adapter) fail('FM_WEBGPU', 'the browser offers no WebGPU adapter');
  return { device: await deviceFromAdapter(adapter, manifest, 'navigator.gpu'), owned: true };
}

// =================================================================================================
// GPU helpers
// =================================================================================================

/** WebGPU flag values, fixed by the specification; literals, so Node needs no GPUBufferUsage globals. */
const BUFFER_USAGE = { MAP_READ: 0x1, COPY_SRC: 0x4, COPY_DST: 0x8, STORAGE: 0x80 } as const;
const TEXTURE_USAGE = { COPY_DST: 0x2, TEXTURE_BINDING: 0x4 } as const;
const SHADER_STAGE_COMPUTE = 0x4;
const MAP_MODE_READ = 0x1;

/** Creates and destroys the session's buffers and counts their bytes, for stats(). */
class GpuMemory {
  private readonly sizes = new Map<GPUBuffer | GPUTexture, number>();
  liveBytes = 0;
  peakBytes = 0;

  /** resolve to a message for each allocation the device reported out of memory */
  private allocationChecks: Promise<string | undefined>[] = [];

  constructor(private readonly device: GPUDevice) {}

  /**
   * Allocates in an 'out-of-memory' error scope of its own (WebGPU reports a failed allocation
   * there, asynchronously: see checkAllocations); an allocation that throws fails at once.
   */
  createBuffer(descriptor: GPUBufferDescriptor & { size: number }, role: string): GPUBuffer {
    const what = `${descriptor.size} bytes for ${role}`;
    this.device.pushErrorScope('out-of-memory');
    let buffer: GPUBuffer;
    try {
      buffer = this.device.createBuffer(descriptor);
    } catch (error) {
      this.device.popErrorScope().catch(() => {});
      const message = errorMessage(error);
      if (error instanceof RangeError || /memory|alloc/i.test(message)) fail('FM_WEBGPU', `out of GPU memory allocating ${what}: ${message}`, error);
      fail('FM_WEBGPU', `allocating ${what} failed: ${message}`, error);
    }
    this.allocationChecks.push(this.device.popErrorScope().then(
      (error) => (error ? `out of GPU memory allocating ${what}: ${error.message}` : undefined),
      () => undefined,
    ));
    this.sizes.set(buffer, descriptor.size);
    this.liveBytes += descriptor.size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return buffer;
  }

  /** A weight texture, counted with its texel bytes; allocation failures are reported like buffers'. */
  createTexture(decl: TextureDecl, label: string, role: string): GPUTexture {
    const size = decl.width * decl.height * decl.layers * TEXEL_BYTES;
    const what = `${size} bytes for ${role}`;
    this.device.pushErrorScope('out-of-memory');
    let texture: GPUTexture;
    try {
      texture = this.device.createTexture({
        label, format: decl.format, size: [decl.width, decl.height, decl.layers], usage: TEXTURE_USAGE.COPY_DST | TEXTURE_USAGE.TEXTURE_BINDING,
        // compatibility mode binds a texture only with this view dimension (a 1-layer texture would default to '2d')
        textureBindingViewDimension: '2d-array',
      } as GPUTextureDescriptor);
    } catch (error) {
      this.device.popErrorScope().catch(() => {});
      fail('FM_WEBGPU', `allocating ${what} failed: ${errorMessage(error)}`, error);
    }
    this.allocationChecks.push(this.device.popErrorScope().then(
      (error) => (error ? `out of GPU memory allocating ${what}: ${error.message}` : undefined),
      () => undefined,
    ));
    this.sizes.set(texture, size);
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return texture;
  }

  /** Rejects with FM_WEBGPU if the device reported any allocation so far out of memory. */
  async checkAllocations(): Promise<void> {
    const failures = await keepAlive(Promise.all(this.allocationChecks.splice(0)));
    const first = failures.find((failure) => failure !== undefined);
    if (first !== undefined) fail('FM_WEBGPU', first);
  }

  destroyAll(): void {
    for (const [buffer, size] of this.sizes) {
      buffer.destroy();
      this.liveBytes -= size;
    }
    this.sizes.clear();
  }
}

/**
 * Collects GPU validation and out-of-memory errors. Error scopes are a per-device stack, and other
 * sessions may share the device, so a scope never spans an await: capture() takes synchronous work.
 */
class GpuErrorCollector {
  private pending: Promise<GPUError | null>[] = [];

  constructor(private readonly device: GPUDevice) {}

  capture<T>(work: () => T): T {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    try {
      return work();
    } finally {
      const popped = [this.device.popErrorScope(), this.device.popErrorScope()];
      // awaited by check(); until then (or if a failure elsewhere means never) a rejection is not unhandled
      for (const scope of popped) scope.catch(() => {});
      this.pending.push(...popped);
    }
  }

  async check(what: string): Promise<void> {
    const errors = await keepAlive(Promise.all(this.pending));
    this.pending = [];
    const first = errors.find((error) => error !== null);
    if (first) fail('FM_WEBGPU', `${what}: ${first.message}`);
  }
}

/**
 * Records dispatches and copies into one command encoder. Host writes (inputs, weight uploads) are
 * queue operations that would run before every command not yet submitted, so a host write after
 * recorded commands submits them first; without such writes a whole run is one submission.
 */
class CommandRecorder {
  private encoder?: GPUCommandEncoder;
  private pass?: GPUComputePassEncoder;
  submissions = 0;

  constructor(private readonly device: GPUDevice) {}

  dispatch(pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, workgroups: readonly [number, number, number]): void {
    this.pass ??= this.openEncoder().beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
  }

  copy(source: GPUBuffer, sourceOffset: number, target: GPUBuffer, targetOffset: number, size: number): void {
    this.endPass();
    this.openEncoder().copyBufferToBuffer(source, sourceOffset, target, targetOffset, size);
  }

  write(target: GPUBuffer, offset: number, data: GpuElements | Uint8Array<ArrayBuffer>): void {
    this.submit();
    this.device.queue.writeBuffer(target, offset, data);
  }

  /** Whole texture rows from shard bytes already in the texel layout (no conversion). */
  writeTexture(target: GPUTexture, width: number, dst: TextureRegion, data: Uint8Array<ArrayBuffer>): void {
    this.submit();
    this.device.queue.writeTexture(
      { texture: target, origin: { x: 0, y: dst.y, z: dst.layer } }, data,
      { offset: 0, bytesPerRow: width * TEXEL_BYTES, rowsPerImage: dst.rows }, { width, height: dst.rows, depthOrArrayLayers: 1 },
    );
  }

  submit(): void {
    if (!this.encoder) return;
    this.endPass();
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = undefined;
    this.submissions++;
  }

  private openEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }
}

/** A dispatch's binding kinds, one letter per binding: 's' storage buffer, 't' weight texture. */
function bindingKinds(step: DispatchStep): string {
  return step.bindings.map((binding) => (isTextureBinding(binding) ? 't' : 's')).join('');
}

/** Explicit layouts (not 'auto'), so a binding the shader leaves unused is still accepted. */
class BindGroupLayouts {
  private readonly layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();

  constructor(private readonly device: GPUDevice) {}

  /** `kinds` as bindingKinds gives them */
  forBindings(kinds: string): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    let layout = this.layouts.get(kinds);
    if (!layout) {
      const entries = [...kinds].map((kind, binding): GPUBindGroupLayoutEntry => (kind === 't'
        ? { binding, visibility: SHADER_STAGE_COMPUTE, texture: { sampleType: 'unfilterable-float', viewDimension: '2d-array' } }
        : { binding, visibility: SHADER_STAGE_COMPUTE, buffer: { type: 'storage' } }));
      const group = this.device.createBindGroupLayout({ entries });
      layout = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts: [group] }) };
      this.layouts.set(kinds, layout);
    }
    return layout;
  }
}

/** Compiles every pipeline asynchronously as soon as it is requested, so compilation overlaps weight uploads. */
class Pipelines {
  private readonly pending = new Map<string, Promise<GPUComputePipeline>>();

  constructor(
    private readonly device: GPUDevice,
    private readonly shaders: { path: string; source: string }[],
    private readonly layouts: BindGroupLayouts,
  ) {}

  request(shader: number, kinds: string): Promise<GPUComputePipeline> {
    const key = `${shader}/${kinds}`;
    let pipeline = this.pending.get(key);
    if (!pipeline) {
      pipeline = this.compile(shader, kinds);
      // awaited later; until then a failure must not count as an unhandled rejection
      pipeline.catch(() => {});
      this.pending.set(key, pipeline);
    }
    return pipeline;
  }

  private async compile(shader: number, kinds: string): Promise<GPUComputePipeline> {
    const { path, source } = this.shaders[shader]!;
    const module = this.device.createShaderModule({ label: path, code: source });
    try {
      return await keepAlive(this.device.createComputePipelineAsync({
        layout: this.layouts.forBindings(kinds).pipeline,
        compute: { module, entryPoint: 'main' },
      }));
    } catch (error) {
      fail('FM_WEBGPU', `compiling ${path} failed: ${errorMessage(error)}${await compilerMessages(module)}`, error);
    }
  }
}

async function compilerMessages(module: GPUShaderModule): Promise<string> {
  try {
    const info = await keepAlive(module.getCompilationInfo());
    const errors = info.messages.filter((message) => message.type === 'error');
    return errors.map((message) => `\n  line ${message.lineNum}:${message.linePos}: ${message.message}`).join('');
  } catch {
    return '';
  }
}

// =================================================================================================
// Weight shards
// =================================================================================================

/**
 * Reads each shard once, whole (crypto.subtle hashes whole buffers only), verifies it, and keeps
 * it only until its last use, so host memory holds few shards at a time.
 */
class ShardStore {
  private readonly cache = new Map<number, Promise<Uint8Array<ArrayBuffer>>>();
  private readonly unused: number[];

  private constructor(
    private readonly reader: BundleReader,
    private readonly files: FileEntry[],
    private readonly usesLeft: number[],
  ) {
    this.unused = usesLeft.flatMap((uses, index) => (uses === 0 ? [index] : []));
  }

  static forSchedule(reader: BundleReader, bundle: VerifiedBundle): ShardStore {
    const uses = bundle.shardFiles.map(() => 0);
    for (const model of bundle.schedule.models) {
      for (const step of [...model.init, ...model.run]) if (step.op === 'upload') uses[step.shard]!++;
    }
    return new ShardStore(reader, bundle.shardFiles, uses);
  }

  async use(index: number): Promise<Uint8Array<ArrayBuffer>> {
    let shard = this.cache.get(index);
    if (!shard) this.cache.set(index, (shard = readVerifiedFile(this.reader, this.files[index]!)));
    if (--this.usesLeft[index]! === 0) this.cache.delete(index);
    return shard;
  }

  /** A bundle is verified whole, including shards that no step uses. */
  async verifyUnused(): Promise<void> {
    for (const index of this.unused) await readVerifiedFile(this.reader, this.files[index]!);
  }
}

// =================================================================================================
// Session
// =================================================================================================

type RunCommand =
  | { kind: 'writeInput'; input: number; buffer: GPUBuffer; offset: number }
  | { kind: 'upload'; bytes: Uint8Array<ArrayBuffer>; buffer: GPUBuffer; offset: number }
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; workgroups: [number, number, number] }
  | { kind: 'readOutput'; output: number; buffer: GPUBuffer; offset: number; size: number }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number };

interface LoadedModel {
  info: ModelInfo;
  commands: RunCommand[];
  readback?: GPUBuffer;
  /** byte offset of output i in the readback buffer */
  readbackOffsets: number[];
  dispatchesPerRun: number;
  uploadsPerRun: number;
  uploadBytesPerRun: number;
}

/** GPU objects of one model during load */
interface ModelResources {
  info: ModelInfo;
  schedule: ModelSchedule;
  buffers: GPUBuffer[];
  /** weight textures, schedule.textures[i] */
  textures: GPUTexture[];
  readback?: GPUBuffer;
  readbackOffsets: number[];
}

interface PreparedRun {
  model: LoadedModel;
  /** inputs converted to GPU elements, in signature order */
  inputs: GpuElements[];
}

class Session implements FlashmemSession {
  readonly device: GPUDevice;
  readonly models: readonly ModelInfo[];
  private readonly owned: boolean;
  private readonly memory: GpuMemory;
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly counters = { loadMs: 0, lastRunMs: 0, runs: 0, dispatches: 0, uploads: 0, uploadedBytes: 0 };
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private lostInfo?: GPUDeviceLostInfo;
  /** rejects when the device is lost, to abort waits on work that will never finish */
  private readonly lost: Promise<never>;

  private constructor(acquired: AcquiredDevice, models: readonly ModelInfo[]) {
    this.device = acquired.device;
    this.owned = acquired.owned;
    this.models = models;
    this.memory = new GpuMemory(this.device);
    this.lost = this.device.lost.then((info) => {
      this.lostInfo = info;
      fail('FM_WEBGPU', `the WebGPU device was lost (${info.reason}): ${info.message}`);
    });
    this.lost.catch(() => {});
  }

  static async start(acquired: AcquiredDevice, bundle: VerifiedBundle, reader: BundleReader, startedAt: number): Promise<Session> {
    const session = new Session(acquired, bundle.manifest.models);
    try {
      await session.load(bundle, reader);
    } catch (error) {
      session.memory.destroyAll();
      throw asRuntimeError(error, 'preparing the bundle on the GPU');
    }
    session.counters.loadMs = performance.now() - startedAt;
    return session;
  }

  // ---------------------------------------------------------------------------------------- load

  private async load(bundle: VerifiedBundle, reader: BundleReader): Promise<void> {
    const errors = new GpuErrorCollector(this.device);
    const layouts = new BindGroupLayouts(this.device);
    const shaders = bundle.schedule.shaders.map((path, i) => ({ path, source: bundle.shaderSources[i]! }));
    const pipelines = new Pipelines(this.device, shaders, layouts);
    const resources = errors.capture(() => bundle.schedule.models.map((schedule, i) => {
      this.requestPipelines(schedule, pipelines);
      return this.createResources(bundle.modelInfos[i]!, schedule);
    }));
    // no weight is read or uploaded when the buffers could not be allocated
    await this.whileDeviceAlive(this.memory.checkAllocations());
    const shards = ShardStore.forSchedule(reader, bundle);
    for (const model of resources) await this.runInit(model, shards, pipelines, layouts, errors);
    for (const model of resources) this.loaded.set(model.info.name, await this.compileRun(model, shards, pipelines, layouts, errors));
    await shards.verifyUnused();
    await this.whileDeviceAlive(errors.check('loading the bundle onto the GPU'));
  }

  private requestPipelines(schedule: ModelSchedule, pipelines: Pipelines): void {
    for (const step of [...schedule.init, ...schedule.run]) {
      if (step.op === 'dispatch') void pipelines.request(step.shader, bindingKinds(step));
    }
  }

  private createResources(info: ModelInfo, schedule: ModelSchedule): ModelResources {
    const usage = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST;
    const buffers = schedule.buffers.map((buffer, i) =>
      this.memory.createBuffer({ label: `${buffer.role}-${i}`, size: buffer.size, usage }, `${buffer.role} buffer ${i} of model ${quote(info.name)}`));
    const textures = (schedule.textures ?? []).map((texture, i) =>
      this.memory.createTexture(texture, `weights-texture-${i}`, `weight texture ${i} of model ${quote(info.name)}`));
    const readbackOffsets: number[] = [];
    let readbackSize = 0;
    for (const step of schedule.run) {
      if (step.op !== 'readOutput') continue;
      readbackOffsets[step.output] = readbackSize;
      readbackSize += step.src.size;
    }
    const readback = readbackSize > 0
      ? this.memory.createBuffer({ label: 'readback', size: readbackSize, usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST }, `the readback buffer of model ${quote(info.name)}`)
      : undefined;
    return { info, schedule, buffers, textures, readback, readbackOffsets };
  }

  private bindGroup(step: DispatchStep, buffers: GPUBuffer[], layouts: BindGroupLayouts, textures: GPUTexture[]): GPUBindGroup {
    return this.device.createBindGroup({
      layout: layouts.forBindings(bindingKinds(step)).group,
      entries: step.bindings.map((region, binding): GPUBindGroupEntry => (isTextureBinding(region)
        ? { binding, resource: textures[region.texture]!.createView({ dimension: '2d-array' }) }
        : { binding, resource: { buffer: buffers[region.buffer]!, offset: region.offset, size: region.size } })),
    });
  }

  /** Init steps run once, in order: weight uploads (preloaded weights) and any preparatory dispatches. */
  private async runInit(model: ModelResources, shards: ShardStore, pipelines: Pipelines, layouts: BindGroupLayouts, errors: GpuErrorCollector): Promise<void> {
    const recorder = new CommandRecorder(this.device);
    for (const step of model.schedule.init) {
      if (step.op === 'upload') {
        const shard = await shards.use(step.shard);
        const dst = step.dst;
        const bytes = shard.subarray(step.shardOffset, step.shardOffset + dst.size);
        if (isTextureRegion(dst)) {
          const width = model.schedule.textures![dst.texture]!.width;
          errors.capture(() => recorder.writeTexture(model.textures[dst.texture]!, width, dst, bytes));
        } else {
          errors.capture(() => recorder.write(model.buffers[dst.buffer]!, dst.offset, bytes));
        }
        this.countUpload(step.dst.size);
      } else if (step.op === 'dispatch') {
        const pipeline = await pipelines.request(step.shader, bindingKinds(step));
        errors.capture(() => recorder.dispatch(pipeline, this.bindGroup(step, model.buffers, layouts, model.textures), step.workgroups));
        this.counters.dispatches++;
      } else if (step.op === 'copy') {
        errors.capture(() => recorder.copy(model.buffers[step.src.buffer]!, step.src.offset, model.buffers[step.dst.buffer]!, step.dst.offset, step.src.size));
      }
    }
    errors.capture(() => recorder.submit());
  }

  /** Turns run steps into GPU objects ready to replay: pipelines, bind groups, streamed weight bytes. */
  private async compileRun(model: ModelResources, shards: ShardStore, pipelines: Pipelines, layouts: BindGroupLayouts, errors: GpuErrorCollector): Promise<LoadedModel> {
    const loaded: LoadedModel = {
      info: model.info, commands: [], readback: model.readback, readbackOffsets: model.readbackOffsets,
      dispatchesPerRun: 0, uploadsPerRun: 0, uploadBytesPerRun: 0,
    };
    for (const step of model.schedule.run) loaded.commands.push(await this.compileRunStep(step, model, loaded, shards, pipelines, layouts, errors));
    return loaded;
  }

  private async compileRunStep(
    step: Step, model: ModelResources, loaded: LoadedModel, shards: ShardStore, pipelines: Pipelines, layouts: BindGroupLayouts, errors: GpuErrorCollector,
  ): Promise<RunCommand> {
    switch (step.op) {
      case 'writeInput':
        return { kind: 'writeInput', input: step.input, buffer: model.buffers[step.dst.buffer]!, offset: step.dst.offset };
      case 'readOutput':
        return { kind: 'readOutput', output: step.output, buffer: model.buffers[step.src.buffer]!, offset: step.src.offset, size: step.src.size };
      case 'upload': {
        const shard = await shards.use(step.shard);
        loaded.uploadsPerRun++;
        loaded.uploadBytesPerRun += step.dst.size;
        // a copy, so that the shard itself can be released
        const bytes = shard.slice(step.shardOffset, step.shardOffset + step.dst.size);
        // checkUpload admits texture uploads in init steps only
        const dst = step.dst as Region;
        return { kind: 'upload', bytes, buffer: model.buffers[dst.buffer]!, offset: dst.offset };
      }
      case 'copy':
        return { kind: 'copy', src: model.buffers[step.src.buffer]!, srcOffset: step.src.offset, dst: model.buffers[step.dst.buffer]!, dstOffset: step.dst.offset, size: step.src.size };
      case 'dispatch': {
        const pipeline = await pipelines.request(step.shader, bindingKinds(step));
        loaded.dispatchesPerRun++;
        const bindGroup = errors.capture(() => this.bindGroup(step, model.buffers, layouts, model.textures));
        return { kind: 'dispatch', pipeline, bindGroup, workgroups: step.workgroups };
      }
    }
  }

  private countUpload(bytes: number): void {
    this.counters.uploads++;
    this.counters.uploadedBytes += bytes;
  }

  // ----------------------------------------------------------------------------------------- run

  run(inputs: RunInputs): Promise<RunOutputs>;
  run(modelName: string, inputs: RunInputs): Promise<RunOutputs>;
  run(first: string | RunInputs, second?: RunInputs): Promise<RunOutputs> {
    let prepared: PreparedRun;
    try {
      // inputs are converted (copied) now, so that a queued run sees them as they were at the call
      prepared = this.prepareRun(first, second);
    } catch (error) {
      return Promise.reject(error);
    }
    const result = this.queue.then(() => this.execute(prepared));
    this.queue = result.catch(() => undefined);
    return result;
  }

  private prepareRun(first: string | RunInputs, second: RunInputs | undefined): PreparedRun {
    this.assertUsable();
    const model = typeof first === 'string' ? this.namedModel(first) : this.onlyModel();
    const inputs = typeof first === 'string' ? second : first;
    if (!isPlainObject(inputs)) fail('FM_INPUT', `run() of model ${quote(model.info.name)} needs an object of inputs by name`);
    return { model, inputs: convertInputs(model.info, inputs as RunInputs) };
  }

  private namedModel(name: string): LoadedModel {
    const model = this.loaded.get(name);
    if (!model) fail('FM_INPUT', `the bundle has no model ${quote(name)}; it has ${this.modelNames()}`);
    return model;
  }

  private onlyModel(): LoadedModel {
    if (this.loaded.size !== 1) fail('FM_INPUT', `the bundle has ${this.loaded.size} models (${this.modelNames()}): call run(modelName, inputs)`);
    return this.loaded.values().next().value!;
  }

  private modelNames(): string {
    return [...this.loaded.keys()].map(quote).join(', ');
  }

  private assertUsable(): void {
    if (this.disposed) fail('FM_WEBGPU', 'the session was disposed');
    if (this.lostInfo) fail('FM_WEBGPU', `the WebGPU device was lost (${this.lostInfo.reason}): ${this.lostInfo.message}`);
  }

  private async execute({ model, inputs }: PreparedRun): Promise<RunOutputs> {
    this.assertUsable();
    const startedAt = performance.now();
    const what = `running model ${quote(model.info.name)}`;
    const errors = new GpuErrorCollector(this.device);
    let mapped: Promise<unknown> | undefined;
    try {
      mapped = errors.capture(() => {
        this.replay(model, inputs);
        return model.readback?.mapAsync(MAP_MODE_READ);
      });
    } catch (error) {
      throw asRuntimeError(error, what);
    }
    const [checked, mapping] = await keepAlive(Promise.allSettled([
      this.whileDeviceAlive(errors.check(what)),
      this.whileDeviceAlive(mapped ?? Promise.resolve(undefined)),
    ]));
    if (this.disposed) fail('FM_WEBGPU', 'the session was disposed during run()');
    if (checked.status === 'rejected' || mapping.status === 'rejected') {
      if (model.readback?.mapState === 'mapped') model.readback.unmap();
      // a lost device explains any other failure of the run: name the loss
      this.assertUsable();
      throw asRuntimeError(checked.status === 'rejected' ? checked.reason : (mapping as PromiseRejectedResult).reason, `${what}: reading the outputs`);
    }
    const outputs = this.readOutputs(model);
    this.countRun(model, performance.now() - startedAt);
    return outputs;
  }

  private replay(model: LoadedModel, inputs: GpuElements[]): void {
    const recorder = new CommandRecorder(this.device);
    for (const command of model.commands) {
      switch (command.kind) {
        case 'writeInput': recorder.write(command.buffer, command.offset, inputs[command.input]!); break;
        case 'upload': recorder.write(command.buffer, command.offset, command.bytes); break;
        case 'dispatch': recorder.dispatch(command.pipeline, command.bindGroup, command.workgroups); break;
        case 'readOutput': recorder.copy(command.buffer, command.offset, model.readback!, model.readbackOffsets[command.output]!, command.size); break;
        case 'copy': recorder.copy(command.src, command.srcOffset, command.dst, command.dstOffset, command.size); break;
      }
    }
    recorder.submit();
  }

  private readOutputs(model: LoadedModel): RunOutputs {
    const outputs: RunOutputs = {};
    if (!model.readback) return outputs;
    const bytes = model.readback.getMappedRange();
    try {
      model.info.outputs.forEach((tensor, i) => {
        outputs[tensor.name] = fromGpuElements(tensor.dtype, bytes, model.readbackOffsets[i]!, elementCount(tensor.shape));
      });
    } finally {
      model.readback.unmap();
    }
    return outputs;
  }

  private countRun(model: LoadedModel, ms: number): void {
    this.counters.runs++;
    this.counters.lastRunMs = ms;
    this.counters.dispatches += model.dispatchesPerRun;
    this.counters.uploads += model.uploadsPerRun;
    this.counters.uploadedBytes += model.uploadBytesPerRun;
  }

  private whileDeviceAlive<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.lost]);
  }

  // ---------------------------------------------------------------------------------- lifecycle

  stats(): SessionStats {
    return { ...this.counters, peakGpuBytes: this.memory.peakBytes, liveGpuBytes: this.memory.liveBytes };
  }

  dispose(): void {
    if (this.disposed) return;
    this.disposed = true;
    this.memory.destroyAll();
    this.loaded.clear();
    if (this.owned) this.device.destroy();
  }
}

// =================================================================================================
// Inputs and outputs: host typed arrays <-> GPU elements (f32 for floats, i32 for integers and bool)
// =================================================================================================

/** a tensor as the GPU holds it: 4-byte f32 or i32 elements */
type GpuElements = Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer>;

const FLOAT_DTYPES: ReadonlySet<DType> = new Set(['float32', 'float16', 'float64', 'bfloat16']);
const INT32_MIN = -(2 ** 31);
const INT32_MAX = 2 ** 31 - 1;

/** the typed array each dtype is passed in and returned as */
const HOST_ARRAYS: Record<DType, { name: string; prototype: object }> = {
  float32: Float32Array, float16: Float32Array, bfloat16: Float32Array, float64: Float64Array,
  int8: Int8Array, uint8: Uint8Array, int16: Int16Array, uint16: Uint16Array,
  int32: Int32Array, uint32: Uint32Array, int64: BigInt64Array, uint64: BigUint64Array, bool: Uint8Array,
};

function convertInputs(info: ModelInfo, inputs: RunInputs): GpuElements[] {
  const declared = new Set(info.inputs.map((tensor) => tensor.name));
  const unknown = Object.keys(inputs).find((name) => !declared.has(name));
  if (unknown !== undefined) {
    fail('FM_INPUT', `model ${quote(info.name)} has no input ${quote(unknown)}; its inputs are ${info.inputs.map((t) => quote(t.name)).join(', ') || 'none'}`);
  }
  return info.inputs.map((tensor) => {
    const where = `input ${quote(tensor.name)} of model ${quote(info.name)} (${tensor.dtype} [${tensor.shape.join(', ')}])`;
    if (!Object.hasOwn(inputs, tensor.name)) fail('FM_INPUT', `${where} is missing`);
    return toGpuElements(tensor, inputs[tensor.name], where);
  });
}

function toGpuElements(tensor: TensorInfo, value: unknown, where: string): GpuElements {
  const hostArray = HOST_ARRAYS[tensor.dtype];
  if (!Array.isArray(value) && !(value instanceof (hostArray as unknown as new () => object))) {
    fail('FM_INPUT', `${where} must be a ${hostArray.name} or a plain array, not ${describeValue(value)}`);
  }
  const values = value as ArrayLike<unknown>;
  const count = elementCount(tensor.shape);
  if (values.length !== count) fail('FM_INPUT', `${where} needs ${count} elements, got ${values.length}`);
  return FLOAT_DTYPES.has(tensor.dtype) ? toFloat32(values, where) : toInt32(values, tensor.dtype, where);
}

function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  return typeof value === 'object' ? (value.constructor?.name ?? 'an object') : typeof value;
}

function toFloat32(values: ArrayLike<unknown>, where: string): Float32Array<ArrayBuffer> {
  if (values instanceof Float32Array || values instanceof Float64Array) return Float32Array.from(values);
  return Float32Array.from(values as ArrayLike<unknown>, (v, i) => {
    if (typeof v !== 'number') fail('FM_INPUT', `${where}: element ${i} is ${describeValue(v)}, not a number`);
    return v;
  });
}

function toInt32(values: ArrayLike<unknown>, dtype: DType, where: string): Int32Array<ArrayBuffer> {
  if (values instanceof Int32Array || values instanceof Int16Array || values instanceof Int8Array || values instanceof Uint16Array) {
    return Int32Array.from(values);
  }
  return Int32Array.from(values, (v, i) => {
    if (dtype === 'bool') return v ? 1 : 0;
    const n = typeof v === 'bigint' ? Number(v) : v;
    if (typeof n !== 'number' || !Number.isInteger(n)) fail('FM_INPUT', `${where}: element ${i} is ${String(v)}, not an integer`);
    if (n < INT32_MIN || n > INT32_MAX) {
      fail('FM_INPUT', `${where}: element ${i} is ${String(v)}, outside the 32-bit range the GPU computes ${dtype} in`);
    }
    return n;
  });
}

function fromGpuElements(dtype: DType, bytes: ArrayBuffer, offset: number, count: number): TypedArray {
  if (FLOAT_DTYPES.has(dtype)) {
    const floats = new Float32Array(bytes, offset, count);
    return dtype === 'float64' ? Float64Array.from(floats) : floats.slice();
  }
  const ints = new Int32Array(bytes, offset, count);
  switch (dtype) {
    case 'int64': return BigInt64Array.from(ints, (v) => BigInt(v));
    case 'uint64': return BigUint64Array.from(ints, (v) => BigInt.asUintN(64, BigInt(v)));
    case 'bool': return Uint8Array.from(ints, (v) => (v !== 0 ? 1 : 0));
    case 'int8': return Int8Array.from(ints);
    case 'uint8': return Uint8Array.from(ints);
    case 'int16': return Int16Array.from(ints);
    case 'uint16': return Uint16Array.from(ints);
    case 'uint32': return Uint32Array.from(ints);
    default: return ints.slice();
  }
}

// =================================================================================================
// Entry point
// =================================================================================================

/**
 * Loads a bundle from a folder path (Node), a file: URL (Node) or an http(s) URL, verifies it
 * completely (format version, JSON Schemas, sha256 of every file, bounds of every step against the
 * device) and prepares it on the GPU: buffers, pipelines, bind groups, preloaded weights.
 */
export async function loadBundle(dirOrUrl: string | URL, options: LoadOptions = {}): Promise<FlashmemSession> {
  const startedAt = performance.now();
  const reader = await openBundleReader(dirOrUrl, options.readFile);
  const bundle = await readVerifiedBundle(reader);
  const acquired = await acquireDevice(bundle.manifest, options);
  try {
    checkScheduleBounds(bundle, acquired.device.limits);
    // shards are verified as they stream in (ShardStore), before their bytes reach the GPU
    return await Session.start(acquired, bundle, reader, startedAt);
  } catch (error) {
    if (acquired.owned) acquired.device.destroy();
    throw error;
  }
}

/**
 * Verifies a bundle without a device: every check loadBundle makes before GPU work (format version,
 * JSON Schemas, cross references, bounds of every step, here against `options.limits`), plus the
 * size and sha256 of every file the manifest lists (shards, runtime.js and runtime.d.ts included).
 * Rejects with FM_BUNDLE_VERSION, FM_BUNDLE_INVALID, FM_BUNDLE_HASH or FM_IO.
 */
export async function verifyBundle(dirOrUrl: string | URL, options: VerifyOptions = {}): Promise<VerifySummary> {
  const reader = await openBundleReader(dirOrUrl, options.readFile);
  const bundle = await readVerifiedBundle(reader);
  checkScheduleBounds(bundle, verificationLimits(bundle.manifest, options.limits));
  let bytes = bundle.manifestBytes;
  for (const entry of bundle.manifest.files) {
    if (!bundle.verifiedFiles.has(entry.path)) await readVerifiedFile(reader, entry);
    bytes += entry.size;
  }
  return { models: bundle.manifest.models, files: bundle.manifest.files.length + 1, bytes };
}
