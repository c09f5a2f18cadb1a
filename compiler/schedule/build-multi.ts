/**
 * The schedule of a multi-model bundle: several models (and optionally a declared call sequence
 * planned jointly) whose GPU memory is shared. Weight shards are laid out once over every plan's
 * weights, so a weight two models (or two calls of one model) share is stored once.
 */
import type { ModelSchedule, Region, Schedule, SequenceSchedule, Step } from '../../schemas/schedule.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { readbackBytes, type KernelProgram } from '../lower/program.js';
import type { Graph } from '../ir/types.js';
import type { MemoryPlan } from './memory-plan.js';
import { buildPreloadSchedule } from './preload.js';
import { layoutShards, DEFAULT_SHARD_BYTES, type ShardLayout } from './weights.js';
import type { StreamPlan, StreamStats } from './stream.js';
import type { TargetLimits } from '../target/limits.js';
import { ShaderTable, streamedWeightOrder, streamSchedule, weightData } from './build.js';

export type PlannedModel = { name: string; graph: Graph; program: KernelProgram } & (
  | { strategy: 'preload'; plan: MemoryPlan }
  | { strategy: 'stream'; stream: StreamPlan }
);

export interface PlannedSequence {
  models: string[];
  /** the joint program (compiler/schedule/sequence.ts) */
  program: KernelProgram;
  stream: StreamPlan;
}

/** Shard-layout ids: a plan's tensor id under a prefix naming the plan (model entry plan or sequence). */
const planWeightId = (plan: string, id: string) => `${plan}\u0000${id}`;
const SEQUENCE_PLAN = '\u0001sequence';

/** What the shared-memory bundle's schedule is built from, and what it gives bundle assembly. */
export interface BuiltMulti {
  schedule: Schedule;
  shaders: ShaderTable;
  layout: ShardLayout;
  /** the model entry plans' schedules, and the sequence's steps as one pseudo-plan (for the limits it needs) */
  plans: ModelSchedule[];
  stats: { models: Record<string, StreamStats>; sequence?: StreamStats };
}

/** Lays out the shards once over every plan's weights and builds each plan's schedule over them. */
export function buildMultiSchedule(models: PlannedModel[], sequence: PlannedSequence | undefined, limits: TargetLimits, shardBytes = DEFAULT_SHARD_BYTES): BuiltMulti {
  const plans = [
    ...models.map((m) => ({ key: m.name, program: m.program, weights: modelWeights(m) })),
    ...(sequence ? [{ key: SEQUENCE_PLAN, program: sequence.program, weights: streamedWeightOrder(sequence.stream) }] : []),
  ];
  const layout = layoutShards(plans.flatMap((p) => weightData(p.program, p.weights).map((w) => ({ ...w, id: planWeightId(p.key, w.id) }))), shardBytes);
  const shaders = new ShaderTable();
  const stats: BuiltMulti['stats'] = { models: {} };
  const schedules = models.map((m) => {
    const shards = shardsOf(layout, m.name);
    if (m.strategy === 'preload') {
      return flattenBuffers(buildPreloadSchedule({ model: m.name, program: m.program, plan: m.plan, shards, shaderIndex: m.program.kernels.map((k) => shaders.index(k, k.workgroups)) }), limits);
    }
    const built = streamSchedule(m.name, m.program, m.stream, shards, shaders, limits);
    stats.models[m.name] = built.stats;
    return flattenBuffers(built.schedule, limits);
  });
  let sequenceSchedule: SequenceSchedule | undefined;
  if (sequence) {
    const built = streamSchedule(sequence.models.join(','), sequence.program, sequence.stream, shardsOf(layout, SEQUENCE_PLAN), shaders, limits);
    stats.sequence = built.stats;
    sequenceSchedule = splitCalls(flattenBuffers(built.schedule, limits), sequence.models, built.callStarts);
  }
  const schedule: Schedule = {
    formatVersion: FORMAT_VERSION,
    shaders: shaders.list,
    maxWorkgroups: shaders.maxWorkgroups,
    shards: layout.shards.map((s) => ({ path: s.path, size: s.size })),
    models: schedules,
    memory: 'shared',
    ...(sequenceSchedule ? { sequence: sequenceSchedule } : {}),
    plannedPeakBytes: sharedPeakBytes([...schedules, ...(sequenceSchedule ? [sequenceSchedule] : [])], models.map((m) => readbackBytes(m.program))),
  };
  const pseudo = sequenceSchedule ? [{ ...schedules[0]!, buffers: sequenceSchedule.buffers, init: sequenceSchedule.init, run: sequenceSchedule.calls.flatMap((c) => c.run) }] : [];
  return { schedule, shaders, layout, plans: [...schedules, ...pseudo], stats };
}

