/**
 * Every way the runtime refuses a bundle or a run: each case breaks one thing in an otherwise
 * valid bundle on disk and expects the error code and a message naming the file or step.
 */
import { rm, truncate } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeBundle } from '../../compiler/bundle/write.js';
import { scheduleSchema } from '../../schemas/schedule.js';
import {
  assembleBundle, counterModel, editJsonAndRehash, editManifest, flipByte, importRuntime, mlpModel, mlpReference,
  readJson, rejectionOf, replaceAndRehash, removeTempDirs, seededFloats, sharedDevice, tamperFile, tempDir, writeFixtureBundle, type RuntimeModule,
} from '../harness/bundle-fixtures.js';

let device: GPUDevice;
let runtime: RuntimeModule;

beforeAll(async () => {
  device = await sharedDevice();
  runtime = await importRuntime(await writeFixtureBundle(assembleBundle([mlpModel()])));
});
afterAll(removeTempDirs);

async function mlpBundle(): Promise<string> {
  return writeFixtureBundle(assembleBundle([mlpModel()]));
}

async function expectLoadFails(dir: string, code: string, ...fragments: string[]): Promise<void> {
  const error = await rejectionOf(runtime.loadBundle(dir, { device }));
  expect(error.name).toBe('FlashmemRuntimeError');
  expect(error.code, error.message).toBe(code);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
}

/** after a failed load, the shared device must still be usable: no error scope left open, no stray error */
async function expectDeviceStillWorks(): Promise<void> {
  const session = await runtime.loadBundle(await mlpBundle(), { device });
  const x = seededFloats(6, 21);
  const { y } = await session.run({ x });
  mlpReference(x).forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
  session.dispose();
}

describe('runtime rejects bundles: format version and schema', () => {
  it('wrong formatVersion', async () => {
    const dir = await mlpBundle();
    await editManifest(dir, (m) => { m.formatVersion = 2; });
    await expectLoadFails(dir, 'FM_BUNDLE_VERSION', 'format version 2', 'reads version 1');
  });

  it('a folder whose manifest.json is not a flashmemc manifest', async () => {
    const dir = await mlpBundle();
    await editManifest(dir, (m) => { m.format = 'web-app-manifest'; });
    await expectLoadFails(dir, 'FM_BUNDLE_VERSION', 'not a flashmemc bundle');
  });

  it('manifest.json that is not JSON', async () => {
    const dir = await mlpBundle();
    await tamperFile(dir, 'manifest.json', (bytes) => bytes.subarray(0, bytes.length - 3));
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', '"manifest.json" is not valid UTF-8 JSON');
  });

  it('schema violation in manifest.json: unknown property', async () => {
    const dir = await mlpBundle();
    await editManifest(dir, (m) => { m.extra = true; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'manifest.json', 'unexpected property "extra"');
  });

  it('schema violation in manifest.json: unknown dtype', async () => {
    const dir = await mlpBundle();
    await editManifest(dir, (m) => { (m.models as any)[0].inputs[0].dtype = 'float8'; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', '/models/0/inputs/0/dtype');
  });

  it('schema violation in schedule.json: unknown step op', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[1].op = 'explode'; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'schedule.json', '/models/0/run/1');
  });

  it('schema violation in schedule.json: two workgroup counts, negative offset', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => {
      s.models[0].run[1].workgroups = [1, 1];
      s.models[0].run[0].dst.offset = -4;
    });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', '/models/0/run/1', '/models/0/run/0/dst/offset');
  });

  it('a file path that leaves the bundle folder', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.shaders[0] = '..'; });
    await editManifest(dir, (m) => { m.files.find((f) => f.path.startsWith('shaders/'))!.path = '..'; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'leaves the bundle folder');
  });

  it('a file the schedule names but the manifest does not list', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.shaders[1] = 'shaders/0000000000000000.wgsl'; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'shaders[1]', 'does not list');
  });
});

