/**
 * The layout micro-benchmark (profile.layoutCost): the same Conv and MatMul compiled twice, with
 * weights in storage buffers and in the 2.5D texture layout, timed on the current device. Each
 * op class gets textureOverBuffer = geometric mean over its cases of texture latency / buffer
 * latency (< 1: the texture kernels are faster), which `--weight-layout auto` compiles with.
 * layout-cost-measurement.ts registers it with `flashmemc profile`; bench/layout-bench.ts runs it alone.
 */
import { buildModel, randomFloats, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { importOnnx } from '../frontend/onnx.js';
import { runPipeline } from '../passes/pipeline.js';
import { storageRoot, type KernelProgram } from '../lower/program.js';
import { textureRowBytes } from '../kernel/texture-layout.js';
import { gpuBytes } from '../schedule/weights.js';
import type { TargetLimits } from '../target/limits.js';
import type { TextureShape } from '../kernel/types.js';
import type { WeightLayout } from '../ops/op.js';
import type { LayoutCosts } from '../passes/select-weight-layout.js';
import { fail } from '../errors.js';
import { keepAlive } from '../target/webgpu.js';

const f32 = 'float32' as const;

/** A weight texture filled from its texels (as the runtime does from shard bytes: whole rows per layer). */
export function createWeightTexture(device: GPUDevice, shape: TextureShape, texels: Float32Array): GPUTexture {
  const texture = device.createTexture({
    format: 'rgba32float', size: [shape.width, shape.height, shape.layers],
    usage: GPUTextureUsage.TEXTURE_BINDING | GPUTextureUsage.COPY_DST,
    textureBindingViewDimension: '2d-array',
  } as GPUTextureDescriptor);
  const bytes = new Uint8Array(texels.buffer, texels.byteOffset, texels.byteLength) as Uint8Array<ArrayBuffer>;
  device.queue.writeTexture({ texture }, bytes, { bytesPerRow: textureRowBytes(shape), rowsPerImage: shape.height }, [shape.width, shape.height, shape.layers]);
  return texture;
}

export interface LayoutCase {
  kind: keyof LayoutCosts;
  name: string;
  model: ModelSpec;
}

/** Layers like those of the light CNNs and a classifier; small enough for llvmpipe. */
export function layoutCases(quick: boolean): LayoutCase[] {
  const conv = (c: number, m: number, side: number, k: number): LayoutCase => ({
    kind: 'conv', name: `conv ${c}->${m} ${k}x${k} @${side}x${side}`,
    model: {
      opset: 13,
      inputs: [{ name: 'x', dtype: f32, shape: [1, c, side, side] }],
      outputs: [{ name: 'y', dtype: f32 }],
      initializers: [{ name: 'w', dtype: f32, shape: [m, c, k, k], data: randomFloats(m * c * k * k, 5) }],
      nodes: [{ opType: 'Conv', inputs: ['x', 'w'], outputs: ['y'], attrs: { pads: new Array<number>(4).fill((k - 1) / 2) } }],
    },
  });
  const matmul = (m: number, k: number, n: number): LayoutCase => ({
    kind: 'matmul', name: `matmul ${m}x${k}x${n}`,
    model: {
      opset: 13,
      inputs: [{ name: 'a', dtype: f32, shape: [m, k] }],
      outputs: [{ name: 'y', dtype: f32 }],
      initializers: [{ name: 'b', dtype: f32, shape: [k, n], data: randomFloats(k * n, 6) }],
      nodes: [{ opType: 'MatMul', inputs: ['a', 'b'], outputs: ['y'] }],
    },
  });
  if (quick) return [conv(16, 32, 16, 3), conv(32, 32, 16, 1), matmul(16, 256, 256), matmul(1, 512, 512)];
  return [
    conv(32, 64, 28, 3), conv(64, 64, 28, 1), conv(64, 128, 14, 3), conv(128, 128, 14, 1),
    matmul(64, 512, 512), matmul(1, 1024, 1024), matmul(128, 256, 256),
  ];
}

export function compileWithLayout(spec: ModelSpec, limits: TargetLimits, weightLayout: WeightLayout): KernelProgram {
  return runPipeline(importOnnx(buildModel(spec)), { limits, weightLayout }).state.program!;
}

/** Buffers and textures for every tensor of a program (inputs random) and a recorder of its kernels. */
export class LayoutProgramOnDevice {
  private readonly buffers = new Map<string, GPUBuffer>();
  private readonly textures = new Map<string, GPUTexture>();

  constructor(private readonly device: GPUDevice, readonly program: KernelProgram) {
    for (const t of program.tensors.values()) {
      if (t.aliasOf) continue;
      if (t.texture) {
        this.textures.set(t.id, createWeightTexture(device, t.texture, t.data!.data as Float32Array));
        continue;
      }
      const buffer = device.createBuffer({ size: Math.max(16, Math.ceil(t.bytes / 16) * 16), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_DST });
      this.buffers.set(t.id, buffer);
      if (t.data) device.queue.writeBuffer(buffer, 0, gpuBytes(t.id, t.data) as Uint8Array<ArrayBuffer>);
      else if (t.role === 'input') device.queue.writeBuffer(buffer, 0, randomFloats(t.bytes / 4, 3) as Float32Array<ArrayBuffer>);
    }
  }

  /** Records every kernel of the program; explicit layouts, as the bundle runtime makes them. */
  async recorder(): Promise<(pass: GPUComputePassEncoder) => void> {
    this.device.pushErrorScope('validation');
    const steps = this.program.kernels.map((kernel) => {
      const roots = kernel.bindings.map((id) => storageRoot(this.program, id));
      const layout = this.device.createBindGroupLayout({
        entries: roots.map((t, binding): GPUBindGroupLayoutEntry => (t.texture
          ? { binding, visibility: GPUShaderStage.COMPUTE, texture: { sampleType: 'unfilterable-float', viewDimension: '2d-array' } }
          : { binding, visibility: GPUShaderStage.COMPUTE, buffer: { type: 'storage' } })),
      });
      const pipeline = this.device.createComputePipeline({
        layout: this.device.createPipelineLayout({ bindGroupLayouts: [layout] }),
        compute: { module: this.device.createShaderModule({ code: kernel.wgsl }), entryPoint: 'main' },
      });
      const bindGroup = this.device.createBindGroup({
        layout,
        entries: roots.map((t, binding) => ({
          binding, resource: t.texture ? this.textures.get(t.id)!.createView({ dimension: '2d-array' }) : { buffer: this.buffers.get(t.id)! },
        })),
      });
      return { pipeline, bindGroup, workgroups: kernel.workgroups };
    });
    const error = await keepAlive(this.device.popErrorScope());
    if (error) fail('FM_WEBGPU', `layout benchmark kernels failed validation: ${error.message}`);
    return (pass) => {
      for (const s of steps) {
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(...s.workgroups);
      }
    };
  }

  destroy(): void {
    for (const b of this.buffers.values()) b.destroy();
    for (const t of this.textures.values()) t.destroy();
  }
}

export interface LayoutTiming {
  kind: keyof LayoutCosts;
  name: string;
  bufferUs: number;
  textureUs: number;
}

/** Times every case with both layouts; `timeUs` is the profile's batch timer (median us per repetition). */
export async function timeLayouts(
  device: GPUDevice, limits: TargetLimits, cases: readonly LayoutCase[],
  timeUs: (record: (pass: GPUComputePassEncoder) => void) => Promise<number>, log: (line: string) => void = () => {},
): Promise<LayoutTiming[]> {
  const timings: LayoutTiming[] = [];
  for (const c of cases) {
    const us: Record<WeightLayout, number> = { buffer: 0, texture: 0 };
    for (const layout of ['buffer', 'texture'] as const) {
      const program = compileWithLayout(c.model, limits, layout);
      const usesTexture = [...program.tensors.values()].some((t) => t.texture);
      if (usesTexture !== (layout === 'texture')) fail('FM_LIMIT', `layout benchmark ${c.name}: the ${layout} layout was not applied (does the texture fit the limits?)`);
      const onDevice = new LayoutProgramOnDevice(device, program);
      try {
        us[layout] = await timeUs(await onDevice.recorder());
      } finally {
        onDevice.destroy();
      }
    }
    timings.push({ kind: c.kind, name: c.name, bufferUs: us.buffer, textureUs: us.texture });
    log(`layout ${c.name}: buffer ${us.buffer.toFixed(1)} us, texture ${us.texture.toFixed(1)} us (x${(us.texture / us.buffer).toFixed(3)})`);
  }
  return timings;
}

/** Geometric mean of texture/buffer per op class (a ratio of ratios stays scale-free). */
export function layoutCostOf(timings: readonly LayoutTiming[]): LayoutCosts {
  const cost: LayoutCosts = {};
  for (const kind of ['conv', 'matmul'] as const) {
    const ratios = timings.filter((t) => t.kind === kind).map((t) => t.textureUs / t.bufferUs);
    if (ratios.length === 0) continue;
    const ratio = Math.exp(ratios.reduce((s, r) => s + Math.log(r), 0) / ratios.length);
    cost[kind] = { textureOverBuffer: Math.round(ratio * 1000) / 1000 };
  }
  return cost;
}
