/**
 * `npm run bench`: flashmemc (stream at a budget, preload) side by side with ONNX Runtime Web's
 * WebGPU EP, each in a fresh Node process on Dawn with the same backend, adapter, device limits and
 * GPU memory counting (bench/sbs/worker.mjs, bench/sbs/gpu-memory.mjs). Per model: the ONNX file
 * is prepared once (light CNNs get random weights) and used by all three systems and by the
 * onnxruntime-node CPU reference; flashmemc bundles are compiled first (compile time reported
 * separately); outputs are compared with the reference. Results: <results>/side-by-side.json,
 * rendered by `npm run bench:report`.
 *
 *   npm run bench -- [--machine llvmpipe] [--models a,b] [--work /tmp/dir] [--results dir]
 *                    [--light-dir dir] [--refs dir] [--references-only] [--runs N --warmup N]
 *                    [--no-repeat-visit] [--ort-graph-capture true|false] [--note text ...] [--jobs N]
 *                    [--profile name|file]
 *
 * --jobs N (default: half the CPUs, at most 8) prepares and compiles models in N child processes.
 *
 * Where onnxruntime-node is not installed (the GPU machine), reference outputs come from --refs,
 * written beforehand with --references-only on a machine that has it (same deterministic models
 * and inputs; the model and input sha256 are checked).
 */
import { createHash } from 'node:crypto';
import { spawn } from 'node:child_process';
import { execSync } from 'node:child_process';
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { cpus, tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { compileModel, type CompileReport } from '../compiler/compile.js';
import { compileMultiModel } from '../compiler/compile-multi.js';
import { FlashmemError } from '../compiler/errors.js';
import { DEFAULT_LIMITS, type TargetLimits } from '../compiler/target/limits.js';
import { resolveProfile } from '../compiler/profile/load.js';
import type { DeviceProfile } from '../schemas/profile.js';
import { randomInputs } from '../compiler/cli/inputs.js';
import onnxProto from 'onnx-proto';
import { packageRoot } from '../compiler/bundle/runtime-gen.js';
import { randomizeConstantWeights } from '../test/harness/randomize.js';
import { familyGraphs, resolveConfig } from '../fixtures/families/generate.js';
import { weightBytes as familyWeightBytes, writeGraphs } from '../fixtures/families/builder.js';
import { entriesFor, runCounts, type ModelEntry } from './sbs/models.js';

const ROOT = packageRoot();
const WORKER = join(ROOT, 'bench', 'sbs', 'worker.mjs');
const SYSTEMS = ['flashmemc-stream', 'flashmemc-preload', 'ort-web'] as const;
type SystemName = (typeof SYSTEMS)[number];
const INPUT_SEED = 7;
/** reference outputs larger than this are kept as an evenly strided sample */
const REF_MAX_ELEMENTS = 1 << 20;

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}
const flag = (name: string) => process.argv.includes(`--${name}`);
const log = (msg: string) => console.error(`[bench ${new Date().toISOString().slice(11, 19)}] ${msg}`);

interface InputFile { name: string; dtype: string; shape: number[]; file: string }
interface Prepared {
  name: string;
  onnx: string;
  /** external-data files next to the model (ORT Web is handed their bytes) */
  externalData: string[];
  modelSha256: string;
  inputs: InputFile[];
  inputSha256: string;
  /** compile results; `error` when flashmemc refused the model (e.g. FM_LIMIT on this device) */
  preload: { dir: string; report?: CompileReport; compileMs: number; error?: string };
  stream: { dir: string; report?: CompileReport; compileMs: number; budgetBytes?: number; error?: string };
}
interface RefOutput { name: string; length: number; stride: number; file: string }
interface Reference { modelSha256: string; inputSha256: string; runtime: string; outputs: RefOutput[] }

// ------------------------------------------------------------------------------------ preparation

/**
 * What bundles are compiled for: WebGPU's default limits with the adapter's binding and buffer
 * sizes (a GPT-Neo embedding table exceeds the default 128 MiB binding).
 */
let targetLimits: TargetLimits = DEFAULT_LIMITS;
/** --profile <name|file>: the device profile bundles are compiled for (kernel variants, load plans); the shipped default otherwise */
const compileProfile: DeviceProfile | undefined = arg('profile') ? resolveProfile(arg('profile')!) : undefined;

