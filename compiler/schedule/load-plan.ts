/**
 * The load plan (FlashMem's core decision), solved as an integer linear program with glpk.js:
 * which weights are preloaded, and for every streamed weight which earlier kernels carry how
 * many of its chunks, so that
 *   - every chunk lands before the weight's first use,
 *   - the bytes a kernel carries stay within its load capacity (softly: excess is a stall),
 *   - memory in use at every step (preloaded + in-flight/resident streamed weights + live
 *     activations + fixed overhead) stays within the budget,
 * minimising predicted stall time, preloaded bytes and loading distance (bytes held early).
 * Large graphs are solved in rolling windows of consecutive kernels; a window whose solve times
 * out or fails falls back to a greedy plan.
 */
import { AsyncLocalStorage } from 'node:async_hooks';
import GLPKFactory from 'glpk.js/node';
import { fail } from '../errors.js';

export interface LoadStep {
  /** bytes this kernel can carry without slowing down beyond the profile's threshold */
  capacityBytes: number;
  /** activation bytes live while this kernel runs */
  activationBytes: number;
}

export interface LoadWeight {
  id: string;
  bytes: number;
  /** index of the first and last kernel using it */
  firstUse: number;
  lastUse: number;
}

export interface LoadProblem {
  steps: LoadStep[];
  weights: LoadWeight[];
  budgetBytes: number;
  /** bytes that are always allocated besides weights and activations (staging ring...) */
  overheadBytes: number;
  chunkBytes: number;
  /** longest loading distance in kernels (the paper's rolling horizon) */
  maxDistance: number;
  /** host->GPU streaming bandwidth, to express excess carried bytes as stall time */
  uploadBytesPerMs: number;
  /** kernels per ILP window */
  windowKernels?: number;
  /** time limit per window solve, seconds */
  windowTimeLimitS?: number;
  /** weights that must be preloaded (e.g. used by the first kernel with nothing to carry them) */
  forcePreload?: ReadonlySet<string>;
  /**
   * Run time every streamed weight costs whatever its carriers (the copies path: each weight is
   * a copy command that does not overlap compute): a fixed time per weight plus its bytes at
   * this bandwidth. Priced like stall time, so the plan keeps weights resident where the budget
   * allows instead of streaming them for free.
   */
  streamCost?: { fixedMs: number; bytesPerMs: number };
}

export interface WeightPlan {
  id: string;
  preload: boolean;
  /** kernel index at which the weight's slot is taken (loading starts); -1 = before the first kernel */
  loadStart: number;
  /** chunks carried per kernel index (-1 = uploaded before the first kernel of the run) */
  carriers: { step: number; chunks: number }[];
}

export interface SolveStats {
  status: 'optimal' | 'feasible' | 'greedy' | 'trivial';
  windows: number;
  greedyWindows: number;
  objective: number;
  /** worst relative MIP gap reported over windows (0 when optimal) */
  gap: number;
  solveMs: number;
}

export interface LoadPlan {
  weights: WeightPlan[];
  chunkBytes: number;
  stats: SolveStats;
  /** predicted stall: bytes carried beyond capacity, in ms at uploadBytesPerMs */
  predictedStallMs: number;
  /** the smallest budget for which streaming everything at distance 1 fits */
  minFeasibleBudget: number;
}

/** Which window a load plan solve is at: `window` (from 1) of `windows`, in the `solve`-th solve since reporting began. */
export interface LoadPlanProgress {
  window: number;
  windows: number;
  /** fitting the arena to the budget solves the plan again (compiler/schedule/fit-budget.ts): 1, 2, ... */
  solve: number;
}

interface ProgressListener {
  report: (progress: LoadPlanProgress) => void;
  solves: number;
}

/**
 * The listener of the solves running inside reportLoadPlanProgress. A context rather than a
 * LoadProblem field: the compile driver that shows progress is several layers above the solver
 * (plan-loads pass, planStreaming, fitToBudget), and none of those layers needs to know about it;
 * AsyncLocalStorage follows the awaits between them and keeps concurrent compiles apart.
 */
const progressListener = new AsyncLocalStorage<ProgressListener>();

/** Runs `work`; every load plan solved inside it reports each window it starts to `report`. */
export function reportLoadPlanProgress<T>(report: (progress: LoadPlanProgress) => void, work: () => T): T {
  return progressListener.run({ report, solves: 0 }, work);
}

/** Windows the solve loop below will solve: one per window of kernels in which some weight is first used. */
function windowCount(weights: readonly LoadWeight[], windowSize: number): number {
  return new Set(weights.filter((w) => w.firstUse >= 0).map((w) => Math.floor(w.firstUse / windowSize))).size;
}

