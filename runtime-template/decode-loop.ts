/**
 * The GPU decode loop (schedule decoder.loop, compiled by flashmemc): generate() with one queue
 * submission per token and no host round trip but the chosen token's 8 bytes. The step's inputs
 * (token, position, attention biases) are written by a kernel from the control block, the cache
 * writes and token selection (greedy, or seeded top-k / top-p / temperature sampling) are kernels
 * too, so the same compiled commands (pipelines and bind groups made once, at load) serve every
 * position. Up to `tokenReadbacks` steps are in flight while the host reads the earlier tokens;
 * logits are read back only with returnLogits (then one step at a time).
 */
import type { DecoderSpec } from '../schemas/schedule.js';
import type { GenerateOptions, GenerateResult, SamplingOptions } from './api.js';
import { keepAlive } from './env.js';
import { fail } from './errors.js';
import type { CommandRecorder } from './gpu-commands.js';
import { BUFFER_USAGE, GpuErrorCollector, MAP_MODE_READ, type GpuMemory } from './gpu-memory.js';
import { type CompiledSteps, type LoadedModel, type ModelResources, replay, type ReplayContext, spliceSteps } from './replay.js';
import { convertInputs } from './tensors.js';
import { Timeline } from './timeline.js';

/**
 * The control block's words (compiler/ops/decode/control.ts defines the layout the kernels use;
 * test/ops/decode-loop.test.ts checks that the two tables agree).
 */
export const CONTROL = { position: 0, token: 1, row: 2, mode: 3, topK: 4, temperature: 5, topP: 6, seed: 7 } as const;
export const CONTROL_WORDS = 16;
/** schemas/schedule.ts TOKEN_READBACK_BYTES (the runtime imports the schemas' types only) */
export const TOKEN_READBACK_BYTES = 16;
/** what a token readback maps: the position and token words */
const TOKEN_MAP_BYTES = 8;

/** What the loop needs of the session. */
export interface LoopHost {
  readonly device: GPUDevice;
  replayContext(): ReplayContext;
  /** makes the model's plan resident in the shared buffers (replaying its init steps when another plan holds them) */
  makeResident(model: string, timeline: Timeline): Promise<boolean>;
  whileDeviceAlive<T>(promise: Promise<T>): Promise<T>;
  /** LoadOptions.runTimeoutMs applied to one step (the wait for its token) */
  withRunTimeout<T>(promise: Promise<T>): Promise<T>;
  /** counts a loop submission's steps and queue submissions in the session's stats */
  countLoopRun(model: string, steps: CompiledSteps, submissions: number, readbackBytes: number, ms: number): void;
  /** counts bytes mapped for reading outside a step (returnLogits) */
  countReadback(bytes: number): void;
}

interface LoopModel {
  loaded: LoadedModel;
  /** steps without logits readback, and with it (returnLogits) */
  plain: CompiledSteps;
  withLogits: CompiledSteps;
}

/** the step compiler of the load, for the loop's dispatches */
export type CompileSteps = (steps: import('../schemas/schedule.js').Step[], model: ModelResources) => Promise<CompiledSteps>;

export class DecodeLoop {
  private constructor(
    private readonly spec: DecoderSpec,
    private readonly control: GPUBuffer,
    private readonly readbacks: GPUBuffer[],
    private readonly prefill: LoopModel,
    private readonly decode: LoopModel,
  ) {}

  /** At load: the loop's buffers, and its steps compiled around the two models' runs (pipelines and bind groups made here, once). */
  static async prepare(
    spec: DecoderSpec, memory: GpuMemory, compile: CompileSteps,
    models: { prefill: ModelResources & { loaded: LoadedModel }; decode: ModelResources & { loaded: LoadedModel } },
  ): Promise<DecodeLoop> {
    const loop = spec.loop!;
    const usage = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST;
    const buffers = loop.buffers.map((buffer, i) => memory.createBuffer({ label: `decode-loop-${i}`, size: buffer.size, usage }, `decode loop buffer ${i}`));
    const readbacks = Array.from({ length: loop.tokenReadbacks }, (_, i) =>
      memory.createBuffer({ label: `token-readback-${i}`, size: TOKEN_READBACK_BYTES, usage: BUFFER_USAGE.MAP_READ | BUFFER_USAGE.COPY_DST }, `token readback ${i}`));
    const extended = (model: ModelResources) => ({ ...model, buffers: [...model.buffers, ...buffers] });
    const around = async (model: ModelResources & { loaded: LoadedModel }, before: CompiledSteps | undefined, after: CompiledSteps, drop: ('writeInput' | 'stateWrite')[]): Promise<LoopModel> => ({
      loaded: model.loaded,
      plain: spliceSteps(model.loaded.run, new Set([...drop, 'readOutput']), before, after),
      withLogits: spliceSteps(model.loaded.run, new Set(drop), before, after),
    });
    const prefill = await around(models.prefill, undefined, await compile(loop.afterPrefill, extended(models.prefill)), []);
    // the decode step's inputs and cache writes are the loop's kernels
    const decode = await around(models.decode, await compile(loop.beforeDecode, extended(models.decode)), await compile(loop.afterDecode, extended(models.decode)), ['writeInput', 'stateWrite']);
    return new DecodeLoop(spec, buffers[0]!, readbacks, prefill, decode);
  }

