/**
 * Micro-benchmarks of the device profile, run through the real compiler path: each case is a tiny
 * ONNX model (fixtures/onnx-builder.ts) imported and lowered by the pass pipeline, so the kernels
 * timed are exactly the WGSL flashmemc emits; carrier variants come from the same rewrite the
 * stream schedule uses (compiler/lower/carrier.ts).
 *
 * A kernel's latency is the wall time of many repeated dispatches recorded in one submission,
 * from submit to onSubmittedWorkDone, divided by their number; the median of several batches.
 */
import { buildModel, randomFloats, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { importOnnx } from '../frontend/onnx.js';
import { runPipeline } from '../passes/pipeline.js';
import { rewriteAsCarrier } from '../lower/carrier.js';
import { storageRoot, type KernelProgram, type ProgramKernel } from '../lower/program.js';
import { gpuBytes } from '../schedule/weights.js';
import type { TargetLimits } from '../target/limits.js';
import { fail } from '../errors.js';
import { keepAlive } from '../target/webgpu.js';
import type { ProfiledClass } from '../../schemas/profile.js';
import { median } from './fit.js';

/** 'small' sizes for software devices (llvmpipe: seconds per large kernel), 'large' for real GPUs */
export type SizePreset = 'small' | 'large';

export interface BenchCase {
  op: string;
  costClass: ProfiledClass;
  /** human-readable size, e.g. '32x32' */
  size: string;
  model: ModelSpec;
  /** never used in fitting: the profile's prediction error is measured on these */
  heldOut: boolean;
}

export interface TimingOptions {
  /** wall time one timed batch should take */
  batchTargetMs: number;
  repeats: number;
  /** most dispatches recorded in one batch */
  maxDispatches: number;
}

const f32 = 'float32' as const;

/** Sweeps per op, smallest first; every third size from the second on is held out. */
interface Sweeps {
  elements: number[];
  square: number[];
  conv: [channels: number, side: number][];
  matmul: number[];
}

const SWEEPS: Record<SizePreset | 'quick', Sweeps> = {
  quick: { elements: [4096, 16384, 65536], square: [32, 64, 128], conv: [[4, 8], [8, 8], [8, 16]], matmul: [16, 32, 48] },
  small: {
    elements: [16384, 65536, 131072, 262144, 524288],
    square: [128, 192, 256, 384, 512],
    conv: [[8, 16], [16, 16], [16, 32], [32, 32], [32, 48]],
    matmul: [64, 96, 128, 192, 256],
  },
  large: {
    elements: [262144, 1048576, 2097152, 4194304, 8388608],
    square: [512, 1024, 1536, 2048, 3072],
    conv: [[32, 32], [64, 32], [64, 64], [128, 64], [128, 96]],
    matmul: [256, 512, 768, 1024, 1536],
  },
};

const isHeldOut = (index: number) => index % 3 === 1;

export function benchCases(preset: SizePreset, quick: boolean): BenchCase[] {
  const s = SWEEPS[quick ? 'quick' : preset];
  const cases: BenchCase[] = [];
  const add = (op: string, costClass: ProfiledClass, sizes: string[], models: ModelSpec[]) =>
    models.forEach((model, i) => cases.push({ op, costClass, size: sizes[i]!, model, heldOut: isHeldOut(i) }));
  const sq = s.square.map((n) => `${n}x${n}`);
  add('Add', 'elementwise', s.elements.map(String), s.elements.map((n) => oneNode('Add', [[n], [n]], {})));
  add('Relu', 'elementwise', s.elements.map(String), s.elements.map((n) => oneNode('Relu', [[n]], {})));
  add('Transpose', 'data-movement', sq, s.square.map((n) => oneNode('Transpose', [[n, n]], { perm: [1, 0] })));
  add('Concat', 'data-movement', sq, s.square.map((n) => oneNode('Concat', [[n, n >> 1], [n, n >> 1]], { axis: 1 })));
  add('Conv3x3', 'reusable', s.conv.map(([c, h]) => `c${c}_${h}x${h}`), s.conv.map(([c, h]) => conv3x3(c, h)));
  add('MatMul', 'reusable', s.matmul.map((n) => `${n}^3`), s.matmul.map(matmul));
  add('Softmax', 'hierarchical', sq, s.square.map((n) => oneNode('Softmax', [[n, n]], { axis: -1 })));
  add('ReduceMean', 'hierarchical', sq, s.square.map((n) => oneNode('ReduceMean', [[n, n]], { axes: [-1], keepdims: 1 })));
  return cases;
}

function oneNode(opType: string, inputs: number[][], attrs: Record<string, number | number[]>): ModelSpec {
  return {
    opset: 17,
    inputs: inputs.map((shape, i) => ({ name: `x${i}`, dtype: f32, shape })),
    outputs: [{ name: 'y', dtype: f32 }],
    nodes: [{ opType, inputs: inputs.map((_, i) => `x${i}`), outputs: ['y'], attrs }],
  };
}

function conv3x3(channels: number, side: number): ModelSpec {
  return {
    opset: 17,
    inputs: [{ name: 'x', dtype: f32, shape: [1, channels, side, side] }],
    outputs: [{ name: 'y', dtype: f32 }],
    initializers: [{ name: 'w', dtype: f32, shape: [channels, channels, 3, 3], data: randomFloats(channels * channels * 9, 7) }],
    nodes: [{ opType: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { pads: [1, 1, 1, 1] } }],
  };
}

function matmul(n: number): ModelSpec {
  return {
    opset: 17,
    inputs: [{ name: 'a', dtype: f32, shape: [n, n] }],
    outputs: [{ name: 'y', dtype: f32 }],
    initializers: [{ name: 'b', dtype: f32, shape: [n, n], data: randomFloats(n * n, 11) }],
    nodes: [{ opType: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
  };
}

/** A model spec through import and the whole pass pipeline: the kernels flashmemc would emit. */
export function compileSpec(spec: ModelSpec, limits: TargetLimits): KernelProgram {
  const graph = importOnnx(buildModel(spec));
  return runPipeline(graph, { limits }).state.program!;
}

/** Wall time of one submission of what `record` encodes, submit to onSubmittedWorkDone, in ms. */
export async function timeSubmissionMs(device: GPUDevice, record: (encoder: GPUCommandEncoder) => void): Promise<number> {
  const encoder = device.createCommandEncoder();
  record(encoder);
  const commands = encoder.finish();
  const start = performance.now();
  device.queue.submit([commands]);
  await keepAlive(device.queue.onSubmittedWorkDone());
  return performance.now() - start;
}

/** Wall time of one submission of `count` recorded repetitions in one compute pass, in ms. */
export function timeBatch(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void, count: number): Promise<number> {
  return timeSubmissionMs(device, (encoder) => {
    const pass = encoder.beginComputePass();
    for (let i = 0; i < count; i++) record(pass);
    pass.end();
  });
}

/**
 * Median microseconds per repetition of `record`. The first batches warm up (Mesa compiles shaders
 * at the first dispatch) and size the batch so it takes about batchTargetMs.
 */
export async function timePerDispatchUs(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void, t: TimingOptions): Promise<number> {
  return (await timeVariantsUs(device, [record], t))[0]!;
}

/**
 * Median microseconds per repetition of each recorder, timed round-robin (one batch of each per
 * round) so that load from other processes shifts every variant alike and their differences
 * (the carry cost) stay meaningful.
 */
export async function timeVariantsUs(device: GPUDevice, records: readonly ((pass: GPUComputePassEncoder) => void)[], t: TimingOptions): Promise<number[]> {
  const counts: number[] = [];
  for (const record of records) counts.push(await batchSize(device, record, t));
  const perDispatch = records.map(() => [] as number[]);
  for (let r = 0; r < t.repeats; r++) {
    for (let v = 0; v < records.length; v++) perDispatch[v]!.push(((await timeBatch(device, records[v]!, counts[v]!)) * 1000) / counts[v]!);
  }
  return perDispatch.map(median);
}

/** Warms the kernel up and returns how many dispatches take about batchTargetMs. */
async function batchSize(device: GPUDevice, record: (pass: GPUComputePassEncoder) => void, t: TimingOptions): Promise<number> {
  await timeBatch(device, record, 1);
  let count = 1;
  for (let i = 0; i < 2; i++) {
    const ms = await timeBatch(device, record, count);
    count = Math.max(1, Math.min(t.maxDispatches, Math.round((count * t.batchTargetMs) / Math.max(ms, 1e-3))));
  }
  return count;
}

/** GPU buffers for every tensor of a program (weights uploaded, inputs random), and kernel dispatchers. */
export class ProgramOnDevice {
  private readonly buffers = new Map<string, GPUBuffer>();
  private readonly extra: GPUBuffer[] = [];

  constructor(private readonly device: GPUDevice, readonly program: KernelProgram) {
    for (const t of program.tensors.values()) {
      if (t.aliasOf) continue;
      const buffer = device.createBuffer({ size: Math.max(16, align(t.bytes, 16)), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      this.buffers.set(t.id, buffer);
      if (t.data) device.queue.writeBuffer(buffer, 0, gpuBytes(t.id, t.data) as Uint8Array<ArrayBuffer>);
      else if (t.role === 'input') device.queue.writeBuffer(buffer, 0, randomFloats(t.bytes / 4, 3) as Float32Array<ArrayBuffer>);
    }
  }

  private bufferOf(id: string): GPUBuffer {
    return this.buffers.get(storageRoot(this.program, id).id)!;
  }

  /** Whether kernel k can bind a staging ring and one destination besides its own tensors. */
  canCarry(k: number): boolean {
    return this.program.kernels[k]!.bindings.length + 2 <= this.device.limits.maxStorageBuffersPerShaderStage;
  }

  /**
   * A recorder dispatching kernel k; with carryBytes > 0, its carrier rewrite copying that many
   * bytes from a staging ring into a destination inside the same dispatch (as streamed bundles do).
   */
  async dispatcher(k: number, carryBytes = 0): Promise<(pass: GPUComputePassEncoder) => void> {
    const kernel = this.program.kernels[k]!;
    const words = Math.floor(carryBytes / 4);
    const wgsl = words > 0 ? rewriteAsCarrier(kernel, [{ srcWord: 0, words }]).wgsl : kernel.wgsl;
    const entries: GPUBindGroupEntry[] = kernel.bindings.map((id, i) => ({ binding: i, resource: { buffer: this.bufferOf(id) } }));
    if (words > 0) {
      for (const offset of [0, 1]) {
        const buffer = this.device.createBuffer({ size: words * 4, usage: GPUBufferUsage.STORAGE });
        this.extra.push(buffer);
        entries.push({ binding: kernel.bindings.length + offset, resource: { buffer } });
      }
    }
    this.device.pushErrorScope('validation');
    const module = this.device.createShaderModule({ code: wgsl });
    const pipeline = this.device.createComputePipeline({ layout: 'auto', compute: { module, entryPoint: 'main' } });
    const bindGroup = this.device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries });
    const error = await keepAlive(this.device.popErrorScope());
    if (error) fail('FM_WEBGPU', `profiling kernel ${kernel.label} (${kernel.opType}${words ? ', carrier' : ''}) failed validation: ${error.message}`);
    return (pass: GPUComputePassEncoder) => {
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(...kernel.workgroups);
    };
  }

  destroy(): void {
    for (const b of [...this.buffers.values(), ...this.extra]) b.destroy();
  }
}

/** Kernels of a program worth timing (every op of the cases lowers to kernels of its own class). */
export function timedKernels(program: KernelProgram): ProgramKernel[] {
  return program.kernels.filter((k) => k.costClass !== 'view');
}

export const align = (n: number, a: number) => Math.ceil(n / a) * a;
