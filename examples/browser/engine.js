/**
 * Loading and running the bundle: the part of the example that works the same on the page and in
 * a Web Worker (both have navigator.gpu, fetch and performance). Everything it returns is plain
 * data, so the worker can post it to the page unchanged.
 *
 * The runtime comes from the server's /runtime.js, the package's own runtime, not from the bundle:
 * an app imports the runtime once and loads any bundle of this compiler version with it.
 */
import { FlashmemRuntimeError, loadBundle } from '/runtime.js';
import { exampleImage } from './input.js';

/** how often the GPU-memory figure is sampled while a run is in flight */
const MEMORY_SAMPLE_MS = 50;

/**
 * Creates the app's own WebGPU device with the bundle's requiredLimits, then loads the bundle on
 * it. Streamed weights stay in storage ('storage'): every run reads them again from the server by
 * HTTP Range requests, so host memory holds only the read-ahead window.
 */
export async function openExample(bundleUrl) {
  const startedAt = performance.now();
  // the device must exist before loadBundle; loadBundle verifies the manifest and checks the device's limits again
  const manifest = await fetchBundleJson(bundleUrl, 'manifest.json');
  const schedule = await fetchBundleJson(bundleUrl, 'schedule.json');
  const device = await requestDevice(manifest);
  const session = await loadBundle(bundleUrl, { device, streamedWeights: 'storage' });
  const model = manifest.models[0];
  return {
    session,
    device,
    info: {
      model: model.name,
      input: model.inputs[0],
      output: model.outputs[0],
      weightBytes: model.weightBytes,
      plan: planSummary(schedule.models[0]),
      adapter: describeAdapter(device),
      loadMs: performance.now() - startedAt,
      memory: memoryOf(session),
    },
  };
}

/** Runs the model once on the seeded image; `onMemory` sees the GPU-memory figure while the run is in flight. */
export async function runExample(example, seed, onMemory) {
  const { session, info } = example;
  const image = exampleImage(info.input.shape, seed);
  const uploadedBefore = session.stats().uploadedBytes;
  // the resource-timing buffer keeps 250 entries and then drops new ones: start each run empty
  performance.clearResourceTimings();
  const sampler = setInterval(() => onMemory(memoryOf(session)), MEMORY_SAMPLE_MS);
  const startedAt = performance.now();
  try {
    const outputs = await session.run({ [info.input.name]: image });
    const runMs = performance.now() - startedAt;
    const stats = session.stats();
    const reads = weightReads();
    return {
      seed,
      output: Array.from(outputs[info.output.name]),
      runMs,
      runs: stats.runs,
      memory: memoryOf(session),
      uploadedBytes: stats.uploadedBytes - uploadedBefore,
      weightReads: reads.length,
      weightReadBytes: reads.reduce((sum, read) => sum + read.encodedBodySize, 0),
    };
  } finally {
    clearInterval(sampler);
  }
}

/** The figures the page shows against the budget: bytes of GPU buffers the session holds now and at most. */
function memoryOf(session) {
  const { liveGpuBytes, peakGpuBytes, plannedPeakGpuBytes } = session.stats();
  return { liveGpuBytes, peakGpuBytes, plannedPeakGpuBytes };
}

function planSummary(modelSchedule) {
  const plan = modelSchedule.loadPlan;
  if (!plan) return { strategy: modelSchedule.strategy };
  return {
    strategy: modelSchedule.strategy,
    budgetBytes: plan.budgetBytes,
    streamedWeights: plan.streamedWeights,
    preloadedWeights: plan.preloadedWeights,
    streamedBytes: plan.streamedBytes,
  };
}

/** Resource-timing entries of the weight shards fetched since they were last cleared (each Range request is one). */
function weightReads() {
  return performance.getEntriesByType('resource').filter((entry) => /\/weights\/[^/]+\.bin$/.test(new URL(entry.name).pathname));
}

async function fetchBundleJson(bundleUrl, file) {
  const url = new URL(file, bundleUrl);
  let response;
  try {
    response = await fetch(url);
  } catch (error) {
    throw new FlashmemRuntimeError('FM_IO', `fetching bundle file ${file} (${url.href}) failed: ${error.message}`, { cause: error });
  }
  if (response.status === 404) throw new FlashmemRuntimeError('FM_BUNDLE_INVALID', `bundle file ${file} is missing (404 at ${url.href})`);
  if (!response.ok) throw new FlashmemRuntimeError('FM_IO', `fetching bundle file ${file} (${url.href}) failed: HTTP ${response.status}`);
  try {
    return await response.json();
  } catch (error) {
    throw new FlashmemRuntimeError('FM_BUNDLE_INVALID', `${file} is not valid JSON: ${error.message}`, { cause: error });
  }
}

async function requestDevice(manifest) {
  if (!navigator.gpu) throw new FlashmemRuntimeError('FM_WEBGPU', 'this browser has no WebGPU (navigator.gpu is missing)');
  const adapter = await navigator.gpu.requestAdapter();
  if (!adapter) throw new FlashmemRuntimeError('FM_WEBGPU', 'the browser offers no WebGPU adapter');
  try {
    return await adapter.requestDevice({ requiredLimits: manifest.requiredLimits, requiredFeatures: manifest.requiredFeatures });
  } catch (error) {
    throw new FlashmemRuntimeError('FM_WEBGPU', `requesting a WebGPU device with the bundle's requiredLimits failed: ${error.message}`, { cause: error });
  }
}

function describeAdapter(device) {
  const { vendor, architecture, description } = device.adapterInfo ?? {};
  return [vendor, architecture, description].filter(Boolean).join(' ') || 'WebGPU';
}

/** Errors as plain data (postMessage keeps neither the class nor `code`); runtime errors' messages start with their FM_* code. */
export function describeError(error) {
  return { name: error?.name ?? 'Error', code: error?.code, message: error?.message ?? String(error) };
}
