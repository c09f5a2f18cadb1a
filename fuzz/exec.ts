/**
 * Fuzz execution: one input = a model plus the files around it (external data, symlinks,
 * folders), materialised in a fresh temp folder and compiled with compileToContents in a worker
 * thread of this process. The worker lets the watchdog stop a synchronous hang (terminate()
 * interrupts running JS), and its heap limit turns a runaway allocation into an event instead of
 * killing the fuzzer; the main thread also samples the process RSS while it waits.
 *
 * This module is also the worker's entry point (see startWorkerLoop at the bottom).
 */
import { existsSync, lstatSync, mkdirSync, mkdtempSync, rmdirSync, rmSync, symlinkSync, unlinkSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { tmpdir } from 'node:os';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';

/** A file next to the model. `name` is relative to the model folder; `../outside/...` lands in a sibling folder. */
export interface AuxFile {
  name: string;
  kind: 'file' | 'symlink' | 'dir';
  /** file contents (kind 'file') */
  bytes?: Uint8Array;
  /** link target, relative to the link's folder or absolute (kind 'symlink') */
  target?: string;
}

/** What the fuzzer runs: the model bytes, its files, and how it was made (for the sidecar). */
export interface FuzzInput {
  model: Uint8Array;
  files: AuxFile[];
  seed: string;
  mutations: string[];
}

export type CrashReason = 'exception' | 'hang' | 'memory' | 'worker-exit';

export type Outcome =
  | { kind: 'ok' }
  /** a FlashmemError; `internal` describes a non-FlashmemError cause raised in compiler code (wrapped by infer-shapes/lower) */
  | { kind: 'error'; code: string; message: string; internal?: string }
  | { kind: 'crash'; reason: CrashReason; name: string; message: string; stack?: string };

export interface ExecResult {
  outcome: Outcome;
  ms: number;
  /** bytes, sampled in the worker after the execution */
  heapUsed?: number;
  external?: number;
  arrayBuffers?: number;
}

/** The name every materialised model gets inside its folder. */
export const MODEL_FILE = 'model.onnx';
/** A sibling of the model folder that escaping paths and symlinks can point at. */
export const OUTSIDE_DIR = 'outside';
export const OUTSIDE_SECRET = 'secret.bin';

/**
 * The folder layout of one execution: `<root>/outside/secret.bin` (shared, see ensureOutside)
 * and the model folder `<root>/<exec>/` holding model.onnx and the aux files, so that
 * `../outside/secret.bin` from the model folder is a real file outside it.
 */
export function ensureOutside(root: string): void {
  const secret = path.join(root, OUTSIDE_DIR, OUTSIDE_SECRET);
  if (existsSync(secret)) return;
  mkdirSync(path.dirname(secret), { recursive: true });
  writeFileSync(secret, new Uint8Array(4096).fill(0x5a));
}

/**
 * Writes `input` into `modelDir` (created; its parent gets the shared outside folder). Aux files
 * never leave the model folder, whatever their names say. Returns the model path and everything
 * created, in creation order (for removeMaterialized).
 */
export function materialize(modelDir: string, input: Pick<FuzzInput, 'model' | 'files'>): { modelPath: string; created: string[] } {
  ensureOutside(path.dirname(modelDir));
  const created: string[] = [];
  const mkdir = (dir: string) => {
    const missing: string[] = [];
    for (let d = dir; !existsSync(d); d = path.dirname(d)) missing.unshift(d);
    for (const d of missing) {
      mkdirSync(d);
      created.push(d);
    }
  };
  mkdir(modelDir);
  const modelPath = path.join(modelDir, MODEL_FILE);
  for (const f of input.files) {
    const target = path.resolve(modelDir, f.name);
    const rel = path.relative(modelDir, target);
    if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel) || target === modelPath || existsSync(target)) continue;
    try {
      mkdir(path.dirname(target));
      if (f.kind === 'dir') mkdir(target);
      else {
        if (f.kind === 'symlink') symlinkSync(f.target ?? `../${OUTSIDE_DIR}/${OUTSIDE_SECRET}`, target);
        else writeFileSync(target, f.bytes ?? new Uint8Array());
        created.push(target);
      }
    } catch {
      // a name clash between aux files (a file where a folder should be): the later one loses
    }
  }
  writeFileSync(modelPath, input.model);
  created.push(modelPath);
  return { modelPath, created };
}

/** Undoes materialize (much faster than a recursive rm); anything unexpected falls back to one. */
export function removeMaterialized(modelDir: string, created: readonly string[]): void {
  try {
    for (let i = created.length - 1; i >= 0; i--) {
      const p = created[i]!;
      if (lstatSync(p).isDirectory()) rmdirSync(p);
      else unlinkSync(p);
    }
  } catch {
    rmSync(modelDir, { recursive: true, force: true });
  }
}

/** A fast temp root: tmpfs where there is one (per-execution folders cost file system calls). */
export function fastTmpRoot(prefix: string): string {
  const base = process.env.FLASHMEM_FUZZ_TMP ?? (process.platform === 'linux' && existsSync('/dev/shm') ? '/dev/shm' : tmpdir());
  try {
    return mkdtempSync(path.join(base, prefix));
  } catch {
    return mkdtempSync(path.join(tmpdir(), prefix));
  }
}

