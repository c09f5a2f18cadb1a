/**
 * `flashmemc verify` and the runtime's verifyBundle(): a good bundle passes; tampered, truncated,
 * out-of-date and out-of-bounds bundles are refused with their error code and a message naming
 * the file or step; a tampered or foreign runtime.js is refused without being executed.
 */
import { readFile, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../harness/cli.js';
import {
  assembleBundle, MLP_BUFFER_BYTES, editJsonAndRehash, editManifest, flipByte, importRuntime, mlpModel, readJson, rejectionOf,
  removeTempDirs, replaceAndRehash, tamperFile, tempDir, writeFixtureBundle, type RuntimeModule,
} from '../harness/bundle-fixtures.js';


/** the mlp fixture's buffers and readback buffer: what loading it allocates */
const MLP_GPU_BYTES = MLP_BUFFER_BYTES.weights + MLP_BUFFER_BYTES.activations + MLP_BUFFER_BYTES.readback;

async function mlpBundle(): Promise<string> {
  return writeFixtureBundle(assembleBundle([mlpModel()]));
}

async function expectRefused(argv: string[], code: string, ...fragments: string[]): Promise<string> {
  const r = await cli('verify', ...argv);
  expect(r.code, r.stderr || r.stdout).toBe(2);
  expect(r.stdout).toBe('');
  expect(r.stderr).toContain(`flashmemc: error ${code}: `);
  for (const fragment of fragments) expect(r.stderr).toContain(fragment);
  return r.stderr;
}

/** the mlp's matmul dispatch with five disjoint bindings: fine for WebGPU's 8 storage buffers, not for compat's 4 */
function fiveBindings(schedule: any): void {
  const step = schedule.models[0].run[1];
  step.bindings = [
    { buffer: 1, offset: 0, size: 24 }, { buffer: 0, offset: 0, size: 48 }, { buffer: 1, offset: 256, size: 32 },
    { buffer: 0, offset: 256, size: 16 }, { buffer: 1, offset: 512, size: 32 },
  ];
}

afterAll(removeTempDirs);

describe('flashmemc verify', () => {
  it('accepts a good bundle and counts every file', async () => {
    const dir = await mlpBundle();
    const manifest = await readJson<{ files: { size: number }[] }>(dir, 'manifest.json');
    const manifestBytes = (await readFile(join(dir, 'manifest.json'))).length;
    const bytes = manifest.files.reduce((sum, file) => sum + file.size, manifestBytes);
    const r = await cli('verify', dir);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`OK: ${manifest.files.length + 1} files, ${bytes} bytes verified ("mlp"); loading allocates ${MLP_GPU_BYTES} bytes of GPU memory\n`);
    const json = await cli('verify', dir, '--json', '--target-limits', 'compat');
    expect(json.code).toBe(0);
    expect(JSON.parse(json.stdout)).toMatchObject({ ok: true, files: manifest.files.length + 1, bytes, models: [{ name: 'mlp' }] });
  });

  it('refuses a tampered shard', async () => {
    const dir = await mlpBundle();
    await tamperFile(dir, 'weights/0.bin', (bytes) => flipByte(bytes, 5));
    await expectRefused([dir], 'FM_BUNDLE_HASH', 'weights/0.bin', 'sha256', 'tampered');
  });

  it('refuses a tampered shader', async () => {
    const dir = await mlpBundle();
    const { shaders } = await readJson<{ shaders: string[] }>(dir, 'schedule.json');
    await tamperFile(dir, shaders[1]!, (bytes) => Buffer.from(bytes.toString('utf8').replace('max(', 'min(')));
    await expectRefused([dir], 'FM_BUNDLE_HASH', shaders[1]!, 'tampered');
  });

  it('refuses a truncated shard', async () => {
    const dir = await mlpBundle();
    await truncate(join(dir, 'weights/0.bin'), 10);
    await expectRefused([dir], 'FM_BUNDLE_HASH', 'weights/0.bin', 'only 10 bytes', 'truncated');
  });

  it('refuses a tampered runtime.js, and a re-hashed one as foreign, without executing either', async () => {
    const marker = '__flashmemTamperedRuntimeRan';
    const payload = `globalThis.${marker} = (globalThis.${marker} ?? 0) + 1;\n`;
    const dir = await mlpBundle();
    await tamperFile(dir, 'runtime.js', (bytes) => Buffer.concat([Buffer.from(payload), bytes]));
    await expectRefused([dir], 'FM_BUNDLE_HASH', 'runtime.js', 'truncated or replaced');

    // the attacker also rewrites the manifest entry: the hashes agree, the bytes are not this flashmemc's runtime
    const consistent = await mlpBundle();
    const original = await readFile(join(consistent, 'runtime.js'));
    await replaceAndRehash(consistent, 'runtime.js', Buffer.concat([Buffer.from(payload), original]));
    await expectRefused([consistent], 'FM_BUNDLE_FOREIGN', 'runtime.js', 'is not the runtime this flashmemc generates', 'never executed');
    expect((globalThis as Record<string, unknown>)[marker]).toBeUndefined();
  });

  it('refuses a wrong formatVersion before reading anything else', async () => {
    const dir = await mlpBundle();
    await editManifest(dir, (m) => { m.formatVersion = 2; });
    await tamperFile(dir, 'runtime.js', () => Buffer.from('throw new Error("must not run")'));
    await expectRefused([dir], 'FM_BUNDLE_VERSION', 'format version 2');
  });

  it('refuses a manifest or schedule the zod schemas reject', async () => {
    const dir = await mlpBundle();
    await editManifest(dir, (m) => { m.extra = true; });
    await expectRefused([dir], 'FM_BUNDLE_INVALID', 'manifest.json does not match the bundle format', 'extra');
    const other = await mlpBundle();
    await editJsonAndRehash(other, 'schedule.json', (s) => { s.models[0].run[1].op = 'explode'; });
    await expectRefused([other], 'FM_BUNDLE_INVALID', 'schedule.json does not match the bundle format');
  });

  it('refuses an out-of-bounds region', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s) => { s.models[0].run[3].src.offset = 1024; });
    await expectRefused([dir], 'FM_BUNDLE_INVALID', 'run[3] (readOutput)', 'outside buffer 1');
  });

  it('refuses more bindings than --target-limits compat allows, a binding larger than a limits file allows', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', fiveBindings);
    const ok = await cli('verify', dir, '--target-limits', 'webgpu');
    expect(ok.code, ok.stderr).toBe(0);
    await expectRefused([dir, '--target-limits', 'compat'], 'FM_BUNDLE_INVALID', 'run[1] (dispatch "matmul" of node "fc")', '5 bindings', 'maxStorageBuffersPerShaderStage 4');

    const limitsFile = join(await tempDir(), 'limits.json');
    await writeFile(limitsFile, JSON.stringify({ maxStorageBufferBindingSize: 16 }));
    await expectRefused([dir, '--target-limits', limitsFile], 'FM_BUNDLE_INVALID', 'run[1]', 'binding 0', '24 bytes exceed', 'maxStorageBufferBindingSize 16');
  });

  it('refuses a folder that is not a bundle, and bad --target-limits', async () => {
    const empty = await tempDir();
    await expectRefused([empty], 'FM_BUNDLE_INVALID', 'manifest.json', 'is missing');
    await expectRefused([await mlpBundle(), '--target-limits', 'nope'], 'FM_BAD_ARGUMENT', '--target-limits');
  });
});

