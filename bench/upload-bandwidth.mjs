// Host-to-GPU upload paths measured on the current WebGPU device, as a table: where a mapped staging
// buffer lives (GPU memory used per nvidia-smi, when present), and the bandwidth of
// queue.writeBuffer and of copies from a mapped staging buffer, whole or in chunks, alone or
// beside a long compute kernel (do copies and dispatches of one command buffer overlap?).
// Plain JavaScript so it runs unchanged under `node` on the GPU machine:
//
//   FLASHMEM_WEBGPU_BACKEND=vulkan node bench/upload-bandwidth.mjs [--mib 256] [--out file.json] [--profile profile.json]
//
// --profile writes the measured copy bandwidth and per-copy cost into that device profile's
// `copies` field, which prices streamed weights in the load plan of `compile --stream-path copies`.
import { execFileSync } from 'node:child_process';
import { readFileSync, writeFileSync } from 'node:fs';

const MIB = 1048576;
const arg = (name, fallback) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
};
const SIZE = Number(arg('mib', '256')) * MIB;
const REPEAT = 5;

// Dawn-node's promises keep no event-loop handle alive: hold a timer while awaiting them
const hold = setInterval(() => {}, 1 << 30);

function nvidiaSmiUsedMiB() {
  try {
    return Number(execFileSync('nvidia-smi', ['--query-gpu=memory.used', '--format=csv,noheader,nounits'], { encoding: 'utf8' }).trim().split('\n')[0]);
  } catch {
    return null;
  }
}

// a collected Dawn instance crashes its devices: keep it for the life of the process
let instance;

async function openDevice() {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const dawn = await import('webgpu');
  Object.assign(globalThis, dawn.globals);
  instance = dawn.create([`backend=${process.env.FLASHMEM_WEBGPU_BACKEND ?? 'vulkan'}`]);
  const adapter = (await instance.requestAdapter()) ?? (await instance.requestAdapter({ featureLevel: 'compatibility' }));
  const limits = { maxBufferSize: Math.min(adapter.limits.maxBufferSize, 4 * SIZE), maxStorageBufferBindingSize: Math.min(adapter.limits.maxStorageBufferBindingSize, 4 * SIZE) };
  const device = await adapter.requestDevice({ requiredLimits: limits });
  return { adapter, device };
}

/** Median of REPEAT timings of `measure` (ms), after one more that pays first-use costs. */
async function medianMs(measure) {
  const samples = [];
  for (let i = 0; i < REPEAT + 1; i++) samples.push(await measure());
  samples.shift();
  samples.sort((a, b) => a - b);
  return samples[Math.floor(samples.length / 2)];
}

/** Median time of one submission of the commands `record` encodes, until the queue reports it done. */
function timed(device, record) {
  return medianMs(async () => {
    const encoder = device.createCommandEncoder();
    record(encoder);
    const commands = encoder.finish();
    const t0 = performance.now();
    device.queue.submit([commands]);
    await device.queue.onSubmittedWorkDone();
    return performance.now() - t0;
  });
}

