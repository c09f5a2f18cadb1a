/**
 * The compile driver: ONNX file -> graph IR -> pass pipeline -> bundle contents -> bundle folder.
 */
import { basename, extname } from 'node:path';
import { importOnnxFile } from './frontend/onnx.js';
import { DEFAULT_LIMITS, type TargetLimits } from './ops/op.js';
import { runPipeline } from './passes/pipeline.js';
import { assembleBundle } from './bundle/assemble.js';
import type { BundleContents } from './bundle/contents.js';
import { writeBundle } from './bundle/write.js';
import { generateRuntime } from './bundle/runtime-gen.js';

export interface CompileOptions {
  /** input name -> shape, fixing symbolic dims */
  inputShapes?: Record<string, number[]>;
  limits?: TargetLimits;
  /** write the IR after every pass here */
  dumpDir?: string;
  /** defaults to the model file's stem */
  modelName?: string;
  shardBytes?: number;
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
}

export function compileToContents(modelPath: string, options: CompileOptions = {}): { contents: BundleContents; report: CompileReport } {
  const start = performance.now();
  const limits = options.limits ?? DEFAULT_LIMITS;
  const graph = importOnnxFile(modelPath, { inputShapes: options.inputShapes });
  const modelName = options.modelName ?? basename(modelPath, extname(modelPath));
  const { state, timings } = runPipeline(graph, { limits, dumpDir: options.dumpDir });
  const contents = assembleBundle({ modelName, graph: state.graph, program: state.program!, plan: state.plan!, shardBytes: options.shardBytes });
  const report: CompileReport = {
    modelName,
    kernels: state.program!.kernels.length,
    shaders: contents.shaders.size,
    weightBytes: state.plan!.weightBytes,
    activationBytes: state.plan!.activationBytes,
    plannedPeakBytes: contents.schedule.models[0]!.plannedPeakBytes,
    passTimings: timings,
    totalMs: performance.now() - start,
  };
  return { contents, report };
}

export async function compileModel(modelPath: string, outDir: string, options: CompileOptions = {}): Promise<CompileReport> {
  const start = performance.now();
  const { contents, report } = compileToContents(modelPath, options);
  await writeBundle(outDir, contents, { runtime: generateRuntime() });
  return { ...report, totalMs: performance.now() - start };
}
