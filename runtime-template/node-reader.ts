/**
 * Bundle files from a folder, in Node. Whoever made the bundle controls every name in it (and can
 * recompute every sha256 of its manifest), so a file is read only when it is a regular file inside
 * the bundle folder: no symlink is followed anywhere below the folder (symlinks inside the bundle
 * are refused too, wherever they point: flashmemc never writes one), FIFOs, devices, sockets and
 * folders are refused before a byte is read, and a file must have the size the manifest declares.
 * Failures name the bundle-relative path only, never a size or hash of anything outside the bundle.
 *
 * Every read opens the file afresh with these checks (streamed weights read from storage re-read
 * their shards on every run), and the checks hold against a folder that changes meanwhile: the
 * path is lstat'ed component by component, the file is opened with O_NOFOLLOW | O_NONBLOCK (a FIFO
 * does not block the open, a final symlink fails it), and after the open the components are
 * lstat'ed again and the opened file's identity (dev, ino) must be the file found at the path, so
 * a folder swapped for a symlink between check and open is noticed.
 *
 * Hard links (nlink > 1) are allowed, on purpose: package managers install files as hard links
 * (pnpm's content-addressed store, `cp -al`), and refusing them would refuse correctly installed
 * bundles. A hard link is not a redirect: the name is inside the bundle folder, resolved there
 * without symlinks, and the file opened is that name's, checked like any other (regular file,
 * O_NOFOLLOW | O_NONBLOCK, dev/ino, the declared size, then sha256); no path outside the folder is
 * reached at read time. Its bytes may be the same as a file's elsewhere (that is what a link is), so
 * hash errors (reader.ts) tell the manifest's digest, never the digest of what was read; making a
 * link to a file needs, on Linux with fs.protected_hardlinks (the default), owning it or being able
 * to read and write it, so its planter could read it anyway.
 */
import { importNodeModule, type NodeFs, type NodePath } from './env.js';
import { fail, FlashmemRuntimeError, quote } from './errors.js';

type FileHandle = Awaited<ReturnType<NodeFs['open']>>;
type BigStats = import('node:fs').BigIntStats;

interface OpenedBundleFile {
  handle: FileHandle;
  size: number;
}

export async function nodeFolderReader(root: string) {
  const fs = await importNodeModule<NodeFs>('node:fs/promises');
  const path = await importNodeModule<NodePath>('node:path');
  let realRoot: Promise<string> | undefined;
  // the folder itself may be reached through a symlink (the caller's choice); below it, nothing may
  const resolvedRoot = (relative: string) => (realRoot ??= fs.realpath(root)).catch((error: unknown) => {
    realRoot = undefined;
    throw bundleFileFailure(relative, root, error);
  });

  const readAt = async (relative: string, offset: number, maxBytes: number, declaredSize?: number): Promise<Uint8Array<ArrayBuffer>> => {
    const opened = await openBundleFile(fs, path, await resolvedRoot(relative), relative, root);
    try {
      if (declaredSize !== undefined && opened.size !== declaredSize) {
        // refused before reading: a file that grew is never read past its declared size
        const shortOrLong = opened.size < declaredSize ? `only ${opened.size}` : `more than ${declaredSize}`;
        fail('FM_BUNDLE_HASH', `${quote(relative)} has ${shortOrLong} bytes, the manifest says ${declaredSize} (truncated or replaced)`);
      }
      return await readFully(opened.handle, offset, Math.max(0, Math.min(opened.size - offset, maxBytes)), relative, root);
    } finally {
      await opened.handle.close().catch(() => {});
    }
  };
  return {
    location: root,
    read: (relative: string, maxBytes: number, declaredSize?: number) => readAt(relative, 0, maxBytes, declaredSize),
    readRange: readAt,
  };
}

/** Opens `relative` under the real bundle folder as a regular file that no symlink leads to (see the module comment). */
async function openBundleFile(fs: NodeFs, path: NodePath, realRoot: string, relative: string, root: string): Promise<OpenedBundleFile> {
  const segments = bundleSegments(relative);
  const file = path.join(realRoot, ...segments);
  // before the open: devices and FIFOs are not even opened, symlinked folders not entered
  await checkNoSymlinkOnPath(fs, path, realRoot, segments, relative, root);
  let handle: FileHandle;
  try {
    handle = await fs.open(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOFOLLOW ?? 0));
  } catch (error) {
    throw bundleFileFailure(relative, root, error);
  }
  try {
    const opened = await handle.stat({ bigint: true });
    if (!opened.isFile()) refuseKind(relative, opened);
    // after the open: the path still leads, without symlinks, to the very file that was opened
    const atPath = await checkNoSymlinkOnPath(fs, path, realRoot, segments, relative, root);
    if (atPath.dev !== opened.dev || atPath.ino !== opened.ino) {
      fail('FM_BUNDLE_INVALID', `bundle file ${quote(relative)} changed while it was being opened (a folder on its path was replaced); refusing to read it`);
    }
    return { handle, size: Number(opened.size) };
  } catch (error) {
    await handle.close().catch(() => {});
    throw error;
  }
}

