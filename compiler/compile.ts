/**
 * The compile driver: ONNX file -> graph IR -> pass pipeline -> bundle contents -> bundle folder.
 */
import type { KeyObject } from 'node:crypto';
import { basename, extname } from 'node:path';
import { importOnnxFile, type FrozenInput } from './frontend/onnx.js';
import { DEFAULT_LIMITS, kernelChoicesFor, type TargetLimits } from './target/limits.js';
import { runPasses, runPassesSync, runPipeline, type PipelineHooks } from './passes/pipeline.js';
import { COMPILE_PIPELINE, type BackendOptions } from './pipeline/backend.js';
import type { LayoutCosts, WeightLayoutMode } from './passes/select-weight-layout.js';
import { assembleBundle } from './bundle/assemble.js';
import type { StreamPath, StreamStats } from './schedule/stream.js';
import { FlashmemError } from './errors.js';
import type { BundleContents } from './bundle/contents.js';
import { writeBundle } from './bundle/write.js';
import { assertOutputReplaceable } from './bundle/output-folder.js';
import { generateRuntime } from './bundle/runtime-gen.js';
import type { DeviceProfile } from '../schemas/profile.js';
import { defaultProfile } from './profile/load.js';
import type { ProfileIdentity } from './schedule/latency-model.js';
import { reportLoadPlanProgress, type LoadPlanProgress } from './schedule/load-plan.js';

export interface CompileOptions {
  /** input name -> shape, fixing symbolic dims */
  inputShapes?: Record<string, number[]>;
  /** inputs frozen to constants (`--input-value`): no longer inputs of the bundle, folded into what depends on them */
  inputValues?: Record<string, FrozenInput>;
  /** input name -> shape for the models that have that input (multi-model compiles) */
  sharedInputShapes?: Record<string, number[]>;
  limits?: TargetLimits;
  /** write the IR after every pass here */
  dumpDir?: string;
  /** defaults to the model file's stem */
  modelName?: string;
  shardBytes?: number;
  /** 'preload' uploads every weight at load; 'stream' streams weights under memoryBudget */
  strategy?: 'preload' | 'stream';
  /** bytes of GPU memory the runtime may allocate (stream strategy) */
  memoryBudget?: number;
  /** weight layouts: 'auto' (default: the device profile's layoutCost decides), or force 'buffer' / 'texture' */
  weightLayout?: WeightLayoutMode;
  /** texture/buffer latency ratios; overrides the profile's layoutCost */
  layoutCost?: LayoutCosts;
  /** how streamed pieces reach their slots (compiler/schedule/stream.ts StreamOptions.streamPath) */
  streamPath?: StreamPath;
  /** device profile for load capacities and upload bandwidth (stream strategy); the shipped default when absent */
  profile?: DeviceProfile;
  /** split-large-weights: no constant weight above this many bytes (default: the binding limit, and a quarter of memoryBudget when streaming) */
  maxWeightBytes?: number;
  /** progress of the phases (a progress bar: compiler/cli/progress.ts) */
  onProgress?: (event: CompileProgress) => void;
  /** sign the bundle with this Ed25519 private key (bundle/sign.ts parsePrivateKey): signature.json is written with the bundle */
  signingKey?: KeyObject;
  /** replace the output folder even when it is not a bundle flashmemc wrote (--force); checked before compiling */
  force?: boolean;
}

/**
 * What compileModel is doing: import, each pass (load planning is the pass plan-loads, and inside
 * it 'load-plan' names the ILP window being solved), then shard bytes written. 'plan' is kept for
 * consumers that still name it; compileModel no longer sends it.
 */
export type CompileProgress =
  | { phase: 'import' }
  | { phase: 'pass'; pass: string; index: number; count: number }
  | ({ phase: 'load-plan' } & LoadPlanProgress)
  | { phase: 'plan' }
  | { phase: 'write'; doneBytes: number; totalBytes: number };

/**
 * Runs `work` (a compile) with the windows of every load plan it solves reported to `onProgress`
 * as 'load-plan' events; the solver sits below the passes, so it reports through a context
 * (reportLoadPlanProgress) rather than through every layer in between.
 */
export function withLoadPlanProgress<T>(onProgress: ((event: CompileProgress) => void) | undefined, work: () => T): T {
  if (!onProgress) return work();
  return reportLoadPlanProgress((progress) => onProgress({ phase: 'load-plan', ...progress }), work);
}

export interface CompileReport {
  modelName: string;
  kernels: number;
  shaders: number;
  weightBytes: number;
  activationBytes: number;
  plannedPeakBytes: number;
  passTimings: { pass: string; ms: number }[];
  totalMs: number;
  strategy: 'preload' | 'stream';
  /** stream strategy: what the load plan decided */
  streaming?: StreamStats & { budgetBytes: number; solverStatus: string; solveMs: number; windows: number; preloadedWeights: number; predictedStallMs: number; profile: ProfileIdentity };
}

