/**
 * The streaming schedule (FlashMem): weights the load plan streams live in the lifetime arena
 * only from the kernel that starts loading them to their last use, so GPU memory stays within the
 * budget. Each run uploads their bytes from the shards into a small staging ring, and the kernels
 * the plan chose as carriers copy them from the ring into place inside their own dispatch
 * (compiler/lower/carrier.ts). Bytes a kernel cannot carry (beyond its binding budget or the
 * load capacity the device profile gives it) are staged in the ring too and moved by a copy command recorded before it, so a
 * segment stays one submission; only bytes needed before the first kernel, or pieces larger than
 * the ring, are written straight into their slot.
 */
import { fail } from '../errors.js';
import { rewriteAsCarrier, type CarriedCopy, type CarrierRewrite } from '../lower/carrier.js';
import type { ShaderCode } from '../kernel/types.js';
import { readbackBytes, type KernelProgram, type ProgramKernel } from '../lower/program.js';
import type { TargetLimits } from '../target/limits.js';
import type { DeviceProfile } from '../../schemas/profile.js';
import { kernelCapacityBytes, profileIdentity, type ProfileIdentity } from './latency-model.js';
import type { Region, Step } from '../../schemas/schedule.js';
import { solveLoadPlan, type LoadPlan, type LoadStep, type LoadWeight } from './load-plan.js';
import { alignUp, liveArenaBytes, planMemory, stateBytes, type MemoryPlan } from './memory-plan.js';
import { bindingOf, readOnlyField, regionOf, stateWriteSteps } from './preload.js';
import type { ShardLayout } from './weights.js';
import { pinSharedWeights, type PinnedProgram } from './pin-shared.js';
import { fitToBudget, type FitAttempt } from './fit-budget.js';

export interface StreamOptions {
  budgetBytes: number;
  /**
   * 'carriers' (default): pieces go through the staging ring and are copied by carrier kernels.
   * 'copies': no ring and no carriers; every piece is uploaded straight into its slot before the
   * kernel that needs it. With the runtime's mapped uploads those are copy commands inside the
   * run's one command buffer, and the ring's share of the budget goes to weights.
   */
  streamPath?: StreamPath;
  chunkBytes?: number;
  maxDistance?: number;
  /**
   * The device profile: each kernel's load capacity (its class's latency threshold times its
   * predicted latency, over the measured carry cost per byte) and the upload bandwidth that
   * prices stalls.
   */
  profile: DeviceProfile;
}

export type StreamPath = 'carriers' | 'copies';

export interface StreamPlan {
  /** the program planned: a joint program's weights pinned for the whole sequence are bound once (pin-shared.ts) */
  program: KernelProgram;
  memory: MemoryPlan;
  loadPlan: LoadPlan;
  ringBytes: number;
  budgetBytes: number;
  /** the device profile the plan was made for */
  profile: ProfileIdentity;
}

const RETRIES = 6;
/**
 * The staging ring takes this fraction of the budget: a larger ring stages bigger pieces (fewer
 * direct writes, each of which splits the run's submission), a smaller one leaves more for weights.
 */
const RING_FRACTION = 8;

