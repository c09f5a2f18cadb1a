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
  /**
   * Where a streamed model's weights come from on each run. 'memory' (default): read from the
   * bundle once, at load, and kept in host memory (fastest runs). 'storage': read again by byte
   * range on every run, in schedule order with bounded read-ahead, so host memory holds only the
   * read-ahead window (file ranges in Node, HTTP Range requests in browsers).
   */
  streamedWeights?: 'memory' | 'storage';
  /** Bytes of weight blocks read ahead of the schedule, at load and in 'storage' runs (default 64 MiB). */
  readAheadBytes?: number;
  /**
   * How streamed weight bytes held in host memory reach the GPU on every run. 'queue' (default):
   * queue.writeBuffer into the staging ring or the slot, which splits the run's submission after
   * every kernel that last read that memory. 'mapped': the bytes are placed once, at load, in
   * host-visible staging buffers (MAP_WRITE | COPY_SRC; system memory on a discrete GPU) and each
   * run copies them with copyBufferToBuffer inside its own command buffer: one submission per run
   * and the GPU's copy bandwidth instead of writeBuffer's. Those buffers are reported apart from the
   * budgeted device memory (stats().hostStagingBytes). Ignored with streamedWeights 'storage'.
   */
  uploads?: 'queue' | 'mapped';
  /**
   * Also time each submission on the GPU (timeline 'gpu' entries, from queue.onSubmittedWorkDone).
   * Off by default: on a fast GPU the extra completion callbacks cost a visible share of a short run.
   */
  gpuTimeline?: boolean;
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
  /** what the schedule plans to allocate: the sum of its models' planned peak GPU bytes (compare with peakGpuBytes) */
  plannedPeakGpuBytes: number;
  /** the steps of the last completed run, in order, timed from its start */
  timeline: TimelineEvent[];
  /** the weight reads and uploads of loadBundle, timed from its start */
  loadTimeline: TimelineEvent[];
  /** LoadOptions.uploads 'mapped': bytes of the host-visible staging buffers (not in peakGpuBytes) */
  hostStagingBytes: number;
  /** the last runs (up to 1000), oldest first: which model, which plan served it, time and bytes */
  calls: CallStats[];
  /** totals per model */
  models: Record<string, ModelCallStats>;
}

/** Which plan served a run: the bundle's only plan, a model's entry plan, or the declared sequence's next call. */
export type PlanUse = 'single' | 'entry' | 'sequence';

/** One run() of the session (SessionStats.calls). */
export interface CallStats {
  model: string;
  plan: PlanUse;
  /** plan 'sequence': which call of the declared sequence */
  sequenceCall?: number;
  /** shared memory: whether the model's (or sequence's) resident weights were uploaded again first */
  reloaded: boolean;
  /** from leaving the queue to the outputs, ms */
  ms: number;
  /** waiting behind earlier runs, ms */
  queuedMs: number;
  /** weight bytes uploaded for this call (streamed, and reloaded resident ones) */
  uploadedBytes: number;
}

export interface ModelCallStats {
  runs: number;
  totalMs: number;
  uploadedBytes: number;
  reloads: number;
  plans: Record<PlanUse, number>;
}

/**
 * One entry of a run's (or the load's) timeline. Times are host milliseconds from the start of the
 * run; a schedule step's entry spans recording it (GPU work runs later, see 'gpu' entries).
 */
export interface TimelineEvent {
  /**
   * a schedule step ('upload': a weight piece written to the GPU; 'copy': a staged piece moved into
   * place), 'read' (waiting for weight bytes from storage), or 'gpu' (a submission, from submit
   * until the GPU reported it done)
   */
  kind: 'writeInput' | 'upload' | 'copy' | 'dispatch' | 'readOutput' | 'stateWrite' | 'read' | 'gpu';
  /** index of the step in the model's run (or init) steps; -1 for 'gpu' */
  step: number;
  /** kernel label, or the weight's name */
  label?: string;
  bytes?: number;
  startMs: number;
  endMs: number;
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
  /**
   * Decoder bundles (flashmemc compile --decoder): greedy generation of up to maxNewTokens tokens
   * after the prompt, with the KV cache on the GPU. Starts a new sequence (the cache is reused).
   */
  generate(promptIds: ArrayLike<number | bigint>, options: GenerateOptions): Promise<GenerateResult>;
  /** Decoder bundles: step-wise control (prefill a prompt, then one token per step). */
  decoder(): DecoderStepper;
  /** Destroys every GPU buffer of the session, and the device if the session created it. */
  dispose(): void;
}

export interface GenerateOptions {
  maxNewTokens: number;
  /** stop after generating one of these */
  stopTokens?: readonly number[];
  /** called with each new token as soon as it is known */
  onToken?: (token: number, index: number) => void;
}

export interface GenerateResult {
  tokens: number[];
  promptTokens: number;
  /** prefill (and prompt tokens beyond the prefill length) until the first new token, ms */
  prefillMs: number;
  /** the decode steps after the first token, ms */
  decodeMs: number;
  /** new tokens after the first per second of decodeMs */
  tokensPerSecond: number;
}

