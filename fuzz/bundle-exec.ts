/**
 * Bundle fuzz execution. One input is a bundle folder (materialised by the caller); it goes
 *
 *  1. through verification in a worker thread of this process (startVerifyWorker below):
 *     (a) compiler/bundle/verify.ts verifyBundleDir, (b) the package's own runtime's verifyBundle
 *     (importOwnRuntime), both with maxGpuBytes, and (c) a differential check of the two schema
 *     validators: the compiler's zod schemas and the runtime's JSON Schema validator
 *     (runtime-template/format.ts validateJson over the exported schemas) must agree on
 *     manifest.json and schedule.json, except for zod refinements that JSON Schema cannot express
 *     (the runtime checks those itself, or they are harmless);
 *  2. optionally (sampled), when it passed verification, through loadBundle + one run on the local
 *     software GPU in a child process (startGpuChild below; Dawn aborts take a process down, not a
 *     thread) with runTimeoutMs and maxGpuBytes, whose measured peak GPU bytes must stay within the
 *     bytes verification reported (and the schedule's planned peak).
 *
 * Both run under a wall-clock watchdog and memory bounds: the worker has a V8 heap limit
 * (resourceLimits) and its heap is checked after each execution; the child's RSS is sampled.
 * Outcomes: ok, an FM_* error (counted by code), or a crash.
 *
 * This module is also the entry point of the worker and of the child (bottom).
 */
import { fork, type ChildProcess } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import * as path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { getHeapStatistics } from 'node:v8';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { startFuzzWorker, terminateFuzzWorker, topFrame } from './exec.js';

export type BundleCrashReason =
  | 'exception' | 'hang' | 'memory' | 'worker-exit' | 'internal' | 'schema-disagreement' | 'inconsistent' | 'gpu-over-bound';

export type BundleOutcome =
  | { kind: 'ok' }
  /** GPU step only: the GPU work blocked the child's thread past the deadline (Dawn's OpenGL ES backend on llvmpipe runs kernels synchronously, so runTimeoutMs cannot fire there; see test/security/bounded-work.gpu.test.ts) */
  | { kind: 'blocked'; message: string }
  | { kind: 'error'; code: string; message: string }
  | { kind: 'crash'; reason: BundleCrashReason; name: string; message: string; stack?: string };

export interface VerifyResult {
  /** verifyBundleDir */
  dir: BundleOutcome;
  /** the own runtime's verifyBundle (not run again when verifyBundleDir reached it: its result is the same) */
  runtime: BundleOutcome;
  /** GPU bytes verification reported (when it passed) */
  gpuBytes?: number;
  /** the differential schema check: 'agree', 'refinement' (explained: a zod refinement JSON Schema cannot express, or a "__proto__" key zod drops), or a crash in `dir` */
  schema: 'agree' | 'refinement' | 'unparsed';
  ms: number;
}

export interface GpuResult {
  outcome: BundleOutcome;
  peakGpuBytes?: number;
  plannedPeakGpuBytes?: number;
  ms: number;
}

// ---------------------------------------------------------------------------------------------
// Classification (shared by the worker, the child and the regression tests)

const FM_CODE = /^FM_[A-Z_]+$/;
const FLASHMEM_ERROR_NAMES = new Set(['FlashmemError', 'FlashmemRuntimeError']);

function isFlashmemError(e: unknown): e is Error & { code: string } {
  return e instanceof Error && FLASHMEM_ERROR_NAMES.has(e.name) && typeof (e as { code?: unknown }).code === 'string' && FM_CODE.test((e as unknown as { code: string }).code);
}

/**
 * A JavaScript engine error (TypeError, RangeError...) raised in our code and wrapped into an FM_*
 * error (the runtime turns any failure while preparing the GPU into FM_WEBGPU): the bundle reached
 * code that did not expect it, which is a bug of the checks before it. File system errors (with an
 * errno code) and the GPU's own validation are not.
 */
