/**
 * Human-readable dumps of the FlashMem passes for --dump-ir: the load plan, the carrier rewrite
 * and the built schedule. Solve times are left out so that two dumps of one plan compare equal.
 */
import type { Step } from '../../schemas/schedule.js';
import type { CarrierPlan, CarrierSchedule, Piece, StreamPlan } from '../schedule/stream.js';
import type { BuiltSchedule } from '../schedule/build.js';

const name = (s: string) => JSON.stringify(s);

export function dumpLoadPlan(stream: StreamPlan): string {
  const { loadPlan, memory, program } = stream;
  const { stats } = loadPlan;
  const preloaded = loadPlan.weights.filter((w) => w.preload).length;
  const lines = [
    `strategy stream, budget ${stream.budgetBytes}B, staging ring ${stream.ringBytes}B, chunk ${loadPlan.chunkBytes}B`,
    `solver ${stats.status}, windows ${stats.windows} (${stats.greedyWindows} greedy), objective ${Math.round(stats.objective * 1000) / 1000}, ` +
      `predicted stall ${loadPlan.predictedStallMs.toFixed(3)} ms, smallest feasible budget ${loadPlan.minFeasibleBudget}B`,
    `profile ${name(stream.profile.name)} on ${stream.profile.device}`,
    ...memory.buffers.map((b, i) => `buffer ${i} ${b.role} ${b.size}B`),
    `weights: ${loadPlan.weights.length} (${preloaded} preloaded, ${loadPlan.weights.length - preloaded} streamed)`,
  ];
  for (const w of loadPlan.weights) {
    const bytes = program.tensors.get(w.id)!.bytes;
    if (w.preload) {
      lines.push(`weight ${name(w.id)} ${bytes}B preload`);
      continue;
    }
    const carriers = w.carriers.map((c) => `${c.step < 0 ? 'start' : `#${c.step}`} x${c.chunks}`).join(', ');
    lines.push(`weight ${name(w.id)} ${bytes}B stream from ${w.loadStart < 0 ? 'start' : `#${w.loadStart}`}: ${carriers}`);
  }
  return `${lines.join('\n')}\n`;
}

const pieceText = (p: Piece) => `${name(p.weight)}[${p.from}, ${p.to})`;

export function dumpCarriers(stream: StreamPlan, carriers: CarrierSchedule): string {
  const { plans, segments, rewrites, early } = carriers;
  const count = (f: (p: CarrierPlan) => number) => plans.reduce((s, p) => s + f(p), 0);
  const lines = [
    `carrier kernels: ${rewrites.filter(Boolean).length}, carried pieces ${count((p) => p.ring.length)}, ` +
      `copied pieces ${count((p) => p.copied.length)}, direct pieces ${count((p) => p.direct.length) + early.length} (${early.length} before the first kernel)`,
    ...[...segments].map(([from, to]) => `ring segment #${from}..#${to}`),
    ...early.map((p) => `start direct ${pieceText(p)}`),
  ];
  plans.forEach((plan, k) => {
    const kernel = stream.program.kernels[k]!;
    const parts = [
      ...(rewrites[k] ? [`carries ${plan.ring.map((r) => `${pieceText(r.piece)} @ring ${r.ringOffset}`).join(', ')}`] : []),
      ...(plan.copied.length > 0 ? [`copies ${plan.copied.map((r) => `${pieceText(r.piece)} @ring ${r.ringOffset}`).join(', ')}`] : []),
      ...(plan.direct.length > 0 ? [`direct ${plan.direct.map(pieceText).join(', ')}`] : []),
    ];
    if (parts.length === 0) return;
    const label = rewrites[k] ? `${kernel.label}+carry` : kernel.label;
    lines.push(`#${k} ${label} (${kernel.costClass}): ${parts.join('; ')}`);
  });
  return `${lines.join('\n')}\n`;
}

function stepText(step: Step): string {
  const { op, ...rest } = step;
  return `${op} ${JSON.stringify(rest)}`;
}

export function dumpSchedule({ schedule, shards, shaders, weights }: BuiltSchedule): string {
  const ops = new Map<string, number>();
  for (const step of schedule.run) ops.set(step.op, (ops.get(step.op) ?? 0) + 1);
  const lines = [
    `model ${name(schedule.model)} strategy ${schedule.strategy}, planned peak ${schedule.plannedPeakBytes}B`,
    ...schedule.buffers.map((b, i) => `buffer ${i} ${b.role} ${b.size}B`),
    `shaders: ${shaders.list.length}, shards: ${shards.shards.length} (${shards.shards.reduce((s, x) => s + x.size, 0)}B), weights: ${weights.length}`,
    `init steps: ${schedule.init.length}`,
    `run steps: ${schedule.run.length} (${[...ops].map(([op, n]) => `${op} ${n}`).join(', ')})`,
    ...schedule.init.map((s, i) => `init ${i} ${stepText(s)}`),
    ...schedule.run.map((s, i) => `run ${i} ${stepText(s)}`),
  ];
  return `${lines.join('\n')}\n`;
}
