/**
 * The session loadBundle returns: loads the verified bundle onto the GPU (buffers, textures,
 * pipelines, init steps), queues and runs the models' plans (shared memory, declared sequences,
 * decoders), and keeps the statistics stats() reports.
 */
import type { DecoderSpec, ModelSchedule, Schedule, Step } from '../schemas/schedule.js';
import type { CallStats, DecoderStepper, FlashmemSession, GenerateOptions, GenerateResult, LoadOptions, ModelCallStats, ModelInfo, PlanUse, RunInputs, RunOutputs, SessionStats, TimelineEvent } from './api.js';
import { generateGreedy, Stepper } from './decoder.js';
import { checkSampling, DecodeLoop, type LoopHost } from './decode-loop.js';
import type { AcquiredDevice } from './device.js';
import { keepAlive } from './env.js';
import { asRuntimeError, fail, FlashmemRuntimeError, quote } from './errors.js';
import { isPlainObject, sharedBufferKeys } from './format.js';
import { BindGroupLayouts, bindingKinds, Pipelines } from './gpu-commands.js';
import { BUFFER_USAGE, GpuErrorCollector, GpuMemory, MAP_MODE_READ } from './gpu-memory.js';
import type { BundleReader } from './reader.js';
import { type CompiledSteps, type LoadedModel, type ModelResources, replay, type ReplayContext, StepCompiler } from './replay.js';
import { DEFAULT_READ_AHEAD_BYTES, ShardBlocks, usedShards } from './shards.js';
import { convertInputs, elementCount, fromGpuElements, type GpuElements } from './tensors.js';
import { Timeline } from './timeline.js';
import type { VerifiedBundle } from './verify.js';

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

function runTimeout(value: number | undefined): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !(value > 0) || !Number.isFinite(value)) throw new TypeError(`options.runTimeoutMs must be a positive number of milliseconds, not ${String(value)}`);
  return value;
}

/** calls kept in SessionStats.calls */
const MAX_CALL_LOG = 1000;

