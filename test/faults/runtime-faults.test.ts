/**
 * Runtime faults on the shared test device: shard reads that fail or come back short (through
 * LoadOptions.readFile), out-of-memory on buffer creation (a device wrapper that throws or reports
 * 'out-of-memory' in its error scope), a device whose `lost` promise resolves mid-run, and
 * concurrent runs. Each fault is a rejected promise with a clear FM_* error, never a hang; nothing
 * allocated is left behind, and the device keeps working for the next session.
 */
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assembleBundle, importRuntime, mlpModel, mlpReference, rejectionOf, removeTempDirs, seededFloats, sharedDevice,
  streamedMlpModel, writeFixtureBundle, type RuntimeModule,
} from '../harness/bundle-fixtures.js';

let device: GPUDevice;
let runtime: RuntimeModule;
let mlpDir: string;
let streamedDir: string;

beforeAll(async () => {
  // bundles (and so the runtime) are generated before the device exists: generation blocks for seconds
  mlpDir = await writeFixtureBundle(assembleBundle([mlpModel()]));
  streamedDir = await writeFixtureBundle(assembleBundle([streamedMlpModel()]));
  runtime = await importRuntime(mlpDir);
  device = await sharedDevice();
});
afterAll(removeTempDirs);

async function expectDeviceStillWorks(): Promise<void> {
  const session = await runtime.loadBundle(mlpDir, { device });
  const x = seededFloats(6, 21);
  const { y } = await session.run({ x });
  mlpReference(x).forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
  session.dispose();
  expect(session.stats().liveGpuBytes).toBe(0);
}

function expectError(error: { code: string; message: string; name: string }, code: string, ...fragments: string[]): void {
  expect(error.name).toBe('FlashmemRuntimeError');
  expect(error.code, error.message).toBe(code);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
}

// ------------------------------------------------------------------------------ readFile hook

type Fault = (path: string, read: number, bytes: Uint8Array) => Uint8Array | Promise<Uint8Array>;

/** A readFile hook over a bundle folder that logs every read and lets a test change or fail one. */
function hook(dir: string, fault?: Fault) {
  const reads: { path: string; range?: { offset: number; length: number } }[] = [];
  const readFileHook = async (path: string, range?: { offset: number; length: number }): Promise<Uint8Array> => {
    const n = reads.push({ path, range });
    const whole = await readFile(join(dir, path));
    const bytes = range ? whole.subarray(range.offset, range.offset + range.length) : whole;
    return fault ? fault(path, n, bytes) : bytes;
  };
  return { reads, readFile: readFileHook };
}

