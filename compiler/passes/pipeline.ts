/**
 * The compiler's ordered pass list, in one place (like TVM's Sequential): graph passes rewrite
 * the IR; then lowering turns it into a kernel program and memory planning places tensors.
 * Every pass is named and its result can be dumped (`flashmemc compile --dump-ir <dir>`).
 */
import { join } from 'node:path';
import { makeOutputFolder, writeOutputFile } from '../output-file.js';
import type { Graph } from '../ir/types.js';
import type { KernelProgram } from '../lower/program.js';
import { lowerGraph } from '../lower/lower.js';
import type { KernelChoices, TargetLimits } from '../target/limits.js';
import { planMemory, type MemoryPlan } from '../schedule/memory-plan.js';
import { dumpGraph, dumpPlan, dumpProgram } from './dump.js';
import { eliminateDeadNodes } from './eliminate-dead.js';
import { foldChannelAffine } from './fold-channel-affine.js';
import { fuseActivations } from './fuse-activation.js';
import { fuseAttention } from './fuse-attention.js';
import { fuseGelu } from './fuse-gelu.js';
import { fuseLayerNorm } from './fuse-layernorm.js';
import { inferShapesAndFold } from './infer-shapes.js';
import { defaultMaxWeightBytes, splitLargeWeights } from './split-weights.js';
import { fuseMatMulBias } from './fuse-matmul-bias.js';
import { fuseResidualAdd } from './fuse-residual-add.js';
import { dumpLayouts, selectWeightLayouts, type LayoutCosts, type LayoutDecisions, type WeightLayoutMode } from './select-weight-layout.js';

export interface CompileState {
  graph: Graph;
  /** per node with a texture-capable weight: its layout (select-weight-layouts) */
  layouts?: LayoutDecisions;
  program?: KernelProgram;
  plan?: MemoryPlan;
}

export interface PassOptions {
  limits: TargetLimits;
  /** weight layout selection: 'auto' (the default) lets layoutCost decide */
  weightLayout?: WeightLayoutMode;
  /** the device profile's layout costs (texture latency / buffer latency per op class) */
  layoutCost?: LayoutCosts;
  /** the bundle strategy: under 'stream', auto keeps weights in buffers (streamable) */
  strategy?: 'preload' | 'stream';
  /** split-large-weights: the largest constant weight (bytes); default from the limits and memoryBudget */
  maxWeightBytes?: number;
  /** the stream strategy's GPU memory budget (bytes): bounds the default maxWeightBytes */
  memoryBudget?: number;
  /** MatMul/Gemm kernel variants (from the device profile: target/limits.ts kernelChoicesFor) */
  kernelChoices?: KernelChoices;
  /**
   * weights live in a buffer of their own that no dispatch writes (a single model's preload
   * bundle), so kernels bind them as read-only storage; streamed weights and the merged buffers of
   * multi-model bundles share a buffer with activations, where they must stay read_write
   */
  readOnlyWeights?: boolean;
}

export interface Pass {
  name: string;
  apply(state: CompileState, options: PassOptions): CompileState;
  dump(state: CompileState): string;
}

const graphPass = (name: string, fn: (g: Graph) => Graph): Pass => ({
  name,
  apply: (state) => ({ ...state, graph: fn(state.graph) }),
  dump: (state) => dumpGraph(state.graph),
});

export const PIPELINE: readonly Pass[] = [
  graphPass('prune-unused', eliminateDeadNodes),
  graphPass('infer-shapes-and-fold-constants', inferShapesAndFold),
  graphPass('fold-channel-affine', foldChannelAffine),
  graphPass('fuse-layernorm', fuseLayerNorm),
  graphPass('fuse-gelu', fuseGelu),
  graphPass('fuse-attention', fuseAttention),
  {
    name: 'fuse-matmul-bias',
    apply: (state, options) => ({
      ...state,
      graph: fuseMatMulBias(state.graph, options.maxWeightBytes ?? defaultMaxWeightBytes(options.limits, options.strategy === 'stream' ? options.memoryBudget : undefined)),
    }),
    dump: (state) => dumpGraph(state.graph),
  },
  graphPass('fuse-activations', fuseActivations),
  graphPass('fuse-residual-add', fuseResidualAdd),
  graphPass('eliminate-dead-nodes', eliminateDeadNodes),
  {
    name: 'split-large-weights',
    apply: (state, options) => ({
      ...state,
      graph: splitLargeWeights(state.graph, options.maxWeightBytes ?? defaultMaxWeightBytes(options.limits, options.strategy === 'stream' ? options.memoryBudget : undefined)),
    }),
    dump: (state) => dumpGraph(state.graph),
  },
  {
    name: 'select-weight-layouts',
    apply: (state, options) => ({
      ...state,
      layouts: selectWeightLayouts(state.graph, { mode: options.weightLayout ?? 'auto', costs: options.layoutCost, limits: options.limits, strategy: options.strategy, kernelChoices: options.kernelChoices }),
    }),
    dump: (state) => dumpLayouts(state.layouts!),
  },
  {
    name: 'lower-to-kernels',
    apply: (state, options) => ({ ...state, program: lowerGraph(state.graph, options.limits, state.layouts, options.kernelChoices, options.readOnlyWeights) }),
    dump: (state) => dumpProgram(state.program!),
  },
  {
    name: 'plan-activation-memory',
    apply: (state, options) => ({ ...state, plan: planMemory(state.program!, options.limits) }),
    dump: (state) => dumpPlan(state.program!, state.plan!),
  },
];