function sharedBuffersOf(plan: { buffers: { role: string }[] }, shared: Map<string, GPUBuffer>): GPUBuffer[] {
  return sharedBufferKeys(plan).map((key) => shared.get(key)!);
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

export class Session implements FlashmemSession {
  readonly device: GPUDevice;
  readonly models: readonly ModelInfo[];
  private readonly owned: boolean;
  private readonly memory: GpuMemory;
  private readonly loaded = new Map<string, LoadedModel>();
  private readonly counters = { loadMs: 0, lastRunMs: 0, runs: 0, dispatches: 0, uploads: 0, uploadedBytes: 0, plannedPeakGpuBytes: 0, submissions: 0, readbackBytes: 0 };
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
  /** the decoder's GPU decode loop (bundles whose decoder has one) */
  private decodeLoop?: DecodeLoop;
  private queue: Promise<unknown> = Promise.resolve();
  private disposed = false;
  private lostInfo?: GPUDeviceLostInfo;
  private readonly runTimeoutMs?: number;
  /** set when a run exceeded runTimeoutMs and the device was destroyed */
  private timedOut = false;
  /** rejects when the device is lost, to abort waits on work that will never finish */
  private readonly lost: Promise<never>;

  private constructor(acquired: AcquiredDevice, models: readonly ModelInfo[], options: LoadOptions) {
    this.device = acquired.device;
    this.streamFromStorage = options.streamedWeights === 'storage';
    this.readAheadBytes = options.readAheadBytes ?? DEFAULT_READ_AHEAD_BYTES;
    this.gpuTimeline = options.gpuTimeline === true;
    this.mappedUploads = options.uploads === 'mapped' && !this.streamFromStorage;
    this.runTimeoutMs = runTimeout(options.runTimeoutMs);
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
    const compiler = new StepCompiler(this.device, this.memory, shards, pipelines, layouts, errors, {
      streamFromStorage: this.streamFromStorage, readAheadBytes: this.readAheadBytes, mappedUploads: this.mappedUploads,
    });
    const compile = (steps: Step[], model: ModelResources) => compiler.compile(steps, model);
    if (!this.sharedMemory) for (const model of resources) await compiler.runInit(model, this.loadTimeline!, this.counters);
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
    if (this.decoderSpec?.loop) {
      const spec = this.decoderSpec;
      const withLoaded = (name: string) => ({ ...resources.find((model) => model.info.name === name)!, loaded: this.loaded.get(name)! });
      this.decodeLoop = await DecodeLoop.prepare(spec, this.memory, compile, { prefill: withLoaded(spec.prefill), decode: withLoaded(spec.decode) });
      await this.whileDeviceAlive(this.memory.checkAllocations());
    }
    await shards.verifyUnused(usedShards(bundle.schedule));
    // the figures verification checked (work-bounds.ts checkDeclaredPeaks): the schedule's own with shared memory, else the models'
    this.counters.plannedPeakGpuBytes = this.sharedMemory ? bundle.schedule.plannedPeakBytes! : bundle.schedule.models.reduce((sum, model) => sum + model.plannedPeakBytes, 0);
    await this.whileDeviceAlive(errors.check('loading the bundle onto the GPU'));
    if (this.sharedMemory) await this.makeResident(this.sequence ? 'sequence' : `model:${resources[0]!.info.name}`, this.loadTimeline!);
  }

  /** Shared memory: one GPU buffer per role and ordinal, as large as the largest plan's. */
  private createSharedBuffers(schedule: Schedule): Map<string, GPUBuffer> {
    const usage = BUFFER_USAGE.STORAGE | BUFFER_USAGE.COPY_SRC | BUFFER_USAGE.COPY_DST;
    const sizes = new Map<string, number>();
    for (const plan of [...schedule.models, ...(schedule.sequence ? [schedule.sequence] : [])]) {
      sharedBufferKeys(plan).forEach((key, i) => sizes.set(key, Math.max(sizes.get(key) ?? 0, plan.buffers[i]!.size)));
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
    await replay(this.replayContext(), init, undefined, [], errors, timeline);
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
    const result = this.queue.then(() => this.withRunTimeout(this.execute(prepared)));
    this.queue = result.catch(() => undefined);
    return result;
  }

  /**
   * Races a run against runTimeoutMs. GPU work cannot be cancelled, so on expiry the device is
   * destroyed (ending what it runs), the run rejects with FM_TIMEOUT and the session stays unusable.
   */
  private withRunTimeout<T>(run: Promise<T>): Promise<T> {
    const ms = this.runTimeoutMs;
    if (ms === undefined) return run;
    // the run rejects once the device is gone; the timeout is the error that counts
    run.catch(() => {});
    let timer: ReturnType<typeof setTimeout> | undefined;
    const expired = new Promise<never>((_, reject) => {
      timer = setTimeout(() => reject(this.expire(ms)), ms);
    });
    return Promise.race([run, expired]).finally(() => clearTimeout(timer));
  }

  private expire(ms: number): Error {
    this.timedOut = true;
    this.memory.destroyAll();
    this.device.destroy();
    return new FlashmemRuntimeError('FM_TIMEOUT', `a run took longer than runTimeoutMs (${ms} ms): the device was destroyed; load the bundle again in a new session`);
  }

  // ------------------------------------------------------------------------------------- decoder

  generate(promptIds: ArrayLike<number | bigint>, options: GenerateOptions): Promise<GenerateResult> {
    const loop = this.decodeLoop;
    if (!loop) {
      if (options?.sample !== undefined) {
        return Promise.reject(new FlashmemRuntimeError('FM_INPUT', 'generate(): sampling runs in the GPU decode loop, which this bundle (compiled by an older flashmemc) lacks: recompile it'));
      }
      return generateGreedy(this.decoder(), promptIds, options);
    }
    try {
      if (!Number.isInteger(options?.maxNewTokens) || options.maxNewTokens < 1) fail('FM_INPUT', 'generate() needs options.maxNewTokens, a positive integer');
      checkSampling(options.sample, this.decoderSpec!.vocab);
    } catch (error) {
      return Promise.reject(error);
    }
    return this.exclusive(() => {
      this.assertUsable();
      return loop.generate(this.loopHost(), promptIds, options);
    });
  }

  /** Runs `work` alone in the session's run queue (generate() holds it for all its tokens). */
  private exclusive<T>(work: () => Promise<T>): Promise<T> {
    const result = this.queue.then(work);
    this.queue = result.catch(() => undefined);
    return result;
  }

  private loopHost(): LoopHost {
    return {
      device: this.device,
      replayContext: () => this.replayContext(),
      makeResident: (model, timeline) => this.makeResident(`model:${model}`, timeline),
      whileDeviceAlive: (promise) => this.whileDeviceAlive(promise),
      withRunTimeout: (promise) => this.withRunTimeout(promise),
      countLoopRun: (model, steps, submissions, readbackBytes, ms) => {
        this.counters.submissions += submissions;
        this.counters.readbackBytes += readbackBytes;
        this.countRun(model, { steps, plan: 'entry', reloaded: false }, ms, ms);
      },
      countReadback: (bytes) => {
        this.counters.readbackBytes += bytes;
      },
    };
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
    if (this.timedOut) fail('FM_TIMEOUT', `an earlier run took longer than runTimeoutMs (${this.runTimeoutMs} ms) and the device was destroyed: load the bundle again`);
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
      this.counters.submissions += await replay(this.replayContext(), choice.steps, model, inputs, errors, timeline, position);
      mapped = errors.capture(() => model.readback?.mapAsync(MAP_MODE_READ));
      this.counters.readbackBytes += model.readback?.size ?? 0;
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

  private readOutputs(model: LoadedModel): RunOutputs {
    const outputs: RunOutputs = {};
    // no readback buffer: every output is empty, and still one of the outputs
    const bytes = model.readback ? model.readback.getMappedRange() : new ArrayBuffer(0);
    try {
      model.info.outputs.forEach((tensor, i) => {
        outputs[tensor.name] = fromGpuElements(tensor.dtype, bytes, model.readbackOffsets[i]!, elementCount(tensor.shape));
      });
    } finally {
      model.readback?.unmap();
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

  /** what replay() needs of the session */
  private replayContext(): ReplayContext {
    return { device: this.device, shards: this.shards, readAheadBytes: this.readAheadBytes, whileDeviceAlive: (promise) => this.whileDeviceAlive(promise) };
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
