/**
 * `compile --out` never deletes what flashmemc did not write (compiler/bundle/output-folder.ts): an
 * existing folder is replaced only when it holds exactly a bundle (or nothing), checked before
 * compiling; anything else is FM_OUTPUT naming the entry in the way, unless --force. Concurrent
 * writers of one folder get FM_OUTPUT (a lock beside it) and leave no <out>.old-* or <out>.tmp-*;
 * SIGINT/SIGTERM while writing remove the temp folder and exit non-zero; full disks, read-only
 * file systems and impossible paths are FM_IO. No GPU: the run command's outputs are in
 * output-folder.gpu.test.ts.
 */
import { execFileSync, spawn } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { hostname, tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterAll, describe, expect, it } from 'vitest';
import { writeBundle } from '../../compiler/bundle/write.js';
import type { BundleContents } from '../../compiler/bundle/contents.js';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { cli } from '../harness/cli.js';
import { assembleBundle, counterModel, mlpModel, rejectionOf, removeTempDirs, shardSource, tempDir } from '../harness/bundle-fixtures.js';

afterAll(removeTempDirs);

const CHILD = join(dirname(fileURLToPath(import.meta.url)), 'write-bundle-child.ts');
/** a stub runtime: these tests are about the folder, not about runtime.js (generating it takes seconds) */
const STUB_RUNTIME = { runtime: { js: 'export {};\n', dts: 'export {};\n' } };

function contents(): BundleContents {
  return assembleBundle([mlpModel()]);
}

/** A fresh folder with a bundle at <folder>/bundle; returns the bundle's path. */
async function bundleDir(): Promise<string> {
  const dir = join(await tempDir(), 'bundle');
  await writeBundle(dir, contents(), STUB_RUNTIME);
  return dir;
}

/** What lies beside the output folder (temp folders, folders moved aside, locks). */
function siblings(dir: string): string[] {
  return readdirSync(dirname(dir)).filter((name) => name !== 'bundle' && name.startsWith('bundle')).sort();
}

async function tinyModel(): Promise<string> {
  const path = join(await tempDir(), 'tiny.onnx');
  writeFileSync(path, buildModel({
    opset: 13, inputs: [{ name: 'x', dtype: 'float32', shape: [2, 4] }], outputs: [{ name: 'y', dtype: 'float32' }],
    nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
  }));
  return path;
}

async function expectRefusal(promise: Promise<unknown>, code: string, ...fragments: string[]): Promise<string> {
  const error = await rejectionOf(promise);
  expect(error.code, error.message).toBe(code);
  for (const fragment of fragments) expect(error.message).toContain(fragment);
  return error.message;
}

