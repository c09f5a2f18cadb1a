/**
 * Packages a built schedule as bundle contents: its shader files, weight shards, the model's
 * signature and the WebGPU limits the bundle needs. Planning and schedule building happen in the
 * pipeline's passes before (compiler/pipeline/backend.ts).
 */
import type { ManifestModel } from '../../schemas/manifest.js';
import type { ModelSchedule } from '../../schemas/schedule.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import type { KernelProgram } from '../lower/program.js';
import type { Graph } from '../ir/types.js';
import type { ShardLayout } from '../schedule/weights.js';
import type { BuiltSchedule, ShaderTable } from '../schedule/build.js';
import type { BundleContents } from './contents.js';
import type { ShaderCode } from '../kernel/types.js';

export interface AssembleInput {
  modelName: string;
  graph: Graph;
  program: KernelProgram;
  /** the build-schedule pass's result (compiler/pipeline/build-schedule.ts) */
  built: BuiltSchedule;
}

/** Packages one model's built schedule, shaders and shards as bundle contents: no planning happens here. */
export function assembleBundle({ modelName, graph, program, built }: AssembleInput): BundleContents {
  return contents(modelSignature(modelName, graph, program, built.weights), built.schedule, built.shaders, built.shards);
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
      maxWorkgroups: shaders.maxWorkgroups,
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