/** Import, and the options every pass of the list gets. */
function prepare(modelPath: string, options: CompileOptions) {
  const limits = options.limits ?? DEFAULT_LIMITS;
  options.onProgress?.({ phase: 'import' });
  const graph = importOnnxFile(modelPath, { inputShapes: options.inputShapes, sharedInputShapes: options.sharedInputShapes, inputValues: options.inputValues });
  const modelName = options.modelName ?? basename(modelPath, extname(modelPath));
  const profile = options.profile ?? defaultProfile();
  const passOptions: BackendOptions & PipelineHooks = {
    limits, dumpDir: options.dumpDir, weightLayout: options.weightLayout, strategy: options.strategy,
    layoutCost: options.layoutCost ?? options.profile?.layoutCost,
    maxWeightBytes: options.maxWeightBytes, memoryBudget: options.memoryBudget,
    kernelChoices: kernelChoicesFor(profile),
    modelName, shardBytes: options.shardBytes, profile, streamPath: options.streamPath,
    onPass: options.onProgress && ((pass, index, count) => options.onProgress!({ phase: 'pass', pass, index, count })),
  };
  return { limits, modelName, graph, passOptions };
}

/** Import and the front half of the pass list (PIPELINE): what multi-model and decoder compiles plan from. */
export function optimise(modelPath: string, options: CompileOptions) {
  const { limits, modelName, graph, passOptions } = prepare(modelPath, options);
  const { state, timings } = runPipeline(graph, passOptions);
  return { limits, modelName, state, timings };
}

export function compileToContents(modelPath: string, options: CompileOptions = {}): { contents: BundleContents; report: CompileReport } {
  const start = performance.now();
  const { modelName, graph, passOptions } = prepare(modelPath, options);
  // no streamBudget: plan-loads and rewrite-carriers have nothing to do, every pass stays sync; every
  // weight is resident in a buffer no dispatch writes, so kernels bind weights read-only
  const { state, timings } = runPassesSync(COMPILE_PIPELINE, { graph }, { ...passOptions, readOnlyWeights: true });
  const contents = assembleBundle({ modelName, graph: state.graph, program: state.program!, built: state.built! });
  const report: CompileReport = {
    modelName,
    kernels: state.program!.kernels.length,
    shaders: contents.shaders.size,
    weightBytes: state.plan!.weightBytes + state.plan!.textureBytes,
    activationBytes: state.plan!.activationBytes,
    plannedPeakBytes: contents.schedule.models[0]!.plannedPeakBytes,
    passTimings: timings,
    totalMs: performance.now() - start,
    strategy: 'preload',
  };
  return { contents, report };
}

/** Like compileToContents, with the stream strategy: plan-loads solves the load plan (ILP) under the budget. */
export async function compileStreamingContents(modelPath: string, options: CompileOptions & { memoryBudget: number }): Promise<{ contents: BundleContents; report: CompileReport }> {
  const start = performance.now();
  const { modelName, graph, passOptions } = prepare(modelPath, options);
  const { state, timings } = await withLoadPlanProgress(options.onProgress, () =>
    runPasses(COMPILE_PIPELINE, { graph }, { ...passOptions, streamBudget: options.memoryBudget }));
  const stream = state.stream!;
  const stats = state.built!.stats!;
  const contents = assembleBundle({ modelName, graph: state.graph, program: state.program!, built: state.built! });
  const model = contents.schedule.models[0]!;
  const report: CompileReport = {
    modelName,
    kernels: state.program!.kernels.length,
    shaders: contents.shaders.size,
    weightBytes: contents.models[0]!.weightBytes,
    activationBytes: stream.memory.activationBytes,
    plannedPeakBytes: model.plannedPeakBytes,
    passTimings: timings,
    totalMs: performance.now() - start,
    strategy: 'stream',
    streaming: {
      ...stats, budgetBytes: options.memoryBudget, solverStatus: stream.loadPlan.stats.status, solveMs: stream.loadPlan.stats.solveMs,
      windows: stream.loadPlan.stats.windows, preloadedWeights: stream.loadPlan.weights.filter((w) => w.preload).length,
      predictedStallMs: stream.loadPlan.predictedStallMs, profile: stream.profile,
    },
  };
  return { contents, report };
}

export async function compileModel(modelPath: string, outDir: string, options: CompileOptions = {}): Promise<CompileReport> {
  const start = performance.now();
  // checked before the model is read: a bad argument or an output folder in the way should not cost an import
  const memoryBudget = options.strategy === 'stream' ? requireBudget(options.memoryBudget) : undefined;
  await assertOutputReplaceable(outDir, options);
  const { contents, report } = memoryBudget !== undefined
    ? await compileStreamingContents(modelPath, { ...options, memoryBudget })
    : compileToContents(modelPath, options);
  const onProgress = options.onProgress;
  await writeBundle(outDir, onProgress ? withWriteProgress(contents, onProgress) : contents, { runtime: generateRuntime(), signingKey: options.signingKey, force: options.force, selfCheck: true });
  return { ...report, totalMs: performance.now() - start };
}

/** Reports the shard bytes as the writer pulls them (shards stay lazy: nothing is produced early). */
function withWriteProgress(contents: BundleContents, onProgress: (event: CompileProgress) => void): BundleContents {
  const totalBytes = contents.shards.reduce((s, shard) => s + shard.size, 0);
  let doneBytes = 0;
  onProgress({ phase: 'write', doneBytes, totalBytes });
  const shards = contents.shards.map((shard) => ({
    ...shard,
    *pieces() {
      for (const piece of shard.pieces()) {
        yield piece;
        doneBytes += piece.length;
        onProgress({ phase: 'write', doneBytes, totalBytes });
      }
    },
  }));
  return { ...contents, shards };
}

export function requireBudget(budget: number | undefined): number {
  if (budget === undefined || !Number.isFinite(budget) || budget <= 0) {
    throw new FlashmemError('FM_BAD_ARGUMENT', 'the stream strategy needs a positive --memory-budget (e.g. 64MiB)');
  }
  return budget;
}