async function compileAtBudget(path: string, dir: string, budget: number): Promise<{ report: CompileReport; budget: number }> {
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      return { report: await compileModel(path, dir, { strategy: 'stream', memoryBudget: budget, limits: targetLimits, profile: compileProfile }), budget };
    } catch (e) {
      const min = e instanceof FlashmemError ? /smallest feasible budget[^,]*, (\d+) bytes|needs (\d+) bytes/.exec(e.message) : null;
      if (!min) throw e;
      budget = Math.ceil(Number(min[1] ?? min[2]) * 1.15);
    }
  }
  throw new Error(`${dir}: no feasible streaming budget found`);
}

/** the model's ONNX file (written once into the work folder) */
function modelFile(entry: ModelEntry, work: string, lightDir: string): string {
  const src = entry.source!;
  if ('light' in src) {
    const out = join(work, 'models', `${entry.name}.onnx`);
    if (!existsSync(out)) {
      mkdirSync(join(work, 'models'), { recursive: true });
      writeFileSync(out, randomizeConstantWeights(readFileSync(join(lightDir, `light_${src.light}.onnx`))));
    }
    return out;
  }
  // a transformer family: its `full` graph (decoders) or only graph, weights external above 64 MiB
  const dir = join(work, 'models', entry.name);
  const graphs = familyGraphs(resolveConfig(src.family, src.overrides ?? []), ['full']);
  const out = join(dir, `${graphs[0]!.name}.onnx`);
  if (!existsSync(out)) {
    const external = familyWeightBytes(graphs) > 64 * 1048576;
    writeGraphs(dir, graphs, external ? { externalFile: `${entry.name}.weights.bin` } : {});
  }
  return out;
}

async function prepare(entry: ModelEntry, work: string, lightDir: string, compile = true): Promise<Prepared> {
  const onnx = modelFile(entry, work, lightDir);
  const preloadDir = join(work, 'bundles', `${entry.name}.preload`);
  const streamDir = join(work, 'bundles', `${entry.name}.stream`);
  const message = (e: unknown) => (e instanceof Error ? e.message : String(e));
  const t0 = performance.now();
  let preload: Prepared['preload'];
  let stream: Prepared['stream'];
  try {
    if (!compile) throw new Error('not compiled (--references-only)');
    preload = { dir: preloadDir, report: await compileModel(onnx, preloadDir, { limits: targetLimits, profile: compileProfile }), compileMs: performance.now() - t0 };
  } catch (e) {
    preload = { dir: preloadDir, compileMs: performance.now() - t0, error: message(e) };
  }
  const t1 = performance.now();
  try {
    if (!preload.report) throw new Error(preload.error);
    const s = await compileAtBudget(onnx, streamDir, Math.round(preload.report.weightBytes * entry.budgetFraction));
    stream = { dir: streamDir, report: s.report, compileMs: performance.now() - t1, budgetBytes: s.budget };
  } catch (e) {
    stream = { dir: streamDir, compileMs: performance.now() - t1, error: message(e) };
  }
  const model = graphSignature(onnx);
  const values = randomInputs(model, INPUT_SEED);
  // masks: all positions valid (random integers are fine as token ids, not as a mask)
  for (const s of model.inputs) if (/mask/i.test(s.name)) (values[s.name] as { fill(v: unknown): void }).fill(s.dtype === 'int64' ? 1n : 1);
  const inputDir = join(work, 'inputs', entry.name);
  mkdirSync(inputDir, { recursive: true });
  const hash = createHash('sha256');
  const inputs = model.inputs.map((s, i) => {
    const data = values[s.name]!;
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    hash.update(bytes);
    const file = join(inputDir, `${i}.bin`);
    writeFileSync(file, bytes);
    return { name: s.name, dtype: s.dtype, shape: s.shape, file };
  });
  const modelDir = join(onnx, '..');
  const externalData = 'light' in entry.source! ? [] : readdirSync(modelDir).filter((f) => f.endsWith('.weights.bin')).map((f) => join(modelDir, f));
  // external weights are deterministic from the config's seed: their size stands in for their hash
  const modelHash = createHash('sha256').update(readFileSync(onnx));
  for (const f of externalData) modelHash.update(`${f.split('/').pop()}:${statSync(f).size}`);
  return {
    name: entry.name, onnx, externalData, modelSha256: modelHash.digest('hex'), inputs, inputSha256: hash.digest('hex'),
    preload, stream,
  };
}

const ONNX_DTYPES: Record<number, string> = { 1: 'float32', 6: 'int32', 7: 'int64', 9: 'bool', 10: 'float16', 11: 'float64' };