describe('compile --out replaces only a bundle flashmemc wrote', () => {
  it('a bundle folder that also holds thesis.tex is refused with FM_OUTPUT naming it, before the model is read', async () => {
    const dir = await bundleDir();
    writeFileSync(join(dir, 'thesis.tex'), '\\documentclass{book}');
    const manifest = readFileSync(join(dir, 'manifest.json'));
    // the model does not exist: reading it first would fail with FM_IO instead
    const r = await cli('compile', join(dirname(dir), 'no-such-model.onnx'), '--out', dir, '--quiet');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('FM_OUTPUT');
    expect(r.stderr).toContain('"thesis.tex"');
    expect(r.stderr).toContain('--force');
    expect(readFileSync(join(dir, 'thesis.tex'), 'utf8')).toBe('\\documentclass{book}');
    expect(readFileSync(join(dir, 'manifest.json')).equals(manifest)).toBe(true);
    expect(siblings(dir)).toEqual([]);
  });

  const intruders: [string, (dir: string) => void, string][] = [
    ['a file inside weights/', (dir) => writeFileSync(join(dir, 'weights', 'notes.txt'), 'mine'), '"weights/notes.txt"'],
    ['a folder the manifest implies nothing in', (dir) => mkdirSync(join(dir, 'photos')), '"photos"'],
    ['a symlink where a listed file was', (dir) => { rmSync(join(dir, 'schedule.json')); symlinkSync('/etc/hostname', join(dir, 'schedule.json')); }, '"schedule.json"'],
    ['a folder without a manifest', (dir) => { rmSync(join(dir, 'manifest.json')); }, 'no manifest.json'],
    ['a manifest that is not a flashmemc manifest (a web app)', (dir) => writeFileSync(join(dir, 'manifest.json'), JSON.stringify({ name: 'My PWA', files: [] })), 'not the manifest of a bundle flashmemc wrote'],
    ['a manifest listing a file flashmemc never writes', (dir) => {
      const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
      manifest.files.push({ path: 'thesis.tex', kind: 'types', size: 1, sha256: '0'.repeat(64) });
      writeFileSync(join(dir, 'manifest.json'), JSON.stringify(manifest));
      writeFileSync(join(dir, 'thesis.tex'), 'x');
    }, 'not the manifest of a bundle flashmemc wrote'],
  ];
  for (const [name, intrude, named] of intruders) {
    it(`${name}: FM_OUTPUT naming it, and the folder is left alone`, async () => {
      const dir = await bundleDir();
      intrude(dir);
      const before = readdirSync(dir, { recursive: true }).sort();
      await expectRefusal(writeBundle(dir, contents(), STUB_RUNTIME), 'FM_OUTPUT', named);
      expect(readdirSync(dir, { recursive: true }).sort()).toEqual(before);
      expect(siblings(dir)).toEqual([]);
    });
  }

  it('a file or a symlink at the --out path is refused', async () => {
    const tmp = await tempDir();
    writeFileSync(join(tmp, 'bundle'), 'a file');
    await expectRefusal(writeBundle(join(tmp, 'bundle'), contents(), STUB_RUNTIME), 'FM_OUTPUT', 'not a folder');
    symlinkSync(await bundleDir(), join(tmp, 'link'));
    await expectRefusal(writeBundle(join(tmp, 'link'), contents(), STUB_RUNTIME), 'FM_OUTPUT', 'symlink');
  });

  it('its own previous bundle and an empty folder are replaced', async () => {
    const dir = await bundleDir();
    await writeBundle(dir, assembleBundle([counterModel()]), STUB_RUNTIME);
    expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).models[0].name).toBe('counter');
    const empty = join(await tempDir(), 'bundle');
    mkdirSync(empty);
    await writeBundle(empty, contents(), STUB_RUNTIME);
    expect(existsSync(join(empty, 'manifest.json'))).toBe(true);
    expect(siblings(dir)).toEqual([]);
  });

  it('--force replaces a folder that is not exactly a bundle', async () => {
    const dir = await bundleDir();
    writeFileSync(join(dir, 'thesis.tex'), 'gone');
    const r = await cli('compile', await tinyModel(), '--out', dir, '--quiet', '--force');
    expect(r.code, r.stderr).toBe(0);
    expect(existsSync(join(dir, 'thesis.tex'))).toBe(false);
    expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).models[0].name).toBe('tiny');
    expect(siblings(dir)).toEqual([]);
  });
});

// ------------------------------------------------------------------------------------ writers

interface ChildResult { code: number | null; signal: NodeJS.Signals | null; stderr: string }