/** Objective weights: stall time dominates, then preloaded MiB, then MiB-steps held early. */
const COST_STALL_PER_MS = 1000;
const COST_PRELOAD_PER_MIB = 10;
const COST_EARLY_PER_MIB_STEP = 0.01;
/** the virtual step before the first kernel: uploads there delay the whole run */
const RUN_START = -1;

/**
 * Weight bytes that must be held at each step (index k + 1, so RUN_START is index 0) however the
 * weights are loaded: each from the step before its first use (loading for the next kernel) to its
 * last use, or over the whole run where `wholeRun` says so.
 */
export function minimumHeldBytes(weights: readonly Pick<LoadWeight, 'bytes' | 'firstUse' | 'lastUse'>[], steps: number, wholeRun?: (index: number) => boolean): number[] {
  const delta = new Array<number>(steps + 2).fill(0);
  weights.forEach((w, i) => {
    const whole = wholeRun?.(i) === true;
    delta[whole ? 0 : Math.max(0, w.firstUse)]! += w.bytes;
    delta[whole ? steps + 1 : Math.min(steps, w.lastUse + 1) + 1]! -= w.bytes;
  });
  const held = new Array<number>(steps + 1);
  let running = 0;
  for (let i = 0; i <= steps; i++) held[i] = running += delta[i]!;
  return held;
}

export function minFeasibleBudget(p: LoadProblem): number {
  const held = minimumHeldBytes(p.weights, p.steps.length, (i) => p.forcePreload?.has(p.weights[i]!.id) === true);
  let worst = 0;
  for (let k = RUN_START; k < p.steps.length; k++) {
    worst = Math.max(worst, p.overheadBytes + (p.steps[k]?.activationBytes ?? 0) + held[k + 1]!);
  }
  return worst;
}

export async function solveLoadPlan(p: LoadProblem): Promise<LoadPlan> {
  const start = performance.now();
  const minBudget = minFeasibleBudget(p);
  if (p.budgetBytes < minBudget) {
    fail('FM_BAD_ARGUMENT', `a memory budget of ${p.budgetBytes} bytes is below the smallest feasible budget for this model, ${minBudget} bytes (${(minBudget / 1048576).toFixed(2)} MiB): weights in use plus live activations need that much at one step`);
  }
  const glpk = await GLPKFactory();
  const windowSize = p.windowKernels ?? 48;
  const state = new PlanState(p);
  const stats: SolveStats = { status: 'trivial', windows: 0, greedyWindows: 0, objective: 0, gap: 0, solveMs: 0 };
  const order = [...p.weights].sort((a, b) => a.firstUse - b.firstUse || (a.id < b.id ? -1 : 1));
  const listener = progressListener.getStore();
  const solve = listener ? ++listener.solves : 0;
  const windows = windowCount(p.weights, windowSize);
  for (let from = 0; from < p.steps.length || order.some((w) => !state.decided.has(w.id)); from += windowSize) {
    const batch = order.filter((w) => w.firstUse >= from && w.firstUse < from + windowSize && !state.decided.has(w.id));
    if (batch.length === 0) {
      if (from >= p.steps.length) break;
      continue;
    }
    stats.windows++;
    listener?.report({ window: stats.windows, windows, solve });
    const solved = solveWindow(glpk, p, state, batch);
    if (solved) {
      stats.status = stats.status === 'greedy' ? 'greedy' : solved.optimal && stats.status !== 'feasible' ? 'optimal' : 'feasible';
      stats.objective += solved.objective;
      stats.gap = Math.max(stats.gap, solved.gap);
    } else {
      stats.greedyWindows++;
      stats.status = 'greedy';
      greedyWindow(p, state, batch);
    }
  }
  stats.solveMs = performance.now() - start;
  const weights = p.weights.map((w) => state.decided.get(w.id)!);
  return { weights, chunkBytes: p.chunkBytes, stats, predictedStallMs: state.stallBytes() / p.uploadBytesPerMs, minFeasibleBudget: minBudget };
}

