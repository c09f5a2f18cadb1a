/**
 * Reading a small bundle file whole, safely: without following a final symlink, without blocking on
 * a FIFO (O_NONBLOCK), only a regular file, and never more than a cap, however large the file is
 * or grows. Bundles are untrusted: manifest.json may be a link to /dev/zero.
 */
import { constants } from 'node:fs';
import { open } from 'node:fs/promises';
import { fail, type ErrorCode } from '../errors.js';

/** Reads a regular file of at most `cap` bytes without following a final symlink or blocking on a FIFO. */
export async function readCapped(file: string, cap: number, code: ErrorCode): Promise<Buffer> {
  let handle;
  try {
    handle = await open(file, constants.O_RDONLY | constants.O_NOFOLLOW | constants.O_NONBLOCK);
  } catch (error) {
    const reason = (error as NodeJS.ErrnoException).code;
    if (reason === 'ENOENT') fail(code, `${file} is missing`, error);
    if (reason === 'ELOOP') fail(code, `${file} is a symbolic link; bundle files must be regular files`, error);
    fail(code, `${file} could not be opened (${reason ?? (error as Error).message})`, error);
  }
  try {
    const stat = await handle.stat();
    if (!stat.isFile()) fail(code, `${file} is not a regular file`);
    if (stat.size > cap) fail(code, `${file} is larger than ${cap} bytes`);
    // the file may grow after the stat: never read more than the cap
    const bytes = Buffer.alloc(stat.size);
    const { bytesRead } = await handle.read(bytes, 0, stat.size, 0);
    return bytes.subarray(0, bytesRead);
  } finally {
    await handle.close();
  }
}