function startChild(out: string, ...args: string[]) {
  const child = spawn(process.execPath, ['--import', 'tsx', CHILD, out, ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (chunk) => { stderr += String(chunk); });
  const done = new Promise<ChildResult>((resolve) => child.on('exit', (code, signal) => resolve({ code, signal, stderr })));
  return { child, done };
}

async function waitFor(condition: () => boolean, what: string, timeoutMs = 60_000): Promise<void> {
  for (const end = Date.now() + timeoutMs; !condition();) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

describe('one writer per output folder', () => {
  it('concurrent writers in one process: one writes, the others get FM_OUTPUT; nothing is left beside the folder', async () => {
    const dir = await bundleDir();
    const results = await Promise.allSettled([1, 2, 3, 4].map(() => writeBundle(dir, contents(), STUB_RUNTIME)));
    const failures = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected').map((r) => r.reason as { code?: string; message: string });
    expect(results.length - failures.length).toBeGreaterThanOrEqual(1);
    for (const failure of failures) {
      expect(failure.code, failure.message).toBe('FM_OUTPUT');
      expect(failure.message).toContain('is writing');
    }
    expect(failures.length).toBeGreaterThan(0);
    expect(siblings(dir)).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).format).toBe('flashmemc-bundle');
  });

  it('concurrent writers in separate processes: each writes or gets FM_OUTPUT, never a raw rename error', async () => {
    const dir = await bundleDir();
    const children = [1, 2, 3].map(() => startChild(dir, '--slow'));
    const results = await Promise.all(children.map((c) => c.done));
    for (const result of results) {
      if (result.code !== 0) {
        expect(result.code, result.stderr).toBe(2);
        expect(result.stderr).toContain('FM_OUTPUT');
      }
    }
    expect(results.filter((r) => r.code === 0).length).toBeGreaterThanOrEqual(1);
    expect(results.filter((r) => r.code === 2).length).toBeGreaterThanOrEqual(1);
    expect(siblings(dir)).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).format).toBe('flashmemc-bundle');
  }, 120_000);

  it('a lock left by a process that is gone is taken over; one held by a live process is refused', async () => {
    const dir = await bundleDir();
    const gone = spawn(process.execPath, ['-e', '']);
    const deadPid = gone.pid!;
    await new Promise((resolve) => gone.on('exit', resolve));
    writeFileSync(`${dir}.flashmemc-lock`, `flashmemc ${deadPid} ${hostname()}\n`);
    await writeBundle(dir, contents(), STUB_RUNTIME);
    expect(siblings(dir)).toEqual([]);

    // pid 1 lives as long as the machine does
    writeFileSync(`${dir}.flashmemc-lock`, `flashmemc 1 ${hostname()}\n`);
    await expectRefusal(writeBundle(dir, contents(), STUB_RUNTIME), 'FM_OUTPUT', 'pid 1', '.flashmemc-lock');
    expect(readFileSync(`${dir}.flashmemc-lock`, 'utf8')).toBe(`flashmemc 1 ${hostname()}\n`);
    rmSync(`${dir}.flashmemc-lock`);
  });
});

describe('interrupted writes', () => {
  for (const signal of ['SIGINT', 'SIGTERM'] as const) {
    it(`${signal} while writing removes the temp folder and the lock, exits non-zero, and leaves the previous bundle`, async () => {
      const dir = await bundleDir();
      const manifest = readFileSync(join(dir, 'manifest.json'));
      const { child, done } = startChild(dir, '--slow');
      await waitFor(() => siblings(dir).some((name) => name.startsWith('bundle.tmp-')), 'the temp folder');
      child.kill(signal);
      const result = await done;
      expect(result.code, result.stderr).not.toBe(0);
      expect(result.code === null ? result.signal : result.code).not.toBe(0);
      expect(result.stderr).toContain(signal);
      expect(siblings(dir)).toEqual([]);
      expect(readFileSync(join(dir, 'manifest.json')).equals(manifest)).toBe(true);
    }, 120_000);
  }
});

// ------------------------------------------------------------------------- output path failures

