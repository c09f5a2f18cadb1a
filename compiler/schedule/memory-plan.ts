/**
 * Places every GPU-resident tensor in a planned arena: weights packed in order of first use,
 * activations (inputs, intermediates, scratch, outputs) placed by lifetime so tensors whose
 * lifetimes do not overlap share bytes. Views share their root's placement.
 */
import { fail, quoteName } from '../errors.js';
import { storageRoot, type KernelProgram, type ProgramTensor } from '../lower/program.js';
import type { TargetLimits } from '../target/limits.js';

/** binding offsets must be multiples of minStorageBufferOffsetAlignment (256 by default) */
export const PLACEMENT_ALIGN = 256;

export interface Placement {
  buffer: number;
  offset: number;
  size: number;
}

export interface PlannedBuffer {
  role: 'weights' | 'activations' | 'staging' | 'state';
  size: number;
}

export interface Lifetime {
  first: number;
  last: number;
}

export interface MemoryPlan {
  buffers: PlannedBuffer[];
  /** by storage-root tensor id */
  placements: Map<string, Placement>;
  /** weight tensor ids in order of first use (buffer weights) */
  weights: string[];
  /** texture weight ids in order of first use: texture i of the schedule; always resident */
  textures: string[];
  /** bytes of every weight texture */
  textureBytes: number;
  lifetimes: Map<string, Lifetime>;
  weightBytes: number;
  activationBytes: number;
}

export const alignUp = (n: number, a = PLACEMENT_ALIGN) => Math.ceil(n / a) * a;

/** First and last kernel index touching each storage root; inputs start at -1, outputs end past the last kernel. */
export function lifetimes(program: KernelProgram): Map<string, Lifetime> {
  const spans = new Map<string, Lifetime>();
  const touch = (id: string, at: number) => {
    const root = storageRoot(program, id).id;
    const span = spans.get(root);
    if (span) {
      span.first = Math.min(span.first, at);
      span.last = Math.max(span.last, at);
    } else spans.set(root, { first: at, last: at });
  };
  if (program.calls) {
    // a joint program: a call's inputs are written after the previous call's kernels were recorded,
    // its outputs read before the next call's; pinning them one kernel wider keeps that safe
    for (const call of program.calls) {
      for (const id of call.inputs) touch(id, call.firstKernel - 1);
      for (const id of call.outputs) touch(id, call.lastKernel + 1);
    }
  } else {
    for (const id of program.inputs) touch(id, -1);
    for (const id of program.outputs) touch(id, program.kernels.length);
  }
  // state outputs are copied into their state buffer after the last kernel
  for (const id of program.state?.outputs.keys() ?? []) touch(id, program.kernels.length);
  program.kernels.forEach((k, i) => k.bindings.forEach((id) => touch(id, i)));
  return spans;
}

/**
 * `streamed` (weight id -> kernel index at which its loading starts) moves those weights out of
 * the resident weight arena into the lifetime arena, live from load start to last use.
 */
export function planMemory(program: KernelProgram, limits: TargetLimits, streamed?: ReadonlyMap<string, number>): MemoryPlan {
  const spans = lifetimes(program);
  const roots = [...spans.keys()].map((id) => program.tensors.get(id)!);
  for (const t of roots) checkBindable(t, limits);
  const isStreamed = (t: ProgramTensor) => t.role === 'weight' && streamed?.has(t.id) === true;
  // textures are not buffer ranges: they get a texture of their own each (and are never streamed)
  const textures = roots.filter((t) => t.texture).sort((a, b) => spans.get(a.id)!.first - spans.get(b.id)!.first);
  for (const [id, loadStart] of streamed ?? []) {
    const span = spans.get(id);
    if (span) span.first = Math.min(span.first, loadStart);
  }
  const stateInputs = program.state?.inputs ?? new Map<string, number>();
  const weights = roots.filter((t) => t.role === 'weight' && !t.texture && !isStreamed(t)).sort((a, b) => spans.get(a.id)!.first - spans.get(b.id)!.first);
  const activations = roots.filter((t) => !t.texture && !stateInputs.has(t.id) && (t.role !== 'weight' || isStreamed(t)));

  const buffers: PlannedBuffer[] = [];
  const placements = new Map<string, Placement>();
  const weightBytes = packSequential(weights, limits, buffers, placements);
  const activationBytes = placeByLifetime(activations, spans, limits, buffers, placements);
  placeState(program, buffers, placements);
  return {
    buffers, placements, weights: weights.map((t) => t.id), lifetimes: spans, weightBytes, activationBytes,
    textures: textures.map((t) => t.id), textureBytes: textures.reduce((s, t) => s + t.bytes, 0),
  };
}

