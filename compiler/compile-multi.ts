/**
 * The compile driver for multi-model bundles: several ONNX files -> one bundle whose models run
 * one after another in shared GPU memory under one budget, optionally with a declared call
 * sequence planned jointly (compiler/schedule/sequence.ts).
 */
import { fail, FlashmemError, quoteName, rethrowIn } from './errors.js';
import { optimise, requireBudget, type CompileOptions } from './compile.js';
import { assembleMultiBundle, type PlannedModel, type PlannedSequence } from './bundle/assemble-multi.js';
import { readbackBytes, type KernelProgram } from './lower/program.js';
import type { Graph } from './ir/types.js';
import { planStreaming } from './schedule/stream.js';
import { fitToBudget } from './schedule/fit-budget.js';
import { planMemory } from './schedule/memory-plan.js';
import { jointProgram } from './schedule/sequence.js';
import { defaultProfile } from './profile/load.js';
import { writeBundle } from './bundle/write.js';
import { assertOutputReplaceable } from './bundle/output-folder.js';
import { generateRuntime } from './bundle/runtime-gen.js';
import type { BundleContents } from './bundle/contents.js';

export interface ModelInput {
  path: string;
  name: string;
  /** input name -> shape for this model */
  inputShapes?: Record<string, number[]>;
  /**
   * input name -> shape for this model if it has that input (an unqualified --input-shape applies
   * to every model with that input); each name must be an input of at least one model
   */
  sharedInputShapes?: Record<string, number[]>;
}

export interface MultiCompileOptions extends Omit<CompileOptions, 'modelName' | 'inputShapes' | 'dumpDir'> {
  /** a declared call order (model names), planned as one joint program; needs the stream strategy */
  sequence?: string[];
  /** adjusts each model's kernel program before planning (compile-decoder.ts marks decoder state) */
  prepare?: (model: string, program: KernelProgram, graph: Graph) => void;
}

export interface MultiCompileReport {
  models: { name: string; kernels: number; weightBytes: number; plannedPeakBytes: number }[];
  strategy: 'preload' | 'stream';
  budgetBytes?: number;
  sequence?: { models: string[]; kernels: number; plannedPeakBytes: number; streamedBytes: number; solveMs: number; solver: string };
  /** what the runtime allocates: shared buffers plus every model's readback buffer */
  plannedPeakBytes: number;
  shaders: number;
  shardBytes: number;
  totalMs: number;
}

/**
 * A plan made with its share of the shared budget: its budget errors name the budget the user
 * gave too, since the share (less the other models' readback buffers) is a number they never wrote.
 */
async function inSharedBudget<T>(what: string, sharedBudget: number, share: number, plan: () => Promise<T>): Promise<T> {
  try {
    return await plan();
  } catch (e) {
    if (!(e instanceof FlashmemError) || e.code !== 'FM_BAD_ARGUMENT') throw e;
    rethrowIn(`${what} does not fit the memory budget of ${sharedBudget} bytes, which leaves it ${share} bytes once the other models' output readback buffers are set aside`, e);
  }
}

/** plans may need this many rounds to fit their shared allocation under the budget */
const SHARED_RETRIES = 4;

