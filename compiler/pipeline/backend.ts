/**
 * The FlashMem half of the pass list, after memory planning: plan-loads (the ILP load plan and
 * the arena fitted to the budget), rewrite-carriers (the kernels that carry weight loads become
 * carrier kernels) and build-schedule (the steps the runtime replays, over the shard layout).
 * Under the preload strategy the first two have nothing to do and say so in their dumps, so the
 * list, its numbering and its progress counts are the same for both strategies.
 */
import { PIPELINE, type AsyncPass, type CompileState, type PassOptions } from '../passes/pipeline.js';
import { planCarriers, planStreaming, type CarrierSchedule, type StreamPath, type StreamPlan } from '../schedule/stream.js';
import type { DeviceProfile } from '../../schemas/profile.js';
import { buildPreload, buildStream, type BuiltSchedule } from '../schedule/build.js';
import { dumpCarriers, dumpLoadPlan, dumpSchedule } from './dump.js';

export interface BackendState extends CompileState {
  /** plan-loads (stream strategy) */
  stream?: StreamPlan;
  /** rewrite-carriers (stream strategy) */
  carriers?: CarrierSchedule;
  /** build-schedule */
  built?: BuiltSchedule;
}

export interface BackendOptions extends PassOptions {
  modelName: string;
  shardBytes?: number;
  /** load capacities and upload bandwidth for the load plan */
  profile: DeviceProfile;
  streamPath?: StreamPath;
  /** set by stream compiles: the budget plan-loads solves the load plan for; unset, the schedule preloads every weight */
  streamBudget?: number;
}

type BackendPass = AsyncPass<BackendState, BackendOptions>;

const planLoads: BackendPass = {
  name: 'plan-loads',
  // sync when there is nothing to plan, so that preload compiles stay synchronous
  apply: (state, options) => {
    if (options.streamBudget === undefined) return state;
    return planStreaming(state.program!, options.limits, {
      budgetBytes: options.streamBudget, profile: options.profile, streamPath: options.streamPath,
    }).then((stream) => ({ ...state, stream }));
  },
  dump: (state) => (state.stream ? dumpLoadPlan(state.stream) : 'strategy preload: every weight is resident, uploaded once at load\n'),
};

const rewriteCarriers: BackendPass = {
  name: 'rewrite-carriers',
  apply: (state, options) => (state.stream ? { ...state, carriers: planCarriers(state.program!, state.stream, options.limits) } : state),
  dump: (state) => (state.carriers ? dumpCarriers(state.stream!, state.carriers) : 'strategy preload: no kernel carries weight loads\n'),
};

const buildSchedule: BackendPass = {
  name: 'build-schedule',
  apply: (state, options) => ({
    ...state,
    built: state.stream
      ? buildStream(options.modelName, state.program!, state.stream, state.carriers!, options.limits, options.shardBytes)
      : buildPreload(options.modelName, state.program!, state.plan!, options.shardBytes),
  }),
  dump: (state) => dumpSchedule(state.built!),
};

/** After memory planning: what turns a kernel program into a schedule. */
export const BACKEND_PASSES: readonly BackendPass[] = [planLoads, rewriteCarriers, buildSchedule];

/** The whole ordered list a single-model compile runs (and `--dump-ir` numbers). */
export const COMPILE_PIPELINE: readonly BackendPass[] = [...PIPELINE, ...BACKEND_PASSES];
