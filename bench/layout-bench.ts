/**
 * Buffer vs 2.5D texture weight layouts: the layout micro-benchmark's cases (Conv and MatMul
 * compiled both ways, compiler/profile/layout-cost.ts), timed on this machine's WebGPU device.
 *   tsx bench/layout-bench.ts [--quick]
 * Prints one line per case and the profile's layoutCost (texture latency / buffer latency).
 */
import { createNodeDevice, keepAlive } from '../compiler/cli/webgpu.js';
import { COMPAT_LIMITS, DEFAULT_LIMITS } from '../compiler/ops/op.js';
import { layoutCases, layoutCostOf, timeLayouts } from '../compiler/profile/layout-cost.js';

/** Wall time of `count` recorded repetitions in one submission, submit to onSubmittedWorkDone. */
async function batchMs(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void, count: number): Promise<number> {
  const encoder = device.createCommandEncoder();
  const pass = encoder.beginComputePass();
  for (let i = 0; i < count; i++) record(pass);
  pass.end();
  const commands = encoder.finish();
  const start = performance.now();
  device.queue.submit([commands]);
  await keepAlive(device.queue.onSubmittedWorkDone());
  return performance.now() - start;
}

/** Median microseconds per repetition; the first batch warms up (Mesa compiles at first dispatch) and sizes the batch. */
async function medianUs(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void, targetMs: number, repeats: number): Promise<number> {
  await batchMs(device, record, 1);
  const count = Math.max(1, Math.min(2000, Math.round(targetMs / Math.max(await batchMs(device, record, 1), 1e-3))));
  const samples: number[] = [];
  for (let r = 0; r < repeats; r++) samples.push(((await batchMs(device, record, count)) * 1000) / count);
  return samples.sort((a, b) => a - b)[Math.floor(samples.length / 2)]!;
}

const quick = process.argv.includes('--quick');
const { device, adapter, backend } = await createNodeDevice();
const limits = { ...DEFAULT_LIMITS, maxTextureDimension2D: device.limits.maxTextureDimension2D, maxStorageBuffersPerShaderStage: Math.max(COMPAT_LIMITS.maxStorageBuffersPerShaderStage, device.limits.maxStorageBuffersPerShaderStage) };
const info = adapter.info;
console.log(`device: ${info.vendor} ${info.architecture} ${info.device} ${info.description} (${backend})`);
const timings = await timeLayouts(device, limits, layoutCases(quick), (record) => medianUs(device, record, quick ? 100 : 300, quick ? 3 : 5), (line) => console.log(line));
console.log(`layoutCost: ${JSON.stringify(layoutCostOf(timings))}`);
device.destroy();
process.exit(0);
