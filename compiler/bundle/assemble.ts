/**
 * Turns a planned kernel program into bundle contents: deduplicated shader files, weight shards,
 * the model's schedule, its signature and the WebGPU limits the bundle needs.
 */
import type { ManifestModel } from '../../schemas/manifest.js';
import type { ModelSchedule, Step } from '../../schemas/schedule.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { readbackBytes, type KernelProgram } from '../lower/program.js';
import type { Graph } from '../ir/types.js';
import { liveArenaBytes, type MemoryPlan } from '../schedule/memory-plan.js';
import { buildPreloadSchedule, textureUploadSteps, texturesField, uploadSteps } from '../schedule/preload.js';
import { textureRowBytes } from '../kernel/texture-layout.js';
import { layoutShards, DEFAULT_SHARD_BYTES, type ShardLayout } from '../schedule/weights.js';
import { buildStreamRun, type StreamPlan, type StreamStats } from '../schedule/stream.js';
import type { TargetLimits } from '../target/limits.js';
import type { BundleContents } from './contents.js';
import { shaderPath } from './write.js';
import type { ShaderCode } from '../kernel/types.js';

export interface AssembleInput {
  modelName: string;
  graph: Graph;
  program: KernelProgram;
  plan: MemoryPlan;
  shardBytes?: number;
}

/** Shader files deduplicated by content, in order of first use. */
export class ShaderTable {
  readonly files = new Map<string, string>();
  readonly list: string[] = [];
  /** what each distinct shader needs of the device */
  readonly code: ShaderCode[] = [];
  index(shader: ShaderCode): number {
    const path = shaderPath(shader.wgsl);
    if (!this.files.has(path)) {
      this.files.set(path, shader.wgsl);
      this.list.push(path);
      this.code.push(shader);
    }
    return this.list.indexOf(path);
  }
}

export function assembleBundle({ modelName, graph, program, plan, shardBytes = DEFAULT_SHARD_BYTES }: AssembleInput): BundleContents {
  const shaders = new ShaderTable();
  const shaderIndex = program.kernels.map((k) => shaders.index(k));
  const shards = layoutShards(weightData(program, [...plan.weights, ...plan.textures]), shardBytes);
  const schedule = buildPreloadSchedule({ model: modelName, program, plan, shards, shaderIndex });
  return contents(modelSignature(modelName, graph, program, [...plan.weights, ...plan.textures]), schedule, shaders, shards);
}

/** A bundle whose schedule streams the weights the load plan chose, under the plan's budget. */
export function assembleStreamBundle(
  { modelName, graph, program, shardBytes = DEFAULT_SHARD_BYTES }: Omit<AssembleInput, 'plan'>, stream: StreamPlan, limits: TargetLimits,
): { contents: BundleContents; stats: StreamStats } {
  const allWeights = streamedWeightOrder(stream);
  const shards = layoutShards(weightData(program, allWeights), shardBytes);
  const shaders = new ShaderTable();
  const { schedule, stats } = streamSchedule(modelName, program, stream, shards, shaders, limits);
  return { contents: contents(modelSignature(modelName, graph, program, allWeights), schedule, shaders, shards), stats };
}

/** Every weight of a stream plan: resident ones first, then streamed ones in the order they load (the shard order). */
export function streamedWeightOrder({ memory, loadPlan }: StreamPlan): string[] {
  const streamedIds = loadPlan.weights.filter((w) => !w.preload).sort((a, b) => a.loadStart - b.loadStart).map((w) => w.id);
  return [...memory.weights, ...memory.textures, ...streamedIds];
}