function checkBindable(t: ProgramTensor, limits: TargetLimits): void {
  if (!t.texture && t.bytes > limits.maxStorageBufferBindingSize) {
    fail('FM_LIMIT', `tensor ${quoteName(t.id)} [${t.type.shape}] needs ${t.bytes} bytes, more than the target's maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}`);
  }
}

/** One buffer per decoder state (role 'state', in state order); state inputs are the whole buffer. */
function placeState(program: KernelProgram, buffers: PlannedBuffer[], placements: Map<string, Placement>): void {
  if (!program.state) return;
  const first = buffers.length;
  for (const bytes of program.state.buffers) buffers.push({ role: 'state', size: alignUp(bytes) });
  for (const [id, index] of program.state.inputs) placements.set(id, { buffer: first + index, offset: 0, size: program.tensors.get(id)!.bytes });
}

/** Total bytes of a program's decoder state buffers. */
export function stateBytes(program: KernelProgram): number {
  return (program.state?.buffers ?? []).reduce((s, b) => s + alignUp(b), 0);
}

/** Weights back to back in as few buffers as maxBufferSize allows. */
function packSequential(tensors: ProgramTensor[], limits: TargetLimits, buffers: PlannedBuffer[], placements: Map<string, Placement>): number {
  let current: PlannedBuffer | undefined;
  let total = 0;
  for (const t of tensors) {
    const size = alignUp(Math.max(t.bytes, 4));
    if (!current || current.size + size > limits.maxBufferSize) {
      current = { role: 'weights', size: 0 };
      buffers.push(current);
    }
    placements.set(t.id, { buffer: buffers.length - 1, offset: current.size, size: t.bytes });
    current.size += size;
    total += size;
  }
  return total;
}

/**
 * Greedy by size (largest first, as in TFLite's arena planner): each tensor takes the lowest
 * offset not overlapping any already placed tensor whose lifetime intersects its own.
 */
function placeByLifetime(
  tensors: ProgramTensor[], spans: Map<string, Lifetime>, limits: TargetLimits,
  buffers: PlannedBuffer[], placements: Map<string, Placement>,
): number {
  const order = [...tensors].sort((a, b) => b.bytes - a.bytes || (a.id < b.id ? -1 : 1));
  const placed: { offset: number; end: number; span: Lifetime }[] = [];
  let arenaSize = 0;
  const buffer = buffers.length;
  for (const t of order) {
    const span = spans.get(t.id)!;
    const size = alignUp(Math.max(t.bytes, 4));
    const conflicts = placed
      .filter((p) => p.span.first <= span.last && span.first <= p.span.last)
      .sort((a, b) => a.offset - b.offset);
    let offset = 0;
    for (const c of conflicts) {
      if (offset + size <= c.offset) break;
      offset = Math.max(offset, c.end);
    }
    placed.push({ offset, end: offset + size, span });
    placements.set(t.id, { buffer, offset, size: t.bytes });
    arenaSize = Math.max(arenaSize, offset + size);
  }
  if (arenaSize > limits.maxBufferSize) {
    fail('FM_LIMIT', `activations need an arena of ${arenaSize} bytes, more than the target's maxBufferSize ${limits.maxBufferSize}`);
  }
  if (tensors.length > 0) buffers.push({ role: 'activations', size: arenaSize });
  return arenaSize;
}

/** Bytes live in the activation arena while each kernel runs (activations and streamed weights). */
export function liveArenaBytes(plan: MemoryPlan, kernels: number): number[] {
  const live = new Array<number>(kernels).fill(0);
  for (const [id, placement] of plan.placements) {
    if (plan.buffers[placement.buffer]!.role !== 'activations') continue;
    const span = plan.lifetimes.get(id)!;
    for (let k = Math.max(0, span.first); k <= Math.min(kernels - 1, span.last); k++) live[k]! += alignUp(Math.max(placement.size, 4));
  }
  return live;
}
