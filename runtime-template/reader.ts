/**
 * Reading bundle files: node:fs for paths in Node, fetch for URLs, or LoadOptions.readFile; files
 * listed in the manifest are checked against their size and sha256 (and block hashes).
 */
import type { FileEntry } from '../schemas/manifest.js';
import type { ByteRange, ReadFileHook } from './api.js';
import { importNodeModule, IN_NODE, type NodeFs, type NodePath, type NodeUrl, sha256Hex } from './env.js';
import { describeValue, errorMessage, fail, FlashmemRuntimeError } from './errors.js';

export interface BundleReader {
  /** where the bundle is, for messages */
  readonly location: string;
  /** Reads at most maxBytes bytes of a file of the bundle; a shorter result means the file is shorter. */
  read(path: string, maxBytes: number): Promise<Uint8Array<ArrayBuffer>>;
  /** Reads `length` bytes from `offset` (fewer only when the file is shorter): a file range in Node, an HTTP Range request in browsers. */
  readRange(path: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>>;
}

export async function openBundleReader(dirOrUrl: string | URL, readFile?: ReadFileHook): Promise<BundleReader> {
  const location = typeof dirOrUrl === 'string' ? dirOrUrl : dirOrUrl.href;
  if (readFile !== undefined) {
    if (typeof readFile !== 'function') throw new TypeError('options.readFile must be a function');
    return hookReader(location, readFile);
  }
  if (/^https?:\/\//i.test(location)) return fetchReader(new URL(location));
  if (IN_NODE) {
    const { fileURLToPath } = await importNodeModule<NodeUrl>('node:url');
    return nodeFileReader(/^file:/i.test(location) ? fileURLToPath(location) : location);
  }
  return fetchReader(new URL(location, globalThis.location?.href));
}

async function nodeFileReader(root: string): Promise<BundleReader> {
  const fs = await importNodeModule<NodeFs>('node:fs/promises');
  const path = await importNodeModule<NodePath>('node:path');
  const readAt = async (relative: string, offset: number, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> => {
    const file = path.join(root, relative);
    let handle: Awaited<ReturnType<NodeFs['open']>>;
    try {
      handle = await fs.open(file, 'r');
    } catch (error) {
      throw fileReadError(relative, file, error);
    }
    try {
      const { size } = await handle.stat();
      const bytes = new Uint8Array(Math.max(0, Math.min(size - offset, maxBytes)));
      let filled = 0;
      while (filled < bytes.length) {
        const { bytesRead } = await handle.read(bytes, filled, bytes.length - filled, offset + filled);
        if (bytesRead === 0) break;
        filled += bytesRead;
      }
      return filled === bytes.length ? bytes : bytes.slice(0, filled);
    } catch (error) {
      throw fileReadError(relative, file, error);
    } finally {
      await handle.close();
    }
  };
  return {
    location: root,
    read: (relative, maxBytes) => readAt(relative, 0, maxBytes),
    readRange: readAt,
  };
}

function fileReadError(relative: string, file: string, error: unknown): FlashmemRuntimeError {
  const missing = (error as { code?: string }).code === 'ENOENT';
  return missing
    ? new FlashmemRuntimeError('FM_BUNDLE_INVALID', `bundle file ${relative} is missing (${file})`, { cause: error })
    : new FlashmemRuntimeError('FM_IO', `reading bundle file ${relative} (${file}) failed: ${errorMessage(error)}`, { cause: error });
}

/** Reads through LoadOptions.readFile; results are copied, so the caller cannot change bytes after they were verified. */
function hookReader(location: string, readFile: ReadFileHook): BundleReader {
  const readAt = async (relative: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> => {
    let result: unknown;
    try {
      result = await readFile(relative, { offset, length });
    } catch (error) {
      throw error instanceof FlashmemRuntimeError ? error : fileReadError(relative, `${location}, through options.readFile`, error);
    }
    if (!(result instanceof Uint8Array)) {
      fail('FM_IO', `reading bundle file ${relative} through options.readFile gave ${describeValue(result)}, not a Uint8Array`);
    }
    return new Uint8Array(result.subarray(0, Math.min(result.length, length)));
  };
  return { location, read: (relative, maxBytes) => readAt(relative, 0, maxBytes), readRange: readAt };
}

function fetchReader(location: URL): BundleReader {
  // relative file paths resolve against the bundle folder only when the URL ends with '/'
  const base = location.href.endsWith('/') ? location : new URL(`${location.href}/`);
  const get = async (relative: string, range?: ByteRange): Promise<{ response: Response; url: URL }> => {
    const url = new URL(relative, base);
    let response: Response;
    try {
      // a Range request; a server that ignores it answers 200 with the whole file, which still works
      response = await fetch(url, range ? { headers: { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } } : undefined);
    } catch (error) {
      fail('FM_IO', `fetching bundle file ${relative} (${url.href}) failed: ${errorMessage(error)}`, error);
    }
    if (response.status === 404) fail('FM_BUNDLE_INVALID', `bundle file ${relative} is missing (404 at ${url.href})`);
    return { response, url };
  };
  return {
    location: base.href,
    async read(relative, maxBytes) {
      const { response, url } = await get(relative);
      if (!response.ok) fail('FM_IO', `fetching bundle file ${relative} (${url.href}) failed: HTTP ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      return bytes.length > maxBytes ? bytes.slice(0, maxBytes) : bytes;
    },
    async readRange(relative, offset, length) {
      if (length === 0) return new Uint8Array(0);
      const { response, url } = await get(relative, { offset, length });
      // 416: the range starts at or past the end of the file
      if (response.status === 416) return new Uint8Array(0);
      if (!response.ok) fail('FM_IO', `fetching bytes ${offset}+${length} of bundle file ${relative} (${url.href}) failed: HTTP ${response.status}`);
      const bytes = new Uint8Array(await response.arrayBuffer());
      const start = response.status === 206 ? 0 : offset;
      return bytes.slice(start, start + length);
    },
  };
}

/** Reads a file listed in the manifest and checks its size and sha256. */
export async function readVerifiedFile(reader: BundleReader, entry: FileEntry): Promise<Uint8Array<ArrayBuffer>> {
  // one byte more than declared, to notice files that grew
  const bytes = await reader.read(entry.path, entry.size + 1);
  if (bytes.length !== entry.size) {
    fail('FM_BUNDLE_HASH', `${entry.path} has ${bytes.length > entry.size ? 'more than' : 'only'} ${Math.min(bytes.length, entry.size)} bytes, the manifest says ${entry.size} (truncated or replaced)`);
  }
  const actual = await sha256Hex(bytes);
  if (actual !== entry.sha256) fail('FM_BUNDLE_HASH', `${entry.path} has sha256 ${actual}, the manifest says ${entry.sha256} (tampered or corrupt)`);
  if (entry.blocks) {
    // the whole file is authentic; its block hashes must be too, or range reads would trust forged ones
    for (let block = 0; block < entry.blocks.sha256.length; block++) {
      await checkBlock(entry, block, bytes.subarray(block * entry.blocks.size, (block + 1) * entry.blocks.size));
    }
  }
  return bytes;
}

/** Checks one block of a weight shard against the manifest's block hashes. */
export async function checkBlock(entry: FileEntry, block: number, bytes: Uint8Array<ArrayBuffer>): Promise<void> {
  const blocks = entry.blocks!;
  const expectedLength = Math.min(blocks.size, entry.size - block * blocks.size);
  if (bytes.length !== expectedLength) {
    fail('FM_BUNDLE_HASH', `${entry.path} block ${block} has ${bytes.length < expectedLength ? 'only' : 'more than'} ${bytes.length} bytes, the manifest implies ${expectedLength} (truncated or replaced)`);
  }
  const actual = await sha256Hex(bytes);
  if (actual !== blocks.sha256[block]) {
    fail('FM_BUNDLE_HASH', `${entry.path} block ${block} (bytes ${block * blocks.size}+${bytes.length}) has sha256 ${actual}, the manifest says ${blocks.sha256[block]} (tampered or corrupt)`);
  }
}

export function parseJsonFile(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    fail('FM_BUNDLE_INVALID', `${file} is not valid UTF-8 JSON: ${errorMessage(error)}`, error);
  }
}
