/**
 * End-to-end helpers: compile an ONNX file to a bundle in a temp folder and run it through the
 * bundle's own generated runtime on the test WebGPU device.
 */
import { join } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { CompileOptions, CompileReport } from '../../compiler/compile.js';
import type { ModelInput, MultiCompileOptions, MultiCompileReport } from '../../compiler/compile-multi.js';
import { FlashmemError, type ErrorCode } from '../../compiler/errors.js';
import { openBundle, type RuntimeSession } from '../../compiler/cli/bundle-session.js';
import type { Manifest } from '../../schemas/manifest.js';
import type { NumericArray } from '../../compiler/cli/npy.js';
import { keepAlive, testDevice } from './gpu.js';
import { tempDir } from './paths.js';

export interface CompiledBundle {
  dir: string;
  report: CompileReport;
  session: RuntimeSession;
  manifest: Manifest;
  run(inputs: Record<string, NumericArray>): Promise<Record<string, NumericArray>>;
  close(): void;
}

type WorkerReply = { id: number; report?: CompileReport & MultiCompileReport; error?: { message: string; code?: string; stack?: string } };

type Pending = Map<number, { resolve: (r: CompileReport & MultiCompileReport) => void; reject: (e: Error) => void }>;
let compileWorker: { worker: Worker; pending: Pending } | undefined;
let nextRequest = 0;

function worker() {
  if (compileWorker) return compileWorker;
  const w = new Worker(new URL('./compile-worker.mjs', import.meta.url));
  w.unref();
  const pending: Pending = new Map();
  w.on('message', ({ id, report, error }: WorkerReply) => {
    const p = pending.get(id)!;
    pending.delete(id);
    if (report) p.resolve(report);
    else if (error?.code?.startsWith('FM_')) p.reject(new FlashmemError(error.code as ErrorCode, error.message.replace(/^FM_\w+: /, '')));
    else p.reject(Object.assign(new Error(error?.message), { stack: error?.stack }));
  });
  w.on('error', (e) => {
    for (const p of pending.values()) p.reject(e);
    pending.clear();
    compileWorker = undefined;
  });
  compileWorker = { worker: w, pending };
  return compileWorker;
}

/** compileModel in the test process's compile worker (see compile-worker.ts for why); errors keep their FM_ code. */
export function compileOffThread(modelPath: string, outDir: string, options: CompileOptions = {}): Promise<CompileReport> {
  return request({ modelPath, outDir, options });
}

/** compileDecoder (prefill + decode graphs) in the compile worker. */
export function compileDecoderOffThread(prefill: string, decode: string, outDir: string, options: MultiCompileOptions = {}): Promise<MultiCompileReport> {
  return request({ decoder: { prefill, decode }, outDir, options });
}

/** compileMultiModel in the compile worker. */
export function compileMultiOffThread(models: ModelInput[], outDir: string, options: MultiCompileOptions = {}): Promise<MultiCompileReport> {
  return request({ models, outDir, options });
}

function request(message: object): Promise<CompileReport & MultiCompileReport> {
  const { worker: w, pending } = worker();
  const id = nextRequest++;
  return new Promise((resolve, reject) => {
    pending.set(id, { resolve, reject });
    w.postMessage({ id, ...message });
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
