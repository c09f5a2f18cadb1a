/**
 * The page: loads the bundle (on the page, or in a Web Worker with ?mode=worker), runs it on the
 * seeded image and shows the outputs, the GPU memory against the budget and the times.
 *
 * Query parameters: mode=worker, bundle=<same-origin path of a bundle folder> (default /bundle/),
 * seed=<n> (default 1). The figures are also written to data-* attributes so that a test reads
 * exactly what the page shows.
 */
import { exampleImage } from './input.js';

const params = new URLSearchParams(location.search);
const mode = params.get('mode') === 'worker' ? 'worker' : 'page';
const $ = (id) => document.getElementById(id);

/** the most live GPU bytes any sample showed: what the page claims stayed under the budget */
let maxLiveShown = 0;
let info;
let firstRunMs;

main();

async function main() {
  document.body.dataset.mode = mode;
  $(`mode-${mode}`).setAttribute('aria-current', 'page');
  $('seed').value = String(seedParam());
  try {
    const bundleUrl = sameOriginBundleUrl(params.get('bundle') ?? '/bundle/');
    const backend = mode === 'worker' ? await workerBackend(showMemory) : await pageBackend(showMemory);
    setState('loading', `loading ${bundleUrl} ${mode === 'worker' ? 'in a Web Worker' : 'on the page'}…`);
    info = await backend.load(bundleUrl);
    showModel(info);
    showMemory(info.memory);
    $('run').onclick = () => run(backend);
    await run(backend);
  } catch (error) {
    showError(error);
  }
}

async function run(backend) {
  const seed = Number($('seed').value);
  $('run').disabled = true;
  setState('running', `running on seed ${seed}…`);
  showImage(exampleImage(info.input.shape, seed), info.input.shape);
  try {
    const result = await backend.run(seed);
    firstRunMs ??= result.runMs;
    showMemory(result.memory);
    showOutputs(result.output);
    showStreaming(result);
    showTimes(result);
    document.body.dataset.runs = String(result.runs);
    setState('done', `ran ${info.model} on seed ${seed} ${mode === 'worker' ? 'in a Web Worker' : 'on the page'} (run ${result.runs})`);
  } catch (error) {
    showError(error);
  } finally {
    $('run').disabled = false;
  }
}

// ------------------------------------------------------------------------------------ backends
/** Runs the engine on the page itself (its import of /runtime.js happens only in this mode). */
async function pageBackend(onMemory) {
  const { openExample, runExample } = await import('./engine.js');
  let example;
  return {
    async load(bundleUrl) {
      example = await openExample(bundleUrl);
      return example.info;
    },
    run: (seed) => runExample(example, seed, onMemory),
  };
}

/** Runs the engine in worker.js; the page only posts requests and receives plain results. */
async function workerBackend(onMemory) {
  const worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
  const pending = new Map();
  let nextId = 0;
  worker.onmessage = ({ data }) => {
    if (data.type === 'memory') return onMemory(data.memory);
    const request = pending.get(data.id);
    pending.delete(data.id);
    if (data.type === 'done') request.resolve(data.value);
    else request.reject(data.error);
  };
  // a worker script that fails to load or throws at top level never answers: fail every request
  worker.onerror = (event) => {
    event.preventDefault();
    for (const request of pending.values()) request.reject(new Error(`the worker failed: ${event.message ?? 'could not load worker.js'}`));
    pending.clear();
  };
  const request = (message) => new Promise((resolve, reject) => {
    const id = nextId++;
    pending.set(id, { resolve, reject });
    worker.postMessage({ ...message, id });
  });
  return {
    load: (bundleUrl) => request({ type: 'load', bundleUrl }),
    run: (seed) => request({ type: 'run', seed }),
  };
}

// ------------------------------------------------------------------------------------ parameters
function seedParam() {
  const seed = Number(params.get('seed') ?? 1);
  return Number.isInteger(seed) && seed >= 0 ? seed : 1;
}

/** Only bundles of this origin: the page would otherwise run whatever bundle a link names. */
function sameOriginBundleUrl(path) {
  const url = new URL(path.endsWith('/') ? path : `${path}/`, location.href);
  if (url.origin !== location.origin) throw new Error(`bundle ${path} is not on this origin (${location.origin})`);
  return url.href;
}

// ------------------------------------------------------------------------------------ view
function setState(state, status) {
  document.body.dataset.state = state;
  $('status').textContent = status;
}

function showError(error) {
  // runtime errors (FlashmemRuntimeError) carry a stable code, and their message starts with it
  const message = error?.message ?? String(error);
  $('error').textContent = error?.code && !message.startsWith(error.code) ? `${error.code}: ${message}` : message;
  if (error?.code) $('error').dataset.code = error.code;
  setState('error', `failed ${mode === 'worker' ? 'in the Web Worker' : 'on the page'}`);
}