describe('runtime schema validation agrees with the zod schemas', () => {
  type Mutation = [string, (schedule: any) => void];
  const mutations: Mutation[] = [
    ['required key removed', (s) => { delete s.models[0].run[1].label; }],
    ['number where a string belongs', (s) => { s.models[0].run[1].node = 7; }],
    ['fraction where an integer belongs', (s) => { s.models[0].buffers[0].size = 272.5; }],
    ['extra key in a step', (s) => { s.models[0].init[0].note = 'x'; }],
    ['negative offset', (s) => { s.models[0].init[0].dst.offset = -256; }],
    ['unknown strategy', (s) => { s.models[0].strategy = 'lazy'; }],
    ['four workgroup counts', (s) => { s.models[0].run[1].workgroups = [1, 1, 1, 1]; }],
    ['65 bindings', (s) => { s.models[0].run[1].bindings = Array.from({ length: 65 }, () => s.models[0].run[1].bindings[0]); }],
    ['other formatVersion', (s) => { s.formatVersion = 2; }],
    ['nested shader path', (s) => { s.shaders[0] = 'shaders/a/b.wgsl'; }],
    ['a dispatch turned upload', (s) => { s.models[0].run[1].op = 'upload'; }],
    ['no models', (s) => { s.models = []; }],
    ['null step', (s) => { s.models[0].run[2] = null; }],
    // accepted by the schema (a later check may still refuse them)
    ['another label', (s) => { s.models[0].run[1].label = 'matmul_tiled'; }],
    ['a bigger buffer', (s) => { s.models[0].buffers[1].size = 4096; }],
    ['shards listed without uploads', (s) => { s.models[0].init = []; }],
  ];

  for (const [name, mutate] of mutations) {
    it(name, async () => {
      const dir = await mlpBundle();
      const schedule = await readJson(dir, 'schedule.json');
      mutate(schedule);
      const zodAccepts = scheduleSchema.safeParse(schedule).success;
      await editJsonAndRehash(dir, 'schedule.json', mutate);
      const outcome = await runtime.loadBundle(dir, { device }).then(
        (session) => { session.dispose(); return 'loaded'; },
        (error: { message: string }) => error.message,
      );
      const schemaRejected = outcome.includes('schedule.json does not match the bundle format');
      expect(schemaRejected, outcome).toBe(!zodAccepts);
    });
  }
});

describe('runtime rejects bundles: hashes and sizes', () => {
  it('tampered shader', async () => {
    const dir = await mlpBundle();
    const schedule = await readJson<{ shaders: string[] }>(dir, 'schedule.json');
    await tamperFile(dir, schedule.shaders[0]!, (bytes) => Buffer.from(bytes.toString('utf8').replace('acc', 'acd')));
    await expectLoadFails(dir, 'FM_BUNDLE_HASH', schedule.shaders[0]!, 'tampered');
  });

  it('tampered shard', async () => {
    const dir = await mlpBundle();
    await tamperFile(dir, 'weights/0.bin', (bytes) => flipByte(bytes, 5));
    await expectLoadFails(dir, 'FM_BUNDLE_HASH', 'weights/0.bin', 'sha256');
    await expectDeviceStillWorks();
  });

  it('tampered schedule', async () => {
    const dir = await mlpBundle();
    await tamperFile(dir, 'schedule.json', (bytes) => Buffer.from(bytes.toString('utf8').replace('"matmul"', '"matmux"')));
    await expectLoadFails(dir, 'FM_BUNDLE_HASH', 'schedule.json');
  });

  it('truncated shard', async () => {
    const dir = await mlpBundle();
    await truncate(join(dir, 'weights/0.bin'), 10);
    await expectLoadFails(dir, 'FM_BUNDLE_HASH', 'weights/0.bin', 'only 10 bytes', 'truncated');
  });

  it('missing shader file', async () => {
    const dir = await mlpBundle();
    const { shaders } = await readJson<{ shaders: string[] }>(dir, 'schedule.json');
    await rm(join(dir, shaders[1]!));
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', shaders[1]!, 'missing');
  });

  it('shard size in the schedule disagreeing with the manifest', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.shards[0].size = 1 << 20; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'shards[0]');
  });
});

