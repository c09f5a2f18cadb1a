/**
 * The bundle writer: file layout and manifest, byte reproducibility, atomic replacement, and
 * refusing to overwrite what is not a bundle.
 */
import { mkdir, readdir, readFile, stat, writeFile } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { shaderPath, writeBundle } from '../../compiler/bundle/write.js';
import { manifestSchema } from '../../schemas/manifest.js';
import {
  assembleBundle, BIAS_RELU_WGSL, counterModel, MATMUL_WGSL, mlpModel, readJson, rejectionOf, removeTempDirs, sha256Hex, tempDir,
} from '../harness/bundle-fixtures.js';

afterAll(removeTempDirs);

const packageVersion = (JSON.parse(await readFile('package.json', 'utf8')) as { version: string }).version;

async function listFiles(dir: string, prefix = ''): Promise<string[]> {
  const entries = await readdir(join(dir, prefix), { withFileTypes: true });
  const nested = await Promise.all(entries.map((entry) =>
    (entry.isDirectory() ? listFiles(dir, join(prefix, entry.name)) : [join(prefix, entry.name)])));
  return nested.flat().sort();
}

async function siblingsOf(dir: string): Promise<string[]> {
  return (await readdir(dirname(dir))).filter((name) => name.startsWith(basename(dir)));
}

async function freshOutDir(): Promise<string> {
  return join(await tempDir(), 'bundle');
}

describe('writeBundle: layout and manifest', () => {
  it('writes every file, listed with kind, size and sha256 in a valid manifest', async () => {
    const dir = await freshOutDir();
    const written = await writeBundle(dir, assembleBundle([mlpModel(), counterModel()]));
    const files = await listFiles(dir);
    expect(files).toEqual([
      'manifest.json', 'runtime.d.ts', 'runtime.js', 'schedule.json',
      shaderPath(MATMUL_WGSL), shaderPath(BIAS_RELU_WGSL), shaderPath(counterModel().shaders[0]!), 'weights/0.bin',
    ].sort());
    const manifest = manifestSchema.parse(await readJson(dir, 'manifest.json'));
    expect(manifest.generator).toEqual({ name: 'flashmemc', version: packageVersion });
    expect(manifest.files.map((f) => f.path)).toEqual(files.filter((f) => f !== 'manifest.json'));
    expect(manifest.files).toEqual(written.files);
    for (const entry of manifest.files) {
      const bytes = await readFile(join(dir, entry.path));
      expect(entry.size).toBe(bytes.length);
      expect(entry.sha256).toBe(sha256Hex(bytes));
    }
    expect(Object.fromEntries(manifest.files.map((f) => [f.path, f.kind]))).toMatchObject({
      'schedule.json': 'schedule', 'runtime.js': 'runtime', 'runtime.d.ts': 'types', 'weights/0.bin': 'weights', [shaderPath(MATMUL_WGSL)]: 'shader',
    });
    const sizes = await Promise.all(files.map(async (f) => (await stat(join(dir, f))).size));
    expect(written.totalBytes).toBe(sizes.reduce((a, b) => a + b, 0));
  });

  it('names shaders by content, so a model reusing a kernel ships it once', async () => {
    const contents = assembleBundle([mlpModel('a'), mlpModel('b')]);
    expect(contents.schedule.shaders).toHaveLength(2);
    const dir = await freshOutDir();
    await writeBundle(dir, contents);
    expect((await readdir(join(dir, 'shaders'))).length).toBe(2);
  });

  it('writes the same bytes twice', async () => {
    const [a, b] = [await freshOutDir(), await freshOutDir()];
    await writeBundle(a, assembleBundle([mlpModel(), counterModel()]));
    // other piece sizes and a different key order in requiredLimits must not change the bytes
    const again = assembleBundle([mlpModel(), counterModel()], { pieceBytes: 7 });
    again.requiredLimits = { maxStorageBuffersPerShaderStage: 3 };
    await writeBundle(b, again);
    const files = await listFiles(a);
    expect(await listFiles(b)).toEqual(files);
    for (const file of files) expect((await readFile(join(b, file))).equals(await readFile(join(a, file))), file).toBe(true);
  });

  it('ships the runtime it is given instead of generating one', async () => {
    const dir = await freshOutDir();
    await writeBundle(dir, assembleBundle([counterModel()]), { runtime: { js: 'export const given = 1;\n', dts: 'export declare const given: 1;\n' } });
    expect(await readFile(join(dir, 'runtime.js'), 'utf8')).toBe('export const given = 1;\n');
    expect(await readFile(join(dir, 'runtime.d.ts'), 'utf8')).toBe('export declare const given: 1;\n');
  });

  it('refuses contents whose shader name does not match its source', async () => {
    const contents = assembleBundle([mlpModel()]);
    contents.shaders.set(contents.schedule.shaders[0]!, `${MATMUL_WGSL}\n// changed`);
    const dir = await freshOutDir();
    const error = await rejectionOf(writeBundle(dir, contents));
    expect(error.code).toBe('FM_BUNDLE_INVALID');
    expect(error.message).toContain('not named by its content');
    expect(await siblingsOf(dir)).toEqual([]);
  });

  it('refuses a schedule that violates the schema, and shard sources that disagree with it', async () => {
    const negative = assembleBundle([mlpModel()]);
    (negative.schedule.models[0]!.run[0] as { dst: { offset: number } }).dst.offset = -4;
    expect((await rejectionOf(writeBundle(await freshOutDir(), negative))).code).toBe('FM_BUNDLE_INVALID');
    const missingShard = assembleBundle([mlpModel()]);
    missingShard.shards = [];
    expect((await rejectionOf(writeBundle(await freshOutDir(), missingShard))).message).toContain('0 shard sources for 1 shards');
  });
});