export async function planStreaming(input: KernelProgram, limits: TargetLimits, options: StreamOptions): Promise<StreamPlan> {
  const inputResident = planMemory(input, limits);
  const { program, pinned } = pinAcrossCalls(input, inputResident, options);
  // binding pinned weights once changes lifetimes: plan the rewritten program again
  const resident = program === input ? inputResident : planMemory(program, limits);
  const chunkBytes = options.chunkBytes ?? defaultChunkBytes(resident.weightBytes);
  const ringBytes = options.streamPath === 'copies' ? 0 : Math.min(16 << 20, Math.max(2 * chunkBytes, alignUp(Math.floor(options.budgetBytes / RING_FRACTION))));
  const steps = loadSteps(program, resident, options.profile);
  const weights: LoadWeight[] = resident.weights.map((id) => {
    const span = resident.lifetimes.get(id)!;
    return { id, bytes: alignUp(program.tensors.get(id)!.bytes), firstUse: span.first, lastUse: span.last };
  });
  const forcePreload = new Set([...weights.filter((w) => w.lastUse >= program.kernels.length).map((w) => w.id), ...pinned]);
  // texture weights are always resident (see passes/select-weight-layout.ts) and never streamed:
  // the load plan sees their bytes as fixed overhead at every step, like the ring
  const overheadBytes = ringBytes + readbackBytes(program) + resident.textureBytes;
  // decoder state buffers (a KV cache) are allocated for the whole session: fixed for the load plan too
  const planOverheadBytes = overheadBytes + stateBytes(program);
  const solve = (budgetBytes: number, maxDistance: number) => solveLoadPlan({
    steps, weights, budgetBytes, overheadBytes: planOverheadBytes, chunkBytes,
    maxDistance, uploadBytesPerMs: options.profile.uploadBytesPerMs, forcePreload,
    ...(options.streamPath === 'copies' && options.profile.copies ? { streamCost: copyCost(options) } : {}),
    windowTimeLimitS: windowTimeLimit(program.kernels.length),
  });
  const arenaPeak = (loadPlan: LoadPlan) => {
    const streamed = new Map(loadPlan.weights.filter((w) => !w.preload).map((w) => [w.id, w.loadStart]));
    const memory = planMemory(program, limits, streamed);
    return { memory, peak: memory.buffers.reduce((s, b) => s + b.size, 0) + overheadBytes };
  };
  // last resort for tight budgets (the second variant): load every weight just in time (the
  // kernel right before its first use), which holds the fewest bytes at once and fragments the arena least
  const fitted = await fitToBudget({
    budgetBytes: options.budgetBytes,
    variants: [...new Set([options.maxDistance ?? 8, 1])],
    retries: RETRIES,
    plan: async (budget, maxDistance) => {
      const loadPlan = await solve(budget, maxDistance);
      const { memory, peak } = arenaPeak(loadPlan);
      return { result: { loadPlan, memory }, peak };
    },
    shrink: (budget, miss, attempt) => shrinkBudget(options.budgetBytes, budget, miss, attempt),
  });
  if ('fitted' in fitted) return { program, ...fitted.fitted, ringBytes, budgetBytes: options.budgetBytes, profile: profileIdentity(options.profile) };
  const { result, peak } = fitted.missed;
  fail('FM_BAD_ARGUMENT', `no streaming plan fits a memory budget of ${options.budgetBytes} bytes: the best plan found needs ${peak} bytes ` +
    `(at least ${result.loadPlan.minFeasibleBudget} bytes are in use at one step); raise --memory-budget`);
}

/**
 * The load plan counts live bytes; the arena also pays for fragmentation. Plans against less than
 * the budget until the arena fits, but never below what the load plan can meet at all (that error
 * would name a budget the user never gave).
 */
function shrinkBudget(budgetBytes: number, budget: number, miss: FitAttempt<{ loadPlan: LoadPlan }>, attempt: number): number | undefined {
  const floor = miss.result.loadPlan.minFeasibleBudget;
  if (budget <= floor) return undefined;
  // fragmentation grows as the plan tightens: overshoot the correction a little more each time
  return Math.max(floor, budget - Math.ceil((miss.peak - budgetBytes) * (1 + attempt / 2)));
}

/** The run-time cost of one streamed copy: the profile's mapped copies on the copies path, else its upload bandwidth. */
function copyCost(options: StreamOptions): { fixedMs: number; bytesPerMs: number } {
  const copies = options.streamPath === 'copies' ? options.profile.copies : undefined;
  return copies ? { fixedMs: copies.overheadMs, bytesPerMs: copies.bytesPerMs } : { fixedMs: 0, bytesPerMs: options.profile.uploadBytesPerMs };
}

