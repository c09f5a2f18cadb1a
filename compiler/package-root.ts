/**
 * The folder holding flashmemc's package.json (and runtime-template/, profiles/), from the source
 * tree or from dist/. Kept free of heavy imports: the CLI reads its version through it.
 */
import { existsSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const MARKER_DIR = 'runtime-template';

export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json')) || !existsSync(join(dir, MARKER_DIR))) {
    const parent = dirname(dir);
    if (parent === dir) throw new Error(`flashmemc's package root (with ${MARKER_DIR}/) was not found above ${fileURLToPath(import.meta.url)}`);
    dir = parent;
  }
  return dir;
}
