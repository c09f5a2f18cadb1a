/**
 * End-to-end helpers: compile an ONNX file to a bundle in a temp folder and run it through the
 * bundle's own generated runtime on the test WebGPU device.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CompileOptions, CompileReport } from '../../compiler/compile.js';
import { FlashmemError, type ErrorCode } from '../../compiler/errors.js';
import { openBundle, type RuntimeSession } from '../../compiler/cli/bundle-session.js';
import type { Manifest } from '../../schemas/manifest.js';
import type { NumericArray } from '../../compiler/cli/npy.js';
import { keepAlive } from '../../compiler/cli/webgpu.js';
import { tempDir } from './paths.js';
import { testDevice } from './single-node.js';

export interface CompiledBundle {
  dir: string;
  report: CompileReport;
  session: RuntimeSession;
  manifest: Manifest;
  run(inputs: Record<string, NumericArray>): Promise<Record<string, NumericArray>>;
  close(): void;
}

/** compileModel in a worker thread (see compile-worker.ts for why); errors keep their FM_ code. */
export function compileOffThread(modelPath: string, outDir: string, options: CompileOptions = {}): Promise<CompileReport> {
  return new Promise((resolve, reject) => {
    const worker = new Worker(new URL('./compile-worker.mjs', import.meta.url), {
      workerData: { modelPath, outDir, options },
    });
    worker.once('message', (m: { report?: CompileReport; error?: { message: string; code?: string; stack?: string } }) => {
      if (m.report) resolve(m.report);
      else if (m.error?.code?.startsWith('FM_')) reject(new FlashmemError(m.error.code as ErrorCode, m.error.message.replace(/^FM_\w+: /, '')));
      else reject(Object.assign(new Error(m.error?.message), { stack: m.error?.stack }));
      void worker.terminate();
    });
    worker.once('error', reject);
  });
}

export async function compileAndOpen(modelPath: string, options: CompileOptions = {}): Promise<CompiledBundle> {
  const tmp = tempDir('bundle');
  const dir = join(tmp.dir, 'bundle');
  try {
    const report = await compileOffThread(modelPath, dir, options);
    const { session, manifest } = await openBundle(dir, { device: await testDevice() });
    return {
      dir, report, session, manifest,
      run: (inputs) => keepAlive(session.run(inputs)),
      close() {
        session.dispose();
        tmp.cleanup();
      },
    };
  } catch (e) {
    tmp.cleanup();
    throw e;
  }
}