/** The graph inputs (not initializers) with their dtypes and static shapes, read without the weights. */
function graphSignature(onnx: string): Parameters<typeof randomInputs>[0] {
  const graph = onnxProto.onnx.ModelProto.decode(readFileSync(onnx)).graph!;
  const initializers = new Set((graph.initializer ?? []).map((t) => t.name));
  const inputs = (graph.input ?? []).filter((i) => !initializers.has(i.name!)).map((i) => {
    const t = i.type!.tensorType!;
    const shape = (t.shape?.dim ?? []).map((d) => {
      if (d.dimValue === undefined || d.dimValue === null) throw new Error(`${onnx}: input ${i.name} has a symbolic dimension`);
      return Number(d.dimValue);
    });
    return { name: i.name!, dtype: ONNX_DTYPES[t.elemType!] ?? `onnx-${t.elemType}`, shape };
  });
  return { inputs } as unknown as Parameters<typeof randomInputs>[0];
}

// -------------------------------------------------------------------------------------- reference

async function onnxruntimeNode(): Promise<typeof import('onnxruntime-node') | undefined> {
  try {
    return await import('onnxruntime-node');
  } catch {
    return undefined;
  }
}

async function reference(p: Prepared, refs: string): Promise<Reference> {
  const dir = join(refs, p.name);
  const metaFile = join(dir, 'reference.json');
  const ort = await onnxruntimeNode();
  if (!ort) {
    if (!existsSync(metaFile)) throw new Error(`${p.name}: onnxruntime-node is not installed and ${metaFile} does not exist (write it with --references-only)`);
    const ref = JSON.parse(readFileSync(metaFile, 'utf8')) as Reference;
    if (ref.modelSha256 !== p.modelSha256 || ref.inputSha256 !== p.inputSha256) throw new Error(`${p.name}: the reference in ${dir} was made from another model or input`);
    return { ...ref, outputs: ref.outputs.map((o) => ({ ...o, file: join(dir, o.file) })) };
  }
  const session = await ort.InferenceSession.create(p.onnx, { logSeverityLevel: 3 });
  const ctor: Record<string, (b: Buffer) => ArrayBufferView> = {
    float32: (b) => new Float32Array(b.buffer, b.byteOffset, b.byteLength / 4),
    int32: (b) => new Int32Array(b.buffer, b.byteOffset, b.byteLength / 4),
    int64: (b) => new BigInt64Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength)),
  };
  const feeds = Object.fromEntries(p.inputs.map((i) => [i.name, new ort.Tensor(i.dtype as 'float32', ctor[i.dtype]!(readFileSync(i.file)) as Float32Array, i.shape)]));
  const result = await session.run(feeds);
  mkdirSync(dir, { recursive: true });
  const outputs: RefOutput[] = session.outputNames.map((name, i) => {
    const data = Float32Array.from(result[name]!.data as ArrayLike<number>, Number);
    const stride = Math.max(1, Math.ceil(data.length / REF_MAX_ELEMENTS));
    const kept = stride === 1 ? data : Float32Array.from({ length: Math.ceil(data.length / stride) }, (_, k) => data[k * stride]!);
    const file = `${i}.bin`;
    writeFileSync(join(dir, file), new Uint8Array(kept.buffer, kept.byteOffset, kept.byteLength));
    return { name, length: data.length, stride, file };
  });
  await session.release();
  const ref: Reference = { modelSha256: p.modelSha256, inputSha256: p.inputSha256, runtime: `onnxruntime-node ${ort.env.versions?.node ?? ''} (CPU)`.trim(), outputs };
  writeFileSync(metaFile, `${JSON.stringify({ ...ref, commit: gitCommit() }, null, 1)}\n`);
  return { ...ref, outputs: outputs.map((o) => ({ ...o, file: join(dir, o.file) })) };
}

