/**
 * FlashmemRuntimeError and the helpers that build its messages.
 */

/** The codes are those of the compiler (compiler/errors.ts). */
export type RuntimeErrorCode =
  | 'FM_BUNDLE_INVALID' | 'FM_BUNDLE_VERSION' | 'FM_BUNDLE_HASH' | 'FM_BUNDLE_SIGNATURE' | 'FM_BUNDLE_BOUNDS'
  | 'FM_TIMEOUT' | 'FM_WEBGPU' | 'FM_INPUT' | 'FM_IO';

export class FlashmemRuntimeError extends Error {
  readonly code: RuntimeErrorCode;
  constructor(code: RuntimeErrorCode, message: string, options?: { cause?: unknown }) {
    super(`${code}: ${message}`, options);
    this.name = 'FlashmemRuntimeError';
    this.code = code;
  }
}

export function fail(code: RuntimeErrorCode, message: string, cause?: unknown): never {
  throw new FlashmemRuntimeError(code, message, cause === undefined ? undefined : { cause });
}

/** Quotes a name or path the bundle chose, cut to 200 characters: a bundle may make them of any length. */
export function quote(name: string): string {
  return JSON.stringify(name.length > 200 ? `${name.slice(0, 200)}…` : name);
}

/** Any JSON value the bundle chose, written as JSON and cut to 200 characters. */
export function shortJson(value: unknown): string {
  const text = JSON.stringify(value) ?? String(value);
  return text.length > 200 ? `${text.slice(0, 200)}…` : text;
}

/** Failures of WebGPU calls themselves (exceptions, rejected promises) are device failures. */
export function asRuntimeError(error: unknown, what: string): FlashmemRuntimeError {
  if (error instanceof FlashmemRuntimeError) return error;
  return new FlashmemRuntimeError('FM_WEBGPU', `${what} failed: ${errorMessage(error)}`, { cause: error });
}

export function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}

export function describeValue(value: unknown): string {
  if (value === null || value === undefined) return String(value);
  return typeof value === 'object' ? (value.constructor?.name ?? 'an object') : typeof value;
}
