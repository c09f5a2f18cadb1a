/**
 * Weights shared across the calls of a joint program (issue 5). jointProgram gives every call its
 * own copy of each weight id, so the load plan sees model b's weights once per call of b and
 * streams them again on every call. A weight used by several calls can instead stay resident for
 * the whole sequence: one tensor bound by all those calls, preloaded once. That trades budget for
 * run time, so the weights worth most per byte (used by the most calls; small ones, where a copy's
 * fixed cost dominates) are pinned first, and only while every step still has room for what the
 * rest needs at that step (weights in use or loading for the next kernel, live activations) plus
 * a share of the budget kept free for streaming ahead.
 */
import type { KernelProgram, ProgramTensor } from '../lower/program.js';
import type { ConstTensor } from '../ir/types.js';
import { minimumHeldBytes } from './load-plan.js';

export interface PinOptions {
  /** bytes the plan may hold at any step besides fixed overhead */
  budgetBytes: number;
  /** activation bytes live at each kernel (with every weight resident) */
  activationBytes: readonly number[];
  /** first and last kernel using each weight id */
  lifetimes: ReadonlyMap<string, { first: number; last: number }>;
  /** run time one streamed copy of a weight costs: fixed part and bandwidth (bytes per ms) */
  copyCost: { fixedMs: number; bytesPerMs: number };
}

export interface PinnedProgram {
  program: KernelProgram;
  /** the tensor ids now bound by every call that used the weight: to be preloaded */
  pinned: Set<string>;
  pinnedBytes: number;
}

/** Share of the budget never given to pinned weights: room to stream ahead of first use. */
const STREAM_HEADROOM = 0.15;

export function pinSharedWeights(program: KernelProgram, options: PinOptions): PinnedProgram {
  const groups = sharedWeightGroups(program);
  if (groups.length === 0) return { program, pinned: new Set(), pinnedBytes: 0 };
  const steps = program.kernels.length;
  // need[k + 1]: bytes step k needs with nothing pinned (index 0 is the step before the first kernel)
  const streamable = [...program.tensors.values()].filter((t) => isStreamable(t) && options.lifetimes.has(t.id))
    .map((t) => ({ bytes: t.bytes, firstUse: options.lifetimes.get(t.id)!.first, lastUse: options.lifetimes.get(t.id)!.last }));
  const need = minimumHeldBytes(streamable, steps).map((held, i) => held + (i > 0 ? options.activationBytes[i - 1] ?? 0 : 0));
  const addMandatory = (id: string, bytes: number, sign: 1 | -1) => {
    const span = options.lifetimes.get(id);
    if (!span) return;
    for (let k = Math.max(-1, span.first - 1); k <= span.last && k < steps; k++) need[k + 1]! += sign * bytes;
  };

  const limit = options.budgetBytes * (1 - STREAM_HEADROOM);
  const { fixedMs, bytesPerMs } = options.copyCost;
  const savedMsPerByte = (g: WeightGroup) => (g.ids.length * (fixedMs + g.bytes / bytesPerMs)) / g.bytes;
  const ranked = [...groups].sort((a, b) => savedMsPerByte(b) - savedMsPerByte(a) || a.ids[0]!.localeCompare(b.ids[0]!));
  let pinnedBytes = 0;
  const chosen: WeightGroup[] = [];
  for (const g of ranked) {
    for (const id of g.ids) addMandatory(id, g.bytes, -1);
    const fits = need.every((n) => n + pinnedBytes + g.bytes <= limit);
    if (fits) {
      pinnedBytes += g.bytes;
      chosen.push(g);
    } else {
      for (const id of g.ids) addMandatory(id, g.bytes, 1);
    }
  }
  return { program: bindOneCopy(program, chosen), pinned: new Set(chosen.map((g) => g.ids[0]!)), pinnedBytes };
}

interface WeightGroup {
  /** the per-call ids of one weight, in call order; the first one stays */
  ids: string[];
  bytes: number;
}

function isStreamable(t: ProgramTensor): boolean {
  return t.role === 'weight' && t.data !== undefined && t.texture === undefined && t.aliasOf === undefined;
}

/** Weight ids holding the same data object (jointProgram keeps it per call): used by 2+ calls. */
function sharedWeightGroups(program: KernelProgram): WeightGroup[] {
  const byData = new Map<ConstTensor, WeightGroup>();
  for (const t of program.tensors.values()) {
    if (!isStreamable(t)) continue;
    const group = byData.get(t.data!);
    if (group) group.ids.push(t.id);
    else byData.set(t.data!, { ids: [t.id], bytes: t.bytes });
  }
  return [...byData.values()].filter((g) => g.ids.length > 1);
}

/** The program with every chosen group's copies replaced by its first id. */
function bindOneCopy(program: KernelProgram, groups: readonly WeightGroup[]): KernelProgram {
  if (groups.length === 0) return program;
  const canonical = new Map<string, string>();
  for (const g of groups) for (const id of g.ids.slice(1)) canonical.set(id, g.ids[0]!);
  const map = (id: string) => canonical.get(id) ?? id;
  const tensors = new Map<string, ProgramTensor>();
  for (const t of program.tensors.values()) {
    if (canonical.has(t.id)) continue;
    tensors.set(t.id, t.aliasOf ? { ...t, aliasOf: map(t.aliasOf) } : t);
  }
  return {
    ...program,
    tensors,
    kernels: program.kernels.map((k) => ({ ...k, bindings: k.bindings.map(map) })),
    inputs: program.inputs.map(map),
    outputs: program.outputs.map(map),
    ...(program.calls ? { calls: program.calls.map((c) => ({ ...c, inputs: c.inputs.map(map), outputs: c.outputs.map(map) })) } : {}),
  };
}
