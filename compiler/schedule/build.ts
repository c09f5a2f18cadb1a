/**
 * The build-schedule pass's work (compiler/pipeline/backend.ts): a planned program becomes its
 * schedule, over a shard layout and a shader table whose files are named by content. Bundle
 * assembly only packages what this builds.
 */
import type { ModelSchedule, Step } from '../../schemas/schedule.js';
import { readbackBytes, type KernelProgram } from '../lower/program.js';
import { liveArenaBytes, type MemoryPlan } from './memory-plan.js';
import { buildPreloadSchedule, textureUploadSteps, texturesField, uploadSteps } from './preload.js';
import { textureRowBytes } from '../kernel/texture-layout.js';
import { layoutShards, DEFAULT_SHARD_BYTES, type ShardLayout } from './weights.js';
import { buildStreamRun, type CarrierSchedule, type StreamPlan, type StreamStats } from './stream.js';
import type { TargetLimits } from '../target/limits.js';
import { createHash } from 'node:crypto';
import type { ShaderCode } from '../kernel/types.js';

/** hex digits of a shader's sha256 in its file name; 64 bits make collisions between distinct kernels negligible */
const SHADER_HASH_CHARS = 16;

/** A shader's file in the bundle, named by its content: equal shaders are one file. */
export function shaderPath(source: string): string {
  return `shaders/${createHash('sha256').update(source).digest('hex').slice(0, SHADER_HASH_CHARS)}.wgsl`;
}

/** Shader files deduplicated by content, in order of first use, with the largest grid each is dispatched with. */
export class ShaderTable {
  readonly files = new Map<string, string>();
  readonly list: string[] = [];
  /** what each distinct shader needs of the device */
  readonly code: ShaderCode[] = [];
  /** list[i]'s most workgroups (x * y * z) of one dispatch: schedule.maxWorkgroups, which verification checks every dispatch against */
  readonly maxWorkgroups: number[] = [];
  /** The index of a shader in the table, for a dispatch of it over `workgroups`. */
  index(shader: ShaderCode, workgroups: readonly [number, number, number]): number {
    const path = shaderPath(shader.wgsl);
    if (!this.files.has(path)) {
      this.files.set(path, shader.wgsl);
      this.list.push(path);
      this.code.push(shader);
      this.maxWorkgroups.push(0);
    }
    const i = this.list.indexOf(path);
    this.maxWorkgroups[i] = Math.max(this.maxWorkgroups[i]!, workgroups[0] * workgroups[1] * workgroups[2]);
    return i;
  }
}

/** What bundle assembly packages: one model's schedule, its shards, its shaders and the weights in shard order. */
export interface BuiltSchedule {
  schedule: ModelSchedule;
  shards: ShardLayout;
  shaders: ShaderTable;
  /** every weight, in shard order */
  weights: string[];
  /** stream strategy: what the schedule streams */
  stats?: StreamStats;
}

export function buildPreload(modelName: string, program: KernelProgram, plan: MemoryPlan, shardBytes = DEFAULT_SHARD_BYTES): BuiltSchedule {
  const shaders = new ShaderTable();
  const shaderIndex = program.kernels.map((k) => shaders.index(k, k.workgroups));
  const weights = [...plan.weights, ...plan.textures];
  const shards = layoutShards(weightData(program, weights), shardBytes);
  const schedule = buildPreloadSchedule({ model: modelName, program, plan, shards, shaderIndex });
  return { schedule, shards, shaders, weights };
}

/** A schedule that streams the weights the load plan chose, under the plan's budget. */
export function buildStream(
  modelName: string, program: KernelProgram, stream: StreamPlan, carriers: CarrierSchedule, limits: TargetLimits, shardBytes = DEFAULT_SHARD_BYTES,
): BuiltSchedule {
  const weights = streamedWeightOrder(stream);
  const shards = layoutShards(weightData(program, weights), shardBytes);
  const shaders = new ShaderTable();
  const { schedule, stats } = streamSchedule(modelName, program, stream, shards, shaders, limits, carriers);
  return { schedule, shards, shaders, weights, stats };
}

/** Every weight of a stream plan: resident ones first, then streamed ones in the order they load (the shard order). */
export function streamedWeightOrder({ memory, loadPlan }: StreamPlan): string[] {
  const streamedIds = loadPlan.weights.filter((w) => !w.preload).sort((a, b) => a.loadStart - b.loadStart).map((w) => w.id);
  return [...memory.weights, ...memory.textures, ...streamedIds];
}

/** The schedule of a streamed program over an existing shard layout and shader table; joint programs also get their call boundaries. */
export function streamSchedule(
  modelName: string, program: KernelProgram, stream: StreamPlan, shards: ShardLayout, shaders: ShaderTable, limits: TargetLimits, carriers?: CarrierSchedule,
): { schedule: ModelSchedule; stats: StreamStats; callStarts: number[] } {
  const { memory, loadPlan } = stream;
  const built = buildStreamRun(program, stream, shards, limits, carriers);
  const run: Step[] = built.run.map((step) => (step.op === 'dispatch' ? { ...step, shader: shaders.index(step.shader, step.workgroups) } : step));
  // streamPath 'copies' has no staging ring
  const ring = stream.ringBytes > 0 ? [{ role: 'staging' as const, size: stream.ringBytes }] : [];
  const buffers = [...memory.buffers.map((b) => ({ role: b.role, size: b.size })), ...ring];
  const schedule: ModelSchedule = {
    model: modelName,
    strategy: 'stream',
    loadPlan: {
      budgetBytes: stream.budgetBytes,
      solver: loadPlan.stats.status,
      objective: Math.round(loadPlan.stats.objective * 1000) / 1000,
      gap: loadPlan.stats.gap,
      windows: loadPlan.stats.windows,
      greedyWindows: loadPlan.stats.greedyWindows,
      streamedWeights: built.stats.streamedWeights,
      preloadedWeights: loadPlan.weights.filter((w) => w.preload).length,
      streamedBytes: built.stats.streamedBytes,
      carriedBytes: built.stats.carriedBytes,
      copiedBytes: built.stats.copiedBytes,
      directBytes: built.stats.directBytes,
      carrierKernels: built.stats.carrierKernels,
      ringBytes: stream.ringBytes,
      profile: stream.profile,
    },
    buffers,
    ...texturesField(program, memory),
    init: [
      ...memory.weights.flatMap((w) => uploadSteps(program, memory, shards, w)),
      ...memory.textures.flatMap((w) => textureUploadSteps(program, memory, shards, w)),
    ],
    run,
    liveArenaBytes: liveArenaBytes(memory, program.kernels.length),
    plannedPeakBytes: buffers.reduce((s, b) => s + b.size, 0) + memory.textureBytes + readbackBytes(program),
  };
  return { schedule, stats: built.stats, callStarts: built.callStarts };
}

/** Weights for the shards; texture weights are cut at whole texture rows. */
export function weightData(program: KernelProgram, ids: readonly string[]) {
  return ids.map((id) => {
    const t = program.tensors.get(id)!;
    return { id, data: t.data!, ...(t.texture ? { granule: textureRowBytes(t.texture) } : {}) };
  });
}
