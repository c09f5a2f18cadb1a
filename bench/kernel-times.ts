/**
 * Where a compiled bundle's run spends its GPU time: every dispatch of a model's run steps, timed
 * alone with timestamp queries (one compute pass each), summed per kernel label and listed for the
 * slowest dispatches, with each one's share of the measured total.
 *
 *   npx tsx bench/kernel-times.ts <bundle-dir> [--model name] [--iters 5] [--top 25] [--json out.json]
 *
 * Bundles written by this checkout only: it reads the schedule and shaders directly (no runtime, no
 * verification), fills the buffers with small deterministic values instead of the weights, and so
 * measures kernel time only, not uploads or readback. Kernels whose time depends on data (none of
 * flashmemc's today) would be timed on these values. Uses timestamp queries where the adapter has
 * them, else the host clock around one submission per dispatch (which adds the submission's cost).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeDevice, keepAlive } from '../compiler/target/webgpu.js';
import { scheduleSchema } from '../schemas/schedule.js';
import { manifestSchema } from '../schemas/manifest.js';
import { parseDawnToggles } from '../runtime-template/device.js';

type Schedule = ReturnType<typeof scheduleSchema.parse>;
type ModelSchedule = Schedule['models'][number];
type DispatchStep = Extract<ModelSchedule['run'][number], { op: 'dispatch' }>;

const argv = process.argv.slice(2);
const option = (name: string, fallback?: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1] : fallback;
};
const bundleDir = argv[0];
if (!bundleDir || bundleDir.startsWith('--')) throw new Error('usage: kernel-times.ts <bundle-dir> [--model name] [--iters N] [--top N] [--json file]');
const ITERS = Number(option('iters', '5'));
const TOP = Number(option('top', '25'));

const schedule = scheduleSchema.parse(JSON.parse(readFileSync(join(bundleDir, 'schedule.json'), 'utf8')));
const manifest = manifestSchema.parse(JSON.parse(readFileSync(join(bundleDir, 'manifest.json'), 'utf8')));
const model = schedule.models.find((m) => m.model === (option('model') ?? schedule.models[0]!.model));
if (!model) throw new Error(`no model ${option('model')} in ${bundleDir}`);

const gpu = await createNodeDevice({
  dawnToggles: parseDawnToggles(option('dawn-toggles', process.env.FLASHMEM_DAWN_TOGGLES)),
  optionalFeatures: ['timestamp-query', ...(manifest.requiredFeatures as GPUFeatureName[])],
});
const device = gpu.device;
/** without timestamp queries (llvmpipe's GL path) each dispatch is its own submission, timed on the host */
const hasTimestamps = device.features.has('timestamp-query');

/** small values in [-0.5, 0.5): no kernel sees NaN, infinities or denormals */
function fill(buffer: GPUBuffer, size: number): void {
  const words = new Float32Array(Math.min(size, 16 << 20) / 4);
  for (let i = 0; i < words.length; i++) words[i] = ((i * 2654435761) % 1000) / 1000 - 0.5;
  for (let offset = 0; offset < size; offset += words.byteLength) {
    const bytes = Math.min(words.byteLength, size - offset);
    device.queue.writeBuffer(buffer, offset, words.buffer, 0, bytes);
  }
}

const usage = GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC;
const buffers = model.buffers.map((b) => {
  const buffer = device.createBuffer({ size: Math.max(4, b.size), usage });
  fill(buffer, Math.floor(b.size / 4) * 4);
  return buffer;
});
const textures = (model.textures ?? []).map((t) => device.createTexture({
  format: t.format, size: { width: t.width, height: t.height, depthOrArrayLayers: t.layers },
  usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
}));

const modules = new Map<number, GPUShaderModule>();
const moduleFor = (shader: number) => {
  let module = modules.get(shader);
  if (!module) modules.set(shader, (module = device.createShaderModule({ code: readFileSync(join(bundleDir, schedule.shaders[shader]!), 'utf8') })));
  return module;
};

interface Timed { step: DispatchStep; pipeline: GPUComputePipeline; group: GPUBindGroup }

function prepareStep(step: DispatchStep): Timed {
  const readOnly = new Set(step.readOnly ?? []);
  const entries = step.bindings.map((b, binding): GPUBindGroupLayoutEntry => ('texture' in b
    ? { binding, visibility: GPUShaderStage.COMPUTE, texture: { sampleType: 'unfilterable-float', viewDimension: '2d-array' } }
    : { binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: readOnly.has(binding) ? 'read-only-storage' : 'storage' } }));
  const layout = device.createBindGroupLayout({ entries });
  const pipeline = device.createComputePipeline({
    layout: device.createPipelineLayout({ bindGroupLayouts: [layout] }),
    compute: { module: moduleFor(step.shader), entryPoint: 'main' },
  });
  const group = device.createBindGroup({
    layout,
    entries: step.bindings.map((b, binding): GPUBindGroupEntry => ('texture' in b
      ? { binding, resource: textures[b.texture]!.createView({ dimension: '2d-array' }) }
      : { binding, resource: { buffer: buffers[b.buffer]!, offset: b.offset, size: b.size } })),
  });
  return { step, pipeline, group };
}

