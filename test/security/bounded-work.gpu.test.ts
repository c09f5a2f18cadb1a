/**
 * Runs are bounded in time: a bundle whose kernel runs for minutes passes every static check, so
 * `run --timeout` ends it with FM_TIMEOUT instead of hanging. Here (Dawn's OpenGL ES backend on
 * llvmpipe) the GPU work blocks the JavaScript thread, so the CLI's watchdog thread does it; the
 * runtime's own runTimeoutMs, which needs an asynchronous backend, is tested in Chromium
 * (test/browser/runtime.test.ts).
 */
import { afterAll, describe, expect, it } from 'vitest';
import { importOwnRuntime } from '../../compiler/bundle/own-runtime.js';
import { cli } from '../harness/cli.js';
import { spawnSync } from 'node:child_process';
import { join } from 'node:path';
import { readFile as readFileBytes } from 'node:fs/promises';
import { assembleBundle, heavyModel, MLP, mlpModel, rejectionOf, removeTempDirs, seededFloats, streamedMlpModel, writeFixtureBundle, type RuntimeModule } from '../harness/bundle-fixtures.js';
import { REPO_ROOT } from '../harness/paths.js';

const CLI = join(REPO_ROOT, 'dist', 'compiler', 'cli', 'main.js');

afterAll(removeTempDirs);

async function heavyBundle(): Promise<string> {
  return writeFixtureBundle(assembleBundle([heavyModel()]));
}

describe('run timeouts', () => {
  it('flashmemc run --timeout ends a run that overstays with FM_TIMEOUT, even where the GPU work blocks the thread', async () => {
    const dir = await heavyBundle();
    const started = performance.now();
    const result = spawnSync(process.execPath, [CLI, 'run', dir, '--random-inputs', '--timeout', '1000'], {
      encoding: 'utf8', timeout: 120_000, env: { ...process.env, EGL_PLATFORM: 'surfaceless' },
    });
    const elapsed = performance.now() - started;
    // exit 2 where the runtime's timer could fire (asynchronous backends); killed (SIGKILL) by the watchdog where the backend blocks the thread
    expect(result.status === 2 || result.signal === 'SIGKILL', `${result.status} ${result.signal} ${result.stderr}`).toBe(true);
    expect(result.stderr).toContain('FM_TIMEOUT');
    expect(result.stdout).toBe('');
    expect(elapsed).toBeGreaterThanOrEqual(1000);
    expect(elapsed).toBeLessThan(60_000);
  }, 150_000);

  it('runTimeoutMs rejects a run that waits too long with FM_TIMEOUT, destroys the device and refuses later runs', async () => {
    // 'storage' streaming reads weights on every run; this storage answers at load, then never again
    const dir = await writeFixtureBundle(assembleBundle([streamedMlpModel()]));
    let loaded = false;
    const readFile = async (path: string, range?: { offset: number; length: number }): Promise<Uint8Array> => {
      if (loaded && path.startsWith('weights/')) return new Promise(() => {});
      const bytes = await readFileBytes(join(dir, path));
      return range ? bytes.subarray(range.offset, range.offset + range.length) : bytes;
    };
    const runtime = (await importOwnRuntime()) as unknown as RuntimeModule;
    const session = await runtime.loadBundle(dir, { streamedWeights: 'storage', readFile, runTimeoutMs: 500 });
    loaded = true;
    const started = performance.now();
    const refusal = await rejectionOf(session.run({ x: seededFloats(MLP.M * MLP.K, 1) }));
    expect(refusal).toMatchObject({ code: 'FM_TIMEOUT', message: expect.stringContaining('runTimeoutMs (500 ms)') });
    expect(performance.now() - started).toBeGreaterThanOrEqual(490);
    await expect(rejectionOf(session.run({ x: seededFloats(MLP.M * MLP.K, 1) }))).resolves.toMatchObject({ code: 'FM_TIMEOUT' });
    session.dispose();
  });

  it('a run within its timeout is not affected by the watchdog', async () => {
    const r = await cli('run', await writeFixtureBundle(assembleBundle([mlpModel()])), '--random-inputs', '--timeout', '30000', '--json');
    expect(r.code, r.stderr).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ model: 'mlp' });
  });

  it('refuses a non-positive runTimeoutMs and --timeout', async () => {
    const runtime = (await importOwnRuntime()) as unknown as RuntimeModule;
    const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
    await expect(runtime.loadBundle(dir, { runTimeoutMs: -1 })).rejects.toThrow(/runTimeoutMs must be a positive number/);
    expect((await cli('run', dir, '--random-inputs', '--timeout', '0')).stderr).toContain('FM_BAD_ARGUMENT');
  });
});