function internalCause(e: Error): Error | undefined {
  // the places that wrap engine errors on purpose: JSON.parse and TextDecoder of a hostile file, zod's stack on millions of issues
  if (/is not valid UTF-8|too many violations to list/.test(e.message)) return undefined;
  const seen = new Set<unknown>();
  for (let c = (e as { cause?: unknown }).cause; c !== undefined && !seen.has(c); c = (c as { cause?: unknown }).cause) {
    seen.add(c);
    if (isFlashmemError(c)) continue;
    if (!(c instanceof Error)) return undefined;
    if ((c as NodeJS.ErrnoException).code !== undefined) return undefined;
    if (['TypeError', 'RangeError', 'ReferenceError', 'SyntaxError', 'InternalError'].includes(c.name)) {
      return c;
    }
    return undefined;
  }
  return undefined;
}

export function classifyBundleError(e: unknown): BundleOutcome {
  if (isFlashmemError(e)) {
    const internal = internalCause(e);
    if (internal) {
      return {
        kind: 'crash', reason: 'internal', name: internal.name,
        message: `${e.code} wrapping ${internal.name}: ${internal.message}`.slice(0, 2000), stack: internal.stack?.slice(0, 4000),
      };
    }
    return { kind: 'error', code: e.code, message: e.message.slice(0, 2000) };
  }
  const err = e instanceof Error ? e : new Error(String(e));
  return { kind: 'crash', reason: 'exception', name: err.name, message: err.message.slice(0, 2000), stack: err.stack?.slice(0, 4000) };
}

/** Same-bug key: reason, error class, where it was thrown (else a digit-free message). */
export function bundleCrashSignature(o: BundleOutcome): string {
  if (o.kind !== 'crash') return o.kind === 'error' ? `error:${o.code}` : o.kind;
  if (o.reason === 'hang' || o.reason === 'memory' || o.reason === 'worker-exit') return o.reason;
  const frame = topFrame(o.stack, false);
  const where = frame === '?' ? runtimeFrame(o.stack) ?? o.message.replace(/\d+/g, 'N').replace(/"[^"]*"/g, 'S').slice(0, 80) : frame;
  return `${o.reason}:${o.name}:${where}`;
}