describe('LoadOptions.readFile', () => {
  it('reads every bundle file through the hook (custom storage: no folder at the given location)', async () => {
    const { reads, readFile: read } = hook(mlpDir);
    const session = await runtime.loadBundle('idb://models/mlp', { device, readFile: read });
    const x = seededFloats(6, 3);
    const { y } = await session.run({ x });
    mlpReference(x).forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
    session.dispose();
    const { shaders } = JSON.parse(await readFile(join(mlpDir, 'schedule.json'), 'utf8')) as { shaders: string[] };
    expect(reads.map((r) => r.path).sort()).toEqual(['manifest.json', 'schedule.json', ...shaders, 'weights/0.bin'].sort());
    expect(reads[0]).toMatchObject({ path: 'manifest.json', range: { offset: 0 } });
    await expect(runtime.verifyBundle('idb://models/mlp', { readFile: hook(mlpDir).readFile })).resolves.toMatchObject({ files: 7 });
  });

  it('a read that fails mid-stream (the 3rd) rejects with FM_IO naming the file', async () => {
    const { reads, readFile: read } = hook(mlpDir, (path, n, bytes) => {
      if (n === 3) throw new Error('simulated: the disk went away');
      return bytes;
    });
    const error = await rejectionOf(runtime.loadBundle(mlpDir, { device, readFile: read }));
    expectError(error, 'FM_IO', `reading bundle file "${reads[2]!.path}"`, 'the disk went away');
    await expectDeviceStillWorks();
  });

  it('a shard read that fails after the GPU buffers exist: FM_IO, every buffer destroyed', async () => {
    const tracked = trackedDevice(device);
    const { readFile: read } = hook(mlpDir, (path, _n, bytes) => {
      if (path.startsWith('weights/')) throw Object.assign(new Error('simulated: EIO'), { code: 'EIO' });
      return bytes;
    });
    const error = await rejectionOf(runtime.loadBundle(mlpDir, { device: tracked.device, readFile: read }));
    expectError(error, 'FM_IO', 'weights/0.bin', 'EIO');
    expect(tracked.created()).toBe(3);
    expect(tracked.liveBytes()).toBe(0);
    await expectDeviceStillWorks();
  });

  it('a shard read that returns short data: FM_BUNDLE_HASH naming the file, buffers destroyed', async () => {
    for (const dir of [mlpDir, streamedDir]) {
      const tracked = trackedDevice(device);
      const { readFile: read } = hook(dir, (path, _n, bytes) => (path.startsWith('weights/') ? bytes.subarray(0, 10) : bytes));
      const error = await rejectionOf(runtime.loadBundle(dir, { device: tracked.device, readFile: read }));
      expectError(error, 'FM_BUNDLE_HASH', 'weights/0.bin', 'only 10 bytes', 'truncated');
      expect(tracked.liveBytes()).toBe(0);
    }
    await expectDeviceStillWorks();
  });

  it('bytes changed by the hook after they were returned do not reach the GPU (they were copied and verified)', async () => {
    const { readFile: read } = hook(mlpDir, (_path, _n, bytes) => {
      const copy = new Uint8Array(bytes);
      // zeroed while the runtime is still hashing: without its own copy it would upload zeros
      setTimeout(() => copy.fill(0), 0);
      return copy;
    });
    const session = await runtime.loadBundle(mlpDir, { device, readFile: read });
    const x = seededFloats(6, 8);
    const { y } = await session.run({ x });
    mlpReference(x).forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
    session.dispose();
  });

  it('a missing file (ENOENT) is FM_BUNDLE_INVALID; a result that is not bytes is FM_IO', async () => {
    const missing = hook(mlpDir, (path, _n, bytes) => {
      if (path.startsWith('shaders/')) throw Object.assign(new Error('no such file'), { code: 'ENOENT' });
      return bytes;
    });
    expectError(await rejectionOf(runtime.loadBundle(mlpDir, { device, readFile: missing.readFile })), 'FM_BUNDLE_INVALID', 'shaders/', 'is missing');
    const notBytes = hook(mlpDir, () => 'hello' as unknown as Uint8Array);
    expectError(await rejectionOf(runtime.loadBundle(mlpDir, { device, readFile: notBytes.readFile })), 'FM_IO', 'manifest.json', 'not a Uint8Array');
  });
});

// ------------------------------------------------------------------------------- device faults

interface DeviceFaults {
  /** createBuffer throws on this call (1-based) */
  throwOnBuffer?: number;
  /** createBuffer succeeds on this call, but the innermost 'out-of-memory' error scope reports an error */
  outOfMemoryOnBuffer?: number;
  /** replaces device.lost */
  lost?: Promise<GPUDeviceLostInfo>;
}

/**
 * The shared device behind a Proxy that counts the buffers created through it (and their
 * destruction) and injects faults. Everything else goes to the real device.
 */
function trackedDevice(real: GPUDevice, faults: DeviceFaults = {}) {
  const live = new Map<GPUBuffer, number>();
  let created = 0;
  const scopes: { filter: GPUErrorFilter; injected: GPUError | null }[] = [];
  const proxy = new Proxy(real, {
    get(target, property) {
      switch (property) {
        case 'createBuffer':
          return (descriptor: GPUBufferDescriptor) => {
            created++;
            if (created === faults.throwOnBuffer) throw new RangeError(`simulated: cannot allocate ${descriptor.size} bytes`);
            const buffer = target.createBuffer(descriptor);
            if (created === faults.outOfMemoryOnBuffer) {
              const scope = [...scopes].reverse().find((s) => s.filter === 'out-of-memory');
              if (scope) scope.injected = { message: 'simulated: allocation failed' } as GPUError;
            }
            live.set(buffer, descriptor.size);
            const destroy = buffer.destroy.bind(buffer);
            Object.defineProperty(buffer, 'destroy', { value: () => { live.delete(buffer); destroy(); } });
            return buffer;
          };
        case 'pushErrorScope':
          return (filter: GPUErrorFilter) => {
            scopes.push({ filter, injected: null });
            target.pushErrorScope(filter);
          };
        case 'popErrorScope':
          return () => {
            const scope = scopes.pop();
            return target.popErrorScope().then((error) => scope?.injected ?? error);
          };
        case 'lost':
          if (faults.lost) return faults.lost;
          break;
        case 'destroy':
          return () => { throw new Error('the shared test device must not be destroyed'); };
      }
      const value = Reflect.get(target, property, target) as unknown;
      return typeof value === 'function' ? (value as (...args: unknown[]) => unknown).bind(target) : value;
    },
  });
  return { device: proxy, created: () => created, liveBytes: () => [...live.values()].reduce((a, b) => a + b, 0) };
}