  async generate(host: LoopHost, promptIds: ArrayLike<number | bigint>, options: GenerateOptions): Promise<GenerateResult> {
    const { spec } = this;
    const ids = Array.from(promptIds, (id) => BigInt(id));
    if (ids.length === 0) fail('FM_INPUT', 'generate() needs at least one prompt token');
    if (ids.length > spec.context) fail('FM_INPUT', `the prompt has ${ids.length} tokens, the decoder's context is ${spec.context}`);
    const first = Math.min(ids.length, spec.promptLength);
    const padded = new BigInt64Array(spec.promptLength);
    padded.set(ids.slice(0, first));
    const prefillInputs = convertInputs(this.prefill.loaded.info, { [spec.inputIds]: padded });
    const forced = Array.from(ids.slice(first), (id) => tokenId(id, spec.vocab));
    const logits = options.returnLogits === true;
    // tokens after the first: one decode step each, while the cache has slots
    const steps = Math.min(options.maxNewTokens - 1, spec.context - ids.length);
    const depth = logits ? 1 : this.readbacks.length;
    const errors = new GpuErrorCollector(host.device);
    const timeline = new Timeline(performance.now(), false, false);
    const queue = host.device.queue;
    const start = performance.now();

    // the prefill reads its last real row; selection moves the position on to the first new token's slot
    queue.writeBuffer(this.control, 0, controlBlock(first - 1, first - 1, options.sample));
    await host.makeResident(spec.prefill, timeline);
    const pending: Pending[] = [];
    let submitted = 0;
    const submit = async (model: LoopModel, inputs: typeof prefillInputs, readToken: boolean) => {
      const stepStart = performance.now();
      const slot = submitted++ % this.readbacks.length;
      const steps = logits ? model.withLogits : model.plain;
      const readback = this.readbacks[slot]!;
      const submissions = await replay(host.replayContext(), steps, model.loaded, inputs, errors, timeline, undefined,
        readToken ? (recorder: CommandRecorder) => recorder.copy(this.control, 0, readback, 0, TOKEN_MAP_BYTES) : undefined);
      host.countLoopRun(model.loaded.info.name, steps, submissions, readToken ? TOKEN_MAP_BYTES : 0, performance.now() - stepStart);
      if (readToken) pending.push({ model, readback, mapped: errors.capture(() => readback.mapAsync(MAP_MODE_READ, 0, TOKEN_MAP_BYTES)) });
    };
    await submit(this.prefill, prefillInputs, forced.length === 0);
    if (forced.length > 0) {
      await host.makeResident(spec.decode, timeline);
      const word = new Uint32Array(1);
      for (const [i, token] of forced.entries()) {
        // the prompt's token replaces the one selection chose
        word[0] = token;
        queue.writeBuffer(this.control, CONTROL.token * 4, word);
        await submit(this.decode, [], i === forced.length - 1);
      }
    }
    const tokens: number[] = [];
    const stepLogits: Float32Array[] = [];
    let prefillMs = 0;
    let decodeStart = 0;
    let expected = ids.length;
    let stopped = false;
    await host.makeResident(spec.decode, timeline);
    const unsubmitted = () => submitted - (forced.length + 1) < steps;
    while (!stopped && (pending.length > 0 || unsubmitted())) {
      // keep `depth` steps in flight, never past maxNewTokens or the context
      while (pending.length < depth && unsubmitted()) await submit(this.decode, [], true);
      const next = pending.shift()!;
      const [token, position] = await this.readToken(host, next, errors);
      if (position !== expected) fail('FM_WEBGPU', `the decode loop is at cache slot ${position}, expected ${expected}: the GPU state is inconsistent`);
      if (token >= spec.vocab) fail('FM_WEBGPU', `token selection chose ${token}, outside the vocabulary of ${spec.vocab}`);
      expected++;
      if (logits) stepLogits.push(await this.readLogits(host, next.model, tokens.length === 0 && forced.length === 0 ? first - 1 : 0, errors));
      if (tokens.length === 0) {
        prefillMs = performance.now() - start;
        decodeStart = performance.now();
      }
      tokens.push(token);
      options.onToken?.(token, tokens.length - 1);
      stopped = options.stopTokens?.includes(token) === true;
    }
    // steps still in flight after a stop token: their tokens are dropped (generate() restarts from slot 0)
    for (const rest of pending) await this.readToken(host, rest, errors);
    await host.whileDeviceAlive(errors.check('generating tokens with the decode loop'));
    const decodeMs = performance.now() - decodeStart;
    const decodeTokensPerSecond = tokens.length > 1 ? ((tokens.length - 1) * 1000) / decodeMs : 0;
    return {
      tokens, promptTokens: ids.length, prefillMs, decodeMs, tokensPerSecond: decodeTokensPerSecond,
      prefillTokensPerSecond: prefillMs > 0 ? (ids.length * 1000) / prefillMs : 0, decodeTokensPerSecond,
      ...(logits ? { logits: stepLogits } : {}),
    };
  }