/** Capacity and memory already committed by earlier windows. */
class PlanState {
  readonly decided = new Map<string, WeightPlan>();
  /** carried bytes per step (index k+1 for step k, so RUN_START is index 0) */
  readonly carried: number[];
  /** weight bytes held per step (index k+1) */
  readonly held: number[];
  constructor(private readonly p: LoadProblem) {
    this.carried = new Array(p.steps.length + 1).fill(0);
    this.held = new Array(p.steps.length + 1).fill(0);
  }
  capacity(k: number): number {
    return k === RUN_START ? 0 : this.p.steps[k]!.capacityBytes;
  }
  memoryLeft(k: number): number {
    return this.p.budgetBytes - this.p.overheadBytes - (this.p.steps[k]?.activationBytes ?? 0) - this.held[k + 1]!;
  }
  /**
   * Memory a weight preloaded now may take, the least over all steps: what is left once every
   * weight not yet decided has its minimum (in use, or loading for the next kernel). Without
   * this reserve an early window could preload the memory a later window's weights need.
   */
  preloadRoom(undecided: readonly LoadWeight[]): number {
    const reserved = minimumHeldBytes(undecided, this.p.steps.length);
    let room = Infinity;
    for (let i = 0; i <= this.p.steps.length; i++) room = Math.min(room, this.memoryLeft(i - 1) - reserved[i]!);
    return room;
  }
  commit(w: LoadWeight, plan: WeightPlan): void {
    this.decided.set(w.id, plan);
    const from = plan.preload ? RUN_START : plan.loadStart;
    const to = plan.preload ? this.p.steps.length - 1 : w.lastUse;
    for (let k = from; k <= to; k++) this.held[k + 1]! += w.bytes;
    for (const c of plan.carriers) this.carried[c.step + 1]! += c.chunks * this.p.chunkBytes;
  }
  stallBytes(): number {
    let s = 0;
    for (let k = RUN_START; k < this.p.steps.length; k++) s += Math.max(0, this.carried[k + 1]! - this.capacity(k));
    return s;
  }
}

/** the run time streaming `w` costs beyond carrier capacity (LoadProblem.streamCost) */
const streamCostMs = (p: LoadProblem, w: LoadWeight) => (p.streamCost ? p.streamCost.fixedMs + w.bytes / p.streamCost.bytesPerMs : 0);

const chunksOf = (p: LoadProblem, w: LoadWeight) => Math.max(1, Math.ceil(w.bytes / p.chunkBytes));
const carrierRange = (p: LoadProblem, w: LoadWeight) => {
  const first = Math.max(RUN_START, w.firstUse - p.maxDistance);
  return Array.from({ length: w.firstUse - first }, (_, i) => first + i);
};

type Glpk = Awaited<ReturnType<typeof GLPKFactory>>;