function showModel({ model, input, output, weightBytes, plan, adapter }) {
  const rows = [
    ['model', model],
    ['input', `${input.name} ${input.dtype}[${input.shape.join('×')}]`],
    ['output', `${output.name} ${output.dtype}[${output.shape.join('×')}]`],
    ['weights', kib(weightBytes)],
    ['streaming', plan.strategy === 'stream'
      ? `${plan.streamedWeights} of ${plan.streamedWeights + plan.preloadedWeights} streamed (${kib(plan.streamedBytes)}) each run`
      : 'all preloaded'],
    ['device', adapter],
  ];
  $('model').replaceChildren(...rows.flatMap(([term, value]) => [element('dt', term), element('dd', value)]));
}

function showImage(image, [, channels, height, width]) {
  const canvas = $('image');
  canvas.width = width;
  canvas.height = height;
  const context = canvas.getContext('2d');
  const pixels = context.createImageData(width, height);
  const plane = width * height;
  for (let p = 0; p < plane; p++) {
    for (let c = 0; c < 3; c++) pixels.data[4 * p + c] = c < channels ? toByte(image[c * plane + p]) : 0;
    pixels.data[4 * p + 3] = 255;
  }
  context.putImageData(pixels, 0, 0);
}

function showMemory({ liveGpuBytes, peakGpuBytes }) {
  maxLiveShown = Math.max(maxLiveShown, liveGpuBytes);
  const budget = info?.plan.budgetBytes;
  showBar('live', liveGpuBytes, budget);
  showBar('peak', peakGpuBytes, budget);
  const memory = $('memory').dataset;
  memory.liveBytes = String(liveGpuBytes);
  memory.maxLiveBytes = String(maxLiveShown);
  memory.peakBytes = String(peakGpuBytes);
  if (budget !== undefined) memory.budgetBytes = String(budget);
}

function showBar(name, bytes, budget) {
  $(name).textContent = budget === undefined ? kib(bytes) : `${kib(bytes)} of the ${kib(budget)} budget`;
  const share = budget === undefined ? 1 : bytes / budget;
  $(`${name}-bar`).style.width = `${Math.min(100, share * 100)}%`;
  $(`${name}-share`).textContent = budget === undefined ? '' : `${(share * 100).toFixed(0)}%`;
}

function showStreaming({ uploadedBytes, weightReads, weightReadBytes, memory }) {
  const rows = [
    ['planned peak', kib(memory.plannedPeakGpuBytes)],
    ['uploaded this run', `${kib(uploadedBytes)} of weights`],
    ['read this run', `${weightReads} HTTP Range request${weightReads === 1 ? '' : 's'} (${kib(weightReadBytes)})`],
  ];
  $('streaming').replaceChildren(...rows.flatMap(([term, value]) => [element('dt', term), element('dd', value)]));
  Object.assign($('memory').dataset, { uploadedBytes: String(uploadedBytes), weightReads: String(weightReads) });
}

function showOutputs(values) {
  const top = values.indexOf(Math.max(...values));
  const largest = Math.max(...values.map(Math.abs)) || 1;
  $('outputs').replaceChildren(...values.map((value, index) => {
    const row = element('tr');
    if (index === top) row.className = 'top';
    // full precision in data-value: the test compares what the page shows with the reference
    Object.assign(row.dataset, { index: String(index), value: String(value) });
    const bar = element('span');
    bar.style.width = `${(Math.abs(value) / largest) * 100}%`;
    const share = element('td');
    share.className = 'share';
    share.append(bar);
    const cell = element('td', Math.abs(value) < 1e-4 && value !== 0 ? value.toExponential(2) : value.toFixed(5));
    cell.className = 'value';
    row.append(element('td', index === top ? `${index} (top)` : String(index)), cell, share);
    return row;
  }));
}

function showTimes({ runMs, runs }) {
  const rows = [
    ['load', `${ms(info.loadMs)} (device, verify, pipelines)`],
    ['first run', ms(firstRunMs)],
    ['last run', `${ms(runMs)} (run ${runs})`],
    ['where', mode === 'worker' ? 'dedicated Web Worker' : 'page (main thread)'],
  ];
  $('times').replaceChildren(...rows.flatMap(([term, value]) => [element('dt', term), element('dd', value)]));
}

function element(tag, text) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  return node;
}

const kib = (bytes) => `${(bytes / 1024).toFixed(1)} KiB`;
const ms = (value) => `${value.toFixed(0)} ms`;
/** image values of about [-1.25, 1.25] to 0..255 */
const toByte = (value) => Math.max(0, Math.min(255, Math.round((value + 1.25) * 102)));
