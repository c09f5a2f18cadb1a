/**
 * The load plan as the schedule carries it out, read back from schedule.json alone: for every
 * weight upload of a run, how the bytes reach their slot (a carrier kernel copying them from the
 * staging ring, a ring-to-slot copy between kernels, or a direct upload), which kernel that is, and
 * the kernel that first uses them. The compiler lays carrier bindings out as compiler/lower/carrier.ts
 * describes: the kernel's own bindings, then the staging-ring range, then one destination per
 * piece carried, the pieces packed in the ring at 256-byte boundaries in destination order.
 */
import type { Binding, DispatchStep, ModelSchedule, Region, Step } from '../../../schemas/schedule.js';

/** pieces staged in the ring start at 256-byte boundaries (carrier.ts RING_ALIGN_WORDS) */
const RING_ALIGN = 256;
/** arena placements are 256-byte aligned (schedule/memory-plan.ts PLACEMENT_ALIGN), as liveArenaBytes counts them */
const PLACEMENT_ALIGN = 256;

export type LoadPath = 'carrier' | 'copy' | 'direct';

export interface StreamedLoad {
  /** index of the upload step in the run */
  step: number;
  weight: string;
  bytes: number;
  path: LoadPath;
  /**
   * The kernel (dispatch index in the run) that moves the bytes into place: the carrier itself,
   * or the kernel right after the ring copy or direct upload. Undefined when no kernel follows or
   * the staged bytes are never moved (not a schedule this compiler writes).
   */
  loadKernel?: number;
  /** where the bytes land; undefined for texture uploads and unmoved ring pieces */
  slot?: Region;
  /** the first kernel whose own bindings read the slot */
  firstUse?: number;
}

/** A streamed weight's stay in the arena: from the first kernel loading it to its last use. */
export interface StreamedStay {
  weight: string;
  region: Region;
  fromKernel: number;
  lastUse: number;
}

interface Dispatch {
  step: DispatchStep;
  /** the kernel's own bindings (a carrier's ring and destinations excluded) */
  own: Binding[];
  ring?: { region: Region; pieces: { offset: number; dst: Region }[] };
}

const isRegion = (b: Binding | Region): b is Region => 'buffer' in b;
const alignUp = (n: number, a: number) => Math.ceil(n / a) * a;
const overlaps = (a: Region, b: Region) => a.buffer === b.buffer && a.offset < b.offset + b.size && b.offset < a.offset + a.size;
const contains = (outer: { buffer: number; offset: number; size: number }, inner: Region) =>
  outer.buffer === inner.buffer && inner.offset >= outer.offset && inner.offset + inner.size <= outer.offset + outer.size;
const sameRegion = (a: Region, b: Region) => a.buffer === b.buffer && a.offset === b.offset && a.size === b.size;

function describeDispatch(step: DispatchStep, staging: ReadonlySet<number>): Dispatch {
  const ringAt = step.bindings.findIndex((b) => isRegion(b) && staging.has(b.buffer));
  if (ringAt < 0) return { step, own: step.bindings };
  const region = step.bindings[ringAt] as Region;
  let offset = region.offset;
  const pieces = step.bindings.slice(ringAt + 1).filter(isRegion).map((dst) => {
    const piece = { offset, dst };
    offset += alignUp(dst.size, RING_ALIGN);
    return piece;
  });
  return { step, own: step.bindings.slice(0, ringAt), ring: { region, pieces } };
}

/** For each step of the run, the index of the first dispatch at or after it (the dispatch count past the last). */
function nextKernels(run: readonly Step[]): number[] {
  const next: number[] = [];
  let kernels = 0;
  for (const step of run) {
    next.push(kernels);
    if (step.op === 'dispatch') kernels++;
  }
  return next;
}

/** Where `part`, a range of the ring piece staged at `pieceOffset`, lands when that piece is moved to `dst`. */
function mapped(dst: Region, pieceOffset: number, part: Region): Region {
  return { buffer: dst.buffer, offset: dst.offset + (part.offset - pieceOffset), size: part.size };
}

/** Where a piece uploaded into the staging ring at run index `at` goes: the first carrier or copy after it that reads it. */
function moveOfStagedPiece(run: readonly Step[], dispatches: Map<number, Dispatch>, at: number, part: Region, nextKernel: number[]): Pick<StreamedLoad, 'path' | 'loadKernel' | 'slot'> {
  for (let j = at + 1; j < run.length; j++) {
    const step = run[j]!;
    if (step.op === 'copy' && contains(step.src, part)) return { path: 'copy', loadKernel: nextKernel[j], slot: mapped(step.dst, step.src.offset, part) };
    const ring = dispatches.get(j)?.ring;
    const piece = ring?.pieces.find((p) => contains({ buffer: ring.region.buffer, offset: p.offset, size: p.dst.size }, part));
    if (piece) return { path: 'carrier', loadKernel: nextKernel[j], slot: mapped(piece.dst, piece.offset, part) };
  }
  return { path: 'carrier' };
}

