/**
 * The tests' one WebGPU device: created once per vitest worker (a forked process) through the
 * compiler's own device code (compiler/target/webgpu.ts createNodeDevice, the device `flashmemc run`
 * gets), reused by every test of the worker and never destroyed. Tests that need the GPU get it
 * here and nowhere else; `keepAlive` is re-exported so GPU promises are awaited the same way.
 * prepareKernels() runs the kernels of one lowered node on it (the op tests' GPU side).
 *
 * Under `npm run test:unit` (vitest.unit.config.ts sets FLASHMEM_TEST_UNIT) asking for the device
 * fails: such a test belongs to the GPU suites, not to the unit subset.
 */
import { createNodeDevice, keepAlive, type NodeGpu } from '../../compiler/target/webgpu.js';
import { wgslType } from '../../compiler/kernel/wgsl.js';
import { numElements, type TensorType } from '../../compiler/ir/types.js';
import type { KernelSpec, LowerTensor } from '../../compiler/kernel/types.js';
import { createWeightTexture } from '../../compiler/profile/layout-cost.js';

export { keepAlive };

/** Set by vitest.unit.config.ts: the tests of this process must not create a WebGPU device. */
export const UNIT_ENV = 'FLASHMEM_TEST_UNIT';
export const NEEDS_GPU_MESSAGE = 'this test needs a GPU: it belongs outside test:unit (list it in GPU_TEST_FILES of vitest.unit.config.ts)';

let gpu: Promise<NodeGpu> | undefined;

/** The worker's device with its adapter and backend. */
export function testGpu(): Promise<NodeGpu> {
  if (process.env[UNIT_ENV]) throw new Error(NEEDS_GPU_MESSAGE);
  gpu ??= createNodeDevice();
  return gpu;
}

export async function testDevice(): Promise<GPUDevice> {
  return (await testGpu()).device;
}

// ------------------------------------------------------------------ kernels of one lowered node

/** A tensor of a lowered node and its host data (uploaded to its buffer, or to a weight texture). */
export interface Upload {
  tensor: LowerTensor;
  data: ArrayLike<number>;
}

export interface KernelRun {
  device: GPUDevice;
  /** encodes every kernel once, in order */
  dispatch(encoder: GPUCommandEncoder): void;
  /** dispatches every kernel once and reads `outputs` back (f32 or i32 by WGSL type) */
  run(outputs: readonly LowerTensor[]): Promise<(Float32Array | Int32Array)[]>;
  destroy(): void;
}

const bufferBytes = (t: LowerTensor) => Math.max(16, Math.ceil((numElements(t.type.shape) * 4) / 16) * 16);

export function hostTyped(type: TensorType, data: ArrayLike<number>): Float32Array<ArrayBuffer> | Int32Array<ArrayBuffer> {
  return wgslType(type.dtype) === 'f32' ? Float32Array.from(data) : Int32Array.from(data, (v) => Math.trunc(Number(v)));
}

/**
 * Kernels a node's lowering emitted, on the test device: one storage buffer per tensor they bind
 * (4 bytes an element, at least 16), the uploads written (a tensor with a `texture` layout goes to
 * a weight texture), pipelines and bind groups built; validation errors reject with the WGSL.
 */
export async function prepareKernels(kernels: readonly KernelSpec[], uploads: readonly Upload[]): Promise<KernelRun> {
  const device = await testDevice();
  const buffers = new Map<string, GPUBuffer>();
  const textures = new Map<string, GPUTexture>();
  const bufferFor = (t: LowerTensor): GPUBuffer => {
    let b = buffers.get(t.id);
    if (!b) {
      b = device.createBuffer({ size: bufferBytes(t), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      buffers.set(t.id, b);
    }
    return b;
  };
  for (const { tensor, data } of uploads) {
    if (tensor.texture) textures.set(tensor.id, createWeightTexture(device, tensor.texture, Float32Array.from(data)));
    else device.queue.writeBuffer(bufferFor(tensor), 0, hostTyped(tensor.type, data));
  }
  const resourceFor = (t: LowerTensor): GPUBindingResource => {
    const texture = textures.get(t.id);
    return texture ? texture.createView({ dimension: '2d-array' }) : { buffer: bufferFor(t) };
  };
  const failure = async (what: string) => {
    const err = await keepAlive(device.popErrorScope());
    if (err) throw new Error(`WebGPU validation error${what}: ${err.message}\n${kernels.map((k) => k.wgsl).join('\n-----\n')}`);
  };
  device.pushErrorScope('validation');
  const steps = kernels.map((k) => {
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: k.wgsl }), entryPoint: 'main' } });
    const entries = k.bindings.map((t, i) => ({ binding: i, resource: resourceFor(t) }));
    return { pipeline, bindGroup: device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries }), workgroups: k.workgroups };
  });
  await failure('');
  const dispatch = (encoder: GPUCommandEncoder) => {
    for (const s of steps) {
      const pass = encoder.beginComputePass();
      pass.setPipeline(s.pipeline);
      pass.setBindGroup(0, s.bindGroup);
      pass.dispatchWorkgroups(...s.workgroups);
      pass.end();
    }
  };
  return {
    device,
    dispatch,
    async run(outputs) {
      device.pushErrorScope('validation');
      const encoder = device.createCommandEncoder();
      dispatch(encoder);
      const reads = outputs.map((o) => {
        const rb = device.createBuffer({ size: bufferBytes(o), usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
        encoder.copyBufferToBuffer(bufferFor(o), 0, rb, 0, bufferBytes(o));
        return rb;
      });
      device.queue.submit([encoder.finish()]);
      await failure(' (dispatch)');
      const results: (Float32Array | Int32Array)[] = [];
      for (const [i, o] of outputs.entries()) {
        await keepAlive(reads[i]!.mapAsync(GPUMapMode.READ));
        const raw = reads[i]!.getMappedRange().slice(0, numElements(o.type.shape) * 4);
        results.push(wgslType(o.type.dtype) === 'f32' ? new Float32Array(raw) : new Int32Array(raw));
        reads[i]!.destroy();
      }
      return results;
    },
    destroy() {
      for (const b of buffers.values()) b.destroy();
      for (const t of textures.values()) t.destroy();
    },
  };
}