/** Joint programs: weights used by several calls stay resident once where the budget allows (pin-shared.ts). */
function pinAcrossCalls(program: KernelProgram, resident: MemoryPlan, options: StreamOptions): PinnedProgram {
  if ((program.calls?.length ?? 0) < 2) return { program, pinned: new Set(), pinnedBytes: 0 };
  const overhead = readbackBytes(program) + resident.textureBytes + stateBytes(program);
  return pinSharedWeights(program, {
    budgetBytes: options.budgetBytes - overhead,
    activationBytes: liveArenaBytes(resident, program.kernels.length),
    lifetimes: resident.lifetimes,
    copyCost: copyCost(options),
  });
}

/**
 * Seconds per ILP window: 1 s up to 2,000 kernels; beyond (joint programs of long call sequences,
 * hundreds of windows) a quarter second, so the plan stays within minutes; a window that runs out
 * keeps its best solution or falls back to greedy.
 */
function windowTimeLimit(kernels: number): number {
  return kernels > 2000 ? 0.25 : 1;
}

/** About 512 chunks over all weights, a power of two between 4 KiB and 1 MiB (and 256-byte aligned). */
function defaultChunkBytes(weightBytes: number): number {
  const target = weightBytes / 512;
  let chunk = 4096;
  while (chunk < target && chunk < 1 << 20) chunk *= 2;
  return chunk;
}

function loadSteps(program: KernelProgram, resident: MemoryPlan, profile: DeviceProfile): LoadStep[] {
  // with every weight resident, the lifetime arena holds exactly the activations
  const live = liveArenaBytes(resident, program.kernels.length);
  return program.kernels.map((k, i) => ({
    capacityBytes: kernelCapacityBytes(profile, program, k),
    activationBytes: live[i]!,
  }));
}

/** One byte range [from, to) of a streamed weight, moved at one step. */
export interface Piece {
  weight: string;
  from: number;
  to: number;
}

/** A dispatch of the stream schedule, before shaders are deduplicated into files. */
export type StreamStep = Exclude<Step, { op: 'dispatch' }> | (Omit<Extract<Step, { op: 'dispatch' }>, 'shader'> & { shader: ShaderCode });

export interface StreamRun {
  run: StreamStep[];
  ringBuffer: number;
  stats: StreamStats;
  /** joint programs: index in `run` where each call's steps start */
  callStarts: number[];
}

/**
 * FlashMem's kernel rewriting, decided before the schedule exists: which pieces each kernel
 * carries through the ring, copies or writes direct, where each ring segment starts and ends, and
 * the carrier shader of every kernel that carries (`flashmemc compile --dump-ir` shows it).
 */
export interface CarrierSchedule {
  /** pieces loaded before the first kernel (written straight into their slots) */
  early: Piece[];
  /** per kernel: what it moves */
  plans: CarrierPlan[];
  /** first kernel of each ring segment -> its last kernel */
  segments: Map<number, number>;
  /** per kernel: its carrier rewrite, when it carries pieces inside its dispatch */
  rewrites: (CarrierRewrite | undefined)[];
}

export function planCarriers(program: KernelProgram, stream: StreamPlan, limits: TargetLimits): CarrierSchedule {
  const carried = piecesByStep(program, stream.loadPlan, stream);
  const plans = program.kernels.map((kernel, k) => carrierPlan(kernel, carried.get(k) ?? [], limits, stream.ringBytes));
  // segments place their pieces' ring offsets, which the rewrites read: segments first
  const segments = new Map<number, number>();
  let segmentEnd = -1;
  plans.forEach((plan, k) => {
    if (k > segmentEnd && plan.ringNeed > 0) {
      segmentEnd = segmentFrom(plans, k, stream.ringBytes);
      segments.set(k, segmentEnd);
    }
  });
  const rewrites = program.kernels.map((kernel, k) => carrierRewrite(kernel, plans[k]!));
  return { early: carried.get(-1) ?? [], plans, segments, rewrites };
}