/**
 * First stack frame inside this repository (not node_modules), as `file:line`, for signatures
 * and reports; with `any`, the very first frame with a file, wherever it is ('?' when outside
 * the repository).
 */
export function topFrame(stack: string | undefined, any = false): string {
  if (!stack) return '?';
  const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
  for (const line of stack.split('\n').slice(1)) {
    const m = /\(?((?:file:\/\/)?\/[^()\s]+?):(\d+):\d+\)?\s*$/.exec(line);
    if (!m) continue;
    const file = m[1]!.replace(/^file:\/\//, '');
    if (file.includes('node_modules') || !file.startsWith(root)) {
      if (any) return '?';
      continue;
    }
    return `${path.relative(root, file)}:${m[2]}`;
  }
  return '?';
}

/** Same-bug key: crash reason, error class, and where it was thrown (or a digit-free message). */
export function crashSignature(o: Outcome): string {
  if (o.kind !== 'crash') return o.kind === 'error' ? `error:${o.code}` : 'ok';
  if (o.reason !== 'exception') return `${o.reason}`;
  const frame = topFrame(o.stack);
  return `exception:${o.name}:${frame === '?' ? o.message.replace(/\d+/g, 'N').slice(0, 80) : frame}`;
}

// ---------------------------------------------------------------------------------------------
// Worker side

interface WorkerRequest { id: number; modelPath: string; memoryLimitBytes: number }
interface WorkerReply { id: number; result: ExecResult }

async function startWorkerLoop(): Promise<void> {
  const { compileToContents } = await import('../compiler/compile.js');
  const { FlashmemError } = await import('../compiler/errors.js');
  const classify = (e: unknown): Outcome => {
    if (e instanceof FlashmemError) {
      const cause = (e as { cause?: unknown }).cause;
      let internal: string | undefined;
      if (cause instanceof Error && !(cause instanceof FlashmemError)) {
        const frame = topFrame(cause.stack, true);
        // causes from fs or protobufjs are expected; a TypeError from an op is a robustness gap
        if (frame !== '?' && frame.startsWith('compiler/') && !(cause as NodeJS.ErrnoException).code) {
          internal = `${cause.name} at ${frame}: ${cause.message.slice(0, 160)}`;
        }
      }
      return { kind: 'error', code: e.code, message: e.message.slice(0, 2000), internal };
    }
    const err = e instanceof Error ? e : new Error(String(e));
    return { kind: 'crash', reason: 'exception', name: err.name, message: err.message.slice(0, 2000), stack: err.stack?.slice(0, 4000) };
  };
  parentPort!.on('message', (req: WorkerRequest) => {
    const start = performance.now();
    let outcome: Outcome;
    try {
      compileToContents(req.modelPath);
      outcome = { kind: 'ok' };
    } catch (e) {
      outcome = classify(e);
    }
    const ms = performance.now() - start;
    const mem = process.memoryUsage();
    const biggest = Math.max(mem.heapUsed, mem.external, mem.arrayBuffers);
    if (outcome.kind !== 'crash' && biggest > req.memoryLimitBytes) {
      outcome = {
        kind: 'crash', reason: 'memory', name: 'MemoryBound',
        message: `after the execution heapUsed=${mem.heapUsed} external=${mem.external} arrayBuffers=${mem.arrayBuffers} exceed ${req.memoryLimitBytes} bytes`,
      };
    }
    const reply: WorkerReply = { id: req.id, result: { outcome, ms, heapUsed: mem.heapUsed, external: mem.external, arrayBuffers: mem.arrayBuffers } };
    parentPort!.postMessage(reply);
  });
  parentPort!.postMessage('ready');
}

if (!isMainThread && (workerData as { flashmemFuzzWorker?: boolean } | undefined)?.flashmemFuzzWorker) {
  void startWorkerLoop();
}

// ---------------------------------------------------------------------------------------------
// Main-thread side

export interface ExecutorOptions {
  /** wall-clock limit of one execution; beyond it the input is a hang (default 10 s) */
  timeoutMs?: number;
  /** heapUsed / external / arrayBuffers after an execution above this is a memory failure (default 2 GiB) */
  memoryLimitBytes?: number;
  /** the process RSS sampled during an execution above this is a memory failure (default 4 GiB) */
  rssLimitBytes?: number;
}

/** The worker bootstrap: register tsx's ESM hooks in the worker, then load this module. */
function bootstrapSource(): string {
  const require = createRequire(import.meta.url);
  const tsxApi = pathToFileURL(path.join(path.dirname(require.resolve('tsx/package.json')), 'dist', 'esm', 'api', 'index.mjs')).href;
  const self = pathToFileURL(fileURLToPath(import.meta.url)).href;
  return `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(self)}); });`;
}

export class Executor {
  /** may be changed between runs */
  timeoutMs: number;
  readonly memoryLimitBytes: number;
  readonly rssLimitBytes: number;
  /** temp root holding one folder per execution; removed by close() */
  readonly tmpRoot: string;
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private nextId = 0;
  private execCount = 0;
  restarts = 0;

  constructor(options: ExecutorOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.memoryLimitBytes = options.memoryLimitBytes ?? 2 * 1024 ** 3;
    this.rssLimitBytes = options.rssLimitBytes ?? 4 * 1024 ** 3;
    this.tmpRoot = fastTmpRoot('flashmemc-fuzz-');
    ensureOutside(this.tmpRoot);
  }

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    // a runaway JS heap becomes ERR_WORKER_OUT_OF_MEMORY instead of taking the fuzzer down
    const { worker, ready } = startFuzzWorker(bootstrapSource(), { flashmemFuzzWorker: true }, Math.ceil((this.memoryLimitBytes * 1.25) / 2 ** 20));
    this.worker = worker;
    this.ready = ready;
    return ready;
  }

  private async stop(restart: boolean): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (w && restart) this.restarts++;
    if (w) await terminateFuzzWorker(w);
  }

  /** Compiles `input` in the worker and classifies the result. */
  async run(input: Pick<FuzzInput, 'model' | 'files'>): Promise<ExecResult> {
    await this.start();
    const worker = this.worker!;
    const execDir = path.join(this.tmpRoot, `e${this.execCount++}`);
    let modelPath: string;
    let created: string[];
    try {
      ({ modelPath, created } = materialize(execDir, input));
    } catch (e) {
      rmSync(execDir, { recursive: true, force: true });
      throw e;
    }
    const id = this.nextId++;
    const start = performance.now();
    try {
      const result = await new Promise<ExecResult | { failed: CrashReason; name: string; message: string; stack?: string }>((resolve) => {
        const cleanup = () => {
          clearTimeout(timer);
          clearInterval(sampler);
          worker.off('message', onMessage);
          worker.off('error', onError);
          worker.off('exit', onExit);
        };
        const onMessage = (m: WorkerReply) => {
          if (typeof m !== 'object' || m.id !== id) return;
          cleanup();
          resolve(m.result);
        };
        const onError = (e: Error & { code?: string }) => {
          cleanup();
          const oom = e.code === 'ERR_WORKER_OUT_OF_MEMORY';
          resolve({ failed: oom ? 'memory' : 'exception', name: e.name, message: e.message, stack: e.stack });
        };
        const onExit = (code: number) => {
          cleanup();
          resolve({ failed: 'worker-exit', name: 'WorkerExit', message: `the worker exited with code ${code}` });
        };
        const timer = setTimeout(() => {
          cleanup();
          resolve({ failed: 'hang', name: 'Hang', message: `no result after ${this.timeoutMs} ms` });
        }, this.timeoutMs);
        const sampler = setInterval(() => {
          const rss = process.memoryUsage.rss();
          if (rss > this.rssLimitBytes) {
            cleanup();
            resolve({ failed: 'memory', name: 'MemoryBound', message: `process RSS reached ${rss} bytes (limit ${this.rssLimitBytes})` });
          }
        }, 20);
        worker.on('message', onMessage);
        worker.once('error', onError);
        worker.once('exit', onExit);
        worker.postMessage({ id, modelPath, memoryLimitBytes: this.memoryLimitBytes } satisfies WorkerRequest);
      });
      if ('failed' in result) {
        const ms = performance.now() - start;
        await this.stop(true);
        return { outcome: { kind: 'crash', reason: result.failed, name: result.name, message: result.message, stack: result.stack }, ms };
      }
      return result;
    } finally {
      removeMaterialized(execDir, created);
    }
  }

  async close(): Promise<void> {
    await this.stop(false);
    rmSync(this.tmpRoot, { recursive: true, force: true });
  }
}

