/**
 * Replaying a schedule's steps on the GPU: init steps run once at load, straight from the shards;
 * run steps (and shared-memory init steps) are compiled once into GPU objects (pipelines, bind
 * groups, weight bytes held on the host or staged) and replayed on every run.
 */
import type { DispatchStep, ModelSchedule, Region, StateWriteStep, Step } from '../schemas/schedule.js';
import type { ModelInfo } from './api.js';
import { quote } from './errors.js';
import { isTextureBinding, isTextureRegion } from './format.js';
import { BindGroupLayouts, bindingKinds, CommandRecorder, Pipelines } from './gpu-commands.js';
import { GpuErrorCollector, GpuMemory } from './gpu-memory.js';
import { RangeStream, ShardBlocks, type ShardRange, uploadRange, uploadRanges } from './shards.js';
import type { GpuElements } from './tensors.js';
import { Timeline } from './timeline.js';

/** host staging buffers stay below WebGPU's default maxBufferSize, which every device supports */
const MAX_STAGING_BUFFER_BYTES = 256 << 20;

function alignTo4(bytes: number): number {
  return Math.ceil(bytes / 4) * 4;
}

type RunCommand =
  | { kind: 'writeInput'; input: number; buffer: GPUBuffer; offset: number }
  /** bytes: held in host memory; absent: read from storage (range) on every run */
  | { kind: 'upload'; bytes?: Uint8Array<ArrayBuffer>; range: ShardRange; weight: string; buffer: GPUBuffer; offset: number; staged?: { buffer: GPUBuffer; offset: number } }
  | { kind: 'dispatch'; pipeline: GPUComputePipeline; bindGroup: GPUBindGroup; workgroups: [number, number, number]; label: string }
  | { kind: 'readOutput'; output: number; buffer: GPUBuffer; offset: number; size: number }
  | { kind: 'copy'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; size: number; weight: string }
  | { kind: 'stateWrite'; src: GPUBuffer; srcOffset: number; dst: GPUBuffer; dstOffset: number; step: StateWriteStep };

/** Steps turned into GPU objects ready to replay: a model's run or init, or a sequence call. */
export interface CompiledSteps {
  commands: RunCommand[];
  /** the storage ranges of uploads without host bytes, in command order ('storage' mode) */
  storageRanges: ShardRange[];
  dispatches: number;
  uploads: number;
  uploadBytes: number;
}

export interface LoadedModel {
  info: ModelInfo;
  run: CompiledSteps;
  /** shared memory: the init steps, replayed whenever the model becomes the resident plan */
  init?: CompiledSteps;
  readback?: GPUBuffer;
  /** byte offset of output i in the readback buffer */
  readbackOffsets: number[];
}

/** GPU objects of one model during load */
export interface ModelResources {
  info: ModelInfo;
  schedule: ModelSchedule;
  buffers: GPUBuffer[];
  /** weight textures, schedule.textures[i] */
  textures: GPUTexture[];
  readback?: GPUBuffer;
  readbackOffsets: number[];
}

/** the session's counters that init steps add to */
export interface StepCounters {
  dispatches: number;
  uploads: number;
  uploadedBytes: number;
}

/** how compiled steps hold streamed weights (LoadOptions.streamedWeights, readAheadBytes, uploads) */
export interface StepOptions {
  streamFromStorage: boolean;
  readAheadBytes: number;
  mappedUploads: boolean;
}

/** Turns schedule steps into GPU work for one bundle's load: init steps run at once, the others compiled for replay. */
export class StepCompiler {
  constructor(
    private readonly device: GPUDevice,
    private readonly memory: GpuMemory,
    private readonly shards: ShardBlocks,
    private readonly pipelines: Pipelines,
    private readonly layouts: BindGroupLayouts,
    private readonly errors: GpuErrorCollector,
    private readonly options: StepOptions,
  ) {}

  private bindGroup(step: DispatchStep, buffers: GPUBuffer[], textures: GPUTexture[]): GPUBindGroup {
    return this.device.createBindGroup({
      layout: this.layouts.forBindings(bindingKinds(step)).group,
      entries: step.bindings.map((region, binding): GPUBindGroupEntry => (isTextureBinding(region)
        ? { binding, resource: textures[region.texture]!.createView({ dimension: '2d-array' }) }
        : { binding, resource: { buffer: buffers[region.buffer]!, offset: region.offset, size: region.size } })),
    });
  }

  /** Init steps run once, in order: weight uploads (preloaded weights) and any preparatory dispatches. */
  async runInit(model: ModelResources, timeline: Timeline, counters: StepCounters): Promise<void> {
    const recorder = new CommandRecorder(this.device, timeline);
    const stream = new RangeStream(this.shards, uploadRanges(model.schedule.init), this.options.readAheadBytes);
    for (const [index, step] of model.schedule.init.entries()) {
      if (step.op === 'upload') {
        const readStart = timeline.now();
        const bytes = await stream.next();
        timeline.add('read', index, readStart, { label: step.weight, bytes: bytes.length });
        const uploadStart = timeline.now();
        const dst = step.dst;
        if (isTextureRegion(dst)) {
          const width = model.schedule.textures![dst.texture]!.width;
          this.errors.capture(() => recorder.writeTexture(model.textures[dst.texture]!, width, dst, bytes));
        } else {
          this.errors.capture(() => recorder.write(model.buffers[dst.buffer]!, dst.offset, bytes));
        }
        timeline.add('upload', index, uploadStart, { label: step.weight, bytes: bytes.length });
        counters.uploads++;
        counters.uploadedBytes += step.dst.size;
      } else if (step.op === 'dispatch') {
        const pipeline = await this.pipelines.request(step.shader, bindingKinds(step));
        this.errors.capture(() => recorder.dispatch(pipeline, this.bindGroup(step, model.buffers, model.textures), step.workgroups));
        counters.dispatches++;
      } else if (step.op === 'copy') {
        this.errors.capture(() => recorder.copy(model.buffers[step.src.buffer]!, step.src.offset, model.buffers[step.dst.buffer]!, step.dst.offset, step.src.size));
      }
    }
    this.errors.capture(() => recorder.submit());
  }