export async function compileMultiContents(inputs: ModelInput[], options: MultiCompileOptions = {}): Promise<{ contents: BundleContents; report: MultiCompileReport }> {
  const start = performance.now();
  checkNames(inputs);
  const strategy = options.strategy ?? (options.memoryBudget === undefined ? 'preload' : 'stream');
  if (options.sequence && strategy !== 'stream') fail('FM_BAD_ARGUMENT', '--sequence plans streaming across models: give a --memory-budget (stream strategy)');
  // textures are resident per model and cannot alias between models: multi-model bundles keep weights in buffers
  const optimised = inputs.map((input) => {
    try {
      return { input, ...optimise(input.path, { ...options, strategy, weightLayout: 'buffer', modelName: input.name, inputShapes: input.inputShapes, sharedInputShapes: input.sharedInputShapes }) };
    } catch (e) {
      rethrowIn(`model ${quoteName(input.name)} (${input.path})`, e);
    }
  });
  checkSharedShapesUsed(optimised.map((o) => ({ ...o.input, graph: o.state.graph })));
  const limits = optimised[0]!.limits;
  for (const o of optimised) options.prepare?.(o.input.name, o.state.program!, o.state.graph);
  const programs = new Map(optimised.map((o) => [o.input.name, o.state.program!]));
  const readbacks = optimised.map((o) => readbackBytes(o.state.program!));
  const joint = options.sequence ? jointProgram(options.sequence, programs) : undefined;

  let models: PlannedModel[];
  let sequence: PlannedSequence | undefined;
  let assembled: ReturnType<typeof assembleMultiBundle>;
  if (strategy === 'preload') {
    // planned again: prepare() may have changed the programs (decoder state)
    models = optimised.map((o) => ({ name: o.input.name, graph: o.state.graph, program: o.state.program!, strategy: 'preload', plan: planMemory(o.state.program!, limits) }));
    assembled = assembleMultiBundle(models, undefined, limits, options.shardBytes);
  } else {
    const budget = requireBudget(options.memoryBudget);
    const profile = options.profile ?? defaultProfile();
    // every plan gets the budget less the other models' readback buffers; a shared allocation over
    // the budget (plans' buffers are as large as the largest plan's) shrinks every plan and retries
    const allReadbacks = readbacks.reduce((s, n) => s + n, 0);
    if (budget <= allReadbacks) {
      fail('FM_BAD_ARGUMENT', `a memory budget of ${budget} bytes does not even hold the models' output readback buffers (${allReadbacks} bytes); raise --memory-budget`);
    }
    const planAll = async (planBudget: number) => {
      const perModel = readbacks.map((readback) => planBudget + readback);
      const planned: PlannedModel[] = [];
      for (const [i, o] of optimised.entries()) {
        const stream = await inSharedBudget(`model ${quoteName(o.input.name)}`, budget, perModel[i]!, () =>
          planStreaming(o.state.program!, limits, { budgetBytes: perModel[i]!, profile, streamPath: options.streamPath }));
        planned.push({ name: o.input.name, graph: o.state.graph, program: o.state.program!, strategy: 'stream', stream });
      }
      const jointShare = joint ? planBudget + readbackBytes(joint) : 0;
      const jointStream = joint && await inSharedBudget('the joint plan of --sequence', budget, jointShare, () =>
        planStreaming(joint, limits, { budgetBytes: jointShare, profile, streamPath: options.streamPath }));
      // the planned program binds weights pinned across calls once
      const plannedSequence: PlannedSequence | undefined = jointStream ? { models: options.sequence!, program: jointStream.program, stream: jointStream } : undefined;
      const bundle = assembleMultiBundle(planned, plannedSequence, limits, options.shardBytes);
      return { result: { models: planned, sequence: plannedSequence, assembled: bundle }, peak: bundle.contents.schedule.plannedPeakBytes! };
    };
    const fitted = await fitToBudget({
      budgetBytes: budget, startBytes: budget - allReadbacks, variants: [undefined], retries: SHARED_RETRIES,
      plan: (planBudget) => planAll(planBudget),
      shrink: (planBudget, miss) => planBudget - (miss.peak - budget),
    });
    if ('missed' in fitted) {
      fail('FM_BAD_ARGUMENT', `the models' plans share GPU buffers of ${fitted.missed.peak} bytes in all, over the memory budget of ${budget} bytes: raise --memory-budget`);
    }
    ({ models, sequence, assembled } = fitted.fitted);
  }
  const { contents, stats } = assembled!;
  const report: MultiCompileReport = {
    models: contents.models.map((m, i) => ({
      name: m.name, kernels: optimised[i]!.state.program!.kernels.length, weightBytes: m.weightBytes, plannedPeakBytes: contents.schedule.models[i]!.plannedPeakBytes,
    })),
    strategy,
    ...(options.memoryBudget !== undefined ? { budgetBytes: options.memoryBudget } : {}),
    ...(sequence && contents.schedule.sequence ? {
      sequence: {
        models: sequence.models, kernels: sequence.program.kernels.length, plannedPeakBytes: contents.schedule.sequence.plannedPeakBytes,
        streamedBytes: stats.sequence!.streamedBytes, solveMs: sequence.stream.loadPlan.stats.solveMs, solver: sequence.stream.loadPlan.stats.status,
      },
    } : {}),
    plannedPeakBytes: contents.schedule.plannedPeakBytes!,
    shaders: contents.shaders.size,
    shardBytes: contents.shards.reduce((s, shard) => s + shard.size, 0),
    totalMs: performance.now() - start,
  };
  return { contents, report };
}

export async function compileMultiModel(inputs: ModelInput[], outDir: string, options: MultiCompileOptions = {}): Promise<MultiCompileReport> {
  const start = performance.now();
  // an output folder in the way fails before the models are read
  await assertOutputReplaceable(outDir, options);
  const { contents, report } = await compileMultiContents(inputs, options);
  await writeBundle(outDir, contents, { runtime: generateRuntime(), signingKey: options.signingKey, force: options.force, selfCheck: true });
  return { ...report, totalMs: performance.now() - start };
}

/** A shared input shape no model has an input for is a typo (or a model prefix that names no model). */
function checkSharedShapesUsed(models: (ModelInput & { graph: Graph })[]): void {
  const shared = new Set(models.flatMap((m) => Object.keys(m.sharedInputShapes ?? {})));
  for (const name of shared) {
    if (models.some((m) => m.graph.inputs.includes(name))) continue;
    const inputs = models.map((m) => `${quoteName(m.name)}: ${m.graph.inputs.map(quoteName).join(', ') || '(none)'}`).join('; ');
    fail('FM_BAD_ARGUMENT', `--input-shape names ${quoteName(name)}, which is no model's input (to scope a shape to one model, write model:input=dims); the models' inputs are ${inputs}`);
  }
}

function checkNames(inputs: ModelInput[]): void {
  if (inputs.length === 0) fail('FM_BAD_ARGUMENT', 'no model to compile');
  const seen = new Set<string>();
  for (const { name, path } of inputs) {
    if (!/^[A-Za-z0-9_.-]{1,64}$/.test(name)) {
      throw new FlashmemError('FM_BAD_ARGUMENT', `model name ${quoteName(name)} (from ${path}) must be 1-64 letters, digits, '_', '.' or '-': name it with ${path}=<name>`);
    }
    if (seen.has(name)) throw new FlashmemError('FM_BAD_ARGUMENT', `two models are named ${quoteName(name)}: name one with <file>.onnx=<name>`);
    seen.add(name);
  }
}