/** The run's dispatches in order (`kernels`), and by run index. */
function runKernels(schedule: ModelSchedule): { kernels: Dispatch[]; byStep: Map<number, Dispatch> } {
  const staging = new Set(schedule.buffers.flatMap((b, i) => (b.role === 'staging' ? [i] : [])));
  const byStep = new Map<number, Dispatch>();
  schedule.run.forEach((step, i) => {
    if (step.op === 'dispatch') byStep.set(i, describeDispatch(step, staging));
  });
  return { kernels: [...byStep.values()], byStep };
}

/** Every weight upload of the schedule's run, with its path, loading kernel and first use. */
export function streamedLoads(schedule: ModelSchedule): StreamedLoad[] {
  const run = schedule.run;
  const staging = new Set(schedule.buffers.flatMap((b, i) => (b.role === 'staging' ? [i] : [])));
  const { kernels, byStep } = runKernels(schedule);
  const nextKernel = nextKernels(run);
  return run.flatMap((step, i): StreamedLoad[] => {
    if (step.op !== 'upload') return [];
    const dst = step.dst;
    const move: Pick<StreamedLoad, 'path' | 'loadKernel' | 'slot'> = !isRegion(dst)
      ? { path: 'direct', loadKernel: nextKernel[i] }
      : staging.has(dst.buffer) ? moveOfStagedPiece(run, byStep, i, dst, nextKernel) : { path: 'direct', loadKernel: nextKernel[i], slot: dst };
    // an upload after the last kernel has no kernel to load it for
    const loadKernel = move.loadKernel !== undefined && move.loadKernel < kernels.length ? move.loadKernel : undefined;
    return [{ step: i, weight: step.weight, bytes: dst.size, ...move, loadKernel, firstUse: firstUse(kernels, move.slot, loadKernel) }];
  });
}

function firstUse(kernels: readonly Dispatch[], slot: Region | undefined, from: number | undefined): number | undefined {
  if (!slot || from === undefined) return undefined;
  for (let k = from; k < kernels.length; k++) {
    if (kernels[k]!.own.some((b) => isRegion(b) && overlaps(b, slot))) return k;
  }
  return undefined;
}

type OpenStay = Omit<StreamedStay, 'lastUse'> & { firstUse: number };

/** The pieces of one weight loaded for one first use (into one buffer) make one stay, over their slots' span. */
function openStays(loads: readonly StreamedLoad[]): OpenStay[] {
  const groups = new Map<string, StreamedLoad[]>();
  for (const load of loads) {
    if (!load.slot || load.loadKernel === undefined || load.firstUse === undefined) continue;
    const key = JSON.stringify([load.weight, load.firstUse, load.slot.buffer]);
    groups.set(key, [...(groups.get(key) ?? []), load]);
  }
  return [...groups.values()].map((pieces) => {
    const start = Math.min(...pieces.map((p) => p.slot!.offset));
    const end = Math.max(...pieces.map((p) => p.slot!.offset + p.slot!.size));
    return {
      weight: pieces[0]!.weight, region: { buffer: pieces[0]!.slot!.buffer, offset: start, size: end - start },
      fromKernel: Math.min(...pieces.map((p) => p.loadKernel!)), firstUse: pieces[0]!.firstUse!,
    };
  });
}

/**
 * Streamed weights' stays in the arena, each to the last kernel binding the whole weight exactly
 * (an activation reusing the bytes later binds other offsets or sizes), and never past the next
 * load into those bytes.
 */
export function streamedStays(schedule: ModelSchedule, loads: readonly StreamedLoad[] = streamedLoads(schedule)): StreamedStay[] {
  const { kernels } = runKernels(schedule);
  const stays = openStays(loads);
  return stays.map(({ firstUse: first, ...stay }) => {
    const reloadedAt = Math.min(kernels.length, ...stays.filter((o) => o.fromKernel > first && overlaps(o.region, stay.region)).map((o) => o.fromKernel));
    let lastUse = first;
    for (let k = first + 1; k < reloadedAt; k++) {
      if (kernels[k]!.own.some((b) => isRegion(b) && sameRegion(b, stay.region))) lastUse = k;
    }
    return { ...stay, lastUse };
  });
}

/** Bytes of streamed weights in the arena during each kernel, placed as the arena places them. */
export function streamedBytesPerKernel(schedule: ModelSchedule, kernels: number): number[] {
  const bytes = new Array<number>(kernels).fill(0);
  for (const stay of streamedStays(schedule)) {
    for (let k = stay.fromKernel; k <= Math.min(stay.lastUse, kernels - 1); k++) bytes[k]! += alignUp(stay.region.size, PLACEMENT_ALIGN);
  }
  return bytes;
}
