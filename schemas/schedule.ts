/**
 * schedule.json: the steps the runtime replays. GPU memory is a fixed set of buffers allocated
 * once; every tensor is a byte range of one of them. `init` runs once at load (preloaded weight
 * uploads); `run` runs on every inference (input writes, streamed weight uploads into the staging
 * ring, ring-to-slot copies, dispatches, output reads) in order.
 */
import { z } from 'zod';
import { FORMAT_VERSION, bundlePath, uint } from './common.js';

export const bufferDecl = z.object({
  /** what the buffer holds: weight arena, activation arena, streaming staging ring */
  role: z.enum(['weights', 'activations', 'staging', 'state']),
  size: uint,
}).strict();

/** a byte range of a schedule buffer */
export const region = z.object({ buffer: uint, offset: uint, size: uint }).strict();

/**
 * A weight texture (2.5D layout): rgba32float texture_2d_array, `width` texels of 4 consecutive
 * reduction values per row, one row per output (channel / column), rows spilling into `layers`.
 * Texture weights are resident: uploaded by init steps, bound by dispatches, never streamed.
 */
export const textureDecl = z.object({
  format: z.literal('rgba32float'),
  width: uint.min(1),
  height: uint.min(1),
  layers: uint.min(1),
}).strict();

/** whole rows [y, y + rows) of one layer of a texture; size = rows * width * 16 bytes, read from the shard as is */
export const textureRegion = z.object({ texture: uint, layer: uint, y: uint, rows: uint.min(1), size: uint }).strict();

/** a dispatch binding: a buffer range (storage) or a whole weight texture (texture_2d_array<f32>) */
export const textureBinding = z.object({ texture: uint }).strict();
export const binding = z.union([region, textureBinding]);

export const uploadStep = z.object({
  op: z.literal('upload'),
  /** index into the bundle's weight shards (schedule.shards) */
  shard: uint,
  shardOffset: uint,
  dst: z.union([region, textureRegion]),
  /** weight label, for stats and inspect */
  weight: z.string(),
}).strict();

export const writeInputStep = z.object({ op: z.literal('writeInput'), input: uint, dst: region }).strict();
export const readOutputStep = z.object({ op: z.literal('readOutput'), output: uint, src: region }).strict();

/** A GPU-side copy between buffer ranges, recorded in the run's command encoder (no submit). */
export const copyStep = z.object({ op: z.literal('copy'), src: region, dst: region, weight: z.string() }).strict();

export const dispatchStep = z.object({
  op: z.literal('dispatch'),
  /** index into schedule.shaders */
  shader: uint,
  bindings: z.array(binding).max(64),
  /**
   * indices of storage bindings the shader declares `var<storage, read>`, ascending (bound as
   * read-only-storage); the others are read_write. Read-only bindings may overlap each other, but
   * not share a buffer with a writable binding of the same dispatch (WebGPU's usage scopes).
   */
  readOnly: z.array(uint).max(64).optional(),
  workgroups: z.tuple([uint, uint, uint]),
  /** kernel label, e.g. 'conv2d'; the node it computes */
  label: z.string(),
  node: z.string(),
}).strict();

/**
 * Decoder state (KV cache): copies the rows of a state output, `heads` blocks of `rows` rows of
 * `rowBytes`, into its state buffer, whose blocks hold `cacheRows` rows each: from row 0 ('start',
 * a prefill) or from the position the app passes with the run ('position', a decode step).
 */
export const stateWriteStep = z.object({
  op: z.literal('stateWrite'),
  src: region,
  /** the whole state buffer */
  dst: region,
  heads: uint.min(1),
  rows: uint.min(1),
  rowBytes: uint.min(4),
  cacheRows: uint.min(1),
  at: z.enum(['start', 'position']),
  /** the state output's name, for stats */
  state: z.string(),
}).strict();

export const step = z.discriminatedUnion('op', [uploadStep, writeInputStep, readOutputStep, dispatchStep, copyStep, stateWriteStep]);

/** What the load plan decided (stream strategy); deterministic fields only, so bundles stay reproducible. */
export const loadPlanSummary = z.object({
  budgetBytes: uint,
  solver: z.enum(['optimal', 'feasible', 'greedy', 'trivial']),
  objective: z.number(),
  /** relative MIP gap bound: 0 when proven optimal, else the solver's gap tolerance */
  gap: z.number().min(0),
  windows: uint,
  greedyWindows: uint,
  streamedWeights: uint,
  preloadedWeights: uint,
  streamedBytes: uint,
  carriedBytes: uint,
  copiedBytes: uint,
  directBytes: uint,
  carrierKernels: uint,
  ringBytes: uint,
  /** the device profile whose capacities and bandwidth the plan used (absent in bundles of older compilers) */
  profile: z.object({ name: z.string(), device: z.string() }).strict().optional(),
}).strict();

export const modelSchedule = z.object({
  model: z.string(),
  strategy: z.enum(['preload', 'stream']),
  loadPlan: loadPlanSummary.optional(),
  buffers: z.array(bufferDecl),
  /** weight textures (absent when every weight is in buffers) */
  textures: z.array(textureDecl).optional(),
  init: z.array(step),
  run: z.array(step),
  /** bytes live in the activation arena during each dispatch (activations and streamed weights) */
  liveArenaBytes: z.array(uint).optional(),
  /** planned peak of GPU bytes: the buffers and textures above plus the runtime's readback buffer (all outputs) */
  plannedPeakBytes: uint,
}).strict();

/** One call of a declared sequence: the steps to replay when the sequence's next call is this model. */
export const sequenceCall = z.object({ model: z.string(), run: z.array(step) }).strict();

