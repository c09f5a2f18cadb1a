/**
 * Recording GPU work: the command recorder, bind group layouts and compute pipelines.
 */
import type { DispatchStep, TextureRegion } from '../schemas/schedule.js';
import { keepAlive } from './env.js';
import { errorMessage, fail, quote } from './errors.js';
import { isTextureBinding, TEXEL_BYTES } from './format.js';
import { SHADER_STAGE_COMPUTE } from './gpu-memory.js';
import type { GpuElements } from './tensors.js';
import { Timeline } from './timeline.js';

/** largest single queue.writeTexture (see Recorder.writeTexture); WebGPU's default maxBufferSize is 256 MiB */
const TEXTURE_WRITE_BYTES = 64 << 20;

/**
 * Records dispatches and copies into one command encoder. Host writes (inputs, weight uploads) are
 * queue operations that would run before every command not yet submitted, so a host write after
 * recorded commands submits them first; without such writes a whole run is one submission.
 */
export class CommandRecorder {
  private encoder?: GPUCommandEncoder;
  private pass?: GPUComputePassEncoder;
  submissions = 0;

  constructor(private readonly device: GPUDevice, private readonly timeline?: Timeline) {}

  dispatch(pipeline: GPUComputePipeline, bindGroup: GPUBindGroup, workgroups: readonly [number, number, number]): void {
    this.pass ??= this.openEncoder().beginComputePass();
    this.pass.setPipeline(pipeline);
    this.pass.setBindGroup(0, bindGroup);
    this.pass.dispatchWorkgroups(workgroups[0], workgroups[1], workgroups[2]);
  }

  copy(source: GPUBuffer, sourceOffset: number, target: GPUBuffer, targetOffset: number, size: number): void {
    this.endPass();
    this.openEncoder().copyBufferToBuffer(source, sourceOffset, target, targetOffset, size);
  }

  write(target: GPUBuffer, offset: number, data: GpuElements | Uint8Array<ArrayBuffer>): void {
    this.submit();
    this.device.queue.writeBuffer(target, offset, data);
  }

  /**
   * Whole texture rows from shard bytes already in the texel layout (no conversion), in bands of
   * at most TEXTURE_WRITE_BYTES: Dawn stages each writeTexture in one buffer, which may not pass
   * the device's maxBufferSize (VGG-19's classifier is one 411 MB layer).
   */
  writeTexture(target: GPUTexture, width: number, dst: TextureRegion, data: Uint8Array<ArrayBuffer>): void {
    this.submit();
    const bytesPerRow = width * TEXEL_BYTES;
    const band = Math.max(1, Math.floor(TEXTURE_WRITE_BYTES / bytesPerRow));
    for (let row = 0; row < dst.rows; row += band) {
      const rows = Math.min(band, dst.rows - row);
      this.device.queue.writeTexture(
        { texture: target, origin: { x: 0, y: dst.y + row, z: dst.layer } }, data,
        { offset: row * bytesPerRow, bytesPerRow, rowsPerImage: rows }, { width, height: rows, depthOrArrayLayers: 1 },
      );
    }
  }

  submit(): void {
    if (!this.encoder) return;
    this.endPass();
    this.device.queue.submit([this.encoder.finish()]);
    this.encoder = undefined;
    this.submissions++;
    this.timeline?.submitted(this.device.queue);
  }

  private openEncoder(): GPUCommandEncoder {
    return (this.encoder ??= this.device.createCommandEncoder());
  }

  private endPass(): void {
    this.pass?.end();
    this.pass = undefined;
  }
}

/** A dispatch's binding kinds, one letter per binding: 's' storage buffer, 'r' read-only storage buffer, 't' weight texture. */
export function bindingKinds(step: DispatchStep): string {
  const readOnly = new Set(step.readOnly ?? []);
  return step.bindings.map((binding, i) => (isTextureBinding(binding) ? 't' : readOnly.has(i) ? 'r' : 's')).join('');
}

/** Explicit layouts (not 'auto'), so a binding the shader leaves unused is still accepted. */
export class BindGroupLayouts {
  private readonly layouts = new Map<string, { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout }>();

  constructor(private readonly device: GPUDevice) {}

  /** `kinds` as bindingKinds gives them */
  forBindings(kinds: string): { group: GPUBindGroupLayout; pipeline: GPUPipelineLayout } {
    let layout = this.layouts.get(kinds);
    if (!layout) {
      const entries = [...kinds].map((kind, binding): GPUBindGroupLayoutEntry => (kind === 't'
        ? { binding, visibility: SHADER_STAGE_COMPUTE, texture: { sampleType: 'unfilterable-float', viewDimension: '2d-array' } }
        : { binding, visibility: SHADER_STAGE_COMPUTE, buffer: { type: kind === 'r' ? 'read-only-storage' : 'storage' } }));
      const group = this.device.createBindGroupLayout({ entries });
      layout = { group, pipeline: this.device.createPipelineLayout({ bindGroupLayouts: [group] }) };
      this.layouts.set(kinds, layout);
    }
    return layout;
  }
}

/** Compiles every pipeline asynchronously as soon as it is requested, so compilation overlaps weight uploads. */
export class Pipelines {
  private readonly pending = new Map<string, Promise<GPUComputePipeline>>();

  constructor(
    private readonly device: GPUDevice,
    private readonly shaders: { path: string; source: string }[],
    private readonly layouts: BindGroupLayouts,
  ) {}

  request(shader: number, kinds: string): Promise<GPUComputePipeline> {
    const key = `${shader}/${kinds}`;
    let pipeline = this.pending.get(key);
    if (!pipeline) {
      pipeline = this.compile(shader, kinds);
      // awaited later; until then a failure must not count as an unhandled rejection
      pipeline.catch(() => {});
      this.pending.set(key, pipeline);
    }
    return pipeline;
  }

  private async compile(shader: number, kinds: string): Promise<GPUComputePipeline> {
    const { path, source } = this.shaders[shader]!;
    const module = this.device.createShaderModule({ label: path, code: source });
    try {
      return await keepAlive(this.device.createComputePipelineAsync({
        layout: this.layouts.forBindings(kinds).pipeline,
        compute: { module, entryPoint: 'main' },
      }));
    } catch (error) {
      fail('FM_WEBGPU', `compiling ${quote(path)} failed: ${errorMessage(error)}${await compilerMessages(module)}`, error);
    }
  }
}

async function compilerMessages(module: GPUShaderModule): Promise<string> {
  try {
    const info = await keepAlive(module.getCompilationInfo());
    const errors = info.messages.filter((message) => message.type === 'error');
    return errors.map((message) => `\n  line ${message.lineNum}:${message.linePos}: ${message.message}`).join('');
  } catch {
    return '';
  }
}