describe('runtime rejects bundles: bounds against the bundle and the device', () => {
  it('region outside its buffer', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[3].src.offset = 1024; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[3] (readOutput)', 'outside buffer 1');
  });

  it('upload reading past the end of its shard', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].init[1].shardOffset = 60; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'init[1] (upload)', 'weight "b"', 'shard 0');
  });

  it('buffer index that does not exist', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[1].bindings[1].buffer = 7; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[1]', 'buffer 7 does not exist');
  });

  it('binding offset not aligned to minStorageBufferOffsetAlignment', async () => {
    const alignment = device.limits.minStorageBufferOffsetAlignment;
    expect(alignment).toBeGreaterThan(4);
    const dir = await mlpBundle();
    // the bias region moves by half an alignment: still inside its buffer and a multiple of 4
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[2].bindings[1].offset = alignment / 2; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[2] (dispatch "bias_relu" of node "fc_relu") binding 1', `minStorageBufferOffsetAlignment ${alignment}`);
  });

  it('more workgroups than maxComputeWorkgroupsPerDimension', async () => {
    const max = device.limits.maxComputeWorkgroupsPerDimension;
    const dir = await mlpBundle();
    // the recorded grid too, so that the device limit is what refuses it (work-bounds.ts runs first)
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[1].workgroups = [1, max + 1, 1]; s.maxWorkgroups[s.models[0].run[1].shader] = max + 1; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[1]', `${max + 1} workgroups along y`);
  });

  it('a binding larger than maxStorageBufferBindingSize, a buffer larger than maxBufferSize', async () => {
    const dir = await mlpBundle();
    const huge = device.limits.maxBufferSize + 4;
    // the declared peak grows too: the device limit is what refuses it
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].buffers[1].size = huge; s.models[0].plannedPeakBytes += huge; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'buffers[1]', 'maxBufferSize');
  });

  it('bindings of one dispatch that overlap', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[1].bindings[2] = { buffer: 1, offset: 0, size: 32 }; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[1]', 'bindings 0 and 2 overlap');
  });

  it('a buffer bound read-only and writable in one dispatch (a WebGPU usage-scope error)', async () => {
    const dir = await mlpBundle();
    // x and t are both in the activations buffer, t is written
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[1].readOnly = [0]; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[1]', 'bindings 0 and 2 bind buffer 1 both read-only and writable');
  });

  it('readOnly naming a binding the dispatch does not have, or out of order', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[1].readOnly = [3]; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[1]', 'readOnly names binding 3');
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[1].readOnly = [1, 1]; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[1]', 'once each, ascending');
  });

  it('read-only bindings may overlap each other (verification accepts them; writable ones may not)', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => {
      const step = s.models[0].run[1];
      step.bindings = [step.bindings[0], step.bindings[1], step.bindings[1], step.bindings[2]];
      step.readOnly = [1, 2];
    });
    await expect(runtime.verifyBundle(dir)).resolves.toBeDefined();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[1].readOnly = [1]; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[1]', 'both read-only and writable');
  });

  it('writeInput region of the wrong size for its input', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[0].dst.size = 20; });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'run[0] (writeInput)', 'needs 24');
  });

  it('an output no step reads', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run.pop(); });
    await expectLoadFails(dir, 'FM_BUNDLE_INVALID', 'output "y" is read 0 times');
  });

  it('a device that lacks a required limit', async () => {
    const dir = join(await tempDir(), 'bundle');
    await writeBundle(dir, assembleBundle([mlpModel()], { requiredLimits: { maxStorageBufferBindingSize: 2 ** 52 } }));
    await expectLoadFails(dir, 'FM_WEBGPU', 'maxStorageBufferBindingSize');
  });

  it('a shader that does not compile, reported with its path and the compiler message', async () => {
    const dir = await mlpBundle();
    const { shaders } = await readJson<{ shaders: string[] }>(dir, 'schedule.json');
    await replaceAndRehash(dir, shaders[0]!, Buffer.from('this is not WGSL'));
    await expectLoadFails(dir, 'FM_WEBGPU', `compiling "${shaders[0]}"`, 'line 1:1');
    await expectDeviceStillWorks();
  });
});

describe('runtime rejects runs with bad inputs', () => {
  async function mlpSession() {
    return runtime.loadBundle(await mlpBundle(), { device });
  }

  async function expectRunFails(run: Promise<unknown>, ...fragments: string[]): Promise<void> {
    const error = await rejectionOf(run);
    expect(error.code, error.message).toBe('FM_INPUT');
    for (const fragment of fragments) expect(error.message).toContain(fragment);
  }

  it('missing input', async () => {
    const session = await mlpSession();
    await expectRunFails(session.run({}), 'input "x" of model "mlp"', 'missing');
    session.dispose();
  });

  it('input of the wrong length', async () => {
    const session = await mlpSession();
    await expectRunFails(session.run({ x: new Float32Array(5) }), 'needs 6 elements, got 5');
    session.dispose();
  });

  it('input of the wrong dtype', async () => {
    const session = await mlpSession();
    await expectRunFails(session.run({ x: new Int32Array(6) }), 'must be a Float32Array', 'not Int32Array');
    await expectRunFails(session.run({ x: ['a', 'b', 'c', 'd', 'e', 'f'] as unknown as number[] }), 'element 0', 'not a number');
    session.dispose();
  });

  it('input the model does not have', async () => {
    const session = await mlpSession();
    await expectRunFails(session.run({ x: new Float32Array(6), z: new Float32Array(1) }), 'no input "z"');
    session.dispose();
  });

  it('int64 values outside the 32-bit range, and non-integers', async () => {
    const session = await runtime.loadBundle(await writeFixtureBundle(assembleBundle([counterModel()])), { device });
    await expectRunFails(session.run({ a: BigInt64Array.from([0n, 0n, 2n ** 31n, 0n, 0n]) }), 'element 2', 'outside the 32-bit range');
    await expectRunFails(session.run({ a: [0, 0.5, 0, 0, 0] }), 'element 1', 'not an integer');
    await expectRunFails(session.run({ a: new Float32Array(5) }), 'must be a BigInt64Array');
    session.dispose();
  });

  it('a rejected run does not disturb the queue: the next run succeeds', async () => {
    const session = await mlpSession();
    const bad = session.run({ x: new Float32Array(2) });
    const x = seededFloats(6, 31);
    const good = session.run({ x });
    await rejectionOf(bad);
    const { y } = await good;
    mlpReference(x).forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
    session.dispose();
  });
});