describe('out of GPU memory on buffer creation', () => {
  it('createBuffer throws: FM_WEBGPU naming bytes and role, earlier buffers destroyed', async () => {
    const tracked = trackedDevice(device, { throwOnBuffer: 2 });
    const error = await rejectionOf(runtime.loadBundle(mlpDir, { device: tracked.device }));
    expectError(error, 'FM_WEBGPU', 'out of GPU memory allocating 544 bytes for activations buffer 1 of model "mlp"');
    expect(tracked.created()).toBe(2);
    expect(tracked.liveBytes()).toBe(0);
    await expectDeviceStillWorks();
  });

  it("the 'out-of-memory' error scope reports the failure: FM_WEBGPU, every buffer destroyed, no weight read", async () => {
    const tracked = trackedDevice(device, { outOfMemoryOnBuffer: 3 });
    const { reads, readFile: read } = hook(mlpDir);
    const error = await rejectionOf(runtime.loadBundle(mlpDir, { device: tracked.device, readFile: read }));
    expectError(error, 'FM_WEBGPU', 'out of GPU memory allocating 32 bytes for the readback buffer of model "mlp"');
    expect(tracked.created()).toBe(3);
    expect(tracked.liveBytes()).toBe(0);
    expect(reads.some((r) => r.path.startsWith('weights/'))).toBe(false);
    await expectDeviceStillWorks();
  });
});

describe('device loss and concurrency', () => {
  it('device.lost resolving during a run: pending and later runs reject with FM_WEBGPU naming the reason', async () => {
    let loseDevice!: (info: GPUDeviceLostInfo) => void;
    const lost = new Promise<GPUDeviceLostInfo>((resolve) => { loseDevice = resolve; });
    const tracked = trackedDevice(device, { lost });
    const session = await runtime.loadBundle(mlpDir, { device: tracked.device });
    const x = seededFloats(6, 5);
    await session.run({ x });
    const pending = [session.run({ x }), session.run({ x }), session.run({ x })];
    loseDevice({ reason: 'unknown', message: 'simulated: the GPU process crashed' } as GPUDeviceLostInfo);
    for (const run of pending) expectError(await rejectionOf(run), 'FM_WEBGPU', 'device was lost (unknown)', 'the GPU process crashed');
    expectError(await rejectionOf(session.run({ x })), 'FM_WEBGPU', 'device was lost (unknown)');
    session.dispose();
    expect(session.stats().liveGpuBytes).toBe(0);
    expect(tracked.liveBytes()).toBe(0);
    await expectDeviceStillWorks();
  });

  it('8 concurrent runs with different inputs are queued and all correct (streamed weights too)', async () => {
    for (const dir of [mlpDir, streamedDir]) {
      const session = await runtime.loadBundle(dir, { device });
      const inputs = Array.from({ length: 8 }, (_, i) => seededFloats(6, 100 + i));
      const outputs = await Promise.all(inputs.map((x) => session.run({ x })));
      outputs.forEach(({ y }, i) => mlpReference(inputs[i]!).forEach((v, k) => expect(y![k]).toBeCloseTo(v, 5)));
      expect(session.stats().runs).toBe(8);
      session.dispose();
    }
  });

  it('dispose() while runs are queued rejects them, never hangs', async () => {
    const session = await runtime.loadBundle(mlpDir, { device });
    const x = seededFloats(6, 9);
    const runs = [session.run({ x }), session.run({ x })];
    session.dispose();
    for (const run of runs) expectError(await rejectionOf(run), 'FM_WEBGPU', 'disposed');
    expect(session.stats().liveGpuBytes).toBe(0);
  });
});
