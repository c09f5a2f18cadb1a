/**
 * GPU memory: the session's buffers and textures, counted for stats(), and GPU error scopes.
 */
import type { TextureDecl } from '../schemas/schedule.js';
import { keepAlive } from './env.js';
import { errorMessage, fail } from './errors.js';
import { TEXEL_BYTES } from './format.js';

/** WebGPU flag values, fixed by the specification; literals, so Node needs no GPUBufferUsage globals. */
export const BUFFER_USAGE = { MAP_READ: 0x1, MAP_WRITE: 0x2, COPY_SRC: 0x4, COPY_DST: 0x8, STORAGE: 0x80 } as const;
const TEXTURE_USAGE = { COPY_DST: 0x2, TEXTURE_BINDING: 0x4 } as const;
export const SHADER_STAGE_COMPUTE = 0x4;
export const MAP_MODE_READ = 0x1;

/** Creates and destroys the session's buffers and counts their bytes, for stats(). */
export class GpuMemory {
  private readonly sizes = new Map<GPUBuffer | GPUTexture, number>();
  liveBytes = 0;
  peakBytes = 0;

  /** resolve to a message for each allocation the device reported out of memory */
  private allocationChecks: Promise<string | undefined>[] = [];

  constructor(private readonly device: GPUDevice) {}

  /**
   * Allocates in an 'out-of-memory' error scope of its own (WebGPU reports a failed allocation
   * there, asynchronously: see checkAllocations); an allocation that throws fails at once.
   */
  /** host-visible staging (LoadOptions.uploads 'mapped'): counted apart from the device memory */
  hostStagingBytes = 0;

  /** A host-visible staging buffer, mapped: the caller fills it and unmaps it. */
  createHostStaging(size: number, role: string): GPUBuffer {
    return this.createBuffer({ label: 'host-staging', size, usage: BUFFER_USAGE.MAP_WRITE | BUFFER_USAGE.COPY_SRC, mappedAtCreation: true }, role, false);
  }

  private readonly uncounted = new Set<GPUBuffer | GPUTexture>();

  createBuffer(descriptor: GPUBufferDescriptor & { size: number }, role: string, deviceMemory = true): GPUBuffer {
    const what = `${descriptor.size} bytes for ${role}`;
    this.device.pushErrorScope('out-of-memory');
    let buffer: GPUBuffer;
    try {
      buffer = this.device.createBuffer(descriptor);
    } catch (error) {
      this.device.popErrorScope().catch(() => {});
      const message = errorMessage(error);
      if (error instanceof RangeError || /memory|alloc/i.test(message)) fail('FM_WEBGPU', `out of GPU memory allocating ${what}: ${message}`, error);
      fail('FM_WEBGPU', `allocating ${what} failed: ${message}`, error);
    }
    this.allocationChecks.push(this.device.popErrorScope().then(
      (error) => (error ? `out of GPU memory allocating ${what}: ${error.message}` : undefined),
      () => undefined,
    ));
    this.sizes.set(buffer, descriptor.size);
    if (deviceMemory) {
      this.liveBytes += descriptor.size;
      this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    } else {
      this.uncounted.add(buffer);
      this.hostStagingBytes += descriptor.size;
    }
    return buffer;
  }

  /** A weight texture, counted with its texel bytes; allocation failures are reported like buffers'. */
  createTexture(decl: TextureDecl, label: string, role: string): GPUTexture {
    const size = decl.width * decl.height * decl.layers * TEXEL_BYTES;
    const what = `${size} bytes for ${role}`;
    this.device.pushErrorScope('out-of-memory');
    let texture: GPUTexture;
    try {
      texture = this.device.createTexture({
        label, format: decl.format, size: [decl.width, decl.height, decl.layers], usage: TEXTURE_USAGE.COPY_DST | TEXTURE_USAGE.TEXTURE_BINDING,
        // compatibility mode binds a texture only with this view dimension (a 1-layer texture would default to '2d')
        textureBindingViewDimension: '2d-array',
      } as GPUTextureDescriptor);
    } catch (error) {
      this.device.popErrorScope().catch(() => {});
      fail('FM_WEBGPU', `allocating ${what} failed: ${errorMessage(error)}`, error);
    }
    this.allocationChecks.push(this.device.popErrorScope().then(
      (error) => (error ? `out of GPU memory allocating ${what}: ${error.message}` : undefined),
      () => undefined,
    ));
    this.sizes.set(texture, size);
    this.liveBytes += size;
    this.peakBytes = Math.max(this.peakBytes, this.liveBytes);
    return texture;
  }

  /** Rejects with FM_WEBGPU if the device reported any allocation so far out of memory. */
  async checkAllocations(): Promise<void> {
    const failures = await keepAlive(Promise.all(this.allocationChecks.splice(0)));
    const first = failures.find((failure) => failure !== undefined);
    if (first !== undefined) fail('FM_WEBGPU', first);
  }

  destroyAll(): void {
    for (const [buffer, size] of this.sizes) {
      buffer.destroy();
      if (this.uncounted.has(buffer)) this.hostStagingBytes -= size;
      else this.liveBytes -= size;
    }
    this.sizes.clear();
    this.uncounted.clear();
  }
}

/**
 * Collects GPU validation and out-of-memory errors. Error scopes are a per-device stack, and other
 * sessions may share the device, so a scope never spans an await: capture() takes synchronous work.
 */
export class GpuErrorCollector {
  private pending: Promise<GPUError | null>[] = [];

  constructor(private readonly device: GPUDevice) {}

  capture<T>(work: () => T): T {
    this.device.pushErrorScope('out-of-memory');
    this.device.pushErrorScope('validation');
    try {
      return work();
    } finally {
      const popped = [this.device.popErrorScope(), this.device.popErrorScope()];
      // awaited by check(); until then (or if a failure elsewhere means never) a rejection is not unhandled
      for (const scope of popped) scope.catch(() => {});
      this.pending.push(...popped);
    }
  }

  async check(what: string): Promise<void> {
    const errors = await keepAlive(Promise.all(this.pending));
    this.pending = [];
    const first = errors.find((error) => error !== null);
    if (first) fail('FM_WEBGPU', `${what}: ${first.message}`);
  }
}