/** One sequence of a decoder: the KV cache fills from slot 0. */
export interface DecoderStepper {
  /** cache slots used so far: the position of the next token */
  readonly position: number;
  /** cache slots (maximum context) */
  readonly context: number;
  /** Runs the prompt (prefill, then decode steps for tokens beyond its fixed length); resolves to the logits after its last token. */
  prefill(promptIds: ArrayLike<number | bigint>): Promise<Float32Array>;
  /** Feeds one token at the next position; resolves to the logits for the token after it. */
  step(tokenId: number | bigint): Promise<Float32Array>;
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
interface FileEntry { path: string; kind: FileKind; size: number; sha256: string; blocks?: { size: number; sha256: string[] } }

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
/** largest single queue.writeTexture (see Recorder.writeTexture); WebGPU's default maxBufferSize is 256 MiB */
const TEXTURE_WRITE_BYTES = 64 << 20;
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
/** decoder state: `heads` blocks of `rows` rows from src into the blocks of `cacheRows` rows of dst, from row 0 or the run's position */
interface StateWriteStep {
  op: 'stateWrite'; src: Region; dst: Region; heads: number; rows: number; rowBytes: number; cacheRows: number; at: 'start' | 'position'; state: string;
}
type Step = UploadStep | WriteInputStep | ReadOutputStep | DispatchStep | CopyStep | StateWriteStep;

interface DecoderSpec {
  prefill: string;
  decode: string;
  context: number;
  promptLength: number;
  vocab: number;
  inputIds: string;
  positionIds: string;
  attentionBias: string;
  localAttentionBias?: string;
  window: number;
  logits: string;
}

interface ModelSchedule {
  model: string;
  strategy: 'preload' | 'stream';
  buffers: { role: BufferRole; size: number }[];
  textures?: TextureDecl[];
  init: Step[];
  run: Step[];
  plannedPeakBytes: number;
}

type BufferRole = 'weights' | 'activations' | 'staging' | 'state';

interface SequenceSchedule {
  models: string[];
  buffers: { role: BufferRole; size: number }[];
  init: Step[];
  calls: { model: string; run: Step[] }[];
  plannedPeakBytes: number;
}

interface Schedule {
  formatVersion: number;
  shaders: string[];
  shards: { path: string; size: number }[];
  models: ModelSchedule[];
  memory?: 'separate' | 'shared';
  sequence?: SequenceSchedule;
  plannedPeakBytes?: number;
  decoder?: DecoderSpec;
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
  /** Reads `length` bytes from `offset` (fewer only when the file is shorter): a file range in Node, an HTTP Range request in browsers. */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
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
  const readAt = async (relative: string, offset: number, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> => {
    const file = path.join(root, relative);
    let handle: Awaited<ReturnType<NodeFs['open']>>;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      throw fileReadError(relative, file, error);
    }
    try {
      const { size } = await handle.stat();
      const bytes = new Uint8Array(Math.max(0, Math.min(size - offset, maxBytes)));
      let filled = 0;
      while (filled < bytes.length) {
        const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === bytes.length ? bytes : bytes.slice(0, filled);
    } catch (error) {
      throw fileReadError(relative, file, error);
    } finally {
      await handle.close();
    }
  };
  return {
    location: root,
    read: (relative, maxBytes) => readAt(relative, 0, maxBytes),
    readRange: readAt,
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
  const readAt = async (relative: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> => {
    let result: unknown;
    try {
      result = await readFile(relative, { offset, length });
    } catch (error) {
      throw error instanceof FlashmemRuntimeError ? error : fileReadError(relative, `${location}, through options.readFile`, error);
    }
    if (!(result instanceof Uint8Array)) {
      fail('FM_IO', `reading bundle file ${relative} through options.readFile gave ${describeValue(result)}, not a Uint8Array`);
    }
    return new Uint8Array(result.subarray(0, Math.min(result.length, length)));
  };
  return { location, read: (relative, maxBytes) => readAt(relative, 0, maxBytes), readRange: readAt };
}

function fetchReader(location: URL): BundleReader {
  // relative file paths resolve against the bundle folder only when the URL ends with '/'
  const base = location.href.endsWith('/') ? location : new URL(`${location.href}/`);
  const get = async (relative: string, range?: ByteRange): Promise<{ response: Response; url: URL }> => {
    const url = new URL(relative, base);
    let response: Response;
    try {
      // a Range request; a server that ignores it answers 200 with the whole file, which still works
      response = await fetch(url, range ? { headers: { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } } : undefined);
    } catch (error) {
      fail('FM_IO', `fetching bundle file ${relative} (${url.href}) failed: ${errorMessage(error)}`, error);
    }
    if (response.status === 404) fail('FM_BUNDLE_INVALID', `bundle file ${relative} is missing (404 at ${url.href})`);
    return { response, url };
  };
  return {
    location: base.href,
    async read(relative, maxBytes) {
      const { response, url } = await get(relative);
      if (!response.ok) fail('FM_IO', `fetching bundle file ${relative} (${url.href}) failed: HTTP ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      return bytes.length > maxBytes ? bytes.slice(0, maxBytes) : bytes;
    },
    async readRange(relative, offset, length) {
      if (length === 0) return new Uint8Array(0);
      const { response, url } = await get(relative, { offset, length });
      // 416: the range starts at or past the end of the file
      if (response.status === 416) return new Uint8Array(0);
      if (!response.ok) fail('FM_IO', `fetching bytes ${offset}+${length} of bundle file ${relative} (${url.href}) failed: HTTP ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const start = response.status === 206 ? 0 : offset;
      return bytes.slice(start, start + length);
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
  if (entry.blocks) {
    // the whole file is authentic; its block hashes must be too, or range reads would trust forged ones
    for (let block = 0; block < entry.blocks.sha256.length; block++) {
      await checkBlock(entry, block, bytes.subarray(block * entry.blocks.size, (block + 1) * entry.blocks.size));
    }
  }
  return bytes;
}

/** Checks one block of a weight shard against the manifest's block hashes. */
async function checkBlock(entry: FileEntry, block: number, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const blocks = entry.blocks!;
  const expectedLength = Math.min(blocks.size, entry.size - block * blocks.size);
  if (bytes.length !== expectedLength) {
    fail('FM_BUNDLE_HASH', `${entry.path} block ${block} has ${bytes.length < expectedLength ? 'only' : 'more than'} ${bytes.length} bytes, the manifest implies ${expectedLength} (truncated or replaced)`);
  }
  const actual = await sha256Hex(bytes);
  if (actual !== blocks.sha256[block]) {
    fail('FM_BUNDLE_HASH', `${entry.path} block ${block} (bytes ${block * blocks.size}+${bytes.length}) has sha256 ${actual}, the manifest says ${blocks.sha256[block]} (tampered or corrupt)`);
  }
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
  const blocks = entry.blocks;
  if (!blocks) fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} lists no block hashes for ${shard.path}: recompile the model with this flashmemc`);
  if (blocks.sha256.length !== Math.ceil(entry.size / blocks.size)) {
    fail('FM_BUNDLE_INVALID', `${MANIFEST_PATH} lists ${blocks.sha256.length} block hashes for ${shard.path}, its ${entry.size} bytes make ${Math.ceil(entry.size / blocks.size)} blocks of ${blocks.size}`);
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
  checkSharedMemory(bundle, limits);
  checkDecoder(bundle);
}

/** A decoder names two models of a shared-memory bundle, and the inputs and outputs generate() feeds and reads. */
function checkDecoder(bundle: VerifiedBundle): void {
  const spec = bundle.schedule.decoder;
  if (!spec) return;
  const where = 'schedule.json decoder';
  if (bundle.schedule.memory !== 'shared') fail('FM_BUNDLE_INVALID', `${where}: a decoder needs shared memory`);
  const model = (name: string) => bundle.modelInfos.find((info) => info.name === name) ?? fail('FM_BUNDLE_INVALID', `${where} names model ${quote(name)}, which the bundle does not have`);
  const prefill = model(spec.prefill);
  const decode = model(spec.decode);
  const has = (list: readonly TensorInfo[], name: string | undefined, what: string) => {
    if (name !== undefined && !list.some((t) => t.name === name)) fail('FM_BUNDLE_INVALID', `${where}: ${what} has no ${quote(name)}`);
  };
  has(prefill.inputs, spec.inputIds, 'the prefill model');
  has(prefill.outputs, spec.logits, 'the prefill model');
  for (const name of [spec.inputIds, spec.positionIds, spec.attentionBias, spec.localAttentionBias]) has(decode.inputs, name, 'the decode model');
  has(decode.outputs, spec.logits, 'the decode model');
  if (spec.promptLength > spec.context) fail('FM_BUNDLE_INVALID', `${where}: prompt length ${spec.promptLength} exceeds the context ${spec.context}`);
}

/** Shared memory and the declared sequence: each call is checked as a run of its model over the sequence's buffers. */
function checkSharedMemory(bundle: VerifiedBundle, limits: BoundsLimits): void {
  const { schedule } = bundle;
  if (schedule.memory !== 'shared') {
    if (schedule.sequence) fail('FM_BUNDLE_INVALID', 'schedule.json declares a sequence without shared memory ("memory": "shared")');
    return;
  }
  const textured = schedule.models.find((model) => (model.textures ?? []).length > 0);
  if (textured) fail('FM_BUNDLE_INVALID', `schedule.json model ${quote(textured.model)} has weight textures, which shared memory does not support`);
  const sequence = schedule.sequence;
  if (!sequence) return;
  if (sequence.calls.length !== sequence.models.length || sequence.calls.some((call, i) => call.model !== sequence.models[i])) {
    fail('FM_BUNDLE_INVALID', 'schedule.json sequence: calls do not follow sequence.models');
  }
  const base = { shaderCount: schedule.shaders.length, shardSizes: schedule.shards.map((shard) => shard.size), limits };
  sequence.calls.forEach((call, i) => {
    const index = schedule.models.findIndex((model) => model.model === call.model);
    if (index < 0) fail('FM_BUNDLE_INVALID', `schedule.json sequence call ${i} runs model ${quote(call.model)}, which the bundle does not have`);
    const asModel: ModelSchedule = { model: call.model, strategy: 'stream', buffers: sequence.buffers, init: i === 0 ? sequence.init : [], run: call.run, plannedPeakBytes: sequence.plannedPeakBytes };
    const context: BoundsContext = { ...base, info: bundle.modelInfos[index]!, schedule: asModel };
    if (i === 0) checkBuffers(context);
    asModel.init.forEach((step, index) => checkStep(step, `sequence init[${index}]`, context));
    call.run.forEach((step, index) => checkStep(step, `sequence call ${i} run[${index}]`, context));
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
    case 'stateWrite':
      if (isInit) fail('FM_BUNDLE_INVALID', `${where}: init steps cannot write decoder state`);
      return checkStateWrite(step, where, context);
  }
}

/** The rows copied must be the source region exactly, and every block must fit its state buffer region. */
function checkStateWrite(step: StateWriteStep, where: string, context: BoundsContext): void {
  checkRegion(step.src, where, context);
  checkRegion(step.dst, where, context);
  if (context.schedule.buffers[step.dst.buffer]!.role !== 'state') fail('FM_BUNDLE_INVALID', `${where}: the destination is not a state buffer`);
  if (step.rowBytes % 4 !== 0 || step.rows > step.cacheRows) fail('FM_BUNDLE_INVALID', `${where}: ${step.rows} rows of ${step.rowBytes} bytes do not fit blocks of ${step.cacheRows} rows`);
  if (step.heads * step.rows * step.rowBytes !== step.src.size || step.heads * step.cacheRows * step.rowBytes !== step.dst.size) {
    fail('FM_BUNDLE_INVALID', `${where}: ${step.heads} blocks of ${step.rows} (source) and ${step.cacheRows} (state) rows of ${step.rowBytes} bytes do not match sizes ${step.src.size} and ${step.dst.size}`);
  }
  if (step.src.buffer === step.dst.buffer) fail('FM_BUNDLE_INVALID', `${where}: source and destination are the same buffer`);
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
const BUFFER_USAGE = { MAP_READ: 0x1, MAP_WRITE: 0x2, COPY_SRC: 0x4, COPY_DST: 0x8, STORAGE: 0x80 } as const;
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
  /** host-visible staging (LoadOptions.uploads 'mapped'): counted apart from the device memory */
  hostStagingBytes = 0;

  /** A host-visible staging buffer, mapped: the caller fills it and unmaps it. */
  createHostStaging(size: number, role: string): GPUBuffer {
    return this.createBuffer({ label: 'host-staging', size, usage: BUFFER_USAGE.MAP_WRITE | BUFFER_USAGE.COPY_SRC, mappedAtCreation: true }, role, false);
  }

  private readonly uncounted = new Set<GPUBuffer | GPUTexture>();

  createBuffer(descriptor: GPUBufferDescriptor & { size: number }, role: string, deviceMemory = true): GPUBuffer {
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
    if (deviceMemory) {
      this.liveBytes += descriptor.size;
      this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    } else {
      this.uncounted.add(buffer);
      this.hostStagingBytes += descriptor.size;
    }
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
      if (this.uncounted.has(buffer)) this.hostStagingBytes -= size;
      else this.liveBytes -= size;
    }
    this.sizes.clear();
    this.uncounted.clear();
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

  constructor(private readonly device: GPUDevice, private readonly timeline?: Timeline) {}

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

  /**
   * Whole texture rows from shard bytes already in the texel layout (no conversion), in bands of
   * at most TEXTURE_WRITE_BYTES: Dawn stages each writeTexture in one buffer, which may not pass
   * the device's maxBufferSize (VGG-19's classifier is one 411 MB layer).
   */
  writeTexture(target: GPUTexture, width: number, dst: TextureRegion, data: Uint8Array<ArrayBuffer>): void {
    this.submit();
    const bytesPerRow = width * TEXEL_BYTES;
    const band = Math.max(1, Math.floor(TEXTURE_WRITE_BYTES / bytesPerRow));
    for (let row = 0; row < dst.rows; row += band) {
      const rows = Math.min(band, dst.rows - row);
      this.device.queue.writeTexture(
        { texture: target, origin: { x: 0, y: dst.y + row, z: dst.layer } }, data,
        { offset: row * bytesPerRow, bytesPerRow, rowsPerImage: rows }, { width, height: rows, depthOrArrayLayers: 1 },
      );
    }
  }

  submit(): void {
    if (!this.encoder) return;
    this.endPass();
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = undefined;
    this.submissions++;
    this.timeline?.submitted(this.device.queue);
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

/** A byte range of weight shard `shard`. */
interface ShardRange {
  shard: number;
  offset: number;
  length: number;
}

/**
 * Reads weight shards by verified blocks (the manifest's per-block sha256): any byte range costs
 * reading the blocks it touches, never the whole shard, so streamed weights can come from storage
 * (a file range in Node, an HTTP Range request in browsers) while the model runs.
 */
class ShardBlocks {
  constructor(private readonly reader: BundleReader, private readonly files: FileEntry[]) {}

  blockBytes(shard: number): number {
    return this.files[shard]!.blocks!.size;
  }

  /** the blocks of `range`, as [first, last] indices */
  blocksOf(range: ShardRange): [number, number] {
    const size = this.blockBytes(range.shard);
    return [Math.floor(range.offset / size), Math.floor((range.offset + Math.max(range.length, 1) - 1) / size)];
  }

  async readBlock(shard: number, block: number): Promise<Uint8Array<ArrayBuffer>> {
    const entry = this.files[shard]!;
    const size = entry.blocks!.size;
    const bytes = await this.reader.readRange(entry.path, block * size, Math.min(size, entry.size - block * size));
    await checkBlock(entry, block, bytes);
    return bytes;
  }

  /** A bundle is verified whole, including shards that no step uses. */
  async verifyUnused(used: ReadonlySet<number>): Promise<void> {
    for (const [index, entry] of this.files.entries()) if (!used.has(index)) await readVerifiedFile(this.reader, entry);
  }
}

/**
 * Yields the bytes of a fixed sequence of shard ranges in order, reading ahead: blocks for later
 * ranges are requested while earlier ones are consumed, up to `windowBytes` held at once (and
 * always the blocks of the range being consumed), so I/O overlaps upload and compute while host
 * memory stays bounded. Each block is read once per stream, and released after its last range.
 */
class RangeStream {
  private readonly blocks = new Map<string, { bytes: Promise<Uint8Array<ArrayBuffer>>; size: number; usesLeft: number; ready: boolean }>();
  private readonly uses = new Map<string, number>();
  private consumed = 0;
  private requested = 0;
  private heldBytes = 0;
  private failure?: unknown;

  constructor(private readonly store: ShardBlocks, private readonly ranges: readonly ShardRange[], private readonly windowBytes: number) {
    for (const range of ranges) for (const key of this.keysOf(range)) this.uses.set(key, (this.uses.get(key) ?? 0) + 1);
    this.fill();
  }

  /** whether the next range's bytes are already in host memory (no wait) */
  nextReady(): boolean {
    const range = this.ranges[this.consumed];
    return range !== undefined && this.keysOf(range).every((key) => this.blocks.get(key)?.ready === true);
  }

  /** The bytes of the next range, as a fresh array. */
  async next(): Promise<Uint8Array<ArrayBuffer>> {
    const range = this.ranges[this.consumed++];
    if (!range) throw new Error('RangeStream: no more ranges');
    this.fill();
    const keys = this.keysOf(range);
    const parts = await Promise.all(keys.map((key) => this.blocks.get(key)!.bytes));
    const out = new Uint8Array(range.length);
    const blockBytes = this.store.blockBytes(range.shard);
    const [first] = this.store.blocksOf(range);
    parts.forEach((part, i) => {
      const blockStart = (first + i) * blockBytes;
      const from = Math.max(range.offset, blockStart);
      const to = Math.min(range.offset + range.length, blockStart + part.length);
      if (to > from) out.set(part.subarray(from - blockStart, to - blockStart), from - range.offset);
    });
    for (const key of keys) this.release(key);
    this.fill();
    return out;
  }

  private keysOf(range: ShardRange): string[] {
    const [first, last] = this.store.blocksOf(range);
    const keys: string[] = [];
    for (let block = first; block <= last; block++) keys.push(`${range.shard}:${block}`);
    return keys;
  }

  private fill(): void {
    while (this.requested < this.ranges.length && this.failure === undefined) {
      const range = this.ranges[this.requested]!;
      const keys = this.keysOf(range).filter((key) => !this.blocks.has(key));
      const bytes = keys.length * this.store.blockBytes(range.shard);
      // read ahead within the window; the range being consumed is always read
      if (this.requested >= this.consumed && this.heldBytes > 0 && this.heldBytes + bytes > this.windowBytes) break;
      for (const key of keys) this.request(key, range.shard);
      this.requested++;
    }
  }

  private request(key: string, shard: number): void {
    const block = Number(key.slice(key.indexOf(':') + 1));
    const entry = { bytes: this.store.readBlock(shard, block), size: this.store.blockBytes(shard), usesLeft: this.uses.get(key)!, ready: false };
    entry.bytes.then(() => { entry.ready = true; }, (error: unknown) => { this.failure ??= error; });
    this.blocks.set(key, entry);
    this.heldBytes += entry.size;
  }

  private release(key: string): void {
    const entry = this.blocks.get(key)!;
    if (--entry.usesLeft > 0) return;
    this.blocks.delete(key);
    this.heldBytes -= entry.size;
  }
}

/** default LoadOptions.readAheadBytes */
const DEFAULT_READ_AHEAD_BYTES = 64 << 20;

/** host staging buffers stay below WebGPU's default maxBufferSize, which every device supports */
const MAX_STAGING_BUFFER_BYTES = 256 << 20;

function alignTo4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

function uploadRange(step: UploadStep): ShardRange {
  return { shard: step.shard, offset: step.shardOffset, length: step.dst.size };
}

function uploadRanges(steps: readonly Step[]): ShardRange[] {
  return steps.flatMap((step) => (step.op === 'upload' ? [uploadRange(step)] : []));
}

function usedShards(schedule: Schedule): Set<number> {
  return new Set(schedule.models.flatMap((model) => uploadRanges([...model.init, ...model.run]).map((range) => range.shard)));
}

// =================================================================================================
// Session
// =================================================================================================

type RunCommand =
  | { kind: 'writeInput'; input: number; buffer: GPUBuffer; offset: number }
  /** bytes: held in host memory; absent: read from storage (range) on every run */
  | { kind: 'upload'; bytes?: Uint8Array<ArrayBuffer>; range: ShardRange; weight: string; buffer: GPUBuffer; offset: number; staged?: { buffer: GPUBuffer; offset: number } }
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; workgroups: [number, number, number]; label: string }
  | { kind: 'readOutput'; output: number; buffer: GPUBuffer; offset: number; size: number }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number; weight: string }
  | { kind: 'stateWrite'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; step: StateWriteStep };

/** Collects timeline events of a run or of the load, and the GPU completion of each submission. */
class Timeline {
  readonly events: TimelineEvent[] = [];
  private readonly gpuDone: Promise<void>[] = [];
  private readonly origin: number;

  constructor(origin = performance.now(), private readonly trackGpu = false) {
    this.origin = origin;
  }

  now(): number {
    return performance.now() - this.origin;
  }

  add(kind: TimelineEvent['kind'], step: number, startMs: number, extra: { label?: string; bytes?: number } = {}): void {
    this.events.push({ kind, step, ...extra, startMs, endMs: this.now() });
  }

  /** Called right after a submission: its 'gpu' entry ends when the queue reports the work done. */
  submitted(queue: GPUQueue): void {
    if (!this.trackGpu) return;
    const event: TimelineEvent = { kind: 'gpu', step: -1, startMs: this.now(), endMs: Number.NaN };
    this.events.push(event);
    this.gpuDone.push(queue.onSubmittedWorkDone().then(() => { event.endMs = this.now(); }, () => {}));
  }

  /** Waits until every submission's end is known. */
  async settled(): Promise<void> {
    await keepAlive(Promise.all(this.gpuDone));
  }
}

/** Steps turned into GPU objects ready to replay: a model's run or init, or a sequence call. */
interface CompiledSteps {
  commands: RunCommand[];
  /** the storage ranges of uploads without host bytes, in command order ('storage' mode) */
  storageRanges: ShardRange[];
  dispatches: number;
  uploads: number;
  uploadBytes: number;
}

interface LoadedModel {
  info: ModelInfo;
  run: CompiledSteps;
  /** shared memory: the init steps, replayed whenever the model becomes the resident plan */
  init?: CompiledSteps;
  readback?: GPUBuffer;
  /** byte offset of output i in the readback buffer */
  readbackOffsets: number[];
}

/** A declared call sequence of a shared-memory bundle (schedule.sequence). */
interface LoadedSequence {
  models: string[];
  init: CompiledSteps;
  calls: CompiledSteps[];
}

interface PlanChoice {
  steps: CompiledSteps;
  plan: PlanUse;
  sequenceCall?: number;
  /** shared memory: the plan whose init state the run needs ('model:<name>' or 'sequence') */
  resident?: string;
  /** whether that init had to be replayed first */
  reloaded: boolean;
}

/** calls kept in SessionStats.calls */
const MAX_CALL_LOG = 1000;

/** Shared memory: the key of each of a plan's buffers, its role and its ordinal within the role. */
function sharedKeys(plan: { buffers: { role: string }[] }): string[] {
  const ordinals = new Map<string, number>();
  return plan.buffers.map((buffer) => {
    const ordinal = ordinals.get(buffer.role) ?? 0;
    ordinals.set(buffer.role, ordinal + 1);
    return `${buffer.role}#${ordinal}`;
  });
}

function sharedBuffersOf(plan: { buffers: { role: string }[] }, shared: Map<string, GPUBuffer>): GPUBuffer[] {
  return sharedKeys(plan).map((key) => shared.get(key)!);
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
  /** when run() was called */
  calledAt: number;
  /** decode steps: the cache slot this run's keys and values go to (stateWrite 'position') */
  position?: number;
  /** inputs converted to GPU elements, in signature order */
  inputs: GpuElements[];
}

class Session implements FlashmemSession {
  readonly device: GPUDevice;
  readonly models: readonly ModelInfo[];
  private readonly owned: boolean;
  private readonly memory: GpuMemory;
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly counters = { loadMs: 0, lastRunMs: 0, runs: 0, dispatches: 0, uploads: 0, uploadedBytes: 0, plannedPeakGpuBytes: 0 };
  private readonly streamFromStorage: boolean;
  private readonly readAheadBytes: number;
  private readonly gpuTimeline: boolean;
  private readonly mappedUploads: boolean;
  private shards?: ShardBlocks;
  private lastTimeline: TimelineEvent[] = [];
  private loadTimeline?: Timeline;
  /** shared memory: the plan whose init state the shared buffers hold ('model:<name>' or 'sequence') */
  private resident?: string;
  private sharedMemory = false;
  private sequence?: LoadedSequence;
  /** the sequence call the next in-order run() would be */
  private sequencePosition = 0;
  private readonly callLog: CallStats[] = [];
  private readonly perModel = new Map<string, ModelCallStats>();
  private decoderSpec?: DecoderSpec;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private lostInfo?: GPUDeviceLostInfo;
  /** rejects when the device is lost, to abort waits on work that will never finish */
  private readonly lost: Promise<never>;

  private constructor(acquired: AcquiredDevice, models: readonly ModelInfo[], options: LoadOptions) {
    this.device = acquired.device;
    this.streamFromStorage = options.streamedWeights === 'storage';
    this.readAheadBytes = options.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES;
    this.gpuTimeline = options.gpuTimeline === true;
    this.mappedUploads = options.uploads === 'mapped' && !this.streamFromStorage;
    this.owned = acquired.owned;
    this.models = models;
    this.memory = new GpuMemory(this.device);
    this.lost = this.device.lost.then((info) => {
      this.lostInfo = info;
      fail('FM_WEBGPU', `the WebGPU device was lost (${info.reason}): ${info.message}`);
    });
    this.lost.catch(() => {});
  }

  static async start(acquired: AcquiredDevice, bundle: VerifiedBundle, reader: BundleReader, startedAt: number, options: LoadOptions): Promise<Session> {
    const session = new Session(acquired, bundle.manifest.models, options);
    session.loadTimeline = new Timeline(startedAt, options.gpuTimeline === true);
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
    this.sharedMemory = bundle.schedule.memory === 'shared';
    this.decoderSpec = bundle.schedule.decoder;
    const sequenceSchedule = bundle.schedule.sequence;
    for (const schedule of bundle.schedule.models) this.requestPipelines([...schedule.init, ...schedule.run], pipelines);
    if (sequenceSchedule) this.requestPipelines([...sequenceSchedule.init, ...sequenceSchedule.calls.flatMap((call) => call.run)], pipelines);
    const shared = this.sharedMemory ? errors.capture(() => this.createSharedBuffers(bundle.schedule)) : undefined;
    const resources = errors.capture(() => bundle.schedule.models.map((schedule, i) => this.createResources(bundle.modelInfos[i]!, schedule, shared)));
    // no weight is read or uploaded when the buffers could not be allocated
    await this.whileDeviceAlive(this.memory.checkAllocations());
    const shards = (this.shards = new ShardBlocks(reader, bundle.shardFiles));
    const compile = (steps: Step[], model: ModelResources) => this.compileSteps(steps, model, shards, pipelines, layouts, errors);
    if (!this.sharedMemory) for (const model of resources) await this.runInit(model, shards, pipelines, layouts, errors);
    for (const model of resources) {
      this.loaded.set(model.info.name, {
        info: model.info, readback: model.readback, readbackOffsets: model.readbackOffsets,
        run: await compile(model.schedule.run, model),
        ...(this.sharedMemory ? { init: await compile(model.schedule.init, model) } : {}),
      });
    }
    if (sequenceSchedule) {
      const host = { ...resources[0]!, buffers: sharedBuffersOf(sequenceSchedule, shared!) };
      const calls: CompiledSteps[] = [];
      for (const call of sequenceSchedule.calls) calls.push(await compile(call.run, host));
      this.sequence = { models: sequenceSchedule.models, init: await compile(sequenceSchedule.init, host), calls };
    }
    await shards.verifyUnused(usedShards(bundle.schedule));
    this.counters.plannedPeakGpuBytes = bundle.schedule.plannedPeakBytes ?? bundle.schedule.models.reduce((sum, model) => sum + model.plannedPeakBytes, 0);
    await this.whileDeviceAlive(errors.check('loading the bundle onto the GPU'));
    if (this.sharedMemory) await this.makeResident(this.sequence ? 'sequence' : `model:${resources[0]!.info.name}`, this.loadTimeline!);
  }

  /** Shared memory: one GPU buffer per role and ordinal, as large as the largest plan's. */
  private createSharedBuffers(schedule: Schedule): Map<string, GPUBuffer> {
    const usage = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST;
    const sizes = new Map<string, number>();
    for (const plan of [...schedule.models, ...(schedule.sequence ? [schedule.sequence] : [])]) {
      sharedKeys(plan).forEach((key, i) => sizes.set(key, Math.max(sizes.get(key) ?? 0, plan.buffers[i]!.size)));
    }
    return new Map([...sizes].map(([key, size]) => [key, this.memory.createBuffer({ label: key, size, usage }, `shared ${key} buffer`)]));
  }

  /** Shared memory: replays the init steps of a plan (weights it keeps resident), unless its state is already there. */
  /** `timeline`: the load's, or the run's that needed the reload (its steps then show there) */
  private async makeResident(plan: string, timeline: Timeline): Promise<boolean> {
    if (this.resident === plan) return false;
    const init = plan === 'sequence' ? this.sequence!.init : this.loaded.get(plan.slice('model:'.length))!.init!;
    this.resident = undefined;
    const errors = new GpuErrorCollector(this.device);
    await this.replay(init, undefined, [], errors, timeline);
    await this.whileDeviceAlive(errors.check(`making ${plan} resident`));
    this.countSteps(init);
    this.resident = plan;
    return true;
  }

  private requestPipelines(steps: Step[], pipelines: Pipelines): void {
    for (const step of steps) {
      if (step.op === 'dispatch') void pipelines.request(step.shader, bindingKinds(step));
    }
  }

  private createResources(info: ModelInfo, schedule: ModelSchedule, shared: Map<string, GPUBuffer> | undefined): ModelResources {
    const usage = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST;
    const buffers = shared ? sharedBuffersOf(schedule, shared) : schedule.buffers.map((buffer, i) =>
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
  private async runInit(model: ModelResources, shards: ShardBlocks, pipelines: Pipelines, layouts: BindGroupLayouts, errors: GpuErrorCollector): Promise<void> {
    const timeline = this.loadTimeline!;
    const recorder = new CommandRecorder(this.device, timeline);
    const stream = new RangeStream(shards, uploadRanges(model.schedule.init), this.readAheadBytes);
    for (const [index, step] of model.schedule.init.entries()) {
      if (step.op === 'upload') {
        const readStart = timeline.now();
        const bytes = await stream.next();
        timeline.add('read', index, readStart, { label: step.weight, bytes: bytes.length });
        const uploadStart = timeline.now();
        const dst = step.dst;
        if (isTextureRegion(dst)) {
          const width = model.schedule.textures![dst.texture]!.width;
          errors.capture(() => recorder.writeTexture(model.textures[dst.texture]!, width, dst, bytes));
        } else {
          errors.capture(() => recorder.write(model.buffers[dst.buffer]!, dst.offset, bytes));
        }
        timeline.add('upload', index, uploadStart, { label: step.weight, bytes: bytes.length });
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

  /** Turns steps into GPU objects ready to replay: pipelines, bind groups, streamed weight bytes. */
  private async compileSteps(steps: Step[], model: ModelResources, shards: ShardBlocks, pipelines: Pipelines, layouts: BindGroupLayouts, errors: GpuErrorCollector): Promise<CompiledSteps> {
    const compiled: CompiledSteps = { commands: [], storageRanges: [], dispatches: 0, uploads: 0, uploadBytes: 0 };
    // 'memory': streamed weight bytes are read once now (with read-ahead) and kept on the host
    const stream = this.streamFromStorage ? undefined : new RangeStream(shards, uploadRanges(steps), this.readAheadBytes);
    for (const step of steps) compiled.commands.push(await this.compileStep(step, model, compiled, stream, pipelines, layouts, errors));
    if (this.mappedUploads) errors.capture(() => this.stageUploads(compiled, model.info.name));
    return compiled;
  }

  /** uploads 'mapped': the host bytes of every buffer upload move into one host-visible staging buffer, copied from on each run. */
  private stageUploads(compiled: CompiledSteps, model: string): void {
    const uploads = compiled.commands.filter((c): c is Extract<RunCommand, { kind: 'upload' }> => c.kind === 'upload' && c.bytes !== undefined);
    // as few staging buffers as the device's maxBufferSize allows (an upload is at most a binding)
    const limit = Math.min(this.device.limits.maxBufferSize, MAX_STAGING_BUFFER_BYTES);
    for (let first = 0; first < uploads.length;) {
      let total = 0;
      let end = first;
      while (end < uploads.length && (end === first || total + alignTo4(uploads[end]!.bytes!.length) <= limit)) total += alignTo4(uploads[end++]!.bytes!.length);
      const staging = this.memory.createHostStaging(total, `a host staging buffer of model ${quote(model)}`);
      const mapped = new Uint8Array(staging.getMappedRange());
      let offset = 0;
      for (const upload of uploads.slice(first, end)) {
        mapped.set(upload.bytes!, offset);
        upload.staged = { buffer: staging, offset };
        offset += alignTo4(upload.bytes!.length);
        // the GPU-visible copy is the only one kept
        upload.bytes = undefined;
      }
      staging.unmap();
      first = end;
    }
  }

  private async compileStep(
    step: Step, model: ModelResources, loaded: CompiledSteps, stream: RangeStream | undefined, pipelines: Pipelines, layouts: BindGroupLayouts, errors: GpuErrorCollector,
  ): Promise<RunCommand> {
    switch (step.op) {
      case 'writeInput':
        return { kind: 'writeInput', input: step.input, buffer: model.buffers[step.dst.buffer]!, offset: step.dst.offset };
      case 'readOutput':
        return { kind: 'readOutput', output: step.output, buffer: model.buffers[step.src.buffer]!, offset: step.src.offset, size: step.src.size };
      case 'upload': {
        loaded.uploads++;
        loaded.uploadBytes += step.dst.size;
        const range = uploadRange(step);
        if (!stream) loaded.storageRanges.push(range);
        const bytes = stream ? await stream.next() : undefined;
        // checkUpload admits texture uploads in init steps only
        const dst = step.dst as Region;
        return { kind: 'upload', bytes, range, weight: step.weight, buffer: model.buffers[dst.buffer]!, offset: dst.offset };
      }
      case 'stateWrite':
        return { kind: 'stateWrite', src: model.buffers[step.src.buffer]!, srcOffset: step.src.offset, dst: model.buffers[step.dst.buffer]!, dstOffset: step.dst.offset, step };
      case 'copy':
        return {
          kind: 'copy', src: model.buffers[step.src.buffer]!, srcOffset: step.src.offset, dst: model.buffers[step.dst.buffer]!, dstOffset: step.dst.offset,
          size: step.src.size, weight: step.weight,
        };
      case 'dispatch': {
        const pipeline = await pipelines.request(step.shader, bindingKinds(step));
        loaded.dispatches++;
        const bindGroup = errors.capture(() => this.bindGroup(step, model.buffers, layouts, model.textures));
        return { kind: 'dispatch', pipeline, bindGroup, workgroups: step.workgroups, label: step.label };
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
    return this.enqueue(() => {
      // a decode step needs its cache position, which only the decoder API tracks
      if (typeof first === 'string' && this.decoderSpec?.decode === first) {
        fail('FM_INPUT', `model ${quote(first)} is the decode step of a decoder: use session.generate() or session.decoder()`);
      }
      return this.prepareRun(first, second);
    });
  }

  /** Queues a run; inputs are converted (copied) now, so that a queued run sees them as they were at the call. */
  private enqueue(prepare: () => PreparedRun): Promise<RunOutputs> {
    let prepared: PreparedRun;
    try {
      prepared = prepare();
    } catch (error) {
      return Promise.reject(error);
    }
    const result = this.queue.then(() => this.execute(prepared));
    this.queue = result.catch(() => undefined);
    return result;
  }

  // ------------------------------------------------------------------------------------- decoder

  generate(promptIds: ArrayLike<number | bigint>, options: GenerateOptions): Promise<GenerateResult> {
    return generateGreedy(this.decoder(), promptIds, options);
  }

  decoder(): DecoderStepper {
    const spec = this.decoderSpec;
    if (!spec) fail('FM_INPUT', 'this bundle has no decoder: compile the prefill and decode graphs with flashmemc compile --decoder');
    return new Stepper(spec, (name, inputs, position) => this.enqueue(() => {
      this.assertUsable();
      const model = this.namedModel(name);
      return { model, calledAt: performance.now(), inputs: convertInputs(model.info, inputs), position };
    }));
  }

  private prepareRun(first: string | RunInputs, second: RunInputs | undefined): PreparedRun {
    this.assertUsable();
    const model = typeof first === 'string' ? this.namedModel(first) : this.onlyModel();
    const inputs = typeof first === 'string' ? second : first;
    if (!isPlainObject(inputs)) fail('FM_INPUT', `run() of model ${quote(model.info.name)} needs an object of inputs by name`);
    return { model, calledAt: performance.now(), inputs: convertInputs(model.info, inputs as RunInputs) };
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

  private async execute({ model, inputs, calledAt, position }: PreparedRun): Promise<RunOutputs> {
    this.assertUsable();
    const startedAt = performance.now();
    const what = `running model ${quote(model.info.name)}`;
    const errors = new GpuErrorCollector(this.device);
    const timeline = new Timeline(startedAt, this.gpuTimeline);
    let mapped: Promise<unknown> | undefined;
    let choice: PlanChoice;
    try {
      choice = this.choosePlan(model.info.name);
      if (choice.resident) choice.reloaded = await this.makeResident(choice.resident, timeline);
      await this.replay(choice.steps, model, inputs, errors, timeline, position);
      mapped = errors.capture(() => model.readback?.mapAsync(MAP_MODE_READ));
    } catch (error) {
      // a failed run leaves the shared buffers in an unknown state: the next run reloads its plan
      this.resident = undefined;
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
    await this.whileDeviceAlive(timeline.settled());
    this.lastTimeline = timeline.events;
    this.countRun(model.info.name, choice, performance.now() - startedAt, performance.now() - calledAt);
    return outputs;
  }

  /**
   * Which steps serve a run of `name`: its own schedule (a bundle with separate memory), the next
   * call of the declared sequence when calls follow it (re-entering it at its first call), or the
   * model's entry plan, whose init is replayed first when another plan holds the shared buffers.
   */
  private choosePlan(name: string): PlanChoice {
    const model = this.loaded.get(name)!;
    if (!this.sharedMemory) return { steps: model.run, plan: 'single', reloaded: false };
    const sequence = this.sequence;
    if (sequence) {
      const inOrder = this.resident === 'sequence' && sequence.models[this.sequencePosition] === name;
      if (inOrder || sequence.models[0] === name) {
        const call = inOrder ? this.sequencePosition : 0;
        this.sequencePosition = (call + 1) % sequence.models.length;
        return { steps: sequence.calls[call]!, plan: 'sequence', sequenceCall: call, resident: 'sequence', reloaded: false };
      }
    }
    this.sequencePosition = 0;
    return { steps: model.run, plan: 'entry', resident: `model:${name}`, reloaded: false };
  }

  /**
   * Records the run's commands. Weight bytes held in host memory make this one synchronous pass; in
   * 'storage' mode it pauses at each upload whose bytes are still being read, after submitting the
   * work recorded so far so the GPU computes while the read completes.
   */
  private async replay(steps: CompiledSteps, model: LoadedModel | undefined, inputs: GpuElements[], errors: GpuErrorCollector, timeline: Timeline, position?: number): Promise<void> {
    const recorder = new CommandRecorder(this.device, timeline);
    const stream = steps.storageRanges.length > 0 ? new RangeStream(this.shards!, steps.storageRanges, this.readAheadBytes) : undefined;
    let next = 0;
    let fetched: Uint8Array<ArrayBuffer> | undefined;
    for (;;) {
      const from = next;
      const bytes = fetched;
      next = errors.capture(() => this.replayUntilRead(steps, model, inputs, recorder, timeline, from, bytes, position));
      if (next >= steps.commands.length) break;
      if (!stream!.nextReady()) errors.capture(() => recorder.submit());
      const readStart = timeline.now();
      fetched = await this.whileDeviceAlive(stream!.next());
      timeline.add('read', next, readStart, { label: (steps.commands[next] as { weight: string }).weight, bytes: fetched.length });
    }
    errors.capture(() => recorder.submit());
  }

  /** Records commands from `from` on; returns the index of the first upload that needs bytes from storage (`fetched` serves the first). */
  private replayUntilRead(
    steps: CompiledSteps, model: LoadedModel | undefined, inputs: GpuElements[], recorder: CommandRecorder, timeline: Timeline, from: number, fetched: Uint8Array<ArrayBuffer> | undefined,
    position: number | undefined,
  ): number {
    for (let index = from; index < steps.commands.length; index++) {
      const command = steps.commands[index]!;
      const start = timeline.now();
      switch (command.kind) {
        case 'writeInput':
          recorder.write(command.buffer, command.offset, inputs[command.input]!);
          timeline.add('writeInput', index, start, { bytes: inputs[command.input]!.byteLength });
          break;
        case 'upload': {
          if (command.staged) {
            recorder.copy(command.staged.buffer, command.staged.offset, command.buffer, command.offset, command.range.length);
            timeline.add('upload', index, start, { label: command.weight, bytes: command.range.length });
            break;
          }
          const bytes = command.bytes ?? fetched;
          if (!bytes) return index;
          fetched = undefined;
          recorder.write(command.buffer, command.offset, bytes);
          timeline.add('upload', index, start, { label: command.weight, bytes: bytes.length });
          break;
        }
        case 'dispatch':
          recorder.dispatch(command.pipeline, command.bindGroup, command.workgroups);
          timeline.add('dispatch', index, start, { label: command.label });
          break;
        case 'readOutput':
          recorder.copy(command.buffer, command.offset, model!.readback!, model!.readbackOffsets[command.output]!, command.size);
          timeline.add('readOutput', index, start, { bytes: command.size });
          break;
        case 'copy':
          recorder.copy(command.src, command.srcOffset, command.dst, command.dstOffset, command.size);
          timeline.add('copy', index, start, { label: command.weight, bytes: command.size });
          break;
        case 'stateWrite': {
          const { heads, rows, rowBytes, cacheRows, at, state } = command.step;
          const base = at === 'position' ? position! : 0;
          for (let h = 0; h < heads; h++) {
            recorder.copy(command.src, command.srcOffset + h * rows * rowBytes, command.dst, command.dstOffset + (h * cacheRows + base) * rowBytes, rows * rowBytes);
          }
          timeline.add('stateWrite', index, start, { label: state, bytes: heads * rows * rowBytes });
          break;
        }
      }
    }
    return steps.commands.length;
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

  private countSteps(steps: CompiledSteps): void {
    this.counters.dispatches += steps.dispatches;
    this.counters.uploads += steps.uploads;
    this.counters.uploadedBytes += steps.uploadBytes;
  }

  private countRun(name: string, choice: PlanChoice, ms: number, sinceCallMs: number): void {
    this.counters.runs++;
    this.counters.lastRunMs = ms;
    this.countSteps(choice.steps);
    const uploadedBytes = choice.steps.uploadBytes + (choice.reloaded ? this.initOf(choice).uploadBytes : 0);
    const call: CallStats = {
      model: name, plan: choice.plan, ...(choice.sequenceCall !== undefined ? { sequenceCall: choice.sequenceCall } : {}),
      reloaded: choice.reloaded, ms, queuedMs: sinceCallMs - ms, uploadedBytes,
    };
    this.callLog.push(call);
    if (this.callLog.length > MAX_CALL_LOG) this.callLog.shift();
    const total = this.perModel.get(name) ?? { runs: 0, totalMs: 0, uploadedBytes: 0, reloads: 0, plans: { single: 0, entry: 0, sequence: 0 } };
    total.runs++;
    total.totalMs += ms;
    total.uploadedBytes += uploadedBytes;
    total.reloads += choice.reloaded ? 1 : 0;
    total.plans[choice.plan]++;
    this.perModel.set(name, total);
  }

  private initOf(choice: PlanChoice): CompiledSteps {
    return choice.resident === 'sequence' ? this.sequence!.init : this.loaded.get(choice.resident!.slice('model:'.length))!.init!;
  }

  private whileDeviceAlive<T>(promise: Promise<T>): Promise<T> {
    return Promise.race([promise, this.lost]);
  }

  // ---------------------------------------------------------------------------------- lifecycle

  stats(): SessionStats {
    return {
      ...this.counters, peakGpuBytes: this.memory.peakBytes, liveGpuBytes: this.memory.liveBytes, hostStagingBytes: this.memory.hostStagingBytes,
      calls: this.callLog.map((call) => ({ ...call })),
      models: Object.fromEntries([...this.perModel].map(([name, total]) => [name, { ...total, plans: { ...total.plans } }])),
      timeline: this.lastTimeline.map((event) => ({ ...event })), loadTimeline: (this.loadTimeline?.events ?? []).map((event) => ({ ...event })),
    };
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
// Decoders: prefill + decode steps over the KV cache held in state buffers
// =================================================================================================

type DecoderRun = (model: string, inputs: RunInputs, position?: number) => Promise<RunOutputs>;

/** Fills the cache from slot 0: prefill (right-padded to its fixed length), then one decode step per token. */
class Stepper implements DecoderStepper {
  position = 0;
  readonly context: number;

  constructor(private readonly spec: DecoderSpec, private readonly runModel: DecoderRun) {
    this.context = spec.context;
  }

  async prefill(promptIds: ArrayLike<number | bigint>): Promise<Float32Array> {
    const ids = Array.from(promptIds, (id) => BigInt(id));
    if (ids.length === 0) fail('FM_INPUT', 'prefill() needs at least one prompt token');
    if (ids.length > this.context) fail('FM_INPUT', `the prompt has ${ids.length} tokens, the decoder's context is ${this.context}`);
    const { promptLength, vocab } = this.spec;
    const first = Math.min(ids.length, promptLength);
    // causal attention: right-padding never changes the logits of the real tokens, and decode masks the padded slots
    const padded = new BigInt64Array(promptLength);
    padded.set(ids.slice(0, first));
    const outputs = await this.runModel(this.spec.prefill, { [this.spec.inputIds]: padded });
    this.position = first;
    let logits: Float32Array = (outputs[this.spec.logits] as Float32Array).slice((first - 1) * vocab, first * vocab);
    for (const id of ids.slice(first)) logits = await this.step(id);
    return logits;
  }

  async step(tokenId: number | bigint): Promise<Float32Array> {
    const position = this.position;
    if (position === 0) fail('FM_INPUT', 'call prefill() with the prompt before step()');
    if (position >= this.context) fail('FM_INPUT', `the decoder's context of ${this.context} tokens is full`);
    const spec = this.spec;
    const inputs: Record<string, InputValue> = {
      [spec.inputIds]: BigInt64Array.of(BigInt(tokenId)),
      [spec.positionIds]: BigInt64Array.of(BigInt(position)),
      [spec.attentionBias]: cacheBias(this.context, 0, position),
    };
    // GPT-Neo local layers: the last window - 1 past positions (the token itself is the window's last)
    if (spec.localAttentionBias) inputs[spec.localAttentionBias] = cacheBias(this.context, Math.max(0, position - (spec.window - 1)), position);
    const outputs = await this.runModel(spec.decode, inputs, position);
    this.position = position + 1;
    return outputs[spec.logits] as Float32Array;
  }
}

/** 0 for cache slots [from, to), -1e9 elsewhere: an additive attention bias. */
function cacheBias(context: number, from: number, to: number): Float32Array {
  const bias = new Float32Array(context).fill(-1e9);
  bias.fill(0, from, to);
  return bias;
}

async function generateGreedy(stepper: DecoderStepper, promptIds: ArrayLike<number | bigint>, options: GenerateOptions): Promise<GenerateResult> {
  if (!Number.isInteger(options?.maxNewTokens) || options.maxNewTokens < 1) fail('FM_INPUT', 'generate() needs options.maxNewTokens, a positive integer');
  const start = performance.now();
  let logits = await stepper.prefill(promptIds);
  const prefillMs = performance.now() - start;
  const tokens: number[] = [];
  const decodeStart = performance.now();
  for (;;) {
    const token = argmax(logits);
    tokens.push(token);
    options.onToken?.(token, tokens.length - 1);
    if (tokens.length >= options.maxNewTokens || options.stopTokens?.includes(token) || stepper.position >= stepper.context) break;
    logits = await stepper.step(token);
  }
  const decodeMs = performance.now() - decodeStart;
  return { tokens, promptTokens: promptIds.length, prefillMs, decodeMs, tokensPerSecond: tokens.length > 1 ? ((tokens.length - 1) * 1000) / decodeMs : 0 };
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
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
    // shards are verified block by block as they stream in (ShardBlocks), before their bytes reach the GPU
    return await Session.start(acquired, bundle, reader, startedAt, options);
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
