/**
 * File access for the frontend: external tensor data confined to the model's folder, and the
 * model file itself. Files are opened non-blocking and checked with fstat on the opened
 * descriptor (a FIFO would otherwise block the open, and a path check alone can race with a
 * swap), and only the needed byte range is read.
 */
import * as fs from 'node:fs';
import * as path from 'node:path';
import { fail, quoteName } from '../errors.js';
import { MAX_PROTOBUF_BYTES } from './parse.js';
import type { ExternalDataSource } from './tensor-decode.js';

// O_NOFOLLOW is absent on Windows; there realpath plus the fstat check still apply
const OPEN_FLAGS = fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0) | (fs.constants.O_NOFOLLOW ?? 0);

function describeNonRegular(stat: fs.Stats | fs.BigIntStats): string {
  if (stat.isDirectory()) return 'a directory';
  if (stat.isFIFO()) return 'a FIFO';
  if (stat.isCharacterDevice() || stat.isBlockDevice()) return 'a device';
  if (stat.isSocket()) return 'a socket';
  return 'not a regular file';
}

/** Reads exactly `length` bytes at `position`; readSync may return short counts. */
function readRange(fd: number, position: number, length: number): Uint8Array | undefined {
  const out = new Uint8Array(length);
  let done = 0;
  while (done < length) {
    const n = fs.readSync(fd, out, done, length - done, position + done);
    if (n === 0) return undefined;
    done += n;
  }
  return out;
}

function isInside(folder: string, target: string): boolean {
  const rel = path.relative(folder, target);
  return rel === '' || (!rel.startsWith(`..${path.sep}`) && rel !== '..' && !path.isAbsolute(rel));
}

function parseByteCount(value: string | undefined, key: string, where: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^\d+$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n)) fail('FM_EXTERNAL_DATA', `${where}: external_data ${key} ${quoteName(value)} is not a non-negative integer`);
  return n;
}

/**
 * External data of one import. Locations resolve inside `baseDir`: no absolute paths, no `..`
 * escapes, no symlinks leading out of the folder (compared on real paths), regular files only.
 */