device.pushErrorScope('validation');
const timed = model.run.filter((s): s is DispatchStep => s.op === 'dispatch').map(prepareStep);
const setupError = await keepAlive(device.popErrorScope());
if (setupError) throw new Error(`preparing the dispatches failed: ${setupError.message}`);

/** Each dispatch's GPU ms, timed on the host: one submission per dispatch, waited for. */
async function measureOnceOnHost(): Promise<number[]> {
  const times: number[] = [];
  for (const { step, pipeline, group } of timed) {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(...step.workgroups);
    pass.end();
    const start = performance.now();
    device.queue.submit([encoder.finish()]);
    await keepAlive(device.queue.onSubmittedWorkDone());
    times.push(performance.now() - start);
  }
  return times;
}

/** One submission: every dispatch in its own timed pass. Returns each dispatch's GPU ms. */
async function measureOnce(): Promise<number[]> {
  if (!hasTimestamps) return measureOnceOnHost();
  const count = timed.length * 2;
  const querySet = device.createQuerySet({ type: 'timestamp', count });
  const resolve = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const readBack = device.createBuffer({ size: count * 8, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const encoder = device.createCommandEncoder();
  timed.forEach(({ step, pipeline, group }, i) => {
    const pass = encoder.beginComputePass({ timestampWrites: { querySet, beginningOfPassWriteIndex: 2 * i, endOfPassWriteIndex: 2 * i + 1 } });
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(...step.workgroups);
    pass.end();
  });
  encoder.resolveQuerySet(querySet, 0, count, resolve, 0);
  encoder.copyBufferToBuffer(resolve, 0, readBack, 0, count * 8);
  device.queue.submit([encoder.finish()]);
  await keepAlive(readBack.mapAsync(GPUMapMode.READ));
  const stamps = new BigUint64Array(readBack.getMappedRange().slice(0));
  readBack.unmap();
  for (const resource of [querySet, resolve, readBack]) resource.destroy();
  return timed.map((_, i) => Number(stamps[2 * i + 1]! - stamps[2 * i]!) / 1e6);
}

await measureOnce();
const runs: number[][] = [];
for (let i = 0; i < ITERS; i++) runs.push(await measureOnce());
/** per dispatch: the median over the iterations */
const perDispatch = timed.map((_, d) => {
  const values = runs.map((r) => r[d]!).sort((a, b) => a - b);
  return values[Math.floor(values.length / 2)]!;
});
const total = perDispatch.reduce((a, b) => a + b, 0);

const byLabel = new Map<string, { ms: number; count: number }>();
timed.forEach(({ step }, d) => {
  const entry = byLabel.get(step.label) ?? { ms: 0, count: 0 };
  entry.ms += perDispatch[d]!;
  entry.count++;
  byLabel.set(step.label, entry);
});
const pct = (ms: number) => `${((100 * ms) / total).toFixed(1)}%`;
const fmt = (ms: number) => (ms * 1000).toFixed(1);

console.log(`# Kernel times: ${model.model} (${bundleDir})\n`);
console.log(`Adapter: ${gpu.backend}; ${timed.length} dispatches; sum of per-dispatch GPU time ${total.toFixed(3)} ms (median of ${ITERS}; ${hasTimestamps ? 'timestamp queries, each dispatch in its own pass' : 'host clock, each dispatch in its own submission'})\n`);
console.log('| kernel | dispatches | µs | share |\n|---|---|---|---|');
for (const [label, { ms, count }] of [...byLabel].sort((a, b) => b[1].ms - a[1].ms)) console.log(`| ${label} | ${count} | ${fmt(ms)} | ${pct(ms)} |`);
console.log(`\nSlowest ${TOP} dispatches:\n\n| # | kernel | node | workgroups | µs | share |\n|---|---|---|---|---|---|`);
const order = perDispatch.map((ms, d) => ({ ms, d })).sort((a, b) => b.ms - a.ms).slice(0, TOP);
for (const { ms, d } of order) {
  const { step } = timed[d]!;
  console.log(`| ${d} | ${step.label} | ${step.node} | ${step.workgroups.join('x')} | ${fmt(ms)} | ${pct(ms)} |`);
}
const jsonPath = option('json');
if (jsonPath) {
  const dispatches = timed.map(({ step }, d) => ({ index: d, label: step.label, node: step.node, workgroups: step.workgroups, shader: schedule.shaders[step.shader], ms: perDispatch[d] }));
  writeFileSync(jsonPath, `${JSON.stringify({ model: model.model, backend: gpu.backend, totalMs: total, dispatches }, null, 1)}\n`);
}
device.destroy();