function spinPipeline(device, iterations) {
  const module = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> data: array<f32>;
@compute @workgroup_size(64) fn main(@builtin(global_invocation_id) id: vec3u) {
  var x = f32(id.x);
  for (var i = 0u; i < ${iterations}u; i++) { x = fma(x, 1.0000001, 0.5); }
  data[id.x] = x;
}`,
  });
  return device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
}

async function main() {
  const { adapter, device } = await openDevice();
  const rows = [];
  const info = adapter.info ?? {};
  const before = nvidiaSmiUsedMiB();
  const staging = device.createBuffer({ size: SIZE, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
  new Uint8Array(staging.getMappedRange()).fill(7);
  staging.unmap();
  await device.queue.onSubmittedWorkDone();
  const afterStaging = nvidiaSmiUsedMiB();
  const target = device.createBuffer({ size: SIZE, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST | GPUBufferUsage.COPY_SRC });
  const target2 = device.createBuffer({ size: SIZE, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  device.queue.writeBuffer(target, 0, new Uint8Array(1024));
  await device.queue.onSubmittedWorkDone();
  const afterTarget = nvidiaSmiUsedMiB();
  const placement = before === null ? null : {
    stagingGpuMiB: afterStaging - before, storageGpuMiB: afterTarget - afterStaging, bufferMiB: 2 * SIZE / MIB,
  };

  const gbps = (bytes, ms) => +(bytes / 1e6 / ms).toFixed(2);
  const add = (path, chunkMiB, ms, bytes = SIZE) => rows.push({ path, chunkMiB, ms: +ms.toFixed(2), GBps: gbps(bytes, ms) });

  for (const chunk of [SIZE, 16 * MIB, MIB, MIB / 16]) {
    const ms = await timed(device, (e) => { for (let o = 0; o < SIZE; o += chunk) e.copyBufferToBuffer(staging, o, target, o, chunk); });
    add('mapped staging -> storage', chunk / MIB, ms);
  }
  const vram = await timed(device, (e) => e.copyBufferToBuffer(target, 0, target2, 0, SIZE));
  add('storage -> storage (GPU memory)', SIZE / MIB, vram);
  const host = new Uint8Array(SIZE).fill(3);
  for (const chunk of [SIZE, 4 * MIB]) {
    const ms = await medianMs(async () => {
      const t0 = performance.now();
      for (let o = 0; o < SIZE; o += chunk) device.queue.writeBuffer(target, o, host, o, chunk);
      await device.queue.onSubmittedWorkDone();
      return performance.now() - t0;
    });
    add('queue.writeBuffer', chunk / MIB, ms);
  }

  // overlap: a compute kernel alone, the copy alone, then both in one command buffer
  const spin = spinPipeline(device, 20000);
  const spinData = device.createBuffer({ size: 4 * 65536 * 4, usage: GPUBufferUsage.STORAGE });
  const group = device.createBindGroup({ layout: spin.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: spinData } }] });
  const dispatch = (e) => { const p = e.beginComputePass(); p.setPipeline(spin); p.setBindGroup(0, group); p.dispatchWorkgroups(4096); p.end(); };
  const computeMs = await timed(device, dispatch);
  const copyMs = await timed(device, (e) => e.copyBufferToBuffer(staging, 0, target, 0, SIZE));
  const copyFirst = await timed(device, (e) => { e.copyBufferToBuffer(staging, 0, target, 0, SIZE); dispatch(e); });
  const copyAfter = await timed(device, (e) => { dispatch(e); e.copyBufferToBuffer(staging, 0, target, 0, SIZE); });
  const overlap = { computeMs: +computeMs.toFixed(2), copyMs: +copyMs.toFixed(2), copyThenComputeMs: +copyFirst.toFixed(2), computeThenCopyMs: +copyAfter.toFixed(2), sumMs: +(computeMs + copyMs).toFixed(2) };

  // the fixed cost of one copy between two dispatches (the copies stream path's pattern)
  const tiny = spinPipeline(device, 1);
  const tinyGroup = device.createBindGroup({ layout: tiny.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: spinData } }] });
  const BETWEEN = 400;
  const tinyPass = (e) => { const p = e.beginComputePass(); p.setPipeline(tiny); p.setBindGroup(0, tinyGroup); p.dispatchWorkgroups(1); p.end(); };
  const dispatchesOnly = await timed(device, (e) => { for (let i = 0; i < BETWEEN; i++) tinyPass(e); });
  const withCopies = await timed(device, (e) => { for (let i = 0; i < BETWEEN; i++) { tinyPass(e); e.copyBufferToBuffer(staging, i * 4096, target, i * 4096, 4096); } });
  const copyOverheadMs = Math.max(0, (withCopies - dispatchesOnly) / BETWEEN);
  overlap.copyBetweenDispatchesUs = +(copyOverheadMs * 1000).toFixed(2);

  const result = { device: `${info.vendor ?? ''} ${info.architecture ?? ''} ${info.description ?? ''}`.trim(), bytes: SIZE, placement, rows, overlap };
  const table = ['| path | chunk MiB | ms | GB/s |', '|---|---|---|---|', ...rows.map((r) => `| ${r.path} | ${r.chunkMiB} | ${r.ms} | ${r.GBps} |`)].join('\n');
  console.log(`# Upload paths on ${result.device}\n\n${SIZE / MIB} MiB moved per measurement, median of ${REPEAT}.\n\n${table}\n`);
  console.log(`staging placement (nvidia-smi): ${JSON.stringify(placement)}`);
  console.log(`copy/compute overlap: ${JSON.stringify(overlap)}`);
  const out = arg('out', null);
  if (out) writeFileSync(out, JSON.stringify(result, null, 2));
  // --profile file.json: record the mapped copies' bandwidth and per-copy cost in a device profile
  const profile = arg('profile', null);
  if (profile) {
    const json = JSON.parse(readFileSync(profile, 'utf8'));
    const whole = rows.find((r) => r.path.startsWith('mapped') && r.chunkMiB === SIZE / MIB);
    json.copies = { bytesPerMs: Math.round(SIZE / whole.ms), overheadMs: +copyOverheadMs.toFixed(4) };
    writeFileSync(profile, `${JSON.stringify(json, null, 2)}\n`);
    console.log(`wrote copies ${JSON.stringify(json.copies)} into ${profile}`);
  }
  clearInterval(hold);
  device.destroy();
}

main().catch((e) => { console.error(e); process.exit(1); });