/** A model entry plan's weights in shard order: the memory plan's, or the order streaming reads them. */
export function modelWeights(m: PlannedModel): string[] {
  return m.strategy === 'preload' ? m.plan.weights : streamedWeightOrder(m.stream);
}

/**
 * Shared memory aliases plans' buffers by role and ordinal, so a plan with many resident weights
 * and another with a large activation arena would together need more than either. One buffer per
 * plan for resident weights and the arena, back to back (plus the staging ring), makes the shared
 * allocation the largest plan's, unless that buffer would exceed the target's maxBufferSize.
 */
export function flattenBuffers(schedule: ModelSchedule, limits: TargetLimits): ModelSchedule {
  // the staging ring stays a buffer of its own (copy steps may not copy within one buffer), and so
  // does decoder state, which every plan shares and no plan may overwrite
  const merged = schedule.buffers.flatMap((b, i) => (b.role === 'staging' || b.role === 'state' ? [] : [i]));
  const bases = new Map<number, number>();
  let total = 0;
  for (const i of merged) {
    bases.set(i, total);
    total += schedule.buffers[i]!.size;
  }
  if (merged.length <= 1 || total > limits.maxBufferSize) return schedule;
  const others = schedule.buffers.flatMap((_, i) => (bases.has(i) ? [] : [i]));
  const index = new Map(others.map((i, k) => [i, k + 1]));
  const moved = <R extends Region>(r: R): R => (bases.has(r.buffer)
    ? { ...r, buffer: 0, offset: bases.get(r.buffer)! + r.offset }
    : { ...r, buffer: index.get(r.buffer)! });
  const step = (s: Step): Step => {
    switch (s.op) {
      case 'writeInput': return { ...s, dst: moved(s.dst) };
      case 'readOutput': return { ...s, src: moved(s.src) };
      case 'copy': return { ...s, src: moved(s.src), dst: moved(s.dst) };
      case 'stateWrite': return { ...s, src: moved(s.src), dst: moved(s.dst) };
      case 'upload': return 'buffer' in s.dst ? { ...s, dst: moved(s.dst) } : s;
      case 'dispatch': return { ...s, bindings: s.bindings.map((b) => ('buffer' in b ? moved(b) : b)) };
    }
  };
  return {
    ...schedule, buffers: [{ role: 'activations', size: total }, ...others.map((i) => schedule.buffers[i]!)],
    init: schedule.init.map(step), run: schedule.run.map(step),
  };
}

/** The pieces of one plan's weights, under the plan's own tensor ids. */
function shardsOf(layout: ShardLayout, plan: string): ShardLayout {
  const prefix = planWeightId(plan, '');
  const pieces = new Map<string, ShardLayout['pieces'] extends Map<string, infer P> ? P : never>();
  for (const [id, list] of layout.pieces) {
    if (id.startsWith(prefix)) pieces.set(id.slice(prefix.length), list.map((p) => ({ ...p, weight: id.slice(prefix.length) })));
  }
  return { shards: layout.shards, pieces };
}

function splitCalls(schedule: ModelSchedule, models: string[], callStarts: number[]): SequenceSchedule {
  const calls = models.map((model, i) => ({ model, run: schedule.run.slice(callStarts[i], callStarts[i + 1] ?? schedule.run.length) as Step[] }));
  return {
    models,
    ...(schedule.loadPlan ? { loadPlan: schedule.loadPlan } : {}),
    buffers: schedule.buffers,
    init: schedule.init,
    calls,
    ...(schedule.liveArenaBytes ? { liveArenaBytes: schedule.liveArenaBytes } : {}),
    plannedPeakBytes: schedule.plannedPeakBytes,
  };
}

/** Shared memory: buffer n of a role is one GPU buffer for every plan, as large as the largest plan needs. */
export function sharedBufferSizes(plans: { buffers: { role: string; size: number }[] }[]): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const plan of plans) {
    const ordinals = new Map<string, number>();
    for (const buffer of plan.buffers) {
      const ordinal = ordinals.get(buffer.role) ?? 0;
      ordinals.set(buffer.role, ordinal + 1);
      const key = `${buffer.role}#${ordinal}`;
      sizes.set(key, Math.max(sizes.get(key) ?? 0, buffer.size));
    }
  }
  return sizes;
}

/** What the runtime allocates for a shared-memory bundle: the shared buffers plus each model's readback buffer. */
export function sharedPeakBytes(plans: { buffers: { role: string; size: number }[] }[], readbacks: number[]): number {
  const shared = sharedBufferSizes(plans);
  return [...shared.values()].reduce((s, n) => s + n, 0) + readbacks.reduce((s, n) => s + n, 0);
}