/** The path's segments; the manifest's schema already allows only such paths, this keeps any caller honest. */
function bundleSegments(relative: string): string[] {
  const segments = relative.split('/');
  if (segments.some((segment) => segment === '' || segment === '.' || segment === '..' || /[\\\0]/.test(segment))) {
    fail('FM_BUNDLE_INVALID', `bundle file path ${quote(relative)} is not a plain relative path inside the bundle`);
  }
  return segments;
}

/** lstat's each component below the real root: folders on the way, a regular file at the end; returns the file's stats. */
async function checkNoSymlinkOnPath(fs: NodeFs, path: NodePath, realRoot: string, segments: string[], relative: string, root: string): Promise<BigStats> {
  let at = realRoot;
  let stats: BigStats | undefined;
  for (const [i, segment] of segments.entries()) {
    at = path.join(at, segment);
    try {
      stats = await fs.lstat(at, { bigint: true });
    } catch (error) {
      throw bundleFileFailure(relative, root, error);
    }
    const last = i === segments.length - 1;
    if (stats.isSymbolicLink()) {
      const which = last ? 'is a symlink' : `lies in ${quote(segments.slice(0, i + 1).join('/'))}, which is a symlink`;
      fail('FM_BUNDLE_INVALID', `bundle file ${quote(relative)} ${which}: bundle files must be regular files inside the bundle folder, and symlinks are refused`);
    }
    if (!last && !stats.isDirectory()) {
      fail('FM_BUNDLE_INVALID', `bundle file ${quote(relative)} lies in ${quote(segments.slice(0, i + 1).join('/'))}, which is not a folder`);
    }
  }
  if (!stats!.isFile()) refuseKind(relative, stats!);
  return stats!;
}

function refuseKind(relative: string, stats: BigStats): never {
  fail('FM_BUNDLE_INVALID', `bundle file ${quote(relative)} is ${kindOf(stats)}, not a regular file`);
}

function kindOf(stats: BigStats): string {
  if (stats.isDirectory()) return 'a folder';
  if (stats.isFIFO()) return 'a FIFO';
  if (stats.isCharacterDevice() || stats.isBlockDevice()) return 'a device';
  if (stats.isSocket()) return 'a socket';
  if (stats.isSymbolicLink()) return 'a symlink';
  return 'not a plain file';
}

/** Reads `length` bytes at `offset`; fewer only when the file ends first. */
async function readFully(handle: FileHandle, offset: number, length: number, relative: string, root: string): Promise<Uint8Array<ArrayBuffer>> {
  const bytes = new Uint8Array(length);
  let filled = 0;
  try {
    while (filled < bytes.length) {
      const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, offset + filled);
      if (bytesRead === 0) break;
      filled += bytesRead;
    }
  } catch (error) {
    throw bundleFileFailure(relative, root, error);
  }
  return filled === bytes.length ? bytes : bytes.slice(0, filled);
}

/**
 * An fs failure on a bundle file. Only the error's code is told: Node's messages repeat the full
 * path, which the bundle chose and may make 100,000 characters long.
 */
function bundleFileFailure(relative: string, root: string, error: unknown): FlashmemRuntimeError {
  if (error instanceof FlashmemRuntimeError) return error;
  const code = (error as { code?: unknown }).code;
  const where = `bundle file ${quote(relative)} in ${quote(root)}`;
  if (code === 'ENOENT') return new FlashmemRuntimeError('FM_BUNDLE_INVALID', `${where} is missing`, { cause: error });
  // a name the bundle made too long for any file system cannot be one of its files
  if (code === 'ENAMETOOLONG') return new FlashmemRuntimeError('FM_BUNDLE_INVALID', `${where} is missing (its name is too long for the file system)`, { cause: error });
  // O_NOFOLLOW on a symlink that appeared after the lstat
  if (code === 'ELOOP') return new FlashmemRuntimeError('FM_BUNDLE_INVALID', `${where} is a symlink: bundle files must be regular files inside the bundle folder`, { cause: error });
  if (code === 'ENOTDIR') return new FlashmemRuntimeError('FM_BUNDLE_INVALID', `${where} lies in something that is not a folder`, { cause: error });
  return new FlashmemRuntimeError('FM_IO', `reading ${where} failed (${typeof code === 'string' ? code : 'I/O error'})`, { cause: error });
}