/** A frame in the generated runtime (dist/runtime/runtime.js), by function name (its line numbers move). */
function runtimeFrame(stack: string | undefined): string | undefined {
  for (const line of (stack ?? '').split('\n').slice(1)) {
    const m = /at (?:async )?([\w$.<>]+) \(.*runtime\.js:\d+:\d+\)/.exec(line);
    if (m) return `runtime.js:${m[1]}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------
// Verification worker

function hasProtoKey(v: unknown, depth = 0): boolean {
  if (depth > 64 || typeof v !== 'object' || v === null) return false;
  if (!Array.isArray(v) && Object.hasOwn(v, '__proto__')) return true;
  return Object.values(v).some((x) => hasProtoKey(x, depth + 1));
}

function withoutProtoKeys(v: unknown): unknown {
  if (typeof v !== 'object' || v === null) return v;
  if (Array.isArray(v)) return v.map(withoutProtoKeys);
  return Object.fromEntries(Object.entries(v).filter(([k]) => k !== '__proto__').map(([k, x]) => [k, withoutProtoKeys(x)]));
}

export interface VerifyRequest { id: number; dir: string; maxGpuBytes: number; memoryLimitBytes: number; schemaCheck: boolean }
interface VerifyReply { id: number; result: VerifyResult }

/** A function the executor calls instead of verification (tests plant bugs with it). */
export type PlantedVerifier = (dir: string) => Promise<void>;

async function startVerifyWorker(planted: string | undefined): Promise<void> {
  const { verifyBundleDir } = await import('../compiler/bundle/verify.js');
  const { importOwnRuntime } = await import('../compiler/bundle/own-runtime.js');
  const { manifestSchema } = await import('../schemas/manifest.js');
  const { scheduleSchema } = await import('../schemas/schedule.js');
  const { jsonSchemas } = await import('../schemas/export.js');
  const { validateJson } = await import('../runtime-template/format.js');
  const runtime = await importOwnRuntime();
  const schemas = jsonSchemas() as { manifest: Parameters<typeof validateJson>[0]; schedule: Parameters<typeof validateJson>[0] };
  const plantedFn = planted ? (new Function(`return (${planted})`)() as PlantedVerifier) : undefined;

  /** zod and the runtime's validator on one parsed JSON file: undefined when they agree */
  const differential = (file: string, json: unknown, zod: { safeParse(v: unknown): { success: boolean; error?: { issues: { code: string }[] } } }, schema: Parameters<typeof validateJson>[0]): BundleOutcome | 'refinement' | undefined => {
    let zodOk: boolean;
    let onlyRefinements = false;
    try {
      const r = zod.safeParse(json);
      zodOk = r.success;
      onlyRefinements = !r.success && (r.error?.issues ?? []).every((issue) => issue.code === 'custom');
    } catch (e) {
      if (e instanceof RangeError) return undefined; // zod's stack on millions of issues (verify reports it)
      throw e;
    }
    let runtimeOk = true;
    try {
      validateJson(schema, json, file);
    } catch (e) {
      if (!isFlashmemError(e)) throw e;
      runtimeOk = false;
    }
    if (zodOk === runtimeOk) return undefined;
    if (!zodOk && onlyRefinements) return 'refinement';
    // zod drops "__proto__" keys of records without looking at them (prototype pollution); the runtime validates them
    if (zodOk && !runtimeOk && hasProtoKey(json)) {
      try {
        validateJson(schema, withoutProtoKeys(json), file);
        return 'refinement';
      } catch (e) {
        if (!isFlashmemError(e)) throw e;
      }
    }
    return {
      kind: 'crash', reason: 'schema-disagreement', name: 'SchemaDisagreement',
      message: `${file}: the compiler's zod schema ${zodOk ? 'accepts' : 'rejects'} it, the runtime's JSON Schema validator ${runtimeOk ? 'accepts' : 'rejects'} it`,
    };
  };

  const readJson = (dir: string, file: string): { json: unknown } | undefined => {
    try {
      return { json: JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(readFileSync(path.join(dir, file)))) };
    } catch {
      return undefined;
    }
  };

  parentPort!.on('message', (req: VerifyRequest) => {
    void (async () => {
      const start = performance.now();
      let dirOutcome: BundleOutcome;
      let runtimeOutcome: BundleOutcome | undefined;
      let gpuBytes: number | undefined;
      let schema: VerifyResult['schema'] = 'unparsed';
      try {
        if (plantedFn) await plantedFn(req.dir);
        const report = await verifyBundleDir(req.dir, { maxGpuBytes: req.maxGpuBytes });
        dirOutcome = { kind: 'ok' };
        gpuBytes = report.gpuBytes;
        // verifyBundleDir ends with the runtime's verifyBundle with these very options: it passed
        runtimeOutcome = { kind: 'ok' };
      } catch (e) {
        dirOutcome = classifyBundleError(e);
        // an error of the runtime's verifyBundle inside verifyBundleDir is what (b) would give again
        if (e instanceof Error && e.name === 'FlashmemRuntimeError') runtimeOutcome = dirOutcome;
      }
      const ranBoth = runtimeOutcome === undefined;
      if (runtimeOutcome === undefined) {
        try {
          await runtime.verifyBundle(req.dir, { maxGpuBytes: req.maxGpuBytes });
          runtimeOutcome = { kind: 'ok' };
        } catch (e) {
          runtimeOutcome = classifyBundleError(e);
        }
      }
      // a differential check of the schema validators: sampled, and whenever the two verifications
      // disagree on whether a file matches the bundle format
      const schemaFailure = (o: BundleOutcome) => o.kind === 'error' && / does not match the bundle format/.test(o.message);
      if (req.schemaCheck || (ranBoth && schemaFailure(dirOutcome) !== schemaFailure(runtimeOutcome))) {
        try {
          for (const [file, zod, jsonSchema] of [['manifest.json', manifestSchema, schemas.manifest], ['schedule.json', scheduleSchema, schemas.schedule]] as const) {
            const parsed = readJson(req.dir, file);
            if (!parsed) continue;
            const d = differential(file, parsed.json, zod, jsonSchema);
            if (d === undefined) schema = schema === 'refinement' ? 'refinement' : 'agree';
            else if (d === 'refinement') schema = 'refinement';
            else if (dirOutcome.kind !== 'crash') dirOutcome = d;
          }
        } catch (e) {
          if (dirOutcome.kind !== 'crash') dirOutcome = classifyBundleError(e);
        }
      }
      const ms = performance.now() - start;
      const heap = getHeapStatistics();
      const biggest = Math.max(heap.used_heap_size, heap.external_memory);
      if (biggest > req.memoryLimitBytes && dirOutcome.kind !== 'crash') {
        dirOutcome = {
          kind: 'crash', reason: 'memory', name: 'MemoryBound',
          message: `after the execution the heap holds ${heap.used_heap_size} bytes and ${heap.external_memory} external, above ${req.memoryLimitBytes}`,
        };
      }
      const reply: VerifyReply = { id: req.id, result: { dir: dirOutcome, runtime: runtimeOutcome, gpuBytes, schema, ms } };
      parentPort!.postMessage(reply);
    })();
  });
  parentPort!.postMessage('ready');
}

if (!isMainThread && (workerData as { flashmemBundleFuzzWorker?: boolean } | undefined)?.flashmemBundleFuzzWorker) {
  void startVerifyWorker((workerData as { planted?: string }).planted);
}

// ---------------------------------------------------------------------------------------------
// GPU child

export interface GpuRequest { id: number; dir: string; maxGpuBytes: number; runTimeoutMs: number; verifiedGpuBytes: number }
interface GpuReply { id: number; result: GpuResult }

const HEARTBEAT_MS = 200;

/** input elements above which the run is skipped (the load still happens) */
const MAX_INPUT_ELEMENTS = 1 << 22;

async function startGpuChild(): Promise<void> {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const { importOwnRuntime } = await import('../compiler/bundle/own-runtime.js');
  const { randomInputs } = await import('../compiler/cli/inputs.js');
  const runtime = await importOwnRuntime();
  // heartbeats: where the GPU work blocks this thread (Dawn's OpenGL ES backend on llvmpipe) they stop,
  // which tells a run the runtime cannot time out from a hang of the runtime itself
  const heartbeat = setInterval(() => process.send!('tick'), HEARTBEAT_MS);
  process.on('disconnect', () => { clearInterval(heartbeat); process.exit(0); });
  process.on('message', (req: GpuRequest) => {
    void (async () => {
      const start = performance.now();
      let outcome: BundleOutcome = { kind: 'ok' };
      let peakGpuBytes: number | undefined;
      let plannedPeakGpuBytes: number | undefined;
      let session: {
        run(name: string, inputs: unknown): Promise<unknown>; stats(): { peakGpuBytes: number; plannedPeakGpuBytes: number }; dispose(): void;
        models: readonly { name: string; inputs: readonly { shape: readonly number[] }[] }[];
      } | undefined;
      try {
        session = await runtime.loadBundle(req.dir, { maxGpuBytes: req.maxGpuBytes, runTimeoutMs: req.runTimeoutMs }) as typeof session;
        // the first model that run() takes (the decode step of a decoder needs the decoder API: FM_INPUT)
        for (const model of session!.models as Parameters<typeof randomInputs>[0][]) {
          const elements = model.inputs.reduce((sum, t) => sum + t.shape.reduce((a, b) => a * b, 1), 0);
          if (elements > MAX_INPUT_ELEMENTS) break;
          try {
            await session!.run(model.name, randomInputs(model, 1));
            break;
          } catch (e) {
            if (!(e instanceof Error && (e as { code?: string }).code === 'FM_INPUT' && /decode step of a decoder/.test(e.message))) throw e;
          }
        }
      } catch (e) {
        outcome = classifyBundleError(e);
      }
      if (session) {
        try {
          const stats = session.stats();
          peakGpuBytes = stats.peakGpuBytes;
          plannedPeakGpuBytes = stats.plannedPeakGpuBytes;
          if (outcome.kind !== 'crash' && (peakGpuBytes > req.verifiedGpuBytes || peakGpuBytes > req.maxGpuBytes || peakGpuBytes > plannedPeakGpuBytes)) {
            outcome = {
              kind: 'crash', reason: 'gpu-over-bound', name: 'GpuOverBound',
              message: `the session allocated ${peakGpuBytes} GPU bytes at its peak; verification reported ${req.verifiedGpuBytes}, the schedule plans ${plannedPeakGpuBytes}, maxGpuBytes ${req.maxGpuBytes}`,
            };
          }
          session.dispose();
        } catch (e) {
          if (outcome.kind !== 'crash') outcome = classifyBundleError(e);
        }
      }
      const reply: GpuReply = { id: req.id, result: { outcome, peakGpuBytes, plannedPeakGpuBytes, ms: performance.now() - start } };
      process.send!(reply);
    })();
  });
  process.send!('ready');
}

if (process.env.FLASHMEM_BUNDLE_FUZZ_GPU_CHILD === '1' && process.send && isMainThread) {
  void startGpuChild();
}

// ---------------------------------------------------------------------------------------------
// Main-thread side

export interface BundleExecutorOptions {
  /** wall-clock limit of one verification (default 10 s) */
  timeoutMs?: number;
  /** wall-clock limit of one GPU execution, load included (default 30 s) */
  gpuTimeoutMs?: number;
  /** runTimeoutMs passed to loadBundle (default 3000) */
  runTimeoutMs?: number;
  /** maxGpuBytes passed to verification and loadBundle (default 256 MiB) */
  maxGpuBytes?: number;
  /** the worker's heap/external bytes after an execution above this are a memory failure (default 1 GiB) */
  memoryLimitBytes?: number;
  /** the process RSS (this one, and the GPU child's) above this is a memory failure (default 3 GiB) */
  rssLimitBytes?: number;
  /** tests: source of a PlantedVerifier the worker runs before verification */
  planted?: string;
  /** share of executions that also get the differential schema check (default 0.1; always when the verifications disagree) */
  schemaRate?: number;
}

function tsxLoaderUrl(): string {
  const require = createRequire(import.meta.url);
  return pathToFileURL(path.join(path.dirname(require.resolve('tsx/package.json')), 'dist', 'esm', 'index.mjs')).href;
}

function workerBootstrap(): string {
  const require = createRequire(import.meta.url);
  const tsxApi = pathToFileURL(path.join(path.dirname(require.resolve('tsx/package.json')), 'dist', 'esm', 'api', 'index.mjs')).href;
  const self = pathToFileURL(fileURLToPath(import.meta.url)).href;
  return `import(${JSON.stringify(tsxApi)}).then((api) => { api.register(); return import(${JSON.stringify(self)}); });`;
}

type Pending<T> = T | { failed: BundleCrashReason | 'blocked'; name: string; message: string; stack?: string };

/** heartbeats missing this long at the deadline: the child's thread is blocked in GPU work */
const BLOCKED_AFTER_MS = 5000;

function rssOf(pid: number | undefined): number {
  if (pid === undefined) return 0;
  try {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    return m ? Number(m[1]) * 1024 : 0;
  } catch {
    return 0;
  }
}

export class BundleExecutor {
  readonly timeoutMs: number;
  readonly gpuTimeoutMs: number;
  readonly runTimeoutMs: number;
  readonly maxGpuBytes: number;
  readonly memoryLimitBytes: number;
  readonly rssLimitBytes: number;
  private readonly planted?: string;
  private readonly schemaRate: number;
  private schemaCredit = 0;
  private worker: Worker | undefined;
  private ready: Promise<void> | undefined;
  private child: ChildProcess | undefined;
  private childReady: Promise<void> | undefined;
  private childStderr = '';
  private nextId = 0;
  restarts = 0;
  gpuRestarts = 0;

  constructor(options: BundleExecutorOptions = {}) {
    this.timeoutMs = options.timeoutMs ?? 10_000;
    this.gpuTimeoutMs = options.gpuTimeoutMs ?? 30_000;
    this.runTimeoutMs = options.runTimeoutMs ?? 3000;
    this.maxGpuBytes = options.maxGpuBytes ?? 256 * 1024 ** 2;
    this.memoryLimitBytes = options.memoryLimitBytes ?? 1024 ** 3;
    this.rssLimitBytes = options.rssLimitBytes ?? 3 * 1024 ** 3;
    this.planted = options.planted;
    this.schemaRate = options.schemaRate ?? 0.1;
  }

  private start(): Promise<void> {
    if (this.ready) return this.ready;
    const heapMb = Math.ceil((this.memoryLimitBytes * 1.5) / 2 ** 20);
    const { worker, ready } = startFuzzWorker(workerBootstrap(), { flashmemBundleFuzzWorker: true, planted: this.planted }, heapMb);
    this.worker = worker;
    this.ready = ready;
    return ready;
  }

  private async stopWorker(restart: boolean): Promise<void> {
    const w = this.worker;
    this.worker = undefined;
    this.ready = undefined;
    if (!w) return;
    if (restart) this.restarts++;
    await terminateFuzzWorker(w);
  }

  /** Verifies the bundle folder `dir` in the worker. */
  async verify(dir: string): Promise<VerifyResult> {
    await this.start();
    const worker = this.worker!;
    const id = this.nextId++;
    const start = performance.now();
    const result = await new Promise<Pending<VerifyResult>>((resolve) => {
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(sampler);
        worker.off('message', onMessage);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      const onMessage = (m: VerifyReply) => {
        if (typeof m !== 'object' || m.id !== id) return;
        cleanup();
        resolve(m.result);
      };
      const onError = (e: Error & { code?: string }) => {
        cleanup();
        resolve({ failed: e.code === 'ERR_WORKER_OUT_OF_MEMORY' ? 'memory' : 'exception', name: e.name, message: e.message, stack: e.stack });
      };
      const onExit = (code: number) => {
        cleanup();
        resolve({ failed: 'worker-exit', name: 'WorkerExit', message: `the worker exited with code ${code}` });
      };
      const timer = setTimeout(() => {
        cleanup();
        resolve({ failed: 'hang', name: 'Hang', message: `no verification result after ${this.timeoutMs} ms` });
      }, this.timeoutMs);
      const sampler = setInterval(() => {
        const rss = process.memoryUsage.rss();
        if (rss > this.rssLimitBytes) {
          cleanup();
          resolve({ failed: 'memory', name: 'MemoryBound', message: `process RSS reached ${rss} bytes (limit ${this.rssLimitBytes})` });
        }
      }, 25);
      worker.on('message', onMessage);
      worker.once('error', onError);
      worker.once('exit', onExit);
      // deterministic sampling: every 1/rate-th execution
      this.schemaCredit += this.schemaRate;
      const schemaCheck = this.schemaCredit >= 1;
      if (schemaCheck) this.schemaCredit -= 1;
      worker.postMessage({ id, dir, maxGpuBytes: this.maxGpuBytes, memoryLimitBytes: this.memoryLimitBytes, schemaCheck } satisfies VerifyRequest);
    });
    if ('failed' in result) {
      await this.stopWorker(true);
      const crash: BundleOutcome = { kind: 'crash', reason: result.failed === 'blocked' ? 'hang' : result.failed, name: result.name, message: result.message, stack: result.stack };
      return { dir: crash, runtime: crash, schema: 'unparsed', ms: performance.now() - start };
    }
    return result;
  }

  private startChild(): Promise<void> {
    if (this.childReady) return this.childReady;
    const child = fork(fileURLToPath(import.meta.url), [], {
      execArgv: ['--import', tsxLoaderUrl(), '--max-old-space-size=1024'],
      env: { ...process.env, FLASHMEM_BUNDLE_FUZZ_GPU_CHILD: '1', EGL_PLATFORM: process.env.EGL_PLATFORM ?? 'surfaceless' },
      stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
    });
    this.childStderr = '';
    child.stderr!.on('data', (chunk: Buffer) => { this.childStderr = (this.childStderr + chunk.toString()).slice(-4000); });
    this.child = child;
    this.childReady = new Promise<void>((resolve, reject) => {
      const onMessage = (m: unknown) => {
        if (m === 'ready') {
          child.off('message', onMessage);
          child.off('exit', onExit);
          resolve();
        }
      };
      const onExit = (code: number | null, signal: string | null) => reject(new Error(`the GPU child exited (${code ?? signal}) before it was ready: ${this.childStderr.slice(-800)}`));
      child.on('message', onMessage);
      child.once('exit', onExit);
    });
    return this.childReady;
  }

  private stopChild(restart: boolean): void {
    const c = this.child;
    this.child = undefined;
    this.childReady = undefined;
    if (!c) return;
    if (restart) this.gpuRestarts++;
    c.kill('SIGKILL');
  }

  /** Loads the bundle folder `dir` and runs it once in the GPU child. */
  async gpu(dir: string, verifiedGpuBytes: number): Promise<GpuResult> {
    await this.startChild();
    const child = this.child!;
    const id = this.nextId++;
    const start = performance.now();
    const result = await new Promise<Pending<GpuResult>>((resolve) => {
      const cleanup = () => {
        clearTimeout(timer);
        clearInterval(sampler);
        child.off('message', onMessage);
        child.off('exit', onExit);
      };
      let lastTick = performance.now();
      const onMessage = (m: GpuReply | 'tick') => {
        if (m === 'tick') {
          lastTick = performance.now();
          return;
        }
        if (typeof m !== 'object' || m.id !== id) return;
        cleanup();
        resolve(m.result);
      };
      const onExit = (code: number | null, signal: string | null) => {
        cleanup();
        resolve({ failed: 'worker-exit', name: 'ChildExit', message: `the GPU child exited (${code ?? signal}): ${this.childStderr.slice(-1500)}` });
      };
      const timer = setTimeout(() => {
        cleanup();
        // heartbeats stopped long ago: the GPU work holds the thread, no JavaScript timer can run
        const silentMs = performance.now() - lastTick;
        if (silentMs > BLOCKED_AFTER_MS) {
          resolve({ failed: 'blocked', name: 'Blocked', message: `no GPU result after ${this.gpuTimeoutMs} ms; the child's thread was blocked for the last ${silentMs.toFixed(0)} ms` });
        } else {
          resolve({ failed: 'hang', name: 'Hang', message: `no GPU result after ${this.gpuTimeoutMs} ms (runTimeoutMs ${this.runTimeoutMs}), though the child's event loop kept running` });
        }
      }, this.gpuTimeoutMs);
      const sampler = setInterval(() => {
        const rss = rssOf(child.pid);
        if (rss > this.rssLimitBytes) {
          cleanup();
          resolve({ failed: 'memory', name: 'MemoryBound', message: `the GPU child's RSS reached ${rss} bytes (limit ${this.rssLimitBytes})` });
        }
      }, 50);
      child.on('message', onMessage);
      child.once('exit', onExit);
      child.send({ id, dir, maxGpuBytes: this.maxGpuBytes, runTimeoutMs: this.runTimeoutMs, verifiedGpuBytes } satisfies GpuRequest);
    });
    if ('failed' in result) {
      this.stopChild(true);
      const ms = performance.now() - start;
      if (result.failed === 'blocked') return { outcome: { kind: 'blocked', message: result.message }, ms };
      return { outcome: { kind: 'crash', reason: result.failed, name: result.name, message: result.message, stack: result.stack }, ms };
    }
    return result;
  }

  async close(): Promise<void> {
    await this.stopWorker(false);
    this.stopChild(false);
  }
}
