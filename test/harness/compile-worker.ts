/**
 * Runs compileModel in a worker thread. dawn-node (webgpu 0.6.2) can abort the process when the
 * main thread blocks for a second or more while a GPU device exists, and compiling a large model
 * blocks for seconds; tests that hold a device therefore compile off the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads';
import { compileModel, type CompileOptions } from '../../compiler/compile.js';

const { modelPath, outDir, options } = workerData as { modelPath: string; outDir: string; options: CompileOptions };
compileModel(modelPath, outDir, options).then(
  (report) => parentPort!.postMessage({ report }),
  (error: Error & { code?: string }) => parentPort!.postMessage({ error: { message: error.message, code: error.code, name: error.name, stack: error.stack } }),
);
