/**
 * Bundles are data: no command executes a bundle's runtime.js. A trojan runtime.js that writes a
 * marker file when imported (and again from each function it exports), with the manifest re-hashed
 * as an attacker would, is reported as foreign by `verify` and never runs under `verify`, `run`,
 * `inspect` or the compiler API; `run` still runs the bundle correctly, with flashmemc's own runtime.
 */
import { existsSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { verifyBundleDir } from '../../compiler/bundle/verify.js';
import { openBundle } from '../../compiler/cli/bundle-session.js';
import { cli } from '../harness/cli.js';
import {
  assembleBundle, mlpModel, mlpReference, MLP, rejectionOf, removeTempDirs, replaceAndRehash, seededFloats, sharedDevice, tempDir,
  writeFixtureBundle,
} from '../harness/bundle-fixtures.js';

afterAll(removeTempDirs);

/** A runtime.js that leaves a marker file when imported and when any export is called, and otherwise imitates the real API. */
function trojanRuntime(marker: string): string {
  const mark = `(await import('node:fs')).writeFileSync(${JSON.stringify(marker)}, 'ran')`;
  return `${mark};
export async function verifyBundle() { ${mark}; return { models: [{ name: 'mlp', inputs: [], outputs: [], weightBytes: 0 }], files: 1, bytes: 1 }; }
export async function loadBundle() { ${mark}; return { run: async () => ({ y: new Float32Array(8) }), stats: () => ({}), dispose() {} }; }
export class FlashmemRuntimeError extends Error {}
`;
}

async function trojanBundle(): Promise<{ dir: string; marker: string }> {
  const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
  const marker = join(await tempDir(), 'trojan-ran');
  await replaceAndRehash(dir, 'runtime.js', Buffer.from(trojanRuntime(marker)));
  return { dir, marker };
}

describe('a re-hashed foreign runtime.js is never executed', () => {
  it('verify reports it as FM_BUNDLE_FOREIGN (CLI and API) and does not import it', async () => {
    const { dir, marker } = await trojanBundle();
    const r = await cli('verify', dir);
    expect(r.code).toBe(2);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain('flashmemc: error FM_BUNDLE_FOREIGN: ');
    expect(r.stderr).toContain('runtime.js');
    await expect(rejectionOf(verifyBundleDir(dir))).resolves.toMatchObject({ code: 'FM_BUNDLE_FOREIGN' });
    expect(existsSync(marker)).toBe(false);
  });

  it('run executes the bundle with flashmemc\'s own runtime, warns that runtime.js is foreign, and gives correct outputs', async () => {
    const { dir, marker } = await trojanBundle();
    const outDir = join(await tempDir(), 'outputs');
    const r = await cli('run', dir, '--random-inputs', '--save-outputs', outDir, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toContain('warning FM_BUNDLE_FOREIGN');
    expect(existsSync(marker)).toBe(false);

    const { session, foreignRuntime } = await openBundle(dir, { device: await sharedDevice() });
    try {
      expect(foreignRuntime).toContain('is not the runtime this flashmemc generates');
      const x = seededFloats(MLP.M * MLP.K, 5);
      const { y } = await session.run({ x });
      mlpReference(x).forEach((v, i) => expect(y![i]).toBeCloseTo(v, 5));
    } finally {
      session.dispose();
    }
    expect(existsSync(marker)).toBe(false);
  });

  it('inspect reads the bundle without importing runtime.js', async () => {
    const { dir, marker } = await trojanBundle();
    const r = await cli('inspect', dir, '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toBeTypeOf('object');
    expect(existsSync(marker)).toBe(false);
  });

  it('a bundle written by this flashmemc is not foreign', async () => {
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    const { session, foreignRuntime } = await openBundle(dir, { device: await sharedDevice() });
    session.dispose();
    expect(foreignRuntime).toBeUndefined();
    expect((await readFile(join(dir, 'runtime.js'), 'utf8')).length).toBeGreaterThan(1000);
  });
});
