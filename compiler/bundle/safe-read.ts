/**
 * Reading a file of a bundle folder on the compiler side (the CLI's manifest and schedule reads),
 * with the guarantees of the runtime's Node reader (runtime-template/node-reader.ts): a bundle
 * may be hostile, so a file is read only when it is a regular file inside the bundle folder that
 * no symlink leads to (symlinks below the folder are refused, wherever they point), FIFOs and
 * devices are never read (opened O_NONBLOCK, so a FIFO cannot hang the open, and fstat-checked),
 * no more than the allowed bytes are read, and the checks hold against a folder that changes
 * meanwhile: the opened descriptor's (dev, ino) must be the file an lstat walk finds at the path.
 * Messages name the bundle-relative path only, never the size or hash of anything outside.
 *
 * Hard links (nlink > 1) are allowed, on purpose, here and in the runtime's reader: package
 * managers install files as hard links (pnpm's content-addressed store, `cp -al`, backup snapshot
 * tools), and refusing them would refuse correctly installed bundles. A hard link is not a
 * redirect: the name is inside the bundle folder and is resolved there, component by component
 * without symlinks, and what is opened is that name's file, checked like any other (regular file,
 * O_NOFOLLOW | O_NONBLOCK, dev/ino against the walk, the declared size, then sha256). Nothing at a
 * path outside the folder is reached at read time. The bytes may be the same as a file's elsewhere
 * (that is what a link is), so no message tells the digest of what was read, only the manifest's;
 * and making a link to a file needs, on Linux with fs.protected_hardlinks (the default), owning it
 * or being able to read and write it, so its planter could read it anyway; archive extractors link
 * only to members of the same archive.
 */
import * as fs from 'node:fs';
import { join } from 'node:path';
import { fail, FlashmemError, quoteName } from '../errors.js';

// O_NOFOLLOW is absent on Windows; there the lstat walks and the identity check still apply
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOFOLLOW ?? 0);

export interface BundleReadLimits {
  /** read at most this many bytes; a larger file is refused (FM_BUNDLE_INVALID) */
  maxBytes: number;
  /** the size the manifest declares; a file of another size is refused (FM_BUNDLE_HASH) */
  declaredSize?: number;
}

/** The bytes of `relative` (a '/'-separated path) inside the bundle folder `root`. */
export function readBundleFileSync(root: string, relative: string, limits: BundleReadLimits): Buffer {
  const segments = plainSegments(relative);
  const realRoot = realBundleRoot(root, relative);
  lstatWalk(realRoot, segments, relative, root);
  let fd: number;
  try {
    fd = fs.openSync(join(realRoot, ...segments), OPEN_FLAGS);
  } catch (error) {
    throw fileFailure(relative, root, error);
  }
  try {
    const opened = fs.fstatSync(fd, { bigint: true });
    if (!opened.isFile()) refuseKind(relative, opened);
    const atPath = lstatWalk(realRoot, segments, relative, root);
    if (atPath.dev !== opened.dev || atPath.ino !== opened.ino) {
      fail('FM_BUNDLE_INVALID', `bundle file ${quoteName(relative)} changed while it was being opened (a folder on its path was replaced); refusing to read it`);
    }
    const size = Number(opened.size);
    checkSize(relative, size, limits);
    return readAll(fd, size, relative, root);
  } finally {
    fs.closeSync(fd);
  }
}

function plainSegments(relative: string): string[] {
  const segments = relative.split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..' || /[\\\0]/.test(segment))) {
    fail('FM_BUNDLE_INVALID', `bundle file path ${quoteName(relative)} is not a plain relative path inside the bundle`);
  }
  return segments;
}

/** The folder itself may be reached through a symlink (the user named it); below it, nothing may. */
function realBundleRoot(root: string, relative: string): string {
  try {
    return fs.realpathSync(root);
  } catch (error) {
    throw fileFailure(relative, root, error);
  }
}

