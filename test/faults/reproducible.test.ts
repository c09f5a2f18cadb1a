/**
 * Reproducible bundles: compiling the same model twice (in worker threads, into two folders) gives
 * byte-identical files; and `flashmemc verify` accepts a compiled bundle.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { main } from '../../compiler/cli/main.js';
import { compileOffThread } from '../harness/compile-run.js';
import { REPO_ROOT, tempDir } from '../harness/paths.js';

const MODEL = join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx');

function listFiles(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((entry) =>
    (entry.isDirectory() ? listFiles(root, join(dir, entry.name)) : [relative(root, join(dir, entry.name))])).sort();
}

describe('reproducible bundles', () => {
  const tmp = tempDir('repro');
  afterAll(() => tmp.cleanup());
  const [first, second] = [join(tmp.dir, 'a', 'bundle'), join(tmp.dir, 'b', 'bundle')];

  it('compiling examples/mini-resnet twice gives byte-identical bundles', async () => {
    await compileOffThread(MODEL, first);
    await compileOffThread(MODEL, second);
    const files = listFiles(first);
    expect(files).toContain('manifest.json');
    expect(files.some((f) => f.startsWith('weights/'))).toBe(true);
    expect(listFiles(second)).toEqual(files);
    for (const file of files) {
      const same = readFileSync(join(first, file)).equals(readFileSync(join(second, file)));
      expect(same, `${file} differs between the two compilations`).toBe(true);
    }
  });

  it('flashmemc verify accepts the compiled bundle', async () => {
    let stdout = '', stderr = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
    const err = vi.spyOn(process.stderr, 'write').mockImplementation((s) => ((stderr += String(s)), true));
    let code: number;
    try {
      code = await main(['verify', first]);
    } finally {
      out.mockRestore();
      err.mockRestore();
    }
    expect(stderr).toBe('');
    expect(code).toBe(0);
    expect(stdout).toMatch(/^OK: \d+ files, \d+ bytes verified \(".+"\); loading allocates \d+ bytes of GPU memory\n$/);
  });
});
