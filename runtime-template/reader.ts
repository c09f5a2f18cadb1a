/**
 * Reading bundle files: node:fs for paths in Node (node-reader.ts), fetch for URLs (http-reader.ts),
 * or LoadOptions.readFile; files listed in the manifest are checked against their size and sha256
 * (and block hashes). Paths in messages go through quote(): the bundle chooses them, at any length.
 */
import type { FileEntry } from '../schemas/manifest.js';
import type { ReadFileHook } from './api.js';
import { importNodeModule, IN_NODE, type NodeUrl, sha256Hex } from './env.js';
import { describeValue, errorMessage, fail, FlashmemRuntimeError, quote } from './errors.js';
import { DEFAULT_FETCH_TIMEOUT_MS, fetchReader } from './http-reader.js';
import { nodeFolderReader } from './node-reader.js';

export interface BundleReader {
  /** where the bundle is, for messages */
  readonly location: string;
  /**
   * Reads at most maxBytes bytes of a file of the bundle; a shorter result means the file is shorter.
   * With `declaredSize` (the manifest's size), a reader that can tell the file's size refuses one of another size before reading.
   */
  read(path: string, maxBytes: number, declaredSize?: number): Promise<Uint8Array<ArrayBuffer>>;
  /** Reads `length` bytes from `offset` (fewer only when the file is shorter): a file range in Node, an HTTP Range request in browsers. */
  readRange(path: string, offset: number, length: number, declaredSize?: number): Promise<Uint8Array<ArrayBuffer>>;
}

/** How bundle files are read: LoadOptions / VerifyOptions readFile and fetchTimeoutMs. */
export interface ReaderOptions {
  readFile?: ReadFileHook;
  fetchTimeoutMs?: number;
}

export async function openBundleReader(dirOrUrl: string | URL, options: ReaderOptions = {}): Promise<BundleReader> {
  const location = typeof dirOrUrl === 'string' ? dirOrUrl : dirOrUrl.href;
  const { readFile } = options;
  if (readFile !== undefined) {
    if (typeof readFile !== 'function') throw new TypeError('options.readFile must be a function');
    return hookReader(location, readFile);
  }
  const timeoutMs = fetchTimeout(options.fetchTimeoutMs);
  if (/^https?:\/\//i.test(location)) return fetchReader(new URL(location), timeoutMs);
  if (IN_NODE) {
    const { fileURLToPath } = await importNodeModule<NodeUrl>('node:url');
    return nodeFolderReader(/^file:/i.test(location) ? fileURLToPath(location) : location);
  }
  return fetchReader(new URL(location, globalThis.location?.href), timeoutMs);
}

function fetchTimeout(value: number | undefined): number {
  if (value === undefined) return DEFAULT_FETCH_TIMEOUT_MS;
  // setTimeout clamps larger delays to 1 ms, which would turn a generous deadline into none
  if (typeof value !== 'number' || !(value > 0) || value > 2 ** 31 - 1) throw new TypeError('options.fetchTimeoutMs must be a positive number of milliseconds (at most 2^31 - 1)');
  return value;
}

function hookReadError(relative: string, location: string, error: unknown): FlashmemRuntimeError {
  const where = `bundle file ${quote(relative)} (${quote(location)}, through options.readFile)`;
  return (error as { code?: string }).code === 'ENOENT'
    ? new FlashmemRuntimeError('FM_BUNDLE_INVALID', `${where} is missing`, { cause: error })
    : new FlashmemRuntimeError('FM_IO', `reading ${where} failed: ${quote(errorMessage(error))}`, { cause: error });
}

/** Reads through LoadOptions.readFile; results are copied, so the caller cannot change bytes after they were verified. */
function hookReader(location: string, readFile: ReadFileHook): BundleReader {
  const readAt = async (relative: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> => {
    let result: unknown;
    try {
      result = await readFile(relative, { offset, length });
    } catch (error) {
      throw error instanceof FlashmemRuntimeError ? error : hookReadError(relative, location, error);
    }
    if (!(result instanceof Uint8Array)) {
      fail('FM_IO', `reading bundle file ${quote(relative)} through options.readFile gave ${describeValue(result)}, not a Uint8Array`);
    }
    return new Uint8Array(result.subarray(0, Math.min(result.length, length)));
  };
  return { location, read: (relative, maxBytes) => readAt(relative, 0, maxBytes), readRange: readAt };
}

/** Reads a file listed in the manifest and checks its size and sha256. */
export async function readVerifiedFile(reader: BundleReader, entry: FileEntry): Promise<Uint8Array<ArrayBuffer>> {
  // one byte more than declared, to notice files that grew
  const bytes = await reader.read(entry.path, entry.size + 1, entry.size);
  if (bytes.length !== entry.size) {
    fail('FM_BUNDLE_HASH', `${quote(entry.path)} has ${bytes.length > entry.size ? 'more than' : 'only'} ${Math.min(bytes.length, entry.size)} bytes, the manifest says ${entry.size} (truncated or replaced)`);
  }
  const actual = await sha256Hex(bytes);
  // the digest of what was read is never told: through a hard link (node-reader.ts) the bytes may be a file's elsewhere
  if (actual !== entry.sha256) fail('FM_BUNDLE_HASH', `${quote(entry.path)} does not have the sha256 the manifest says, ${entry.sha256} (tampered or corrupt)`);
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
    fail('FM_BUNDLE_HASH', `${quote(entry.path)} block ${block} has ${bytes.length < expectedLength ? 'only' : 'more than'} ${bytes.length} bytes, the manifest implies ${expectedLength} (truncated or replaced)`);
  }
  const actual = await sha256Hex(bytes);
  if (actual !== blocks.sha256[block]) {
    fail('FM_BUNDLE_HASH', `${quote(entry.path)} block ${block} (bytes ${block * blocks.size}+${bytes.length}) does not have the sha256 the manifest says, ${blocks.sha256[block]} (tampered or corrupt)`);
  }
}

export function parseJsonFile(bytes: Uint8Array, file: string): unknown {
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    fail('FM_BUNDLE_INVALID', `${quote(file)} is not valid UTF-8 JSON: ${errorMessage(error)}`, error);
  }
}