function carrierRewrite(kernel: ProgramKernel, plan: CarrierPlan): CarrierRewrite | undefined {
  if (plan.ring.length === 0) return undefined;
  const ringStart = plan.ring[0]!.ringOffset;
  const copies: CarriedCopy[] = plan.ring.map((r) => ({ srcWord: (r.ringOffset - ringStart) / 4, words: (r.piece.to - r.piece.from) / 4 }));
  return rewriteAsCarrier(kernel, copies);
}

export function buildStreamRun(
  program: KernelProgram, stream: StreamPlan, shards: ShardLayout, limits: TargetLimits, carriers: CarrierSchedule = planCarriers(program, stream, limits),
): StreamRun {
  const { memory, loadPlan } = stream;
  const ringBuffer = memory.buffers.length;
  const stats: StreamStats = { streamedWeights: 0, streamedBytes: 0, carriedBytes: 0, copiedBytes: 0, directBytes: 0, carrierKernels: 0 };
  for (const w of loadPlan.weights) {
    if (w.preload) continue;
    stats.streamedWeights++;
    stats.streamedBytes += program.tensors.get(w.id)!.bytes;
  }

  const calls = program.calls ?? [{ model: '', firstKernel: 0, lastKernel: program.kernels.length - 1, inputs: program.inputs, outputs: program.outputs }];
  const callStarts: number[] = [];
  const run: StreamStep[] = [];
  const writeInputs = (call: number) => {
    callStarts[call] = run.length;
    run.push(...calls[call]!.inputs.map((id, input) => ({ op: 'writeInput' as const, input, dst: regionOf(program, memory, id) })));
  };
  const readOutputs = (call: number) => run.push(...calls[call]!.outputs.map((id, output) => ({ op: 'readOutput' as const, output, src: regionOf(program, memory, id) })));
  writeInputs(0);
  const direct = (p: Piece) => {
    stats.directBytes += p.to - p.from;
    return uploads(p, shards, regionOf(program, memory, p.weight), 0);
  };
  run.push(...carriers.early.flatMap(direct));

  const { plans, segments, rewrites } = carriers;
  let call = 0;
  program.kernels.forEach((kernel, k) => {
    // a joint program: the next call starts (its first kernel is recorded after its inputs)
    while (k > calls[call]!.lastKernel) {
      readOutputs(call++);
      writeInputs(call);
    }
    const segmentEnd = segments.get(k);
    if (segmentEnd !== undefined) run.push(...ringUploads(plans, k, segmentEnd, shards, ringBuffer));
    run.push(...plans[k]!.direct.flatMap(direct));
    run.push(...plans[k]!.copied.map((c) => copyStep(program, memory, c, ringBuffer, stats)));
    run.push(dispatchStep(program, memory, kernel, plans[k]!, rewrites[k], ringBuffer, stats));
  });
  while (call < calls.length - 1) {
    readOutputs(call++);
    writeInputs(call);
  }
  run.push(...stateWriteSteps(program, memory));
  readOutputs(call);
  const grouped = groupHostWrites(run, callStarts);
  return { run: grouped.run, ringBuffer, stats, callStarts: grouped.callStarts };
}

/**
 * Fewer submissions per run: the runtime submits the commands recorded so far before every host
 * write that follows them (queue.writeBuffer runs before unsubmitted work), so each weight upload
 * after a dispatch splits the run. An upload whose destination no step since the previous split
 * touches can join the writes made at that split instead. Calls of a joint program stay apart:
 * a call's steps run only when the app calls that model.
 */
export function groupHostWrites(run: StreamStep[], callStarts: number[]): { run: StreamStep[]; callStarts: number[] } {
  const out: StreamStep[] = [];
  const starts: number[] = [];
  const bounds = [...callStarts, run.length];
  for (let call = 0; call < callStarts.length; call++) {
    starts.push(out.length);
    out.push(...groupCall(run.slice(bounds[call], bounds[call + 1])));
  }
  return { run: out, callStarts: starts };
}

