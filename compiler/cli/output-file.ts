/**
 * Files the CLI writes besides bundles (run --save-outputs and --timeline, inspect --svg): every
 * failure (a full disk, a read-only folder, a parent that is a file...) is FM_IO naming the
 * option and the path, never an internal error.
 */
import { mkdirSync, writeFileSync } from 'node:fs';
import { fail, quoteName } from '../errors.js';

export function writeOutputFile(path: string, data: string | Uint8Array, option: string): void {
  try {
    writeFileSync(path, data);
  } catch (error) {
    outputFailure(`writing ${option} file ${quoteName(path)}`, error);
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
