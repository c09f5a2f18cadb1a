/**
 * Public API types of the runtime: what runtime.d.ts declares for apps.
 */

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

/** A trusted Ed25519 public key: raw 32 bytes, their base64 (as `flashmemc keygen` prints), or an SPKI PEM. */
export type TrustedKey = string | Uint8Array;

export interface LoadOptions {
  /**
   * Ed25519 public keys (raw 32 bytes, their base64 as `flashmemc keygen` prints, or SPKI PEM):
   * the bundle must carry signature.json signed by one of them, checked before anything else is
   * read (FM_BUNDLE_SIGNATURE). Without it, signatures are not checked.
   */
  trustedKeys?: readonly TrustedKey[];
  /**
   * Refuse (FM_BUNDLE_BOUNDS) a bundle whose schedule allocates more GPU bytes than this. Whatever
   * it is, a bundle may never allocate more than the peak its schedule declares.
   */
  maxGpuBytes?: number;
  /** Refuse (FM_BUNDLE_BOUNDS) a bundle one of whose runs dispatches more workgroups than this, in total. */
  maxWorkgroupsPerRun?: number;
  /**
   * A run (also a generate() step) that takes longer than this many ms rejects with FM_TIMEOUT and
   * destroys the device (GPU work cannot be cancelled otherwise, also a device given in `device`):
   * the session is unusable afterwards. Default: no timeout.
   */
  runTimeoutMs?: number;
  /** Run on this device. Its limits must cover the bundle's requiredLimits; dispose() leaves it alive. */
  device?: GPUDevice;
  /** Node only: the Dawn backend ('vulkan', 'opengles', ...). Default: env FLASHMEM_WEBGPU_BACKEND, else each in turn. */
  backend?: string;
  /**
   * Node only: Dawn toggles for the instance the session's device comes from, e.g.
   * ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'] (enabled) or '-name' (disabled). Default:
   * env FLASHMEM_DAWN_TOGGLES, a comma-separated list of the same. Ignored with `device`.
   */
  dawnToggles?: readonly string[];
  /**
   * Reads every bundle file (manifest.json included) through this function instead of node:fs or
   * fetch: custom storage (IndexedDB, a cache, an archive), or fault injection in tests.
   * `dirOrUrl` then only names the bundle in messages.
   */
  readFile?: ReadFileHook;
  /**
   * Bundles at http(s) URLs: the deadline, in ms, of each bundle file's fetch, from the request to
   * the body's last byte (default 30000); a server slower than that gives FM_TIMEOUT.
   */
  fetchTimeoutMs?: number;
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
  /** as LoadOptions.trustedKeys */
  trustedKeys?: readonly TrustedKey[];
  /** as LoadOptions.maxGpuBytes */
  maxGpuBytes?: number;
  /** as LoadOptions.maxWorkgroupsPerRun */
  maxWorkgroupsPerRun?: number;
  /** as LoadOptions.fetchTimeoutMs */
  fetchTimeoutMs?: number;
}

export interface VerifySummary {
  models: readonly ModelInfo[];
  /** files verified, manifest.json included */
  files: number;
  /** bytes of those files */
  bytes: number;
  /** bytes of GPU buffers and textures loadBundle will allocate (at most the declared peak) */
  gpuBytes: number;
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
  /** queue submissions of runs (generate()'s decode loop: one per token with resident or 'mapped' weights) */
  submissions: number;
  /** bytes mapped for reading in runs: outputs, and the decode loop's token readbacks (8 bytes a token) */
  readbackBytes: number;
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
  /**
   * Sample instead of greedy decoding, on the GPU (bundles with a decode loop, i.e. compiled by this
   * flashmemc): top-k, then top-p within it, then a draw with the temperature's weights; the same
   * seed gives the same tokens (compiler/ops/decode/select-token.ts documents the algorithm).
   */
  sample?: SamplingOptions;
  /** Also read back the logits each token was chosen from (GenerateResult.logits); off by default, as it costs a vocab-sized readback per token. */
  returnLogits?: boolean;
}

export interface SamplingOptions {
  /** > 0; default 1 */
  temperature?: number;
  /** keep the k most likely tokens (ties broken by the lower index); 0 or absent: all */
  topK?: number;
  /** keep the smallest set of most likely tokens whose probability reaches p, in (0, 1]; default 1 (all) */
  topP?: number;
  /** 0 to 2^32 - 1; default 0 */
  seed?: number;
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
  /** prompt tokens per second of prefillMs */
  prefillTokensPerSecond: number;
  /** the same figure as tokensPerSecond, named beside prefillTokensPerSecond */
  decodeTokensPerSecond: number;
  /** returnLogits: the logits (vocab floats) each new token was chosen from */
  logits?: Float32Array[];
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