export function externalDataSource(baseDir: string): ExternalDataSource {
  let realBase: string | undefined;
  const realBaseDir = (where: string): string => {
    if (realBase === undefined) {
      try {
        realBase = fs.realpathSync(baseDir);
      } catch (e) {
        fail('FM_EXTERNAL_DATA', `${where}: the external data folder ${quoteName(baseDir)} cannot be resolved (${(e as Error).message})`, e);
      }
    }
    return realBase;
  };

  return {
    read(entries, byteLength, tensorLabel) {
      const location = entries.get('location');
      const where = `${tensorLabel} (external data location ${quoteName(location ?? '')})`;
      if (!location) fail('FM_EXTERNAL_DATA', `${tensorLabel} is marked EXTERNAL but has no external_data "location"`);
      if (location.includes('\0')) fail('FM_EXTERNAL_DATA', `${where}: the location contains a NUL byte`);
      if (path.isAbsolute(location) || path.win32.isAbsolute(location)) {
        fail('FM_EXTERNAL_DATA', `${where}: absolute locations are refused; external data must be a relative path inside the model folder ${quoteName(baseDir)}`);
      }
      const offset = parseByteCount(entries.get('offset'), 'offset', where) ?? 0;
      const length = parseByteCount(entries.get('length'), 'length', where);
      if (length !== undefined && length !== byteLength) {
        fail('FM_EXTERNAL_DATA', `${where}: external_data length ${length} disagrees with the tensor's size of ${byteLength} bytes`);
      }

      const resolved = path.resolve(baseDir, location);
      if (!isInside(path.resolve(baseDir), resolved)) {
        fail('FM_EXTERNAL_DATA', `${where}: the location escapes the model folder ${quoteName(baseDir)} ('..' is only allowed inside it)`);
      }
      const base = realBaseDir(where);
      let real: string;
      try {
        real = fs.realpathSync(resolved);
      } catch (e) {
        fail('FM_EXTERNAL_DATA', `${where}: the file does not exist or cannot be resolved in ${quoteName(baseDir)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
      }
      if (!isInside(base, real)) {
        fail('FM_EXTERNAL_DATA', `${where}: the location resolves through a symlink to ${quoteName(real)}, outside the model folder ${quoteName(base)}`);
      }
      return readRegularFileRange(base, real, offset, byteLength, where);
    },
  };
}

/**
 * Reads from `file` (a real path inside the real folder `base`). realpath and open are two steps,
 * and a folder on the path may be swapped for a symlink between them (O_NOFOLLOW guards only the
 * last component), so the opened descriptor is checked afterwards: walking from `base` with lstat,
 * every component must still be a plain folder and the last one the very file opened (dev, ino).
 */
function readRegularFileRange(base: string, file: string, offset: number, byteLength: number, where: string): Uint8Array {
  let fd: number;
  try {
    fd = fs.openSync(file, OPEN_FLAGS);
  } catch (e) {
    fail('FM_EXTERNAL_DATA', `${where}: cannot open the file (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
  }
  try {
    const stat = fs.fstatSync(fd, { bigint: true });
    if (!stat.isFile()) fail('FM_EXTERNAL_DATA', `${where}: the location is ${describeNonRegular(stat)}, not a regular file`);
    if (!isStillAt(base, file, stat)) {
      fail('FM_EXTERNAL_DATA', `${where}: the file changed while it was being opened (a folder on its path was replaced); refusing to read it`);
    }
    const size = Number(stat.size);
    if (offset + byteLength > size) {
      fail('FM_EXTERNAL_DATA', `${where}: bytes ${offset}..${offset + byteLength} lie beyond the end of the ${size}-byte file`);
    }
    const bytes = readRange(fd, offset, byteLength);
    if (!bytes) fail('FM_EXTERNAL_DATA', `${where}: the file ended early (was it truncated while reading?)`);
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}

/** Whether the lstat walk from `base` to `file` meets folders only, then the file `opened` is. */
function isStillAt(base: string, file: string, opened: fs.BigIntStats): boolean {
  let at = base;
  const segments = path.relative(base, file).split(path.sep);
  for (const [i, segment] of segments.entries()) {
    at = path.join(at, segment);
    let stats: fs.BigIntStats;
    try {
      stats = fs.lstatSync(at, { bigint: true });
    } catch {
      return false;
    }
    if (i < segments.length - 1 ? !stats.isDirectory() : stats.dev !== opened.dev || stats.ino !== opened.ino) return false;
  }
  return true;
}

/**
 * A whole protobuf file (`what`: 'model file', 'tensor file'), refusing non-regular files and
 * files of 2 GiB or more before reading. Read failures are FM_IO; the size limit is
 * FM_ONNX_PARSE, being a property of the format.
 */
export function readProtobufFile(file: string, what: string): Uint8Array {
  let fd: number;
  try {
    // no O_NOFOLLOW: a model given by a symlink is the user's explicit choice
    fd = fs.openSync(file, fs.constants.O_RDONLY | (fs.constants.O_NONBLOCK ?? 0));
  } catch (e) {
    fail('FM_IO', `cannot open ${what} ${quoteName(file)} (${(e as NodeJS.ErrnoException).code ?? (e as Error).message})`, e);
  }
  try {
    const stat = fs.fstatSync(fd);
    if (!stat.isFile()) fail('FM_IO', `${what} ${quoteName(file)} is ${describeNonRegular(stat)}, not a regular file`);
    if (stat.size >= MAX_PROTOBUF_BYTES) {
      fail('FM_ONNX_PARSE', `${what} ${quoteName(file)} is ${stat.size} bytes; protobuf cannot hold 2 GiB or more, ` +
        'so weights this large must be stored as external data (onnx.save_model(..., save_as_external_data=True))');
    }
    const bytes = readRange(fd, 0, stat.size);
    if (!bytes) fail('FM_IO', `${what} ${quoteName(file)} ended early (was it truncated while reading?)`);
    return bytes;
  } finally {
    fs.closeSync(fd);
  }
}