/**
 * A fuzz worker evaluating its bootstrap `source` with `data`, its JS heap capped at `heapMb`
 * (a runaway heap becomes ERR_WORKER_OUT_OF_MEMORY instead of taking the fuzzer down); `ready`
 * resolves at its 'ready' message. Its output is dropped rather than buffered without bound.
 */
export function startFuzzWorker(source: string, data: Record<string, unknown>, heapMb: number): { worker: Worker; ready: Promise<void> } {
  const worker = new Worker(source, { eval: true, workerData: data, resourceLimits: { maxOldGenerationSizeMb: heapMb }, stdout: true, stderr: true });
  worker.stdout.resume();
  worker.stderr.resume();
  const ready = new Promise<void>((resolve, reject) => {
    const onMessage = (m: unknown) => {
      if (m === 'ready') {
        worker.off('message', onMessage);
        worker.off('error', onError);
        resolve();
      }
    };
    const onError = (e: Error) => reject(e);
    worker.on('message', onMessage);
    worker.once('error', onError);
  });
  return { worker, ready };
}

/** terminate() waits for native work in progress (a huge TypedArray fill): wait at most 5 s. */
export async function terminateFuzzWorker(worker: Worker): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  await Promise.race([worker.terminate(), new Promise((resolve) => { timer = setTimeout(resolve, 5000); })]);
  clearTimeout(timer);
}