export interface PipelineRun<S extends CompileState = CompileState> {
  state: S;
  /** milliseconds per pass */
  timings: { pass: string; ms: number }[];
}

/**
 * A pass of a longer list (compiler/pipeline/backend.ts appends load planning, carrier rewriting
 * and schedule building): its state may carry more than CompileState, and it may be async
 * (glpk solves the load plan asynchronously). Every sync Pass is one.
 */
export interface AsyncPass<S extends CompileState = CompileState, O extends PassOptions = PassOptions> {
  name: string;
  apply(state: S, options: O): S | Promise<S>;
  dump(state: S): string;
}

export interface PipelineHooks {
  dumpDir?: string;
  /** before each pass: its name, its index in the list and the list's length */
  onPass?: (pass: string, index: number, count: number) => void;
}

/** The front half (PIPELINE) alone: graph passes, lowering and memory planning. */
export function runPipeline(graph: Graph, options: PassOptions & PipelineHooks): PipelineRun {
  return runPassesSync(PIPELINE, { graph }, options);
}

/** Runs `passes` in order, awaiting the async ones; the dumps are numbered by position in the list. */
export async function runPasses<S extends CompileState, O extends PassOptions>(
  passes: readonly AsyncPass<S, O>[], initial: S, options: O & PipelineHooks,
): Promise<PipelineRun<S>> {
  const run = startRun(initial, options);
  for (const [i, pass] of passes.entries()) {
    const start = beforePass(passes, i, options);
    run.state = await pass.apply(run.state, options);
    afterPass(run, pass, i, start, options);
  }
  return run;
}

/** Like runPasses, for lists whose passes all return their state directly (the preload strategy, PIPELINE). */
export function runPassesSync<S extends CompileState, O extends PassOptions>(
  passes: readonly AsyncPass<S, O>[], initial: S, options: O & PipelineHooks,
): PipelineRun<S> {
  const run = startRun(initial, options);
  passes.forEach((pass, i) => {
    const start = beforePass(passes, i, options);
    const state = pass.apply(run.state, options);
    // a bug, not a user error: an async pass in a list run synchronously
    if (state instanceof Promise) throw new Error(`internal: pass ${pass.name} is async; run its list with runPasses`);
    run.state = state;
    afterPass(run, pass, i, start, options);
  });
  return run;
}

/** how write failures name the dump folder (CompileOptions.dumpDir is what `compile --dump-ir` sets) */
const DUMP_OPTION = '--dump-ir';

function startRun<S extends CompileState>(state: S, { dumpDir }: PipelineHooks): PipelineRun<S> {
  // the one writer of output files (FM_IO naming the path and what to do on any failure)
  if (dumpDir) {
    makeOutputFolder(dumpDir, DUMP_OPTION);
    writeOutputFile(join(dumpDir, '00-imported.txt'), dumpGraph(state.graph), DUMP_OPTION);
  }
  return { state, timings: [] };
}

function beforePass(passes: readonly { name: string }[], i: number, { onPass }: PipelineHooks): number {
  onPass?.(passes[i]!.name, i, passes.length);
  return performance.now();
}

function afterPass<S extends CompileState>(run: PipelineRun<S>, pass: AsyncPass<S, never>, i: number, start: number, { dumpDir }: PipelineHooks): void {
  run.timings.push({ pass: pass.name, ms: performance.now() - start });
  if (dumpDir) writeOutputFile(join(dumpDir, `${String(i + 1).padStart(2, '0')}-${pass.name}.txt`), pass.dump(run.state), DUMP_OPTION);
}