function groupCall(steps: StreamStep[]): StreamStep[] {
  const out: StreamStep[] = [];
  /** where the writes of the current split go: after the last write that followed GPU commands */
  let splitAt = 0;
  /** regions the GPU commands recorded since that split read or write */
  let touched: Region[] = [];
  let commandsSinceSplit = false;
  for (const step of steps) {
    if (step.op === 'upload' && 'buffer' in step.dst) {
      const dst = step.dst;
      if (!commandsSinceSplit || !touched.some((r) => overlaps(r, dst))) {
        out.splice(splitAt, 0, step);
        splitAt++;
        continue;
      }
    }
    if (step.op === 'upload' || step.op === 'writeInput') {
      // a new split: later writes may join it
      if (commandsSinceSplit) {
        splitAt = out.length;
        touched = [];
        commandsSinceSplit = false;
      }
      out.push(step);
      splitAt = out.length;
      continue;
    }
    out.push(step);
    commandsSinceSplit = true;
    touched.push(...regionsOf(step));
  }
  return out;
}

function regionsOf(step: StreamStep): Region[] {
  switch (step.op) {
    case 'dispatch': return step.bindings.filter((b): b is Region => 'buffer' in b);
    case 'copy': return [step.src, step.dst];
    case 'readOutput': return [step.src];
    case 'stateWrite': return [step.src, step.dst];
    default: return [];
  }
}

function overlaps(a: Region, b: Region): boolean {
  return a.buffer === b.buffer && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
}

export interface StreamStats {
  streamedWeights: number;
  streamedBytes: number;
  /** copied by carrier kernels inside their dispatch */
  carriedBytes: number;
  /** staged in the ring and copied by a copy command between kernels */
  copiedBytes: number;
  /** written straight into their slot (before the first kernel, or larger than the ring) */
  directBytes: number;
  carrierKernels: number;
}

/** Chunks carried per step, as contiguous byte ranges of each weight, in the order the plan loads them. */
function piecesByStep(program: KernelProgram, loadPlan: LoadPlan, stream: StreamPlan): Map<number, Piece[]> {
  const chunk = stream.loadPlan.chunkBytes;
  const byStep = new Map<number, Piece[]>();
  for (const w of loadPlan.weights) {
    if (w.preload) continue;
    const bytes = program.tensors.get(w.id)!.bytes;
    let from = 0;
    for (const c of w.carriers) {
      const to = Math.min(bytes, from + c.chunks * chunk);
      if (to > from) (byStep.get(c.step) ?? byStep.set(c.step, []).get(c.step)!).push({ weight: w.id, from, to });
      from = to;
    }
    if (from < bytes) fail('FM_BAD_ARGUMENT', `internal: load plan leaves bytes of a weight unloaded`);
  }
  return byStep;
}

export interface StagedPiece {
  piece: Piece;
  /** offset in the staging ring (relative to the kernel until segmentFrom places the segment) */
  ringOffset: number;
}

export interface CarrierPlan {
  /** pieces the kernel itself copies from the ring inside its dispatch */
  ring: StagedPiece[];
  /** pieces staged in the ring and moved by a copy command recorded just before the kernel */
  copied: StagedPiece[];
  /** pieces larger than the ring: written straight into their slot (this splits the submission) */
  direct: Piece[];
  ringNeed: number;
}

function carrierPlan(kernel: ProgramKernel, pieces: Piece[], limits: TargetLimits, ringBytes: number): CarrierPlan {
  const free = limits.maxStorageBuffersPerShaderStage - kernel.bindings.length - 1;
  const plan: CarrierPlan = { ring: [], copied: [], direct: [], ringNeed: 0 };
  for (const piece of pieces) {
    const size = alignUp(piece.to - piece.from);
    if (plan.ringNeed + size > ringBytes) {
      plan.direct.push(piece);
      continue;
    }
    const staged = { piece, ringOffset: plan.ringNeed };
    plan.ringNeed += size;
    if (plan.ring.length < free && kernel.costClass !== 'hierarchical') plan.ring.push(staged);
    else plan.copied.push(staged);
  }
  return plan;
}