/** lstat's each component below the real root: folders on the way, a regular file at the end. */
function lstatWalk(realRoot: string, segments: string[], relative: string, root: string): fs.BigIntStats {
  let at = realRoot;
  let stats: fs.BigIntStats | undefined;
  for (const [i, segment] of segments.entries()) {
    at = join(at, segment);
    try {
      stats = fs.lstatSync(at, { bigint: true });
    } catch (error) {
      throw fileFailure(relative, root, error);
    }
    const last = i === segments.length - 1;
    if (stats.isSymbolicLink()) {
      const which = last ? 'is a symlink' : `lies in ${quoteName(segments.slice(0, i + 1).join('/'))}, which is a symlink`;
      fail('FM_BUNDLE_INVALID', `bundle file ${quoteName(relative)} ${which}: bundle files must be regular files inside the bundle folder, and symlinks are refused`);
    }
    if (!last && !stats.isDirectory()) {
      fail('FM_BUNDLE_INVALID', `bundle file ${quoteName(relative)} lies in ${quoteName(segments.slice(0, i + 1).join('/'))}, which is not a folder`);
    }
  }
  if (!stats!.isFile()) refuseKind(relative, stats!);
  return stats!;
}

function refuseKind(relative: string, stats: fs.BigIntStats): never {
  const kind = stats.isDirectory() ? 'a folder' : stats.isFIFO() ? 'a FIFO' : stats.isCharacterDevice() || stats.isBlockDevice() ? 'a device' : stats.isSocket() ? 'a socket' : 'not a plain file';
  fail('FM_BUNDLE_INVALID', `bundle file ${quoteName(relative)} is ${kind}, not a regular file`);
}

function checkSize(relative: string, size: number, limits: BundleReadLimits): void {
  if (limits.declaredSize !== undefined && size !== limits.declaredSize) {
    const shortOrLong = size < limits.declaredSize ? `only ${size}` : `more than ${limits.declaredSize}`;
    fail('FM_BUNDLE_HASH', `${quoteName(relative)} has ${shortOrLong} bytes, the manifest says ${limits.declaredSize} (truncated or replaced)`);
  }
  if (size > limits.maxBytes) fail('FM_BUNDLE_INVALID', `${quoteName(relative)} is larger than ${limits.maxBytes} bytes`);
}

function readAll(fd: number, size: number, relative: string, root: string): Buffer {
  const bytes = Buffer.alloc(size);
  let filled = 0;
  try {
    while (filled < size) {
      const n = fs.readSync(fd, bytes, filled, size - filled, filled);
      if (n === 0) break;
      filled += n;
    }
  } catch (error) {
    throw fileFailure(relative, root, error);
  }
  return filled === size ? bytes : bytes.subarray(0, filled);
}

/** Only the error's code is told: Node's messages repeat the full path, which the bundle chose. */
function fileFailure(relative: string, root: string, error: unknown): FlashmemError {
  if (error instanceof FlashmemError) return error;
  const code = (error as NodeJS.ErrnoException).code;
  const where = `bundle file ${quoteName(relative)} in ${quoteName(root)}`;
  if (code === 'ENOENT') return new FlashmemError('FM_BUNDLE_INVALID', `${where} is missing`, { cause: error });
  // a name the bundle made too long for any file system cannot be one of its files
  if (code === 'ENAMETOOLONG') return new FlashmemError('FM_BUNDLE_INVALID', `${where} is missing (its name is too long for the file system)`, { cause: error });
  if (code === 'ELOOP') return new FlashmemError('FM_BUNDLE_INVALID', `${where} is a symlink: bundle files must be regular files inside the bundle folder`, { cause: error });
  if (code === 'ENOTDIR') return new FlashmemError('FM_BUNDLE_INVALID', `${where} lies in something that is not a folder`, { cause: error });
  return new FlashmemError('FM_IO', `reading ${where} failed (${code ?? 'I/O error'})`, { cause: error });
}