function solveWindow(glpk: Glpk, p: LoadProblem, state: PlanState, batch: LoadWeight[]): { objective: number; optimal: boolean; gap: number } | undefined {
  const v = (kind: string, w: number, k?: number) => (k === undefined ? `${kind}_${w}` : `${kind}_${w}_${k + 1}`);
  const objective: { name: string; coef: number }[] = [];
  const subjectTo: { name: string; vars: { name: string; coef: number }[]; bnds: { type: number; lb: number; ub: number } }[] = [];
  const bounds: { name: string; type: number; lb: number; ub: number }[] = [];
  const binaries: string[] = [];
  const generals: string[] = [];
  const mib = 1 / 1048576;
  const stepsTouched = new Set<number>();

  batch.forEach((w, wi) => {
    const n = chunksOf(p, w);
    const forced = p.forcePreload?.has(w.id);
    binaries.push(v('p', wi));
    objective.push({ name: v('p', wi), coef: COST_PRELOAD_PER_MIB * w.bytes * mib - COST_STALL_PER_MS * streamCostMs(p, w) });
    if (forced) bounds.push({ name: v('p', wi), type: glpk.GLP_FX, lb: 1, ub: 1 });
    const ks = carrierRange(p, w);
    const complete = [{ name: v('p', wi), coef: n }];
    ks.forEach((k, i) => {
      stepsTouched.add(k);
      generals.push(v('x', wi, k));
      binaries.push(v('y', wi, k));
      bounds.push({ name: v('x', wi, k), type: glpk.GLP_DB, lb: 0, ub: n });
      complete.push({ name: v('x', wi, k), coef: 1 });
      objective.push({ name: v('y', wi, k), coef: COST_EARLY_PER_MIB_STEP * w.bytes * mib });
      subjectTo.push({ name: `slot_${wi}_${k + 1}`, vars: [{ name: v('x', wi, k), coef: 1 }, { name: v('y', wi, k), coef: -n }], bnds: { type: glpk.GLP_UP, lb: 0, ub: 0 } });
      if (i > 0) subjectTo.push({ name: `mono_${wi}_${k + 1}`, vars: [{ name: v('y', wi, ks[i - 1]!), coef: 1 }, { name: v('y', wi, k), coef: -1 }], bnds: { type: glpk.GLP_UP, lb: 0, ub: 0 } });
    });
    subjectTo.push({ name: `complete_${wi}`, vars: complete, bnds: { type: glpk.GLP_FX, lb: n, ub: n } });
    for (let k = w.firstUse; k <= w.lastUse; k++) stepsTouched.add(k);
  });

  for (const k of [...stepsTouched].sort((a, b) => a - b)) {
    // capacity, with slack that costs stall time
    const carriedVars = batch.flatMap((w, wi) => (carrierRange(p, w).includes(k) ? [{ name: v('x', wi, k), coef: p.chunkBytes * mib }] : []));
    if (carriedVars.length > 0) {
      const slack = `s_${k + 1}`;
      bounds.push({ name: slack, type: glpk.GLP_LO, lb: 0, ub: 0 });
      objective.push({ name: slack, coef: COST_STALL_PER_MS / (p.uploadBytesPerMs * mib) });
      const residual = Math.max(0, state.capacity(k) - state.carried[k + 1]!) * mib;
      subjectTo.push({ name: `cap_${k + 1}`, vars: [...carriedVars, { name: slack, coef: -1 }], bnds: { type: glpk.GLP_UP, lb: 0, ub: residual } });
    }
    // memory: preloaded weights are held at every step; streamed ones from load start to last use
    const mem: { name: string; coef: number }[] = [];
    let constant = 0;
    batch.forEach((w, wi) => {
      const size = w.bytes * mib;
      if (k >= w.firstUse && k <= w.lastUse) {
        constant += size; // resident while in use, preloaded or streamed
        return;
      }
      mem.push({ name: v('p', wi), coef: size });
      if (carrierRange(p, w).includes(k)) mem.push({ name: v('y', wi, k), coef: size });
    });
    const left = state.memoryLeft(k) * mib - constant;
    subjectTo.push({ name: `mem_${k + 1}`, vars: mem, bnds: { type: glpk.GLP_UP, lb: 0, ub: left } });
  }
  // preloaded weights also occupy steps this window does not otherwise touch, including the
  // steps where later windows' weights must fit
  const inBatch = new Set(batch.map((w) => w.id));
  const undecided = p.weights.filter((w) => !inBatch.has(w.id) && !state.decided.has(w.id));
  const globalLeft = state.preloadRoom(undecided) * mib;
  subjectTo.push({ name: 'mem_preloaded', vars: batch.map((w, wi) => ({ name: v('p', wi), coef: w.bytes * mib })), bnds: { type: glpk.GLP_UP, lb: 0, ub: Math.max(0, globalLeft) } });

  const lp = {
    name: 'flashmem-load-plan',
    objective: { direction: glpk.GLP_MIN, name: 'cost', vars: objective },
    subjectTo, bounds, binaries, generals,
  };
  const result = glpk.solve(lp, { msglev: glpk.GLP_MSG_OFF, tmlim: p.windowTimeLimitS ?? 1, mipgap: 0.02 });
  const status = result.result.status;
  if (status !== glpk.GLP_OPT && status !== glpk.GLP_FEAS) return undefined;
  const vars = result.result.vars;
  batch.forEach((w, wi) => {
    const preload = Math.round(vars[v('p', wi)] ?? 0) === 1;
    const carriers = preload ? [] : carrierRange(p, w).map((k) => ({ step: k, chunks: Math.round(vars[v('x', wi, k)] ?? 0) })).filter((c) => c.chunks > 0);
    state.commit(w, { id: w.id, preload, loadStart: preload ? RUN_START : carriers[0]?.step ?? w.firstUse - 1, carriers });
  });
  return { objective: result.result.z, optimal: status === glpk.GLP_OPT, gap: status === glpk.GLP_OPT ? 0 : 0.02 };
}

/**
 * Greedy fallback: stream each weight through the latest kernels before its first use that
 * still have capacity, as late as possible (least memory held early); excess goes to the
 * kernel right before first use (a stall). Preload only what no step can hold while streaming.
 */
function greedyWindow(p: LoadProblem, state: PlanState, batch: LoadWeight[]): void {
  for (const w of batch) {
    if (p.forcePreload?.has(w.id)) {
      state.commit(w, { id: w.id, preload: true, loadStart: RUN_START, carriers: [] });
      continue;
    }
    let remaining = chunksOf(p, w);
    const carriers: { step: number; chunks: number }[] = [];
    const ks = carrierRange(p, w).reverse();
    for (const k of ks) {
      if (remaining === 0) break;
      if (state.memoryLeft(k) < w.bytes) break;
      const free = Math.floor(Math.max(0, state.capacity(k) - state.carried[k + 1]!) / p.chunkBytes);
      const take = Math.min(free, remaining);
      if (take > 0) {
        carriers.unshift({ step: k, chunks: take });
        remaining -= take;
      }
    }
    if (remaining > 0) {
      const last = w.firstUse - 1;
      const existing = carriers.find((c) => c.step === last);
      if (existing) existing.chunks += remaining;
      else carriers.push({ step: last, chunks: remaining });
    }
    carriers.sort((a, b) => a.step - b.step);
    state.commit(w, { id: w.id, preload: false, loadStart: carriers[0]!.step, carriers });
  }
}
