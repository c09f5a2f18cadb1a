/**
 * The generated runtime in Node: write a bundle, load it with the bundle's own runtime.js, run it,
 * and compare with CPU references computed independently of the WGSL.
 */
import { execFile } from 'node:child_process';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { promisify } from 'node:util';
import { afterAll, describe, expect, it } from 'vitest';
import {
  assembleBundle, counterModel, counterReference, COUNTER_BUFFER_BYTES, importRuntime, mlpModel, mlpReference,
  MLP, MLP_BUFFER_BYTES, rejectionOf, removeTempDirs, seededFloats, sharedDevice, streamedMlpModel,
  STREAMED_BUFFER_BYTES, writeFixtureBundle,
} from '../harness/bundle-fixtures.js';

afterAll(removeTempDirs);

const run = promisify(execFile);

function expectClose(actual: ArrayLike<number>, expected: ArrayLike<number>): void {
  expect(actual.length).toBe(expected.length);
  for (let i = 0; i < expected.length; i++) expect(actual[i]).toBeCloseTo(expected[i]!, 5);
}

const X_COUNT = MLP.M * MLP.K;

describe('runtime: load and run in Node', () => {
  it('runs y = relu(x W + b) on a device it creates itself, and matches the CPU', async () => {
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(dir);
    try {
      for (const seed of [1, 2]) {
        const x = seededFloats(X_COUNT, seed);
        const { y } = await session.run({ x });
        expect(y).toBeInstanceOf(Float32Array);
        expectClose(y as Float32Array, mlpReference(x));
      }
      // relu must have clamped something, or the test would not notice a missing activation
      expect(mlpReference(seededFloats(X_COUNT, 1)).some((v) => v === 0)).toBe(true);
    } finally {
      session.dispose();
    }
  });

  it('accepts plain number arrays and a file: URL', async () => {
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(new URL(`file://${dir}/`), { device: await sharedDevice() });
    const x = Array.from(seededFloats(X_COUNT, 3));
    expectClose((await session.run({ x })).y as Float32Array, mlpReference(x));
    session.dispose();
  });

  it('keeps streamed uploads in order with the dispatches that read them', async () => {
    const dir = await writeFixtureBundle(assembleBundle([streamedMlpModel()]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(dir, { device: await sharedDevice() });
    const x = seededFloats(X_COUNT, 4);
    expectClose((await session.run({ x })).y as Float32Array, mlpReference(x));
    expectClose((await session.run({ x })).y as Float32Array, mlpReference(x));
    const stats = session.stats();
    expect(stats.uploads).toBe(4);
    expect(stats.uploadedBytes).toBe(2 * (MLP.K * MLP.N + MLP.N) * 4);
    expect(stats.peakGpuBytes).toBe(STREAMED_BUFFER_BYTES.activations + STREAMED_BUFFER_BYTES.staging + STREAMED_BUFFER_BYTES.readback);
    session.dispose();
  });

  it('converts int64 inputs and returns int64 and bool outputs as BigInt64Array and Uint8Array', async () => {
    const dir = await writeFixtureBundle(assembleBundle([counterModel()]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(dir, { device: await sharedDevice() });
    const a = [-3n, 0n, 7n, 2147483646n, -2147483648n];
    const out = await session.run({ a: BigInt64Array.from(a) });
    const expected = counterReference(a);
    expect(out.next).toBeInstanceOf(BigInt64Array);
    expect(Array.from(out.next as BigInt64Array)).toEqual(expected.next);
    expect(out.positive).toBeInstanceOf(Uint8Array);
    expect(Array.from(out.positive as Uint8Array)).toEqual(expected.positive);
    // plain numbers for an int64 input
    const plain = await session.run({ a: [1, 2, 3, 4, -5] });
    expect(Array.from(plain.next as BigInt64Array)).toEqual([2n, 3n, 4n, 5n, -4n]);
    session.dispose();
  });

  it('runs the named model of a multi-model bundle and refuses an unnamed run', async () => {
    const dir = await writeFixtureBundle(assembleBundle([mlpModel('encoder'), counterModel('counter')]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(dir, { device: await sharedDevice() });
    expect(session.models.map((m) => m.name)).toEqual(['encoder', 'counter']);
    const x = seededFloats(X_COUNT, 5);
    expectClose((await session.run('encoder', { x })).y as Float32Array, mlpReference(x));
    expect(Array.from((await session.run('counter', { a: [1n, 2n, 3n, 4n, 5n] })).next as BigInt64Array)).toEqual([2n, 3n, 4n, 5n, 6n]);
    expect((await rejectionOf(session.run({ x }))).code).toBe('FM_INPUT');
    const unknown = await rejectionOf(session.run('decoder', { x }));
    expect(unknown.code).toBe('FM_INPUT');
    expect(unknown.message).toContain('"decoder"');
    expect(session.stats().peakGpuBytes).toBe(
      MLP_BUFFER_BYTES.weights + MLP_BUFFER_BYTES.activations + MLP_BUFFER_BYTES.readback + COUNTER_BUFFER_BYTES.activations + COUNTER_BUFFER_BYTES.readback);
    session.dispose();
  });

  it('queues concurrent runs: each gets the result of its own inputs', async () => {
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(dir, { device: await sharedDevice() });
    const inputs = Array.from({ length: 6 }, (_, i) => seededFloats(X_COUNT, 100 + i));
    const results = await Promise.all(inputs.map((x) => session.run({ x })));
    results.forEach((result, i) => expectClose(result.y as Float32Array, mlpReference(inputs[i]!)));
    expect(session.stats().runs).toBe(6);
    session.dispose();
  });

  it('snapshots inputs at the call: changing the array while the run is queued does not change the result', async () => {
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(dir, { device: await sharedDevice() });
    const first = seededFloats(X_COUNT, 8);
    const x = seededFloats(X_COUNT, 9);
    const expected = mlpReference(x);
    const pending = [session.run({ x: first }), session.run({ x })];
    x.fill(42);
    expectClose((await pending[1]!).y as Float32Array, expected);
    session.dispose();
  });

  it('runs in a plain Node process from the bundle folder outside the repository, and lets it exit', async () => {
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    expect(dir.startsWith(process.cwd())).toBe(false);
    const x = Array.from(seededFloats(X_COUNT, 13));
    const script = `
      const { loadBundle } = await import(process.argv[1]);
      const session = await loadBundle(process.argv[2]);
      const { y } = await session.run({ x: JSON.parse(process.argv[3]) });
      console.log(JSON.stringify(Array.from(y)));
      session.dispose();`;
    // the app's folder (here the repository) provides the webgpu package, not the bundle folder
    const { stdout } = await run(process.execPath, ['--input-type=module', '-e', script, pathToFileURL(join(dir, 'runtime.js')).href, dir, JSON.stringify(x)], {
      cwd: process.cwd(), timeout: 60_000,
    });
    expectClose(JSON.parse(stdout.trim().split('\n').pop()!), mlpReference(x));
  });
});

describe('runtime: stats and dispose', () => {
  it('counts GPU bytes, dispatches and uploads', async () => {
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(dir, { device: await sharedDevice() });
    const bufferBytes = MLP_BUFFER_BYTES.weights + MLP_BUFFER_BYTES.activations + MLP_BUFFER_BYTES.readback;
    const loaded = session.stats();
    expect(loaded).toMatchObject({ runs: 0, dispatches: 0, uploads: 2, uploadedBytes: (MLP.K * MLP.N + MLP.N) * 4 });
    expect(loaded.peakGpuBytes).toBe(bufferBytes);
    expect(loaded.liveGpuBytes).toBe(bufferBytes);
    expect(loaded.loadMs).toBeGreaterThan(0);
    for (let i = 0; i < 3; i++) await session.run({ x: seededFloats(X_COUNT, i) });
    const ran = session.stats();
    expect(ran).toMatchObject({ runs: 3, dispatches: 6, uploads: 2, peakGpuBytes: bufferBytes });
    expect(ran.lastRunMs).toBeGreaterThan(0);
    session.dispose();
    expect(session.stats().liveGpuBytes).toBe(0);
    expect(session.stats().peakGpuBytes).toBe(bufferBytes);
  });

  it('dispose destroys a device the session created, and later runs reject', async () => {
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(dir);
    session.dispose();
    const lost = await session.device.lost;
    expect(lost.reason).toBe('destroyed');
    const rejected = await rejectionOf(session.run({ x: seededFloats(X_COUNT, 1) }));
    expect(rejected.code).toBe('FM_WEBGPU');
    expect(rejected.message).toContain('disposed');
    session.dispose(); // twice is harmless
  });

  it('dispose leaves a device passed in alive', async () => {
    const device = await sharedDevice();
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    const { loadBundle } = await importRuntime(dir);
    const session = await loadBundle(dir, { device });
    session.dispose();
    device.pushErrorScope('validation');
    device.createBuffer({ size: 16, usage: 0x80 }).destroy();
    expect(await device.popErrorScope()).toBeNull();
    // and a new session on it still works
    const again = await loadBundle(dir, { device });
    const x = seededFloats(X_COUNT, 12);
    expectClose((await again.run({ x })).y as Float32Array, mlpReference(x));
    again.dispose();
  });
});
