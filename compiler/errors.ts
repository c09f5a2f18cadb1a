/**
 * Every failure the compiler or runtime reports on purpose is a FlashmemError with a stable
 * code. Codes are part of the public contract (README lists them); messages may change.
 */
export const ERROR_CODES = {
  FM_ONNX_PARSE: 'the file is not a valid ONNX ModelProto (truncated, wrong magic, corrupt protobuf)',
  FM_ONNX_INVALID: 'the model is structurally invalid (missing graph, dangling or duplicate names, cycles)',
  FM_UNSUPPORTED_OP: 'an operator, domain, opset or attribute value flashmemc has no kernel for',
  FM_UNKNOWN_DIM: 'an input dimension is symbolic or unknown; fix it with --input-shape',
  FM_SHAPE: 'shapes are inconsistent or impossible (negative, overflowing, not broadcastable)',
  FM_DTYPE: 'a tensor element type is not supported in this position',
  FM_EXTERNAL_DATA: 'external tensor data is missing, escapes the model folder, or has the wrong length',
  FM_LIMIT: 'a tensor or kernel exceeds the target WebGPU limits',
  FM_BAD_ARGUMENT: 'a command-line or API argument is invalid',
  FM_BUNDLE_INVALID: 'a bundle file is missing, malformed, or fails schema or bounds validation',
  FM_BUNDLE_VERSION: 'the bundle format version is not supported by this runtime',
  FM_BUNDLE_HASH: 'a bundle file does not match its sha256 in the manifest (tampered or truncated)',
  FM_WEBGPU: 'no WebGPU adapter/device, or the device lacks a required limit or feature',
  FM_INPUT: 'run() inputs are missing, of the wrong dtype, or of the wrong size',
  FM_IO: 'reading or writing a file failed',
  FM_PROFILE: 'a device profile (--profile) is not JSON or does not match the device profile schema',
  FM_BUNDLE_FOREIGN: "a bundle's runtime.js is not the runtime this flashmemc generates for its format version (it is never executed)",
  FM_BUNDLE_SIGNATURE: 'a bundle is unsigned, or its signature does not verify against the trusted keys',
  FM_BUNDLE_BOUNDS: "a bundle's schedule allocates or dispatches more than it declares or than the caller allows",
  FM_TIMEOUT: 'a run, read or fetch took longer than its timeout (the device is destroyed)',
  FM_BUNDLE_SELF_CHECK: "the bundle a compile produced fails flashmemc's own runtime verifier (a compiler bug; nothing is written)",
  FM_OUTPUT: 'the output folder is not one flashmemc may replace (not a bundle it wrote), or another writer holds it; use --force',
} as const;

export type ErrorCode = keyof typeof ERROR_CODES;

export class FlashmemError extends Error {
  readonly code: ErrorCode;
  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'FlashmemError';
    this.code = code;
  }
}

export function fail(code: ErrorCode, message: string, cause?: unknown): never {
  throw new FlashmemError(code, message, cause === undefined ? undefined : { cause });
}

/** Rethrows a FlashmemError with `context` before its message (same code); anything else as is. */
export function rethrowIn(context: string, e: unknown): never {
  if (e instanceof FlashmemError) throw new FlashmemError(e.code, `${context}: ${e.message.slice(e.code.length + 2)}`, { cause: e });
  throw e;
}

/**
 * What the user can do about a failed file operation, by its errno code: FM_IO messages name the
 * path, the code and this (a full disk, a parent that is a file...), never only Node's text.
 */
export function ioAdvice(code: string | undefined): string {
  switch (code) {
    case 'ENOSPC': case 'EDQUOT': return 'the disk is full (or over quota): free some space or write somewhere else';
    case 'EACCES': case 'EPERM': return 'no permission to write there: choose a location you can write, or fix its permissions';
    case 'EROFS': return 'the file system is read-only: choose a writable location';
    case 'ENOTDIR': return 'a parent of the path is a file, not a folder: choose another path';
    case 'EISDIR': return 'the path is a folder: name a file instead';
    case 'EEXIST': return 'something is already there (a file where a folder is needed): choose another path or remove it';
    case 'ENOENT': return 'a folder on the path does not exist: create it or choose another path';
    case 'ENAMETOOLONG': return 'the path is too long: choose a shorter one';
    case 'EMFILE': case 'ENFILE': return 'too many files are open: close some programs and retry';
    case 'EIO': return 'the device reported an I/O error: check the disk';
    default: return 'check the path and the disk, then retry';
  }
}

/** FM_IO for a failed file operation: `what` names the operation and the path; the errno code and ioAdvice follow. */
export function ioFailed(what: string, error: unknown): never {
  if (error instanceof FlashmemError) throw error;
  const code = (error as NodeJS.ErrnoException | undefined)?.code;
  const detail = code ?? (error instanceof Error ? error.message : String(error));
  fail('FM_IO', `${what} failed (${detail}): ${ioAdvice(code)}`, error);
}

/** Quote a model-provided name for an error message: JSON escaping keeps control characters visible. */
export function quoteName(name: string): string {
  const shown = name.length > 200 ? `${name.slice(0, 200)}…` : name;
  return JSON.stringify(shown);
}
