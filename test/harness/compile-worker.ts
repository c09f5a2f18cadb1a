/**
 * A long-lived compile worker. dawn-node (webgpu 0.6.2) can abort the process when the main
 * thread blocks for a second or more while a GPU device exists, and compiling a large model
 * blocks for seconds; tests that hold a device therefore compile here, off the main thread.
 * One worker serves all compiles of a test process so the generated runtime is cached.
 */
import { parentPort } from 'node:worker_threads';
import { compileModel, type CompileOptions } from '../../compiler/compile.js';
import { compileMultiModel, type ModelInput, type MultiCompileOptions } from '../../compiler/compile-multi.js';
import { compileDecoder } from '../../compiler/compile-decoder.js';

/** one model (modelPath), a multi-model bundle (models) or a decoder (prefill + decode) */
interface Request { id: number; modelPath?: string; models?: ModelInput[]; decoder?: { prefill: string; decode: string }; outDir: string; options: CompileOptions & MultiCompileOptions }

function compile({ modelPath, models, decoder, outDir, options }: Request): Promise<unknown> {
  if (decoder) return compileDecoder(decoder.prefill, decoder.decode, outDir, options);
  return models ? compileMultiModel(models, outDir, options) : compileModel(modelPath!, outDir, options);
}

parentPort!.on('message', (request: Request) => {
  const { id } = request;
  compile(request).then(
    (report) => parentPort!.postMessage({ id, report }),
    (error: Error & { code?: string }) => parentPort!.postMessage({ id, error: { message: error.message, code: error.code, stack: error.stack } }),
  );
});