describe('runtime verifyBundle()', () => {
  let runtime: RuntimeModule;
  beforeAll(async () => {
    runtime = await importRuntime(await mlpBundle());
  });

  it('returns models, files and bytes of a good bundle', async () => {
    const dir = await mlpBundle();
    const summary = await runtime.verifyBundle(dir);
    expect(summary.models.map((m) => m.name)).toEqual(['mlp']);
    expect(summary.files).toBe(7); // manifest, schedule, 2 shaders, 1 shard, runtime.js, runtime.d.ts
    expect(summary.bytes).toBeGreaterThan(1000);
  });

  it('verifies every listed file, also those loadBundle never reads (runtime.d.ts)', async () => {
    const dir = await mlpBundle();
    await tamperFile(dir, 'runtime.d.ts', (bytes) => flipByte(bytes, 0));
    const error = await rejectionOf(runtime.verifyBundle(dir));
    expect(error.code).toBe('FM_BUNDLE_HASH');
    expect(error.message).toContain('runtime.d.ts');
  });

  it('checks bounds against the given limits', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', fiveBindings);
    await expect(runtime.verifyBundle(dir, { limits: { maxStorageBuffersPerShaderStage: 8 } })).resolves.toMatchObject({ files: 7 });
    const error = await rejectionOf(runtime.verifyBundle(dir, { limits: { maxStorageBuffersPerShaderStage: 4 } }));
    expect(error.code).toBe('FM_BUNDLE_INVALID');
    expect(error.message).toContain('5 bindings exceed');
    const alignment = await rejectionOf(runtime.verifyBundle(dir, { limits: { minStorageBufferOffsetAlignment: 512 } }));
    expect(alignment.message).toContain('minStorageBufferOffsetAlignment 512');
  });
});
