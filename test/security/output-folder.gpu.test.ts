/**
 * The GPU part of output-folder.test.ts: `run --save-outputs`, `run --timeline` and `profile --out` report write
 * failures (a full device, a path below a regular file) as FM_IO, exit code 2, never as an
 * internal error (70).
 */
import { existsSync, mkdirSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { cli } from '../harness/cli.js';
import { compileOffThread } from '../harness/compile-run.js';
import { tempDir } from '../harness/paths.js';

const tmp = tempDir('output-gpu');
const bundle = join(tmp.dir, 'bundle');

beforeAll(async () => {
  const model = join(tmp.dir, 'tiny.onnx');
  writeFileSync(model, buildModel({
    opset: 13, inputs: [{ name: 'x', dtype: 'float32', shape: [2, 4] }], outputs: [{ name: 'y', dtype: 'float32' }],
    nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
  }));
  await compileOffThread(model, bundle);
});

async function expectIoFailure(...options: string[]): Promise<string> {
  const r = await cli('run', bundle, '--random-inputs', ...options);
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toContain('FM_IO');
  expect(r.stderr).not.toContain('internal error');
  return r.stderr;
}

describe('run: output files that cannot be written are FM_IO', () => {
  it('--timeline into a full device (/dev/full: ENOSPC)', async (context) => {
    if (!existsSync('/dev/full')) return context.skip('no /dev/full on this system');
    expect(await expectIoFailure('--timeline', '/dev/full')).toContain('ENOSPC');
  });

  it('--save-outputs whose output file leads to a full device (ENOSPC)', async (context) => {
    if (!existsSync('/dev/full')) return context.skip('no /dev/full on this system');
    const outputs = join(tmp.dir, 'outputs-full');
    mkdirSync(outputs);
    symlinkSync('/dev/full', join(outputs, 'y.npy'));
    expect(await expectIoFailure('--save-outputs', outputs)).toContain('ENOSPC');
  });

  it('--save-outputs and --timeline below a regular file (ENOTDIR)', async () => {
    writeFileSync(join(tmp.dir, 'file'), 'x');
    expect(await expectIoFailure('--save-outputs', join(tmp.dir, 'file', 'outputs'))).toMatch(/ENOTDIR|EEXIST/);
    expect(await expectIoFailure('--timeline', join(tmp.dir, 'file', 't.json'))).toContain('ENOTDIR');
  });
});

describe('profile: a profile file that cannot be written is FM_IO', () => {
  it('--out into a full device (/dev/full: ENOSPC), after measuring', async (context) => {
    if (!existsSync('/dev/full')) return context.skip('no /dev/full on this system');
    const r = await cli('profile', '--quick', '--quiet', '--out', '/dev/full');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('FM_IO: writing --out file "/dev/full" failed (ENOSPC): the disk is full');
    expect(r.stderr).not.toContain('internal error');
    // written in place, never beside it: no /dev/full.tmp-* (the old writer made one)
    expect(readdirSync('/dev').filter((name) => name.startsWith('full.'))).toEqual([]);
  }, 120_000);
});
