/**
 * The compiler's ordered pass list, in one place (like TVM's Sequential): graph passes rewrite
 * the IR; then lowering turns it into a kernel program and memory planning places tensors.
 * Every pass is named and its result can be dumped (`flashmemc compile --dump-ir <dir>`).
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Graph } from '../ir/types.js';
import type { KernelProgram } from '../lower/program.js';
import { lowerGraph } from '../lower/lower.js';
import type { GemvKernel, TargetLimits } from '../target/limits.js';
import { planMemory, type MemoryPlan } from '../schedule/memory-plan.js';
import { dumpGraph, dumpPlan, dumpProgram } from './dump.js';
import { eliminateDeadNodes } from './eliminate-dead.js';
import { foldBatchNorm } from './fold-batchnorm.js';
import { fuseActivations } from './fuse-activation.js';
import { fuseAttention } from './fuse-attention.js';
import { fuseGelu } from './fuse-gelu.js';
import { fuseLayerNorm } from './fuse-layernorm.js';
import { inferShapesAndFold } from './infer-shapes.js';
import { defaultMaxWeightBytes, splitLargeWeights } from './split-weights.js';
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
  /** gemv-shaped MatMul/Gemm kernels (from the device profile: compile.ts gemvKernelFor) */
  gemvKernel?: GemvKernel;
}

export interface Pass {
  name: string;
  run(state: CompileState, options: PassOptions): CompileState;
  dump(state: CompileState): string;
}

const graphPass = (name: string, fn: (g: Graph) => Graph): Pass => ({
  name,
  run: (state) => ({ ...state, graph: fn(state.graph) }),
  dump: (state) => dumpGraph(state.graph),
});

export const PIPELINE: readonly Pass[] = [
  graphPass('prune-unused', eliminateDeadNodes),
  graphPass('infer-shapes-and-fold-constants', inferShapesAndFold),
  graphPass('fold-batchnorm-into-conv', foldBatchNorm),
  graphPass('fuse-layernorm', fuseLayerNorm),
  graphPass('fuse-gelu', fuseGelu),
  graphPass('fuse-attention', fuseAttention),
  graphPass('fuse-activations', fuseActivations),
  graphPass('eliminate-dead-nodes', eliminateDeadNodes),
  {
    name: 'split-large-weights',
    run: (state, options) => ({
      ...state,
      graph: splitLargeWeights(state.graph, options.maxWeightBytes ?? defaultMaxWeightBytes(options.limits, options.strategy === 'stream' ? options.memoryBudget : undefined)),
    }),
    dump: (state) => dumpGraph(state.graph),
  },
  {
    name: 'select-weight-layouts',
    run: (state, options) => ({
      ...state,
      layouts: selectWeightLayouts(state.graph, { mode: options.weightLayout ?? 'auto', costs: options.layoutCost, limits: options.limits, strategy: options.strategy }),
    }),
    dump: (state) => dumpLayouts(state.layouts!),
  },
  {
    name: 'lower-to-kernels',
    run: (state, options) => ({ ...state, program: lowerGraph(state.graph, options.limits, state.layouts, options.gemvKernel) }),
    dump: (state) => dumpProgram(state.program!),
  },
  {
    name: 'plan-activation-memory',
    run: (state, options) => ({ ...state, plan: planMemory(state.program!, options.limits) }),
    dump: (state) => dumpPlan(state.program!, state.plan!),
  },
];

export interface PipelineRun {
  state: CompileState;
  /** milliseconds per pass */
  timings: { pass: string; ms: number }[];
}

export function runPipeline(graph: Graph, options: PassOptions & { dumpDir?: string; onPass?: (pass: string, index: number, count: number) => void }): PipelineRun {
  let state: CompileState = { graph };
  const timings: PipelineRun['timings'] = [];
  if (options.dumpDir) {
    mkdirSync(options.dumpDir, { recursive: true });
    writeFileSync(join(options.dumpDir, '00-imported.txt'), dumpGraph(graph));
  }
  PIPELINE.forEach((pass, i) => {
    options.onPass?.(pass.name, i, PIPELINE.length);
    const start = performance.now();
    state = pass.run(state, options);
    timings.push({ pass: pass.name, ms: performance.now() - start });
    if (options.dumpDir) {
      writeFileSync(join(options.dumpDir, `${String(i + 1).padStart(2, '0')}-${pass.name}.txt`), pass.dump(state));
    }
  });
  return { state, timings };
}
