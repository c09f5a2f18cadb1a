/**
 * Turns a planned kernel program into bundle contents: deduplicated shader files, weight shards,
 * the model's schedule, its signature and the WebGPU limits the bundle needs.
 */
import { createHash } from 'node:crypto';
import type { ManifestModel } from '../../schemas/manifest.js';
import type { ModelSchedule } from '../../schemas/schedule.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import type { KernelProgram } from '../codegen/program.js';
import type { Graph } from '../ir/types.js';
import type { MemoryPlan } from '../schedule/memory-plan.js';
import { buildPreloadSchedule } from '../schedule/preload.js';
import { layoutShards, DEFAULT_SHARD_BYTES } from '../schedule/weights.js';
import type { BundleContents } from './contents.js';
import { workgroupSize, workgroupStorageBytes } from '../codegen/wgsl.js';

export function shaderPath(wgsl: string): string {
  return `shaders/${createHash('sha256').update(wgsl).digest('hex').slice(0, 16)}.wgsl`;
}

export interface AssembleInput {
  modelName: string;
  graph: Graph;
  program: KernelProgram;
  plan: MemoryPlan;
  shardBytes?: number;
}

export function assembleBundle({ modelName, graph, program, plan, shardBytes = DEFAULT_SHARD_BYTES }: AssembleInput): BundleContents {
  const shaders = new Map<string, string>();
  const shaderList: string[] = [];
  const shaderIndex = program.kernels.map((k) => {
    const path = shaderPath(k.wgsl);
    if (!shaders.has(path)) {
      shaders.set(path, k.wgsl);
      shaderList.push(path);
    }
    return shaderList.indexOf(path);
  });
  const weights = plan.weights.map((id) => ({ id, data: program.tensors.get(id)!.data! }));
  const shards = layoutShards(weights, shardBytes);
  const schedule = buildPreloadSchedule({ model: modelName, program, plan, shards, shaderIndex });
  const signature = (id: string) => ({ name: id, dtype: graph.values.get(id)!.type.dtype, shape: [...graph.values.get(id)!.type.shape] });
  const model: ManifestModel = {
    name: modelName,
    inputs: program.inputs.map(signature),
    outputs: program.outputs.map(signature),
    weightBytes: plan.weights.reduce((s, id) => s + program.tensors.get(id)!.bytes, 0),
  };
  return {
    models: [model],
    schedule: {
      formatVersion: FORMAT_VERSION,
      shaders: shaderList,
      shards: shards.shards.map((s) => ({ path: s.path, size: s.size })),
      models: [schedule],
    },
    shaders,
    shards: shards.shards,
    requiredLimits: requiredLimits([schedule], shaders),
    requiredFeatures: [],
  };
}

/** The device limits a schedule needs: the largest binding, buffer, bind count and workgroup it uses. */
export function requiredLimits(schedules: ModelSchedule[], shaders: Map<string, string>): Record<string, number> {
  let binding = 0, buffer = 0, bindings = 0, groups = 0;
  for (const s of schedules) {
    for (const b of s.buffers) buffer = Math.max(buffer, b.size);
    for (const step of s.run) {
      if (step.op !== 'dispatch') continue;
      bindings = Math.max(bindings, step.bindings.length);
      for (const r of step.bindings) binding = Math.max(binding, r.size);
      groups = Math.max(groups, ...step.workgroups);
    }
  }
  let invocations = 0, sizeX = 0, sizeY = 0, sizeZ = 0, workgroupBytes = 0;
  for (const wgsl of shaders.values()) {
    const [x, y, z] = workgroupSize(wgsl);
    invocations = Math.max(invocations, x * y * z);
    sizeX = Math.max(sizeX, x);
    sizeY = Math.max(sizeY, y);
    sizeZ = Math.max(sizeZ, z);
    workgroupBytes = Math.max(workgroupBytes, workgroupStorageBytes(wgsl));
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
  };
}