function readF32(file: string): Float32Array {
  const b = readFileSync(file);
  return new Float32Array(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
}

/** max |a - ref| and that over max |ref|, across the outputs (sampled where the reference is) */
function agreement(outputs: { part: number; name: string; file: string }[], refs: Reference[]): { maxAbsError: number; maxRelError: number; compared: number } {
  let maxAbs = 0, refMax = 0, compared = 0;
  refs.forEach((ref, part) => {
    for (const r of ref.outputs) {
      const out = outputs.find((o) => o.part === part && o.name === r.name);
      if (!out) throw new Error(`output ${r.name} of part ${part} missing`);
      const a = readF32(out.file), e = readF32(r.file);
      if (a.length !== r.length) throw new Error(`output ${r.name}: ${a.length} values, reference has ${r.length}`);
      for (let k = 0; k < e.length; k++) {
        const d = Math.abs(a[k * r.stride]! - e[k]!);
        maxAbs = Math.max(maxAbs, Number.isNaN(d) ? Infinity : d);
        refMax = Math.max(refMax, Math.abs(e[k]!));
        compared++;
      }
    }
  });
  return { maxAbsError: maxAbs, maxRelError: maxAbs / (refMax || 1), compared };
}

// ------------------------------------------------------------------------------------ measurement

interface WorkerResult {
  system: string;
  error?: string;
  device?: Record<string, unknown>;
  settings: Record<string, unknown>;
  timings: { deviceMs: number; importMs: number; loadMs: number; graphCaptureProbeMs: number; firstRunMs: number; firstOutputAtMs: number; warm: { n: number; median: number; p90: number; min: number; max: number; all: number[] } };
  firstOutputEpochMs: number;
  gpu: { peakBytes: number; liveBytesAtEnd: number; timeline: [number, number][]; marks: [number, string, number][]; runtimeReportedPeakBytes?: number[] };
  host: { peakRssBytes: number; cpuUserMs: number; cpuSystemMs: number };
  outputs: { part: number; name: string; file: string; length: number }[];
}

/**
 * The driver's shader cache lives in `cacheDir`: empty for the measured process (so its cold start
 * compiles every shader, as on a first visit); a second process reusing it measures a repeat visit.
 */
function runWorker(job: Record<string, unknown>, jobFile: string, cacheDir: string, timeoutMs: number): Promise<{ result: WorkerResult; spawnToFirstOutputMs: number; stderr: string }> {
  writeFileSync(jobFile, JSON.stringify(job));
  return new Promise((resolvePromise, reject) => {
    const spawnedAt = performance.timeOrigin + performance.now();
    const env = {
      ...process.env, MESA_SHADER_CACHE_DISABLE: 'false', MESA_SHADER_CACHE_DIR: cacheDir,
      __GL_SHADER_DISK_CACHE: '1', __GL_SHADER_DISK_CACHE_PATH: cacheDir, __GL_SHADER_DISK_CACHE_SKIP_CLEANUP: '1',
    };
    const child = spawn(process.execPath, ['--liftoff-only', WORKER, jobFile], { cwd: ROOT, env, stdio: ['ignore', 'inherit', 'pipe'] });
    let stderr = '';
    child.stderr.on('data', (d: Buffer) => { stderr += d.toString(); });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('error', reject);
    child.on('exit', (code, signal) => {
      clearTimeout(timer);
      let result: WorkerResult;
      try {
        result = JSON.parse(readFileSync(job.resultFile as string, 'utf8')) as WorkerResult;
      } catch {
        result = { system: String(job.system), error: `worker exited with ${signal ?? code}: ${stderr.slice(-600)}` } as WorkerResult;
      }
      if (code !== 0 && !result.error) result.error = `worker exited with ${signal ?? code}`;
      // ORT's refused graph-capture attempts are not counted (an app would not make them)
      const spawnToFirstOutputMs = result.firstOutputEpochMs ? result.firstOutputEpochMs - spawnedAt - (result.timings?.graphCaptureProbeMs ?? 0) : NaN;
      resolvePromise({ result, spawnToFirstOutputMs, stderr });
    });
  });
}

interface SystemRow {
  system: SystemName;
  error?: string;
  settings?: Record<string, unknown>;
  compileMs?: number;
  budgetBytes?: number;
  plannedPeakBytes?: number;
  coldStart?: { processStartToFirstOutputMs: number; deviceMs: number; importMs: number; loadMs: number; firstRunMs: number };
  /** the same, in a second process that finds the first one's shaders in the driver's cache */
  coldStartWarmShaderCache?: { processStartToFirstOutputMs: number; deviceMs: number; importMs: number; loadMs: number; firstRunMs: number };
  warm?: { runs: number; warmup: number; medianMs: number; p90Ms: number; minMs: number; maxMs: number; allMs: number[] };
  tokensPerSecond?: { prefill: number; fixedShapeSteps: number };
  peakGpuBytes?: number;
  runtimeReportedPeakBytes?: number[];
  peakHostRssBytes?: number;
  agreement?: { maxAbsError: number; maxRelError: number; compared: number };
  memoryTimeline?: { points: [number, number][]; marks: [number, string, number][] };
}

/** a flashmemc bundle the measured process loads: one model's, or a multi-model bundle (sequence) */
interface Built { dir: string; compileMs: number; plannedPeakBytes?: number; budgetBytes?: number; error?: string; multi: boolean }

function singleBuilt(p: Prepared, strategy: 'preload' | 'stream'): Built {
  const b = p[strategy];
  return { dir: b.dir, compileMs: b.compileMs, plannedPeakBytes: b.report?.plannedPeakBytes, budgetBytes: strategy === 'stream' ? p.stream.budgetBytes : undefined, error: b.error, multi: false };
}

/**
 * The sequence's models in one multi-model bundle (shared GPU memory): preload, or streamed under
 * budgetFraction of all their weights with the run order declared (planned as one joint program).
 */
async function multiBuilt(entry: ModelEntry, parts: Prepared[], work: string, strategy: 'preload' | 'stream'): Promise<Built> {
  const dir = join(work, 'bundles', `${entry.name}.${strategy}`);
  const inputs = parts.map((p) => ({ name: p.name, path: p.onnx }));
  const t0 = performance.now();
  try {
    if (strategy === 'preload') {
      const report = await compileMultiModel(inputs, dir, { limits: targetLimits, profile: compileProfile });
      return { dir, compileMs: performance.now() - t0, plannedPeakBytes: report.plannedPeakBytes, multi: true };
    }
    const weights = parts.reduce((s, p) => s + (p.preload.report?.weightBytes ?? 0), 0);
    let budget = Math.round(weights * entry.budgetFraction);
    for (let attempt = 0; ; attempt++) {
      try {
        const report = await compileMultiModel(inputs, dir, { limits: targetLimits, memoryBudget: budget, sequence: parts.map((p) => p.name), profile: compileProfile });
        return { dir, compileMs: performance.now() - t0, plannedPeakBytes: report.plannedPeakBytes, budgetBytes: budget, multi: true };
      } catch (e) {
        if (attempt >= 8 || !(e instanceof FlashmemError) || !/budget/.test(e.message)) throw e;
        const min = /smallest feasible budget[^,]*, (\d+) bytes|needs (\d+) bytes|in all, over/.exec(e.message);
        budget = Math.ceil(Math.max(budget * 1.15, Number(min?.[1] ?? min?.[2] ?? 0) * 1.15));
      }
    }
  } catch (e) {
    return { dir, compileMs: performance.now() - t0, error: e instanceof Error ? e.message : String(e), multi: true };
  }
}

async function measure(entry: ModelEntry, parts: Prepared[], bundles: Record<'preload' | 'stream', Built>, refs: Reference[], work: string, counts: { warmup: number; runs: number }): Promise<SystemRow[]> {
  const rows: SystemRow[] = [];
  for (const system of SYSTEMS) {
    const dir = join(work, 'runs', entry.name, system);
    rmSync(dir, { recursive: true, force: true });
    mkdirSync(dir, { recursive: true });
    const strategy = system === 'flashmemc-stream' ? 'stream' : 'preload';
    const built = bundles[strategy];
    const job = {
      system: system === 'ort-web' ? 'ort-web' : 'flashmemc', label: system,
      parts: parts.map((p) => ({ name: p.name, model: p.onnx, externalData: p.externalData, bundle: built.dir, modelName: built.multi ? p.name : undefined, inputs: p.inputs })),
      warmup: counts.warmup, runs: counts.runs, outputsDir: join(dir, 'outputs'), resultFile: join(dir, 'result.json'),
      ort: { graphCapture: arg('ort-graph-capture') === undefined ? 'auto' : arg('ort-graph-capture') === 'true' },
    };
    const compileError = system === 'ort-web' ? undefined : built.error;
    if (compileError) {
      rows.push({ system, compileMs: built.compileMs, error: `compile: ${compileError}` });
      log(`${entry.name}: ${system}: not run, compile failed: ${compileError}`);
      continue;
    }
    log(`${entry.name}: ${system} (${counts.warmup} warm-up + ${counts.runs} timed runs)`);
    const cacheDir = join(dir, 'shader-cache');
    mkdirSync(cacheDir, { recursive: true });
    const { result, spawnToFirstOutputMs, stderr } = await runWorker(job, join(dir, 'job.json'), cacheDir, 20 * 60_000);
    const row: SystemRow = { system };
    if (system !== 'ort-web') {
      row.compileMs = built.compileMs;
      row.plannedPeakBytes = built.plannedPeakBytes;
      row.budgetBytes = built.budgetBytes;
    }
    if (result.error) {
      row.error = result.error;
      log(`${entry.name}: ${system} failed: ${result.error}\n${stderr.slice(-1500)}`);
      rows.push(row);
      continue;
    }
    const t = result.timings;
    row.settings = result.settings;
    row.coldStart = { processStartToFirstOutputMs: spawnToFirstOutputMs, deviceMs: t.deviceMs, importMs: t.importMs, loadMs: t.loadMs, firstRunMs: t.firstRunMs };
    row.warm = { runs: t.warm.n, warmup: counts.warmup, medianMs: t.warm.median, p90Ms: t.warm.p90, minMs: t.warm.min, maxMs: t.warm.max, allMs: t.warm.all };
    if (entry.kind === 'decoder' && entry.contextTokens) {
      row.tokensPerSecond = { prefill: (entry.contextTokens * 1000) / t.warm.median, fixedShapeSteps: 1000 / t.warm.median };
    }
    if (!flag('no-repeat-visit') && entry.repeatVisit !== false) {
      // a repeat visit: a new process whose driver shader cache holds the first process's shaders
      const again = await runWorker({ ...job, warmup: 0, runs: 1, outputsDir: join(dir, 'outputs-repeat'), resultFile: join(dir, 'result-repeat.json') }, join(dir, 'job-repeat.json'), cacheDir, 20 * 60_000);
      if (!again.result.error) {
        const r = again.result.timings;
        row.coldStartWarmShaderCache = { processStartToFirstOutputMs: again.spawnToFirstOutputMs, deviceMs: r.deviceMs, importMs: r.importMs, loadMs: r.loadMs, firstRunMs: r.firstRunMs };
      }
    }
    row.peakGpuBytes = result.gpu.peakBytes;
    row.runtimeReportedPeakBytes = result.gpu.runtimeReportedPeakBytes;
    row.peakHostRssBytes = result.host.peakRssBytes;
    row.agreement = agreement(result.outputs, refs);
    row.memoryTimeline = { points: result.gpu.timeline, marks: result.gpu.marks };
    (row as SystemRow & { device?: unknown }).device = result.device;
    rows.push(row);
    log(`${entry.name}: ${system}: first output ${spawnToFirstOutputMs.toFixed(0)} ms after spawn, warm median ${t.warm.median.toFixed(1)} ms, peak GPU ${(result.gpu.peakBytes / 1048576).toFixed(1)} MiB, max abs err ${row.agreement.maxAbsError.toExponential(2)}`);
  }
  return rows;
}

function ratios(rows: SystemRow[]): Record<string, Record<string, number>> {
  const peer = rows.find((r) => r.system === 'ort-web');
  const out: Record<string, Record<string, number>> = {};
  if (!peer || peer.error) return out;
  for (const r of rows) {
    if (r.system === 'ort-web' || r.error) continue;
    out[`${r.system}/ort-web`] = {
      processStartToFirstOutput: r.coldStart!.processStartToFirstOutputMs / peer.coldStart!.processStartToFirstOutputMs,
      processStartToFirstOutputWarmShaderCache: (r.coldStartWarmShaderCache?.processStartToFirstOutputMs ?? NaN) / (peer.coldStartWarmShaderCache?.processStartToFirstOutputMs ?? NaN),
      load: r.coldStart!.loadMs / (peer.coldStart!.loadMs + peer.coldStart!.importMs),
      warmMedian: r.warm!.medianMs / peer.warm!.medianMs,
      warmP90: r.warm!.p90Ms / peer.warm!.p90Ms,
      peakGpuBytes: r.peakGpuBytes! / peer.peakGpuBytes!,
      peakHostRss: r.peakHostRssBytes! / peer.peakHostRssBytes!,
    };
  }
  return out;
}

// ------------------------------------------------------------------------------------------- main

function gitCommit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { cwd: ROOT, stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

/** a package's version, from the nearest node_modules above the package root (a snapshot may have none of its own) */
function packageVersion(name: string): string | null {
  for (let dir = ROOT; ; dir = dirname(dir)) {
    try {
      return (JSON.parse(readFileSync(join(dir, 'node_modules', name, 'package.json'), 'utf8')) as { version: string }).version;
    } catch {
      if (dirname(dir) === dir) return null;
    }
  }
}

/**
 * Prepares models in `jobs` child processes at once (compiling is single-threaded; the GPU machine
 * has 16 cores). Each child writes <work>/prepared/<name>.json, which the parent then reads.
 */
async function prepareInParallel(names: string[], jobs: number, limits: TargetLimits): Promise<void> {
  const queue = [...names];
  const script = process.argv[1]!;
  const passThrough = ['machine', 'work', 'light-dir', 'refs', 'profile'].flatMap((k) => (arg(k) ? [`--${k}`, arg(k)!] : []));
  const one = async (): Promise<void> => {
    for (let name = queue.shift(); name; name = queue.shift()) {
      log(`preparing ${name} (child process)`);
      await new Promise<void>((done, reject) => {
        const child = spawn(process.execPath, [...process.execArgv, script, '--prepare-only', '--models', name!, ...passThrough], {
          stdio: ['ignore', 'ignore', 'inherit'], env: { ...process.env, BENCH_TARGET_LIMITS: JSON.stringify(limits) },
        });
        child.on('error', reject);
        child.on('exit', (code) => (code === 0 ? done() : reject(new Error(`preparing ${name} failed (exit ${code})`))));
      });
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, names.length) }, one));
}

