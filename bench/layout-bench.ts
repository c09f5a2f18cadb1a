/**
 * Buffer vs 2.5D texture weight layouts: the layout micro-benchmark's cases (Conv and MatMul
 * compiled both ways, compiler/profile/layout-cost.ts), timed on this machine's WebGPU device.
 *   tsx bench/layout-bench.ts [--quick]
 * Prints one line per case and the profile's layoutCost (texture latency / buffer latency).
 */
import { createNodeDevice } from '../compiler/target/webgpu.js';
import { timePerDispatchUs } from '../compiler/profile/bench.js';
import { COMPAT_LIMITS, DEFAULT_LIMITS } from '../compiler/target/limits.js';
import { layoutCases, layoutCostOf, timeLayouts } from '../compiler/profile/layout-cost.js';


const quick = process.argv.includes('--quick');
const { device, adapter, backend } = await createNodeDevice();
const limits = { ...DEFAULT_LIMITS, maxTextureDimension2D: device.limits.maxTextureDimension2D, maxStorageBuffersPerShaderStage: Math.max(COMPAT_LIMITS.maxStorageBuffersPerShaderStage, device.limits.maxStorageBuffersPerShaderStage) };
const info = adapter.info;
console.log(`device: ${info.vendor} ${info.architecture} ${info.device} ${info.description} (${backend})`);
const timings = await timeLayouts(device, limits, layoutCases(quick), (record) => timePerDispatchUs(device, record, { batchTargetMs: quick ? 100 : 300, repeats: quick ? 3 : 5, maxDispatches: 2000 }), (line) => console.log(line));
console.log(`layoutCost: ${JSON.stringify(layoutCostOf(timings))}`);
device.destroy();
process.exit(0);
