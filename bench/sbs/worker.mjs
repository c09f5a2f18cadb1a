// One measured process of the side-by-side benchmark (bench/side-by-side.ts starts one per system
// and model): creates the Dawn device the same way for every system, wraps it with the shared GPU
// memory counter, loads the model(s) with flashmemc's bundle runtime or ONNX Runtime Web's WebGPU
// EP, runs them, writes outputs and a JSON result. Plain JavaScript (no tsx, no build) so the same
// file runs on the GPU machine; run as `node --liftoff-only bench/sbs/worker.mjs job.json` for all systems.
//
// job: { system: 'flashmemc' | 'ort-web', parts: [{ bundle?, model?, modelName?, inputs: [{ name, dtype, shape, file }] }],
//        warmup, runs, outputsDir, resultFile, ort?: { graphCapture: 'auto' | boolean } }
// A run executes every part in order (one part for a single model; a multi-model sequence has several).
import { mkdirSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { basename, join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { countGpuMemory } from './gpu-memory.mjs';

// `worker.mjs --adapter <out.json>` only writes the adapter's limits and description
const adapterOnly = process.argv[2] === '--adapter';
const job = adapterOnly ? { parts: [], resultFile: process.argv[3] } : JSON.parse(readFileSync(process.argv[2], 'utf8'));
const result = { system: job.system, label: job.label, timings: {}, settings: {} };
/** per part of the job, the duration of each of its runs (first, warm-up and timed) */
const partTimes = job.parts.map(() => []);

let holders = 0;
let holder;
/** Dawn-node's promises hold no event-loop handle: keep the loop alive while one is pending. */
async function keepAlive(promise) {
  if (holders++ === 0) holder = setInterval(() => {}, 1 << 30);
  try {
    return await promise;
  } finally {
    if (--holders === 0) clearInterval(holder);
  }
}

const LIMITS = [
  'maxBindGroups', 'maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY', 'maxComputeWorkgroupSizeZ',
  'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension', 'maxUniformBufferBindingSize',
];
const FEATURES = ['shader-f16', 'subgroups', 'timestamp-query'];

/** Same adapter and device for every system: the adapter's maxima for LIMITS and the FEATURES it has. */
async function createDevice() {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const dawn = await import('webgpu');
  Object.assign(globalThis, dawn.globals);
  const backends = process.env.FLASHMEM_WEBGPU_BACKEND ? [process.env.FLASHMEM_WEBGPU_BACKEND] : ['vulkan', 'opengles'];
  for (const backend of backends) {
    const gpu = dawn.create([`backend=${backend}`]);
    globalThis.__benchGpu = gpu; // Dawn instances must outlive their devices
    let featureLevel = 'core';
    let adapter = await keepAlive(gpu.requestAdapter());
    if (!adapter) {
      adapter = await keepAlive(gpu.requestAdapter({ featureLevel: 'compatibility' }));
      featureLevel = 'compatibility';
    }
    if (!adapter) continue;
    const requiredLimits = Object.fromEntries(LIMITS.filter((k) => adapter.limits[k] !== undefined).map((k) => [k, adapter.limits[k]]));
    const requiredFeatures = FEATURES.filter((f) => adapter.features.has(f));
    const device = await keepAlive(adapter.requestDevice({ requiredLimits, requiredFeatures }));
    const info = adapter.info ?? {};
    return { gpu, adapter, device, description: { backend, featureLevel, vendor: info.vendor, architecture: info.architecture, device: info.device, description: info.description, features: requiredFeatures } };
  }
  throw new Error(`no WebGPU adapter on ${backends.join(', ')}`);
}

function readInputs(part) {
  const ctor = { float32: Float32Array, int32: Int32Array, int64: BigInt64Array, uint8: Uint8Array };
  return part.inputs.map((s) => {
    const bytes = readFileSync(s.file);
    const C = ctor[s.dtype];
    if (!C) throw new Error(`unsupported input dtype ${s.dtype}`);
    return { ...s, data: new C(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength)) };
  });
}

function summarize(times) {
  const s = [...times].sort((a, b) => a - b);
  const q = (p) => s[Math.min(s.length - 1, Math.floor(p * s.length))];
  return { n: s.length, median: q(0.5), p90: q(0.9), min: s[0], max: s[s.length - 1], all: times.map((t) => +t.toFixed(3)) };
}

// ---------------------------------------------------------------- flashmemc
async function flashmemcSystem(device, parts) {
  const sessions = new Map();
  const t0 = performance.now();
  for (const part of parts) {
    if (sessions.has(part.bundle)) continue;
    const { loadBundle } = await import(pathToFileURL(resolve(part.bundle, 'runtime.js')).href);
    sessions.set(part.bundle, await keepAlive(loadBundle(resolve(part.bundle), { device })));
  }
  const loadMs = performance.now() - t0;
  const prepared = parts.map((p) => ({ part: p, session: sessions.get(p.bundle), inputs: Object.fromEntries(readInputs(p).map((i) => [i.name, i.data])) }));
  return {
    loadMs,
    settings: { runtime: 'bundle runtime.js, loadBundle(dir, { device })', strategy: parts.map((p) => JSON.parse(readFileSync(join(p.bundle, 'schedule.json'), 'utf8')).models.find((m) => !p.modelName || m.name === p.modelName)?.strategy) },
    async run() {
      const outs = [];
      for (const [i, p] of prepared.entries()) {
        const t = performance.now();
        outs.push(await keepAlive(p.part.modelName ? p.session.run(p.part.modelName, p.inputs) : p.session.run(p.inputs)));
        partTimes[i].push(performance.now() - t);
      }
      return outs;
    },
    stats: () => [...sessions.values()].map((s) => s.stats()),
  };
}

// ---------------------------------------------------------------- ONNX Runtime Web (WebGPU EP)
async function ortSystem(device, gpu, adapter, parts, options, memory) {
  // ORT's backend initialisation asks navigator.gpu for an adapter even when given a device: hand
  // it the adapter the device came from (here on llvmpipe that is a compatibility-mode one)
  gpu.requestAdapter = async () => adapter;
  Object.defineProperty(globalThis, 'navigator', { value: { ...globalThis.navigator, gpu }, configurable: true, writable: true });
  // dawn-node rejects writeBuffer data that views a SharedArrayBuffer (ORT's wasm heap): copy those
  const writeBuffer = GPUQueue.prototype.writeBuffer;
  GPUQueue.prototype.writeBuffer = function (buffer, offset, data, dataOffset, size) {
    if (ArrayBuffer.isView(data) && data.buffer instanceof SharedArrayBuffer) data = data.slice();
    else if (data instanceof SharedArrayBuffer) data = new Uint8Array(data).slice().buffer;
    return writeBuffer.call(this, buffer, offset, data, dataOffset, size);
  };
  const ti = performance.now();
  const ort = await import('onnxruntime-web/webgpu');
  const importMs = performance.now() - ti;
  ort.env.logLevel = 'error';
  const wanted = options?.graphCapture ?? 'auto';
  const sessionOptions = (graphCapture, externalData) => ({
    externalData,
    executionProviders: [{ name: 'webgpu', device }],
    graphOptimizationLevel: 'all',
    preferredOutputLocation: 'gpu-buffer',
    enableGraphCapture: graphCapture,
    logSeverityLevel: 3,
  });
  // graph capture per session where ORT accepts it (it refuses sessions with nodes outside the
  // WebGPU EP); a failure at the first run falls back to no capture for every session
  const rounds = wanted === 'auto' ? ['auto', false] : [wanted];
  let lastError;
  let probeMs = 0;
  for (const round of rounds) {
    const sessions = [];
    const captured = [];
    try {
      const t0 = performance.now();
      for (const part of parts) {
        const weightBytes = statSync(part.model).size + (part.externalData ?? []).reduce((sum, f) => sum + statSync(f).size, 0);
        if (weightBytes > 4 * 2 ** 30) {
          throw new Error(`not attempted: ONNX Runtime Web loads a model's initializers into its 32-bit wasm heap (at most 4 GiB); this model has ${(weightBytes / 2 ** 30).toFixed(2)} GiB`);
        }
        const bytes = readFileSync(part.model);
        const externalData = part.externalData?.length ? part.externalData.map((f) => ({ path: basename(f), data: readFileSync(f) })) : undefined;
        let session;
        if (round === 'auto' || round === true) {
          const tp = performance.now();
          try {
            session = await keepAlive(ort.InferenceSession.create(bytes, sessionOptions(true, externalData)));
          } catch (e) {
            if (round === true) throw e;
            // an app would know not to ask: the refused attempt is not counted as load time
            probeMs += performance.now() - tp;
            (result.settings.graphCaptureRefused ??= []).push(`${part.name ?? part.model}: ${String(e?.message ?? e).slice(0, 300)}`);
          }
        }
        captured.push(Boolean(session));
        session ??= await keepAlive(ort.InferenceSession.create(bytes, sessionOptions(false, externalData)));
        sessions.push(session);
      }
      const loadMs = performance.now() - t0 - probeMs;
      memory.mark('first run');
      // inputs live in GPU buffers (required by graph capture; also spares a staging copy without it)
      const prepared = parts.map((part, i) => {
        const inputs = readInputs(part);
        const feeds = {};
        const uploads = [];
        for (const inp of inputs) {
          const size = Math.ceil(inp.data.byteLength / 16) * 16;
          const buffer = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
          feeds[inp.name] = ort.Tensor.fromGpuBuffer(buffer, { dataType: inp.dtype, dims: inp.shape });
          uploads.push([buffer, inp.data]);
        }
        return { session: sessions[i], feeds, uploads, graphCapture: captured[i] };
      });
      const sys = {
        importMs, loadMs, probeMs,
        settings: {
          version: ort.env.versions?.web ?? ort.env.versions?.common, executionProvider: 'webgpu (our GPUDevice)', graphOptimizationLevel: 'all',
          preferredOutputLocation: 'gpu-buffer', enableGraphCapture: captured.length === 1 ? captured[0] : captured, inputs: 'GPU buffers (Tensor.fromGpuBuffer), written with queue.writeBuffer each run',
          wasmNumThreads: ort.env.wasm.numThreads, sessions: sessions.length,
        },
        async run() {
          const outs = [];
          for (const [i, p] of prepared.entries()) {
            const t0 = performance.now();
            for (const [buffer, data] of p.uploads) device.queue.writeBuffer(buffer, 0, data);
            const results = await keepAlive(p.session.run(p.feeds));
            const out = {};
            for (const name of p.session.outputNames) {
              const t = results[name];
              out[name] = await keepAlive(t.location === 'gpu-buffer' ? t.getData(false) : Promise.resolve(t.data));
              // a captured graph owns its output buffers; otherwise release each run's outputs
              if (!p.graphCapture && t.location === 'gpu-buffer') t.dispose();
            }
            outs.push(out);
            partTimes[i].push(performance.now() - t0);
          }
          return outs;
        },
      };
      // graph capture fails at the first run when its rules are broken (e.g. an op falls back to CPU)
      const tf = performance.now();
      sys.firstOutputs = await sys.run();
      sys.firstRunMs = performance.now() - tf;
      return sys;
    } catch (e) {
      lastError = e;
      result.settings.firstRunError = String(e?.message ?? e).slice(0, 400);
      for (const s of sessions) await s.release().catch(() => {});
    }
  }
  throw lastError;
}

/**
 * Peak resident set of this process: VmHWM (Linux). getrusage's maxRSS is not used because Linux
 * keeps it across execve, so a child would report its parent's peak when that is larger.
 */
function peakRss(usage) {
  try {
    const kib = /VmHWM:\s*(\d+) kB/.exec(readFileSync('/proc/self/status', 'utf8'))?.[1];
    if (kib) return Number(kib) * 1024;
  } catch {}
  return usage.maxRSS * 1024;
}

// ---------------------------------------------------------------- main
async function main() {
  if (adapterOnly) {
    const { adapter, description } = await createDevice();
    const limits = {};
    for (const key in adapter.limits) if (typeof adapter.limits[key] === 'number') limits[key] = adapter.limits[key];
    writeFileSync(job.resultFile, JSON.stringify({ description, limits }));
    return;
  }
  const tDevice = performance.now();
  const { gpu, adapter, device, description } = await createDevice();
  result.device = description;
  result.timings.deviceMs = performance.now() - tDevice;
  const memory = countGpuMemory(device);
  memory.mark('load');
  let sys;
  let firstOutputs;
  if (job.system === 'flashmemc') {
    sys = await flashmemcSystem(device, job.parts);
    memory.mark('first run');
    const tf = performance.now();
    firstOutputs = await sys.run();
    sys.firstRunMs = performance.now() - tf;
  } else {
    sys = await ortSystem(device, gpu, adapter, job.parts, job.ort, memory);
    firstOutputs = sys.firstOutputs;
  }
  result.timings.firstOutputAtMs = performance.now(); // since this process's time origin (its start)
  result.firstOutputEpochMs = performance.timeOrigin + result.timings.firstOutputAtMs;
  result.timings.importMs = sys.importMs ?? 0;
  result.timings.loadMs = sys.loadMs;
  result.timings.graphCaptureProbeMs = sys.probeMs ?? 0;
  result.timings.firstRunMs = sys.firstRunMs;
  result.settings = { ...result.settings, ...sys.settings };
  memory.mark('warm-up');
  let outputs = firstOutputs;
  for (let i = 0; i < job.warmup; i++) outputs = await sys.run();
  memory.mark('timed runs');
  const times = [];
  for (let i = 0; i < job.runs; i++) {
    const t = performance.now();
    outputs = await sys.run();
    times.push(performance.now() - t);
  }
  memory.mark('end');
  result.timings.warm = summarize(times);
  if (job.parts.length > 1) result.timings.warmPerPart = partTimes.map((t) => summarize(t.slice(-job.runs)));
  result.gpu = { peakBytes: memory.peak, liveBytesAtEnd: memory.live, created: memory.created, destroyed: memory.destroyed, timeline: memory.compact(), marks: memory.marks };
  if (sys.stats) result.gpu.runtimeReportedPeakBytes = sys.stats().map((s) => s.peakGpuBytes);
  const usage = process.resourceUsage();
  result.host = { peakRssBytes: peakRss(usage), cpuUserMs: usage.userCPUTime / 1000, cpuSystemMs: usage.systemCPUTime / 1000 };
  mkdirSync(job.outputsDir, { recursive: true });
  result.outputs = [];
  outputs.forEach((out, partIndex) => {
    for (const [name, data] of Object.entries(out)) {
      const file = join(job.outputsDir, `${partIndex}_${name.replace(/[^A-Za-z0-9._-]/g, '_')}.bin`);
      const f32 = data instanceof Float32Array ? data : Float32Array.from(data, Number);
      writeFileSync(file, new Uint8Array(f32.buffer, f32.byteOffset, f32.byteLength));
      result.outputs.push({ part: partIndex, name, file, length: f32.length });
    }
  });
  writeFileSync(job.resultFile, `${JSON.stringify(result, null, 1)}\n`);
}

main().then(() => process.exit(0), (e) => {
  console.error(e?.stack ?? e);
  try {
    writeFileSync(job.resultFile, `${JSON.stringify({ ...result, error: String(e?.message ?? e) }, null, 1)}\n`);
  } catch {}
  process.exit(1);
});