/** The schedule of a streamed program over an existing shard layout and shader table; joint programs also get their call boundaries. */
export function streamSchedule(
  modelName: string, program: KernelProgram, stream: StreamPlan, shards: ShardLayout, shaders: ShaderTable, limits: TargetLimits,
): { schedule: ModelSchedule; stats: StreamStats; callStarts: number[] } {
  const { memory, loadPlan } = stream;
  const built = buildStreamRun(program, stream, shards, limits);
  const run: Step[] = built.run.map((step) => (step.op === 'dispatch' ? { ...step, shader: shaders.index(step.shader) } : step));
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

export function modelSignature(name: string, graph: Graph, program: KernelProgram, weights: readonly string[]): ManifestModel {
  const signature = (id: string) => ({ name: id, dtype: graph.values.get(id)!.type.dtype, shape: [...graph.values.get(id)!.type.shape] });
  return {
    name,
    inputs: program.inputs.map(signature),
    outputs: program.outputs.map(signature),
    weightBytes: weights.reduce((s, id) => s + program.tensors.get(id)!.bytes, 0),
  };
}

function contents(model: ManifestModel, schedule: ModelSchedule, shaders: ShaderTable, shards: ShardLayout): BundleContents {
  return {
    models: [model],
    schedule: {
      formatVersion: FORMAT_VERSION,
      shaders: shaders.list,
      shards: shards.shards.map((s) => ({ path: s.path, size: s.size })),
      models: [schedule],
    },
    shaders: shaders.files,
    shards: shards.shards,
    requiredLimits: requiredLimits([schedule], shaders.code),
    requiredFeatures: [],
  };
}

/** The device limits a schedule needs: the largest binding, buffer, bind count and workgroup it uses. */
export function requiredLimits(schedules: ModelSchedule[], shaders: readonly ShaderCode[]): Record<string, number> {
  let binding = 0, buffer = 0, bindings = 0, groups = 0;
  for (const s of schedules) {
    for (const b of s.buffers) buffer = Math.max(buffer, b.size);
    for (const step of s.run) {
      if (step.op !== 'dispatch') continue;
      const regions = step.bindings.filter((b) => 'buffer' in b);
      bindings = Math.max(bindings, regions.length);
      for (const r of regions) binding = Math.max(binding, r.size);
      groups = Math.max(groups, ...step.workgroups);
    }
  }
  let invocations = 0, sizeX = 0, sizeY = 0, sizeZ = 0, workgroupBytes = 0;
  for (const shader of shaders) {
    const [x, y, z] = shader.workgroupSize;
    invocations = Math.max(invocations, x * y * z);
    sizeX = Math.max(sizeX, x);
    sizeY = Math.max(sizeY, y);
    sizeZ = Math.max(sizeZ, z);
    workgroupBytes = Math.max(workgroupBytes, shader.workgroupBytes);
  }
  // Never ask for less than WebGPU's defaults: those are guaranteed anyway and the request stays portable.
  return {
    maxStorageBufferBindingSize: Math.max(binding, 134217728),
    maxBufferSize: Math.max(buffer, 268435456),
    maxStorageBuffersPerShaderStage: Math.max(bindings, 8),
    maxComputeWorkgroupsPerDimension: Math.max(groups, 65535),
    maxComputeInvocationsPerWorkgroup: Math.max(invocations, 256),
    maxComputeWorkgroupSizeX: Math.max(sizeX, 256),
    maxComputeWorkgroupSizeY: Math.max(sizeY, 256),
    maxComputeWorkgroupSizeZ: Math.max(sizeZ, 64),
    maxComputeWorkgroupStorageSize: Math.max(workgroupBytes, 16384),
    ...textureRequirements(schedules),
  };
}

/**
 * Texture limits, only for schedules with weight textures (others keep their manifest as it was):
 * exactly what the textures use, since compatibility-mode devices stay below core's defaults
 * (maxTextureDimension2D 4096) and the compiler already sized the textures for the target.
 */
function textureRequirements(schedules: ModelSchedule[]): Record<string, number> {
  const textures = schedules.flatMap((s) => s.textures ?? []);
  if (textures.length === 0) return {};
  let perStage = 0;
  for (const s of schedules) {
    for (const step of s.run) if (step.op === 'dispatch') perStage = Math.max(perStage, step.bindings.filter((b) => 'texture' in b).length);
  }
  return {
    maxTextureDimension2D: Math.max(...textures.map((t) => Math.max(t.width, t.height))),
    maxTextureArrayLayers: Math.max(...textures.map((t) => t.layers)),
    maxSampledTexturesPerShaderStage: perStage,
  };
}