/**
 * A declared call sequence of a multi-model bundle (e.g. a, b, c, b), planned as one joint program:
 * `init` makes its resident weights resident, then calls replay in order (and wrap around), each
 * call's steps carrying weights for the calls after it. Calls in another order use the models' own
 * schedules (their entry plans).
 */
export const sequenceSchedule = z.object({
  models: z.array(z.string()).min(1),
  loadPlan: loadPlanSummary.optional(),
  buffers: z.array(bufferDecl),
  init: z.array(step),
  calls: z.array(sequenceCall).min(1),
  liveArenaBytes: z.array(uint).optional(),
  plannedPeakBytes: uint,
}).strict();

/** bytes of each decode-loop token readback buffer (MAP_READ): the control block's position and token words */
export const TOKEN_READBACK_BYTES = 16;

/**
 * The GPU decode loop of a decoder (absent in bundles of older compilers, whose generate() drives
 * decoding from the host). A token is one submission: `beforeDecode` (the step's inputs, written
 * on the GPU), the decode model's run steps without its writeInput, stateWrite and readOutput
 * steps, then `afterDecode` (the cache writes at the position, token selection), and a copy of the
 * chosen token into one of `tokenReadbacks` host-mappable buffers of TOKEN_READBACK_BYTES. The
 * dispatches bind buffer i of their model (prefill or decode) for i below that model's buffer
 * count, and loop buffer i - count above it. Loop buffer 0 holds the control block
 * (compiler/ops/decode/control.ts: position, token, logits row, sampling parameters), which the
 * loop's kernels read and token selection advances, so the same commands serve every position.
 */
export const decodeLoop = z.object({
  buffers: z.array(z.object({ size: uint.min(4) }).strict()).min(1).max(4),
  /** token readback buffers: decode steps in flight at once */
  tokenReadbacks: uint.min(1).max(16),
  /** after the prefill's kernels (and its state writes): token selection from the last prompt row */
  afterPrefill: z.array(dispatchStep).max(16),
  beforeDecode: z.array(dispatchStep).max(16),
  afterDecode: z.array(dispatchStep).max(4096),
}).strict();

/**
 * An autoregressive decoder (prefill + decode graphs of one model, flashmemc compile --decoder):
 * what session.generate() needs. The KV cache lives in the state buffers between runs.
 */
export const decoderSpec = z.object({
  prefill: z.string(),
  decode: z.string(),
  /** cache slots C (the decode graph's maximum context) and the prefill's fixed prompt length T */
  context: uint.min(1),
  promptLength: uint.min(1),
  vocab: uint.min(1),
  inputIds: z.string(),
  positionIds: z.string(),
  attentionBias: z.string(),
  /** GPT-Neo local attention: the bias input of its local layers and their window */
  localAttentionBias: z.string().optional(),
  window: uint,
  logits: z.string(),
  loop: decodeLoop.optional(),
}).strict();

export const scheduleSchema = z.object({
  formatVersion: z.literal(FORMAT_VERSION),
  shaders: z.array(bundlePath),
  /**
   * maxWorkgroups[i]: the most workgroups (x * y * z) any dispatch of shaders[i] uses, as the
   * compiler built the kernel's grid. Verification refuses a dispatch above its shader's bound, and a
   * bound above what the bindings of the shader's dispatches imply (one workgroup per bound 4-byte
   * element plus one grid row), since whoever edits a bundle writes this field too. Absent in bundles
   * of older compilers: then only the binding-implied bound applies.
   */
  maxWorkgroups: z.array(uint).optional(),
  shards: z.array(z.object({ path: bundlePath, size: uint }).strict()),
  models: z.array(modelSchedule).min(1),
  /**
   * 'separate' (default): every model has buffers of its own, all resident at once. 'shared': the
   * buffers of the models and of the sequence alias by role and ordinal (the n-th 'activations'
   * buffer of every plan is one GPU buffer of the largest size), so models run one at a time in the
   * memory of the largest plan, and switching to another model first replays its init steps.
   */
  memory: z.enum(['separate', 'shared']).optional(),
  sequence: sequenceSchedule.optional(),
  /** shared memory: what the runtime allocates, the shared buffers plus every model's readback buffer */
  plannedPeakBytes: uint.optional(),
  decoder: decoderSpec.optional(),
}).strict();

export type Schedule = z.infer<typeof scheduleSchema>;
export type ModelSchedule = z.infer<typeof modelSchedule>;
export type SequenceSchedule = z.infer<typeof sequenceSchedule>;
export type DecoderSpec = z.infer<typeof decoderSpec>;
export type DecodeLoop = z.infer<typeof decodeLoop>;
export type StateWriteStep = z.infer<typeof stateWriteStep>;
export type Step = z.infer<typeof step>;
export type LoadPlanSummary = z.infer<typeof loadPlanSummary>;
export type Region = z.infer<typeof region>;
export type TextureDecl = z.infer<typeof textureDecl>;
export type TextureRegion = z.infer<typeof textureRegion>;
export type TextureBinding = z.infer<typeof textureBinding>;
export type Binding = z.infer<typeof binding>;
export type DispatchStep = z.infer<typeof dispatchStep>;
export type UploadStep = z.infer<typeof uploadStep>;
export type CopyStep = z.infer<typeof copyStep>;
export type WriteInputStep = z.infer<typeof writeInputStep>;
export type ReadOutputStep = z.infer<typeof readOutputStep>;
export type BufferDecl = z.infer<typeof bufferDecl>;
export type SequenceCall = z.infer<typeof sequenceCall>;
