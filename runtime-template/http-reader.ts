/**
 * Bundle files over HTTP(S) with fetch. The server may be hostile, so every file read has
 *  - a deadline for the whole exchange, headers and body (a server that drip-feeds bytes or never
 *    answers gives FM_TIMEOUT instead of a hang);
 *  - a byte cap applied while the body streams in (an endless body is cut at the cap, never
 *    buffered whole first);
 *  - no cross-origin redirects: a redirect to another origin is refused before anything is asked
 *    of that origin (Node: redirects are followed by hand, same origin only); in browsers, which
 *    hide redirect targets, the final response's origin is checked before its body is read. So no
 *    message ever describes a resource of another origin.
 */
import type { ByteRange } from './api.js';
import { IN_NODE } from './env.js';
import { errorMessage, fail, FlashmemRuntimeError, quote } from './errors.js';

/** default LoadOptions.fetchTimeoutMs: the deadline of one bundle file's HTTP exchange */
export const DEFAULT_FETCH_TIMEOUT_MS = 30_000;
/** same-origin redirects followed per request */
const MAX_SAME_ORIGIN_REDIRECTS = 5;

interface Fetched {
  response: Response;
  url: URL;
}

export function fetchReader(location: URL, timeoutMs: number) {
  // relative file paths resolve against the bundle folder only when the URL ends with '/'
  const base = location.href.endsWith('/') ? location : new URL(`${location.href}/`);
  /** `relative` fetched (with `range`), its body read up to `cap(status)` bytes, all within the deadline */
  const fetchFile = (relative: string, range: ByteRange | undefined, what: string, cap: (status: number) => number) =>
    withDeadline(`${what} of bundle file ${quote(relative)}`, timeoutMs, async (signal) => {
      const fetched = await fetchSameOrigin(new URL(relative, base), base, relative, range, signal);
      const { response, url } = fetched;
      if (response.status === 404) fail('FM_BUNDLE_INVALID', `bundle file ${quote(relative)} is missing (404 at ${quote(url.href)})`);
      // 416: the range starts at or past the end of the file
      if (range && response.status === 416) return { status: 416, bytes: new Uint8Array(0) };
      if (!response.ok) fail('FM_IO', `fetching ${what} of bundle file ${quote(relative)} (${quote(url.href)}) failed: HTTP ${response.status}`);
      return { status: response.status, bytes: await readBodyUpTo(response, cap(response.status)) };
    });
  return {
    location: base.href,
    async read(relative: string, maxBytes: number): Promise<Uint8Array<ArrayBuffer>> {
      return (await fetchFile(relative, undefined, 'the content', () => maxBytes)).bytes;
    },
    async readRange(relative: string, offset: number, length: number): Promise<Uint8Array<ArrayBuffer>> {
      if (length === 0) return new Uint8Array(0);
      // a server that ignores Range answers 200 with the whole file: read only as far as the range ends
      const { status, bytes } = await fetchFile(relative, { offset, length }, `bytes ${offset}+${length}`, (code) => (code === 206 ? length : offset + length));
      const start = status === 206 ? 0 : offset;
      return bytes.slice(start, start + length);
    },
  };
}

/**
 * Runs `exchange` with an AbortSignal that fires after `timeoutMs`; the signal also ends the
 * download when the exchange returns early (a capped body) or fails.
 */
async function withDeadline<T>(what: string, timeoutMs: number, exchange: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  let timedOut = false;
  const timer = setTimeout(() => {
    timedOut = true;
    controller.abort();
  }, timeoutMs);
  try {
    return await exchange(controller.signal);
  } catch (error) {
    if (timedOut) fail('FM_TIMEOUT', `fetching ${what} took longer than ${timeoutMs} ms (LoadOptions.fetchTimeoutMs)`, error);
    if (error instanceof FlashmemRuntimeError) throw error;
    fail('FM_IO', `fetching ${what} failed: ${quote(errorMessage(error))}`, error);
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

/** Fetches `url`, following same-origin redirects only (see the module comment). */
async function fetchSameOrigin(url: URL, base: URL, relative: string, range: ByteRange | undefined, signal: AbortSignal): Promise<Fetched> {
  const headers = range ? { Range: `bytes=${range.offset}-${range.offset + range.length - 1}` } : undefined;
  for (let redirects = 0; ; redirects++) {
    const response = await fetch(url, { headers, signal, redirect: IN_NODE ? 'manual' : 'follow' });
    // browsers: redirects were followed; the response's own URL says where it came from
    const answered = response.url ? new URL(response.url) : url;
    if (answered.origin !== base.origin) refuseCrossOrigin(relative, answered, base);
    const target = redirectTarget(response, url);
    if (!target) return { response, url: answered };
    await response.body?.cancel().catch(() => {});
    if (target.origin !== base.origin) refuseCrossOrigin(relative, target, base);
    if (redirects === MAX_SAME_ORIGIN_REDIRECTS) fail('FM_IO', `bundle file ${quote(relative)} redirects more than ${MAX_SAME_ORIGIN_REDIRECTS} times`);
    url = target;
  }
}

function redirectTarget(response: Response, url: URL): URL | undefined {
  const location = response.status >= 300 && response.status < 400 ? response.headers.get('location') : null;
  if (location === null) return undefined;
  try {
    return new URL(location, url);
  } catch {
    fail('FM_IO', `the server redirects ${quote(url.href)} to an invalid URL`);
  }
}

function refuseCrossOrigin(relative: string, target: URL, base: URL): never {
  fail('FM_BUNDLE_INVALID', `bundle file ${quote(relative)} redirects to another origin (${quote(target.origin)}); bundle files are read from ${quote(base.origin)} only`);
}

/** At most `cap` bytes of the body, read as they arrive; the rest of the body is never downloaded. */
async function readBodyUpTo(response: Response, cap: number): Promise<Uint8Array<ArrayBuffer>> {
  const body = response.body;
  if (!body) return new Uint8Array(0);
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    while (total < cap) {
      const { done, value } = await reader.read();
      if (done) break;
      const kept = value.subarray(0, cap - total);
      chunks.push(kept);
      total += kept.length;
    }
  } finally {
    reader.cancel().catch(() => {});
  }
  const bytes = new Uint8Array(total);
  let at = 0;
  for (const chunk of chunks) {
    bytes.set(chunk, at);
    at += chunk.length;
  }
  return bytes;
}
