/**
 * Writes a file so that readers see the old file or the whole new one, never a part: into a
 * temporary sibling (same folder, so the rename stays on one filesystem), then renamed over it.
 */
import { randomBytes } from 'node:crypto';
import { renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fail } from '../../errors.js';

export function writeFileAtomically(file: string, text: string): void {
  const temp = join(dirname(file), `.${basename(file)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, text);
    renameSync(temp, file);
  } catch (e) {
    rmSync(temp, { force: true });
    fail('FM_IO', `cannot write ${JSON.stringify(file)}: ${(e as Error).message}`, e);
  }
}
