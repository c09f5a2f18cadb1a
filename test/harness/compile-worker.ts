/**
 * A long-lived compile worker. dawn-node (webgpu 0.6.2) can abort the process when the main
 * thread blocks for a second or more while a GPU device exists, and compiling a large model
 * blocks for seconds; tests that hold a device therefore compile here, off the main thread.
 * One worker serves all compiles of a test process so the generated runtime is cached.
 */
import { parentPort } from 'node:worker_threads';
import { compileModel, type CompileOptions } from '../../compiler/compile.js';
import { compileMultiModel, type ModelInput, type MultiCompileOptions } from '../../compiler/compile-multi.js';

/** one model (modelPath) or a multi-model bundle (models) */
interface Request { id: number; modelPath?: string; models?: ModelInput[]; outDir: string; options: CompileOptions & MultiCompileOptions }

parentPort!.on('message', ({ id, modelPath, models, outDir, options }: Request) => {
  (models ? compileMultiModel(models, outDir, options) : compileModel(modelPath!, outDir, options)).then(
    (report) => parentPort!.postMessage({ id, report }),
    (error: Error & { code?: string }) => parentPort!.postMessage({ id, error: { message: error.message, code: error.code, stack: error.stack } }),
  );
});