/** A small tmpfs (mount needs root and CAP_SYS_ADMIN); undefined where it cannot be mounted. */
function mountTmpfs(size: string): { dir: string; remountReadOnly(): void; unmount(): void } | undefined {
  const dir = mkdtempSync(join(tmpdir(), 'flashmemc-tmpfs-'));
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', `size=${size}`, 'tmpfs', dir], { stdio: 'ignore' });
  } catch {
    rmSync(dir, { recursive: true, force: true });
    return undefined;
  }
  return {
    dir,
    remountReadOnly: () => execFileSync('mount', ['-o', 'remount,ro', dir], { stdio: 'ignore' }),
    unmount: () => {
      execFileSync('umount', [dir], { stdio: 'ignore' });
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

/** The mlp bundle plus a 1 MiB shard nothing uses: more than a 256 KiB disk holds. */
function largeContents(): BundleContents {
  const bundle = contents();
  const bytes = new Uint8Array(1 << 20).map((_, i) => (i * 7) & 0xff);
  bundle.shards.push(shardSource('weights/1.bin', bytes, { pieceBytes: 1 << 16 }));
  bundle.schedule.shards.push({ path: 'weights/1.bin', size: bytes.length });
  return bundle;
}

describe('output path failures are FM_IO', () => {
  it('--out below a regular file (ENOTDIR), before the model is read', async () => {
    const tmp = await tempDir();
    writeFileSync(join(tmp, 'file'), 'x');
    const r = await cli('compile', join(tmp, 'no-such-model.onnx'), '--out', join(tmp, 'file', 'bundle'), '--quiet');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('FM_IO');
    expect(r.stderr).toContain('ENOTDIR');
    await expectRefusal(writeBundle(join(tmp, 'file', 'sub', 'bundle'), contents(), STUB_RUNTIME), 'FM_IO', 'ENOTDIR');
  });

  it('a read-only folder (EACCES), where permissions bind (not as root)', async (context) => {
    // root bypasses file permissions, so EACCES cannot happen (ENOTDIR/EISDIR/ENOSPC/EROFS cover root below)
    if (process.getuid?.() === 0) context.skip('running as root: permissions do not bind, EACCES cannot be produced');
    const tmp = await tempDir();
    mkdirSync(join(tmp, 'ro'), { mode: 0o555 });
    await expectRefusal(writeBundle(join(tmp, 'ro', 'bundle'), contents(), STUB_RUNTIME), 'FM_IO', 'EACCES');
  });

  it('a full disk (ENOSPC) and a read-only file system (EROFS), on a small tmpfs', async (context) => {
    const disk = mountTmpfs('256k');
    if (!disk) return context.skip('cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)');
    try {
      const out = join(disk.dir, 'bundle');
      const message = await expectRefusal(writeBundle(out, largeContents(), STUB_RUNTIME), 'FM_IO', 'ENOSPC');
      expect(message.length).toBeLessThan(1000);
      // which bundle, which file in it, and what to do
      expect(message).toContain(`writing the bundle folder ${JSON.stringify(out)}`);
      expect(message).toMatch(/writing weights\/1\.bin failed \(ENOSPC\): the disk is full/);
      expect(readdirSync(disk.dir)).toEqual([]);
      disk.remountReadOnly();
      await expectRefusal(writeBundle(out, contents(), STUB_RUNTIME), 'FM_IO', 'EROFS');
    } finally {
      disk.unmount();
    }
  });

  it('inspect --svg into a full device (/dev/full) is FM_IO', async (context) => {
    if (!existsSync('/dev/full')) return context.skip('no /dev/full on this system');
    const r = await cli('inspect', await bundleDir(), '--svg', '/dev/full');
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('FM_IO');
    expect(r.stderr).toContain('ENOSPC');
  });
});

/** A CLI failure that is FM_IO (exit 2, never an internal error) naming the path and what to do. */
function expectIo(r: { code: number; stderr: string }, path: string, errno: string, advice: string): void {
  expect(r.code, r.stderr).toBe(2);
  expect(r.stderr).toContain('FM_IO');
  expect(r.stderr).not.toContain('internal error');
  expect(r.stderr).toContain(JSON.stringify(path));
  expect(r.stderr).toContain(`(${errno}): ${advice}`);
}

const NOT_A_FOLDER = 'a parent of the path is a file, not a folder';
const DISK_FULL = 'the disk is full';
const IS_A_FOLDER = 'the path is a folder';

/** A tmpfs with no space left; undefined where mounting is not allowed (not root). */
function fullTmpfs(): ReturnType<typeof mountTmpfs> {
  const disk = mountTmpfs('64k');
  if (!disk) return undefined;
  try {
    writeFileSync(join(disk.dir, 'fill'), new Uint8Array(1 << 20));
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
  }
  return disk;
}

describe('every file the CLI writes: failures are FM_IO with the path and what to do', () => {
  it('compile --dump-ir below a regular file, onto a device, onto a folder, into a full device; no bundle is written', async () => {
    const tmp = await tempDir();
    const model = await tinyModel();
    writeFileSync(join(tmp, 'file'), 'x');
    const compile = (dump: string) => cli('compile', model, '--out', join(tmp, 'bundle'), '--dump-ir', dump, '--quiet');
    expectIo(await compile(join(tmp, 'file', 'dump')), join(tmp, 'file', 'dump'), 'ENOTDIR', NOT_A_FOLDER);
    if (existsSync('/dev/full')) {
      expectIo(await compile('/dev/full'), '/dev/full', 'EEXIST', 'something is already there (a file where a folder is needed)');
      const full = join(tmp, 'dump-full');
      mkdirSync(full);
      symlinkSync('/dev/full', join(full, '00-imported.txt'));
      expectIo(await compile(full), join(full, '00-imported.txt'), 'ENOSPC', DISK_FULL);
    }
    const folder = join(tmp, 'dump-folder');
    mkdirSync(join(folder, '00-imported.txt'), { recursive: true });
    expectIo(await compile(folder), join(folder, '00-imported.txt'), 'EISDIR', IS_A_FOLDER);
    expect(existsSync(join(tmp, 'bundle'))).toBe(false);
    // the control: a writable folder gets one dump per pass
    const ok = await compile(join(tmp, 'dump-ok'));
    expect(ok.code, ok.stderr).toBe(0);
    expect(readdirSync(join(tmp, 'dump-ok'))).toContain('00-imported.txt');
  });

  it('inspect --html into a full device, onto a folder, below a regular file', async () => {
    const tmp = await tempDir();
    const bundle = await bundleDir();
    writeFileSync(join(tmp, 'file'), 'x');
    if (existsSync('/dev/full')) expectIo(await cli('inspect', bundle, '--html', '/dev/full'), '/dev/full', 'ENOSPC', DISK_FULL);
    expectIo(await cli('inspect', bundle, '--html', tmp), tmp, 'EISDIR', IS_A_FOLDER);
    expectIo(await cli('inspect', bundle, '--html', join(tmp, 'file', 'r.html')), join(tmp, 'file', 'r.html'), 'ENOTDIR', NOT_A_FOLDER);
    expectIo(await cli('inspect', bundle, '--svg', join(tmp, 'file', 'm.svg')), join(tmp, 'file', 'm.svg'), 'ENOTDIR', NOT_A_FOLDER);
  });

  it('keygen below a regular file; on a full disk it leaves no half-written key behind', async (context) => {
    const tmp = await tempDir();
    writeFileSync(join(tmp, 'file'), 'x');
    expectIo(await cli('keygen', '--out', join(tmp, 'file', 'release')), join(tmp, 'file', 'release.key'), 'ENOTDIR', NOT_A_FOLDER);
    const disk = fullTmpfs();
    if (!disk) return context.skip('cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)');
    try {
      expectIo(await cli('keygen', '--out', join(disk.dir, 'release')), join(disk.dir, 'release.key'), 'ENOSPC', DISK_FULL);
      expect(readdirSync(disk.dir)).toEqual(['fill']);
    } finally {
      disk.unmount();
    }
  });

  it('sign: a signature.json that is a folder, and a full disk, leave no temporary file', async (context) => {
    const tmp = await tempDir();
    const bundle = join(tmp, 'bundle');
    await writeBundle(bundle, contents());
    const keys = join(tmp, 'release');
    expect((await cli('keygen', '--out', keys)).code).toBe(0);
    mkdirSync(join(bundle, 'signature.json'));
    const r = await cli('sign', bundle, '--key', `${keys}.key`);
    expectIo(r, join(bundle, 'signature.json'), 'EISDIR', IS_A_FOLDER);
    expect(readdirSync(bundle).filter((name) => name.includes('.tmp'))).toEqual([]);
    rmSync(join(bundle, 'signature.json'), { recursive: true });

    const disk = mountTmpfs('2m');
    if (!disk) return context.skip('cannot mount a tmpfs here (needs root and CAP_SYS_ADMIN)');
    try {
      const onDisk = join(disk.dir, 'bundle');
      await writeBundle(onDisk, contents());
      try {
        writeFileSync(join(disk.dir, 'fill'), new Uint8Array(4 << 20));
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== 'ENOSPC') throw error;
      }
      expectIo(await cli('sign', onDisk, '--key', `${keys}.key`), join(onDisk, 'signature.json'), 'ENOSPC', DISK_FULL);
      expect(readdirSync(onDisk).filter((name) => name.startsWith('signature'))).toEqual([]);
    } finally {
      disk.unmount();
    }
  });

  it('profile --out that cannot be written fails before measuring (no device needed)', async () => {
    const tmp = await tempDir();
    writeFileSync(join(tmp, 'file'), 'x');
    const started = performance.now();
    expectIo(await cli('profile', '--quick', '--out', join(tmp, 'file', 'p.json')), join(tmp, 'file', 'p.json'), 'ENOTDIR', NOT_A_FOLDER);
    expectIo(await cli('profile', '--quick', '--out', tmp), tmp, 'EISDIR', IS_A_FOLDER);
    expectIo(await cli('profile', '--quick', '--out', join(tmp, 'missing', 'p.json')), join(tmp, 'missing', 'p.json'), 'ENOENT', 'a folder on the path does not exist');
    expect(performance.now() - started).toBeLessThan(5000);
  });
});
