/**
 * The preload schedule: every weight is uploaded once at load (init steps); each run writes the
 * inputs, replays the dispatches in order and reads the outputs.
 */
import type { ModelSchedule, Region, Step } from '../../schemas/schedule.js';
import { readbackBytes, storageRoot, type KernelProgram } from '../codegen/program.js';
import { liveArenaBytes, type MemoryPlan, type Placement } from './memory-plan.js';
import type { ShardLayout } from './weights.js';

export interface ScheduleInputs {
  model: string;
  program: KernelProgram;
  plan: MemoryPlan;
  shards: ShardLayout;
  /** shader index of each kernel */
  shaderIndex: number[];
}

export function regionOf(program: KernelProgram, plan: MemoryPlan, id: string): Region {
  const root = storageRoot(program, id);
  const p: Placement = plan.placements.get(root.id)!;
  return { buffer: p.buffer, offset: p.offset, size: program.tensors.get(id)!.bytes };
}

export function uploadSteps(program: KernelProgram, plan: MemoryPlan, shards: ShardLayout, weight: string): Step[] {
  const dst = regionOf(program, plan, weight);
  return shards.pieces.get(weight)!.map((p) => ({
    op: 'upload' as const,
    shard: p.shard,
    shardOffset: p.shardOffset,
    dst: { buffer: dst.buffer, offset: dst.offset + p.weightOffset, size: p.length },
    weight,
  }));
}

export function buildPreloadSchedule({ model, program, plan, shards, shaderIndex }: ScheduleInputs): ModelSchedule {
  const init = plan.weights.flatMap((w) => uploadSteps(program, plan, shards, w));
  const run: Step[] = [
    ...program.inputs.map((id, input) => ({ op: 'writeInput' as const, input, dst: regionOf(program, plan, id) })),
    ...program.kernels.map((k, i) => ({
      op: 'dispatch' as const,
      shader: shaderIndex[i]!,
      bindings: k.bindings.map((id) => regionOf(program, plan, id)),
      workgroups: k.workgroups,
      label: k.label,
      node: k.node,
    })),
    ...program.outputs.map((id, output) => ({ op: 'readOutput' as const, output, src: regionOf(program, plan, id) })),
  ];
  return {
    model,
    strategy: 'preload',
    buffers: plan.buffers.map((b) => ({ role: b.role, size: b.size })),
    init,
    run,
    liveArenaBytes: liveArenaBytes(plan, program.kernels.length),
    // schedule buffers plus the runtime's readback buffer (every output, back to back)
    plannedPeakBytes: plan.buffers.reduce((s, b) => s + b.size, 0) + readbackBytes(program),
  };
}
