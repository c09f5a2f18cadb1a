/**
 * Files the CLI writes besides bundles (run --save-outputs and --timeline, inspect --svg and
 * --html, compile --dump-ir, profile --out): every failure (a full disk, a read-only folder, a parent that is a file...) is FM_IO
 * naming the option and the path, never an internal error. Regular files are replaced atomically
 * (a temporary sibling, then a rename: readers see the old file or the whole new one); anything
 * else at the path (a device such as /dev/full, a FIFO) is written in place, never replaced.
 */
import { randomBytes } from 'node:crypto';
import { lstatSync, mkdirSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { basename, dirname, join } from 'node:path';
import { ioFailed, quoteName } from './errors.js';

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

/**
 * Before long work whose result goes to `path` (profile's measurements): FM_IO now, as writing
 * would fail later, when the path is a folder or its folder is missing or a file. A full disk can
 * only show when writing.
 */
export function checkOutputFilePath(path: string, option: string): void {
  const what = `writing ${option} file ${quoteName(path)}`;
  let folder;
  try {
    folder = statSync(dirname(path));
  } catch (error) {
    outputFailure(what, error);
  }
  if (!folder.isDirectory()) outputFailure(what, errno('ENOTDIR'));
  let target;
  try {
    target = statSync(path, { throwIfNoEntry: false });
  } catch (error) {
    outputFailure(what, error);
  }
  if (target?.isDirectory()) outputFailure(what, errno('EISDIR'));
}

function errno(code: string): NodeJS.ErrnoException {
  return Object.assign(new Error(code), { code });
}

export function makeOutputFolder(path: string, option: string): void {
  try {
    mkdirSync(path, { recursive: true });
  } catch (error) {
    outputFailure(`creating ${option} folder ${quoteName(path)}`, error);
  }
}

/** Node's messages repeat the path; the code (ENOSPC, EACCES, EROFS...) says what happened, ioAdvice what to do. */
function outputFailure(what: string, error: unknown): never {
  ioFailed(what, error);
}
