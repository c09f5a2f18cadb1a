/**
 * The preload schedule: every weight is uploaded once at load (init steps); each run writes the
 * inputs, replays the dispatches in order and reads the outputs.
 */
import type { Binding, ModelSchedule, Region, StateWriteStep, Step, TextureDecl } from '../../schemas/schedule.js';
import { readbackBytes, storageRoot, type KernelProgram, type ProgramKernel } from '../lower/program.js';
import { TEXTURE_FORMAT, textureRowBytes } from '../kernel/texture-layout.js';
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

/** A dispatch binding: the tensor's buffer range, or the whole texture of a texture weight. */
export function bindingOf(program: KernelProgram, plan: MemoryPlan, id: string): Binding {
  const root = storageRoot(program, id);
  return root.texture ? { texture: plan.textures.indexOf(root.id) } : regionOf(program, plan, id);
}

/** The schedule's texture declarations, texture i being plan.textures[i]. */
export function textureDecls(program: KernelProgram, plan: MemoryPlan): TextureDecl[] {
  return plan.textures.map((id) => ({ format: TEXTURE_FORMAT, ...program.tensors.get(id)!.texture! }));
}

/** The `textures` field of a schedule: present only when some weight is a texture (older schedules unchanged). */
export function texturesField(program: KernelProgram, plan: MemoryPlan): { textures?: TextureDecl[] } {
  return plan.textures.length > 0 ? { textures: textureDecls(program, plan) } : {};
}

/**
 * Upload steps of a texture weight: each shard piece is whole rows (layoutShards' granule), split
 * where the rows cross into the next array layer; the runtime writes each with queue.writeTexture
 * straight from the shard bytes.
 */
export function textureUploadSteps(program: KernelProgram, plan: MemoryPlan, shards: ShardLayout, weight: string): Step[] {
  const shape = program.tensors.get(weight)!.texture!;
  const texture = plan.textures.indexOf(weight);
  const rowBytes = textureRowBytes(shape);
  const steps: Step[] = [];
  for (const p of shards.pieces.get(weight)!) {
    const firstRow = p.weightOffset / rowBytes;
    const end = firstRow + p.length / rowBytes;
    for (let row = firstRow; row < end;) {
      const y = row % shape.height;
      const rows = Math.min(end - row, shape.height - y);
      steps.push({
        op: 'upload', shard: p.shard, shardOffset: p.shardOffset + (row - firstRow) * rowBytes,
        dst: { texture, layer: Math.floor(row / shape.height), y, rows, size: rows * rowBytes }, weight,
      });
      row += rows;
    }
  }
  return steps;
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
  const init = [
    ...plan.weights.flatMap((w) => uploadSteps(program, plan, shards, w)),
    ...plan.textures.flatMap((w) => textureUploadSteps(program, plan, shards, w)),
  ];
  const run: Step[] = [
    ...program.inputs.map((id, input) => ({ op: 'writeInput' as const, input, dst: regionOf(program, plan, id) })),
    ...program.kernels.map((k, i) => ({
      op: 'dispatch' as const,
      shader: shaderIndex[i]!,
      bindings: k.bindings.map((id) => bindingOf(program, plan, id)),
      ...readOnlyField(k),
      workgroups: k.workgroups,
      label: k.label,
      node: k.node,
    })),
    ...stateWriteSteps(program, plan),
    ...program.outputs.map((id, output) => ({ op: 'readOutput' as const, output, src: regionOf(program, plan, id) })),
  ];
  return {
    model,
    strategy: 'preload',
    buffers: plan.buffers.map((b) => ({ role: b.role, size: b.size })),
    ...texturesField(program, plan),
    init,
    run,
    liveArenaBytes: liveArenaBytes(plan, program.kernels.length),
    // schedule buffers and textures plus the runtime's readback buffer (every output, back to back)
    plannedPeakBytes: plan.buffers.reduce((s, b) => s + b.size, 0) + plan.textureBytes + readbackBytes(program),
  };
}

/**
 * Decoder state: each state output [1, heads, rows, headDim] is copied into its state buffer
 * [1, heads, cacheRows, headDim] after the kernels (the runtime places the rows: stateWrite).
 */
export function stateWriteSteps(program: KernelProgram, plan: MemoryPlan): StateWriteStep[] {
  const state = program.state;
  if (!state) return [];
  const firstState = plan.buffers.findIndex((b) => b.role === 'state');
  return [...state.outputs].map(([id, index]) => {
    const shape = program.tensors.get(id)!.type.shape;
    if (shape.length !== 4 || shape[0] !== 1) throw new Error(`state output ${id} must be [1, heads, rows, headDim], is [${shape}]`);
    const [, heads, rows, headDim] = shape as [number, number, number, number];
    const rowBytes = headDim * 4;
    const bytes = state.buffers[index]!;
    return {
      op: 'stateWrite' as const, src: regionOf(program, plan, id), dst: { buffer: firstState + index, offset: 0, size: bytes },
      heads, rows, rowBytes, cacheRows: bytes / (heads * rowBytes), at: state.writeAt, state: id,
    };
  });
}

/** A dispatch's readOnly field: present only when the kernel declares read-only bindings, so other schedules keep their form. */
export function readOnlyField(kernel: ProgramKernel): { readOnly?: number[] } {
  return kernel.readOnly?.length ? { readOnly: [...kernel.readOnly] } : {};
}