describe('writeBundle: atomic replacement', () => {
  it('a shard source that throws midway leaves no output folder and no temp folder', async () => {
    const dir = await freshOutDir();
    const error = await rejectionOf(writeBundle(dir, assembleBundle([mlpModel()], { throwAfterBytes: 40 })));
    expect(error.message).toContain('failed on purpose');
    expect(await siblingsOf(dir)).toEqual([]);
  });

  it('a shard that yields fewer bytes than declared is refused, and the previous bundle stays as it was', async () => {
    const dir = await freshOutDir();
    await writeBundle(dir, assembleBundle([counterModel()]));
    const before = await listFiles(dir);
    const manifestBefore = await readFile(join(dir, 'manifest.json'));
    const short = assembleBundle([mlpModel()]);
    const source = short.shards[0]!;
    short.shards[0] = { ...source, pieces: () => [...source.pieces()].slice(0, 1) };
    const error = await rejectionOf(writeBundle(dir, short));
    expect(error.code).toBe('FM_BUNDLE_INVALID');
    expect(error.message).toContain('weights/0.bin produced 40 bytes, it declared 64');
    expect(await listFiles(dir)).toEqual(before);
    expect((await readFile(join(dir, 'manifest.json'))).equals(manifestBefore)).toBe(true);
    expect(await siblingsOf(dir)).toEqual(['bundle']);
  });

  it('replaces a previous bundle completely: files of the old one do not linger', async () => {
    const dir = await freshOutDir();
    await writeBundle(dir, assembleBundle([counterModel()]));
    await writeBundle(dir, assembleBundle([mlpModel()]));
    expect(await listFiles(dir)).not.toContain(shaderPath(counterModel().shaders[0]!));
    expect(await siblingsOf(dir)).toEqual(['bundle']);
  });

  it('writes into an existing empty folder', async () => {
    const dir = await freshOutDir();
    await mkdir(dir);
    await writeBundle(dir, assembleBundle([counterModel()]));
    expect(await listFiles(dir)).toContain('manifest.json');
  });

  it('refuses a non-empty folder that is not a bundle, and leaves it alone', async () => {
    const dir = await freshOutDir();
    await mkdir(dir);
    await writeFile(join(dir, 'notes.txt'), 'mine');
    const error = await rejectionOf(writeBundle(dir, assembleBundle([counterModel()])));
    expect(error.code).toBe('FM_OUTPUT');
    expect(error.message).toContain('it holds "notes.txt" and no manifest.json');
    expect(await readFile(join(dir, 'notes.txt'), 'utf8')).toBe('mine');
    expect(await siblingsOf(dir)).toEqual(['bundle']);
  });

  it("refuses a web app's folder, whose manifest.json is not a bundle manifest", async () => {
    const dir = await freshOutDir();
    await mkdir(dir);
    await writeFile(join(dir, 'manifest.json'), JSON.stringify({ name: 'My PWA', start_url: '/' }));
    const error = await rejectionOf(writeBundle(dir, assembleBundle([counterModel()])));
    expect(error.code).toBe('FM_OUTPUT');
    expect(await readdir(dir)).toEqual(['manifest.json']);
  });

  it('refuses a path that is a file', async () => {
    const dir = await freshOutDir();
    await writeFile(dir, 'a file');
    expect((await rejectionOf(writeBundle(dir, assembleBundle([counterModel()])))).code).toBe('FM_OUTPUT');
    expect(await readFile(dir, 'utf8')).toBe('a file');
  });
});
