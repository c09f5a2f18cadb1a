/**
 * Measures profile.copies: how fast weights reach the GPU on the `--stream-path copies` path
 * (copyBufferToBuffer from a mapped, host-visible staging buffer recorded in the run's command
 * buffer), and the fixed time each such copy adds between two dispatches. The load plan prices
 * every streamed weight with these two figures, so it keeps weights resident where copies cost
 * more than the memory they free. bench/upload-bandwidth.mjs measures the same two figures
 * beside the other upload paths, as a table.
 */
import { timeSubmissionMs } from './bench.js';
import { median, round } from './fit.js';
import { registerProfileMeasurement, type MeasureContext } from './measurements.js';
import type { MappedCopies } from '../../schemas/profile.js';

const MIB = 1 << 20;
/** copies recorded between tiny dispatches to measure the per-copy cost */
const COPIES_BETWEEN_DISPATCHES = 200;
const COPY_BETWEEN_BYTES = 4096;

/** Median milliseconds of one submission of what `record` encodes, after one warm-up submission. */
async function submissionMs(device: GPUDevice, record: (encoder: GPUCommandEncoder) => void, repeats: number): Promise<number> {
  await timeSubmissionMs(device, record);
  const samples: number[] = [];
  for (let i = 0; i < repeats; i++) samples.push(await timeSubmissionMs(device, record));
  return median(samples);
}

function tinyDispatch(device: GPUDevice, scratch: GPUBuffer): (encoder: GPUCommandEncoder) => void {
  const module = device.createShaderModule({
    code: `@group(0) @binding(0) var<storage, read_write> data: array<u32>;
@compute @workgroup_size(1) fn main() { data[0] = data[0] + 1u; }`,
  });
  const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
  const group = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: [{ binding: 0, resource: { buffer: scratch } }] });
  return (encoder) => {
    const pass = encoder.beginComputePass();
    pass.setPipeline(pipeline);
    pass.setBindGroup(0, group);
    pass.dispatchWorkgroups(1);
    pass.end();
  };
}

export async function measureMappedCopies(device: GPUDevice, bytes: number, repeats: number): Promise<MappedCopies> {
  const size = Math.max(COPIES_BETWEEN_DISPATCHES * COPY_BETWEEN_BYTES, Math.floor(bytes / 4) * 4);
  const staging = device.createBuffer({ size, usage: GPUBufferUsage.MAP_WRITE | GPUBufferUsage.COPY_SRC, mappedAtCreation: true });
  new Uint8Array(staging.getMappedRange()).fill(7);
  staging.unmap();
  const target = device.createBuffer({ size, usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
  const scratch = device.createBuffer({ size: 4, usage: GPUBufferUsage.STORAGE });
  try {
    const wholeMs = await submissionMs(device, (e) => e.copyBufferToBuffer(staging, 0, target, 0, size), repeats);
    const dispatch = tinyDispatch(device, scratch);
    const dispatchesOnly = await submissionMs(device, (e) => { for (let i = 0; i < COPIES_BETWEEN_DISPATCHES; i++) dispatch(e); }, repeats);
    const withCopies = await submissionMs(device, (e) => {
      for (let i = 0; i < COPIES_BETWEEN_DISPATCHES; i++) {
        dispatch(e);
        e.copyBufferToBuffer(staging, i * COPY_BETWEEN_BYTES, target, i * COPY_BETWEEN_BYTES, COPY_BETWEEN_BYTES);
      }
    }, repeats);
    return {
      bytesPerMs: Math.round(size / Math.max(wholeMs, 1e-3)),
      overheadMs: round(Math.max(0, (withCopies - dispatchesOnly) / COPIES_BETWEEN_DISPATCHES)),
    };
  } finally {
    staging.destroy();
    target.destroy();
    scratch.destroy();
  }
}

registerProfileMeasurement({
  name: 'mapped-copies',
  async run(ctx: MeasureContext) {
    const bytes = ctx.quick ? 2 * MIB : ctx.sizes === 'small' ? 16 * MIB : 256 * MIB;
    const copies = await measureMappedCopies(ctx.device, Math.min(bytes, ctx.limits.maxBufferSize), ctx.quick ? 3 : 5);
    ctx.log(`mapped copies: ${(copies.bytesPerMs / 1e6).toFixed(2)} GB/s, ${(copies.overheadMs * 1000).toFixed(1)} us per copy between dispatches`);
    return { copies };
  },
});