  /** waits for a step's token readback: [token, position of the token] */
  private async readToken(host: LoopHost, pending: Pending, errors: GpuErrorCollector): Promise<[number, number]> {
    try {
      await host.whileDeviceAlive(host.withRunTimeout(keepAlive(pending.mapped)));
    } catch (error) {
      // a GPU error explains a failed map better, except after a timeout (the device is gone)
      if ((error as { code?: string }).code !== 'FM_TIMEOUT') await host.whileDeviceAlive(errors.check('generating tokens with the decode loop'));
      throw error;
    }
    const words = new Uint32Array(pending.readback.getMappedRange(0, TOKEN_MAP_BYTES).slice(0));
    pending.readback.unmap();
    return [words[CONTROL.token]!, words[CONTROL.position]!];
  }

  /** returnLogits: the step's logits row, from the model's readback buffer (one step in flight) */
  private async readLogits(host: LoopHost, model: LoopModel, row: number, errors: GpuErrorCollector): Promise<Float32Array> {
    const readback = model.loaded.readback!;
    const output = model.loaded.info.outputs.findIndex((tensor) => tensor.name === this.spec.logits);
    const offset = model.loaded.readbackOffsets[output]! + row * this.spec.vocab * 4;
    await host.whileDeviceAlive(keepAlive(errors.capture(() => readback.mapAsync(MAP_MODE_READ))));
    host.countReadback(readback.size);
    try {
      return new Float32Array(readback.getMappedRange().slice(offset, offset + this.spec.vocab * 4));
    } finally {
      readback.unmap();
    }
  }
}

interface Pending {
  model: LoopModel;
  readback: GPUBuffer;
  mapped: Promise<unknown>;
}

function tokenId(id: bigint, vocab: number): number {
  if (id < 0n || id >= BigInt(vocab)) fail('FM_INPUT', `prompt token ${id} is outside the vocabulary of ${vocab}`);
  return Number(id);
}

/** The control block for a prefill whose last real token is at `position` (and logits row `row`). */
function controlBlock(position: number, row: number, sample: SamplingOptions | undefined): Uint32Array<ArrayBuffer> {
  const words = new Uint32Array(CONTROL_WORDS);
  const floats = new Float32Array(words.buffer);
  words[CONTROL.position] = position;
  words[CONTROL.row] = row;
  if (sample) {
    words[CONTROL.mode] = 1;
    words[CONTROL.topK] = sample.topK ?? 0;
    floats[CONTROL.temperature] = sample.temperature ?? 1;
    floats[CONTROL.topP] = sample.topP ?? 1;
    words[CONTROL.seed] = sample.seed ?? 0;
  }
  return words;
}

/** Validates GenerateOptions.sample (FM_INPUT). */
export function checkSampling(sample: unknown, vocab: number): void {
  if (sample === undefined) return;
  if (typeof sample !== 'object' || sample === null) fail('FM_INPUT', 'generate(): options.sample must be an object { temperature?, topK?, topP?, seed? }');
  const { temperature, topK, topP, seed } = sample as SamplingOptions;
  if (temperature !== undefined && !(typeof temperature === 'number' && Number.isFinite(temperature) && temperature > 0)) fail('FM_INPUT', `generate(): sample.temperature must be a positive number, not ${String(temperature)}`);
  if (topK !== undefined && !(Number.isInteger(topK) && topK >= 0 && topK <= vocab)) fail('FM_INPUT', `generate(): sample.topK must be an integer from 0 (all tokens) to the vocabulary of ${vocab}, not ${String(topK)}`);
  if (topP !== undefined && !(typeof topP === 'number' && topP > 0 && topP <= 1)) fail('FM_INPUT', `generate(): sample.topP must be in (0, 1], not ${String(topP)}`);
  if (seed !== undefined && !(Number.isInteger(seed) && seed >= 0 && seed <= 0xffffffff)) fail('FM_INPUT', `generate(): sample.seed must be an integer from 0 to 2^32 - 1, not ${String(seed)}`);
}