async function main(): Promise<void> {
  const started = Date.now();
  const machine = arg('machine') ?? 'llvmpipe';
  const only = arg('models')?.split(',');
  const work = resolve(arg('work') ?? join(tmpdir(), `flashmemc-bench-${machine}`));
  const results = resolve(arg('results') ?? join(ROOT, 'bench', 'results', machine));
  const lightDir = resolve(arg('light-dir') ?? join(process.env.FLASHMEM_CONFORMANCE_DIR ?? join(ROOT, '..', 'shared', 'conformance', 'onnx'), 'light'));
  const refs = resolve(arg('refs') ?? join(work, 'references'));
  const entries = entriesFor(machine, only);
  mkdirSync(work, { recursive: true });
  log(`machine ${machine}, work ${work}, ${entries.length} entries`);
  // the adapter, asked in a child process (this one compiles, blocking its main thread: no device here)
  const adapterFile = join(work, 'adapter.json');
  if (!process.env.BENCH_TARGET_LIMITS) execSync(`"${process.execPath}" "${WORKER}" --adapter "${adapterFile}"`, { stdio: ['ignore', 'ignore', 'pipe'] });
  const adapter = JSON.parse(readFileSync(adapterFile, 'utf8')) as { description: Record<string, unknown>; limits: Record<string, number> };
  targetLimits = process.env.BENCH_TARGET_LIMITS ? JSON.parse(process.env.BENCH_TARGET_LIMITS) as TargetLimits : {
    ...DEFAULT_LIMITS,
    maxStorageBufferBindingSize: Math.max(DEFAULT_LIMITS.maxStorageBufferBindingSize, adapter.limits.maxStorageBufferBindingSize ?? 0),
    maxBufferSize: Math.max(DEFAULT_LIMITS.maxBufferSize, adapter.limits.maxBufferSize ?? 0),
  };
  if (!process.env.BENCH_TARGET_LIMITS) log(`adapter ${JSON.stringify(adapter.description)}; compiling for ${JSON.stringify(targetLimits)}`);

  const prepared = new Map<string, Prepared>();
  const references = new Map<string, Reference>();
  const needed = new Set<string>();
  for (const e of entries) if (!e.pending) for (const n of e.parts ?? [e.name]) needed.add(n);
  const preparedFile = (name: string) => join(work, 'prepared', `${name}.json`);
  const jobs = Number(arg('jobs') ?? Math.max(1, Math.min(8, Math.floor(cpus().length / 2))));
  if (jobs > 1 && !flag('prepare-only') && !flag('references-only')) {
    for (const name of needed) rmSync(preparedFile(name), { force: true });
    // the biggest models (declared last) first
    await prepareInParallel([...needed].reverse(), jobs, targetLimits);
  }
  for (const name of needed) {
    const entry = entriesFor(machine).find((m) => m.name === name) ?? entriesFor('h100').find((m) => m.name === name);
    if (!entry || entry.pending) throw new Error(`sequence part ${name} is not a runnable model entry`);
    let p: Prepared;
    if (existsSync(preparedFile(name)) && !flag('prepare-only')) {
      p = JSON.parse(readFileSync(preparedFile(name), 'utf8')) as Prepared;
    } else {
      log(`preparing ${name}`);
      p = await prepare(entry, work, lightDir, !flag('references-only'));
      if (flag('prepare-only')) {
        mkdirSync(join(work, 'prepared'), { recursive: true });
        writeFileSync(preparedFile(name), JSON.stringify(p));
      }
    }
    prepared.set(name, p);
    references.set(name, await reference(p, refs));
    if (flag('references-only')) log(`${name}: reference written`);
    else if (p.preload.error) log(`${name}: flashmemc compile failed: ${p.preload.error}`);
    else log(`${name}: compiled preload in ${p.preload.compileMs.toFixed(0)} ms, stream ${p.stream.error ? `failed: ${p.stream.error}` : `(budget ${(p.stream.budgetBytes! / 1048576).toFixed(2)} MiB) in ${p.stream.compileMs.toFixed(0)} ms`}`);
  }
  if (flag('prepare-only')) return;
  if (flag('references-only')) {
    log(`references written to ${refs}`);
    return;
  }

  const rows: Record<string, unknown>[] = [];
  let device: unknown;
  for (const entry of entries) {
    if (entry.pending) {
      rows.push({ model: entry.name, kind: entry.kind, pending: entry.pending, source: entry.source, parts: entry.parts });
      continue;
    }
    const partNames = entry.parts ?? [entry.name];
    const parts = partNames.map((n) => prepared.get(n)!);
    const counts = { ...runCounts(entry, machine) };
    if (arg('runs')) counts.runs = Number(arg('runs'));
    if (arg('warmup')) counts.warmup = Number(arg('warmup'));
    const bundles = entry.parts
      ? { preload: await multiBuilt(entry, parts, work, 'preload'), stream: await multiBuilt(entry, parts, work, 'stream') }
      : { preload: singleBuilt(parts[0]!, 'preload'), stream: singleBuilt(parts[0]!, 'stream') };
    const systems = await measure(entry, parts, bundles, partNames.map((n) => references.get(n)!), work, counts);
    device ??= systems.map((s) => (s as { device?: unknown }).device).find(Boolean);
    for (const s of systems) delete (s as { device?: unknown }).device;
    rows.push({
      model: entry.name, kind: entry.kind, parts: entry.parts,
      weightBytes: parts.reduce((s, p) => s + (p.preload.report?.weightBytes ?? NaN), 0),
      modelSha256: parts.map((p) => p.modelSha256), inputShapes: parts.map((p) => p.inputs.map((i) => ({ name: i.name, shape: i.shape }))),
      reference: references.get(partNames[0]!)!.runtime,
      flashmemcSequenceMode: entry.kind === 'sequence' ? 'one multi-model bundle (shared GPU memory, one session); stream: the run order declared with --sequence and planned as one joint program' : undefined,
      systems, ratios: ratios(systems),
    });
    writeResults();
  }
  writeResults();
  log(`done in ${((Date.now() - started) / 1000).toFixed(0)} s; results in ${results}`);

  function writeResults(): void {
    mkdirSync(results, { recursive: true });
    const refMeta = [...references.values()][0] as (Reference & { commit?: string }) | undefined;
    const commit = process.env.BENCH_COMMIT ?? (gitCommit() !== 'unknown' ? gitCommit() : (refMeta?.commit ?? 'unknown'));
    const doc = {
      benchmark: 'side-by-side', machine,
      command: `npm run bench -- ${process.argv.slice(2).map((a) => (/\s/.test(a) ? JSON.stringify(a) : a)).join(' ')}`.trim(),
      commit, date: new Date(started).toISOString(), durationS: (Date.now() - started) / 1000,
      versions: { node: process.version, flashmemc: (JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8')) as { version: string }).version, webgpu: packageVersion('webgpu'), 'onnxruntime-web': packageVersion('onnxruntime-web'), 'onnxruntime-node': packageVersion('onnxruntime-node') },
      device: device ?? adapter.description, compileLimits: targetLimits, host: { cpus: cpus().length, cpuModel: cpus()[0]?.model },
      notes: process.argv.flatMap((a, i) => (process.argv[i - 1] === '--note' ? [a] : [])),
      method: {
        processes: 'each system and model in a fresh `node --liftoff-only bench/sbs/worker.mjs` process; the same Dawn backend, adapter, requested limits and features for all; the driver shader cache (MESA_SHADER_CACHE_DIR, __GL_SHADER_DISK_CACHE_PATH) starts empty for each measured process',
        repeatVisit: 'coldStartWarmShaderCache: a second process per system and model, started with the first one\'s driver shader cache (a returning visitor); it runs once',
        gpuMemory: 'createBuffer/createTexture and destroy wrapped on the GPUDevice (bench/sbs/gpu-memory.mjs), peak of live bytes from device creation to the end of the timed runs',
        coldStart: 'processStartToFirstOutputMs: from spawn() in the parent to the first output in host memory (less the time of graph-capture session attempts ORT refused); loadMs: loadBundle (flashmemc) or InferenceSession.create (ORT, whose module import is importMs); flashmemc compile time (compileMs) is offline and separate',
        warm: 'each timed run: upload inputs, run, outputs read back into host memory',
        agreement: 'max |output - onnxruntime-node CPU| over all outputs (maxRelError divides by max |reference|), same ONNX file and inputs',
        decoders: 'tokens/s: prefill = context tokens / warm median; fixedShapeSteps = full-context forward passes per second',
      },
      rows,
    };
    writeFileSync(join(results, 'side-by-side.json'), `${JSON.stringify(doc, null, 1)}\n`);
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