/** The last kernel whose carried bytes still fit the ring together with those of kernels from..it. */
function segmentFrom(plans: CarrierPlan[], from: number, ringBytes: number): number {
  let used = 0;
  let end = from;
  for (let k = from; k < plans.length; k++) {
    if (used + plans[k]!.ringNeed > ringBytes) break;
    for (const r of [...plans[k]!.ring, ...plans[k]!.copied]) r.ringOffset += used;
    used += plans[k]!.ringNeed;
    end = k;
  }
  return end;
}

function ringUploads(plans: CarrierPlan[], from: number, to: number, shards: ShardLayout, ringBuffer: number): StreamStep[] {
  const steps: StreamStep[] = [];
  for (let k = from; k <= to; k++) {
    for (const { piece, ringOffset } of [...plans[k]!.ring, ...plans[k]!.copied]) {
      steps.push(...uploads(piece, shards, { buffer: ringBuffer, offset: ringOffset, size: 0 }, piece.from));
    }
  }
  return steps;
}

/** Upload steps moving a piece from its shard ranges to `base` (+ offset within the piece). */
function uploads(piece: Piece, shards: ShardLayout, base: Region, baseWeightOffset: number): StreamStep[] {
  const steps: StreamStep[] = [];
  for (const p of shards.pieces.get(piece.weight)!) {
    const lo = Math.max(piece.from, p.weightOffset);
    const hi = Math.min(piece.to, p.weightOffset + p.length);
    if (hi <= lo) continue;
    steps.push({
      op: 'upload', shard: p.shard, shardOffset: p.shardOffset + (lo - p.weightOffset),
      dst: { buffer: base.buffer, offset: base.offset + (lo - baseWeightOffset), size: hi - lo }, weight: piece.weight,
    });
  }
  return steps;
}

function copyStep(program: KernelProgram, memory: MemoryPlan, staged: StagedPiece, ringBuffer: number, stats: StreamStats): StreamStep {
  const { piece, ringOffset } = staged;
  const size = piece.to - piece.from;
  const slot = regionOf(program, memory, piece.weight);
  stats.copiedBytes += size;
  return {
    op: 'copy', weight: piece.weight,
    src: { buffer: ringBuffer, offset: ringOffset, size },
    dst: { buffer: slot.buffer, offset: slot.offset + piece.from, size },
  };
}

function dispatchStep(
  program: KernelProgram, memory: MemoryPlan, kernel: ProgramKernel, plan: CarrierPlan, rewrite: CarrierRewrite | undefined, ringBuffer: number, stats: StreamStats,
): StreamStep {
  const bindings = kernel.bindings.map((id) => bindingOf(program, memory, id));
  // a carrier's ring and destination bindings come after the kernel's own: its read-only indices stay valid
  const base = { op: 'dispatch' as const, ...readOnlyField(kernel), workgroups: kernel.workgroups, label: kernel.label, node: kernel.node };
  if (!rewrite) return { ...base, shader: kernel, bindings };
  const ringStart = plan.ring[0]!.ringOffset;
  const ringEnd = Math.max(...plan.ring.map((r) => r.ringOffset + (r.piece.to - r.piece.from)));
  stats.carrierKernels++;
  for (const r of plan.ring) stats.carriedBytes += r.piece.to - r.piece.from;
  const destinations = plan.ring.map((r) => {
    const slot = regionOf(program, memory, r.piece.weight);
    return { buffer: slot.buffer, offset: slot.offset + r.piece.from, size: r.piece.to - r.piece.from };
  });
  return {
    ...base, label: `${kernel.label}+carry`, shader: rewrite,
    bindings: [...bindings, { buffer: ringBuffer, offset: ringStart, size: ringEnd - ringStart }, ...destinations],
  };
}
