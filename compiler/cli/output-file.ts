/**
 * Files the CLI writes besides bundles (run --save-outputs and --timeline, inspect --svg and
 * --html): every failure (a full disk, a read-only folder, a parent that is a file...) is FM_IO
 * naming the option and the path, never an internal error. Regular files are replaced atomically
 * (a temporary sibling, then a rename: readers see the old file or the whole new one); anything
 * else at the path (a device such as /dev/full, a FIFO) is written in place, never replaced.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { fail, quoteName } from '../errors.js';

export function writeOutputFile(path: string, data: string | Uint8Array, option: string): void {
  const what = `writing ${option} file ${quoteName(path)}`;
  if (!replaceable(path)) {
    try {
      writeFileSync(path, data);
    } catch (error) {
      outputFailure(what, error);
    }
    return;
  }
  const temp = join(dirname(path), `.${basename(path)}.${process.pid}-${randomBytes(4).toString('hex')}.tmp`);
  try {
    writeFileSync(temp, data, { flag: 'wx' });
    renameSync(temp, path);
  } catch (error) {
    removeIfThere(temp);
    outputFailure(what, error);
  }
}

/** best effort: the temporary file may never have been created (a parent that is a file: ENOTDIR) */
function removeIfThere(path: string): void {
  try {
    rmSync(path, { force: true });
  } catch {
    // nothing was written there
  }
}

/** absent, or a regular file: what a rename may put in place */
function replaceable(path: string): boolean {
  try {
    return lstatSync(path).isFile();
  } catch {
    return true;
  }
}

export function makeOutputFolder(path: string, option: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    outputFailure(`creating ${option} folder ${quoteName(path)}`, error);
  }
}

/** Node's messages repeat the path; the code (ENOSPC, EACCES, EROFS...) says what happened. */
function outputFailure(what: string, error: unknown): never {
  const code = (error as NodeJS.ErrnoException).code;
  fail('FM_IO', `${what} failed (${code ?? (error as Error).message})`, error);
}