  /** Turns steps into GPU objects ready to replay: pipelines, bind groups, streamed weight bytes. */
  async compile(steps: Step[], model: ModelResources): Promise<CompiledSteps> {
    const compiled: CompiledSteps = { commands: [], storageRanges: [], dispatches: 0, uploads: 0, uploadBytes: 0 };
    // 'memory': streamed weight bytes are read once now (with read-ahead) and kept on the host
    const stream = this.options.streamFromStorage ? undefined : new RangeStream(this.shards, uploadRanges(steps), this.options.readAheadBytes);
    for (const step of steps) compiled.commands.push(await this.compileStep(step, model, compiled, stream));
    if (this.options.mappedUploads) this.errors.capture(() => this.stageUploads(compiled, model.info.name));
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
    step: Step, model: ModelResources, loaded: CompiledSteps, stream: RangeStream | undefined,
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
        const pipeline = await this.pipelines.request(step.shader, bindingKinds(step));
        loaded.dispatches++;
        const bindGroup = this.errors.capture(() => this.bindGroup(step, model.buffers, model.textures));
        return { kind: 'dispatch', pipeline, bindGroup, workgroups: step.workgroups, label: step.label };
      }
    }
  }
}

/** What replaying needs of the session. */
export interface ReplayContext {
  readonly device: GPUDevice;
  /** set once the session reads weights (load) */
  readonly shards?: ShardBlocks;
  readonly readAheadBytes: number;
  /** races a wait against the loss of the device */
  whileDeviceAlive<T>(promise: Promise<T>): Promise<T>;
}

/**
 * Records the run's commands. Weight bytes held in host memory make this one synchronous pass; in
 * 'storage' mode it pauses at each upload whose bytes are still being read, after submitting the
 * work recorded so far so the GPU computes while the read completes.
 */
export async function replay(
  session: ReplayContext, steps: CompiledSteps, model: LoadedModel | undefined, inputs: GpuElements[], errors: GpuErrorCollector, timeline: Timeline, position?: number,
  finish?: (recorder: CommandRecorder) => void,
): Promise<number> {
  const recorder = new CommandRecorder(session.device, timeline);
  const stream = steps.storageRanges.length > 0 ? new RangeStream(session.shards!, steps.storageRanges, session.readAheadBytes) : undefined;
  let next = 0;
  let fetched: Uint8Array<ArrayBuffer> | undefined;
  for (;;) {
    const from = next;
    const bytes = fetched;
    next = errors.capture(() => replayUntilRead(steps, model, inputs, recorder, timeline, from, bytes, position));
    if (next >= steps.commands.length) break;
    if (!stream!.nextReady()) errors.capture(() => recorder.submit());
    const readStart = timeline.now();
    fetched = await session.whileDeviceAlive(stream!.next());
    timeline.add('read', next, readStart, { label: (steps.commands[next] as { weight: string }).weight, bytes: fetched.length });
  }
  // `finish` records the last commands of the run's final submission (the decode loop's token copy)
  errors.capture(() => {
    finish?.(recorder);
    recorder.submit();
  });
  return recorder.submissions;
}

/**
 * Compiled steps from parts: `before`, the commands of `base` minus those of the kinds dropped,
 * then `after`. The commands are shared, not copied (the decode loop builds its step from the
 * decode model's run this way).
 */
export function spliceSteps(base: CompiledSteps, drop: ReadonlySet<RunCommand['kind']>, before?: CompiledSteps, after?: CompiledSteps): CompiledSteps {
  const parts = [before, base, after].filter((part): part is CompiledSteps => part !== undefined);
  const commands = parts.flatMap((part) => (part === base ? base.commands.filter((command) => !drop.has(command.kind)) : part.commands));
  return {
    commands,
    // uploads are never dropped: the storage ranges keep their order
    storageRanges: parts.flatMap((part) => part.storageRanges),
    dispatches: parts.reduce((sum, part) => sum + part.dispatches, 0),
    uploads: parts.reduce((sum, part) => sum + part.uploads, 0),
    uploadBytes: parts.reduce((sum, part) => sum + part.uploadBytes, 0),
  };
}

export type RunCommandKind = RunCommand['kind'];

/** Records commands from `from` on; returns the index of the first upload that needs bytes from storage (`fetched` serves the first). */
function replayUntilRead(
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
        // an empty output has nothing to copy (and a model whose outputs are all empty has no readback buffer)
        if (command.size > 0) recorder.copy(command.buffer, command.offset, model!.readback!, model!.readbackOffsets[command.output]!, command.size);
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
