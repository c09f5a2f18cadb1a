/**
 * `npm run example:browser`: compiles the shipped mini-ResNet (examples/mini-resnet/model.onnx)
 * into a bundle that streams its weights under a GPU memory budget, then serves on 127.0.0.1:
 *
 *   /             the example app (examples/browser/: index.html, app.js, engine.js, worker.js, input.js)
 *   /bundle/      the bundle, with single-range HTTP Range requests (the runtime reads weight shards by range)
 *   /runtime.js   the package's runtime (generateRuntime(): the same bytes as every bundle's runtime.js),
 *                 so the app imports the runtime from the package rather than from a downloaded bundle
 *
 * `startExampleServer` is also what test/browser/example.test.ts starts, in-process, on port 0.
 */
import { createReadStream } from 'node:fs';
import { realpath, stat } from 'node:fs/promises';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, isAbsolute, join, relative, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { parseArgs } from 'node:util';
import { compileModel, type CompileReport } from '../../compiler/compile.js';
import { generateRuntime, packageRoot } from '../../compiler/bundle/runtime-gen.js';
import { parseSize } from '../../compiler/cli/compile-command.js';
import { FlashmemError } from '../../compiler/errors.js';

const root = packageRoot();
export const EXAMPLE_MODEL = join(root, 'examples', 'mini-resnet', 'model.onnx');
const PAGE_DIR = join(root, 'examples', 'browser');
const DEFAULT_BUNDLE_DIR = join(root, 'out', 'browser-example.bundle');
/**
 * The mini-ResNet has 112 KiB of weights, and preloading them needs 225 KiB of GPU memory with its
 * activations. Its smallest feasible budget is about 130 KiB (its 64x64 activations alone take
 * about 110 KiB), so no budget below the weights' total can be met; under 144 KiB the load plan
 * keeps only the two smallest weights resident and streams the other 12 into the GPU on every run.
 */
export const DEFAULT_BUDGET = 144 * 1024;
const DEFAULT_PORT = 8088;

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.json': 'application/json',
  '.wgsl': 'text/plain; charset=utf-8',
  '.ts': 'text/plain; charset=utf-8',
  '.png': 'image/png',
  '.bin': 'application/octet-stream',
};

export interface ServedRequest {
  method: string;
  /** the request's path (and query), as sent */
  url: string;
  /** the Range header, if any */
  range?: string;
  status: number;
}

export interface ExampleServerOptions {
  /** 0 picks a free port (default 8088) */
  port?: number;
  /** where the bundle is compiled to (default out/browser-example.bundle) */
  bundleDir?: string;
  /** GPU memory budget of the bundle, bytes (default DEFAULT_BUDGET) */
  memoryBudget?: number;
  /** sees every answered request (the CLI prints the Range requests; the test checks them) */
  onRequest?: (request: ServedRequest) => void;
}

export interface ExampleServer {
  /** the page's URL, http://127.0.0.1:<port>/ */
  url: string;
  bundleDir: string;
  memoryBudget: number;
  report: CompileReport;
  close(): Promise<void>;
}

/** Compiles the example bundle, then serves it with the page and the runtime. */
export async function startExampleServer(options: ExampleServerOptions = {}): Promise<ExampleServer> {
  const bundleDir = resolve(options.bundleDir ?? DEFAULT_BUNDLE_DIR);
  const memoryBudget = options.memoryBudget ?? DEFAULT_BUDGET;
  const report = await compileModel(EXAMPLE_MODEL, bundleDir, { strategy: 'stream', memoryBudget, modelName: 'mini-resnet' });
  const runtimeJs = Buffer.from(generateRuntime().js);
  const server = createServer((request, response) => {
    answer(request, response, { bundleDir, runtimeJs }).then(
      (status) => options.onRequest?.({ method: request.method ?? '', url: request.url ?? '', range: request.headers.range, status }),
      (error: unknown) => {
        console.error(`serving ${request.url}: ${error instanceof Error ? error.message : error}`);
        if (!response.headersSent) response.writeHead(500).end();
        else response.destroy();
      },
    );
  });
  const port = await listen(server, options.port ?? DEFAULT_PORT);
  return { url: `http://127.0.0.1:${port}/`, bundleDir, memoryBudget, report, close: () => closeServer(server) };
}

function listen(server: Server, port: number): Promise<number> {
  return new Promise((resolvePort, reject) => {
    server.once('error', reject);
    // 127.0.0.1 only: a secure context for WebGPU and crypto.subtle, and nothing reachable from other machines
    server.listen(port, '127.0.0.1', () => resolvePort((server.address() as AddressInfo).port));
  });
}

function closeServer(server: Server): Promise<void> {
  return new Promise((resolveClose) => {
    server.close(() => resolveClose());
    // browsers keep connections open; without this close() waits for them
    server.closeAllConnections();
  });
}

// ------------------------------------------------------------------------------------ requests
interface Roots {
  bundleDir: string;
  runtimeJs: Buffer;
}

/** Answers one request; resolves to the status sent. */
async function answer(request: IncomingMessage, response: ServerResponse, roots: Roots): Promise<number> {
  if (request.method !== 'GET' && request.method !== 'HEAD') return sendStatus(response, 405, 'only GET and HEAD');
  const path = new URL(request.url ?? '/', 'http://127.0.0.1').pathname;
  if (path === '/runtime.js') return sendBytes(request, response, roots.runtimeJs, CONTENT_TYPES['.js']!);
  const [folder, rest] = path.startsWith('/bundle/') ? [roots.bundleDir, path.slice('/bundle/'.length)] : [PAGE_DIR, path.slice(1) || 'index.html'];
  const found = await resolveInside(folder, rest);
  if (typeof found === 'number') return sendStatus(response, found, found === 403 ? 'forbidden' : 'not found');
  return sendFile(request, response, found);
}

/**
 * The regular file `urlPath` names inside `folder`, or the status to answer: 403 for paths that
 * try to leave the folder (`..` segments, also percent-encoded, backslashes, NUL, symbolic links
 * pointing outside), 404 for anything else that is not a file there.
 */
async function resolveInside(folder: string, urlPath: string): Promise<string | 403 | 404> {
  let decoded: string;
  try {
    decoded = decodeURIComponent(urlPath);
  } catch {
    return 404;
  }
  const segments = decoded.split('/');
  if (segments.some((segment) => segment === '..' || segment.includes('\\') || segment.includes('\0'))) return 403;
  let file: string;
  try {
    file = await realpath(join(folder, ...segments));
  } catch {
    return 404;
  }
  const inside = relative(await realpath(folder), file);
  if (inside.startsWith('..') || isAbsolute(inside)) return 403;
  const info = await stat(file);
  return info.isFile() ? file : 404;
}

async function sendFile(request: IncomingMessage, response: ServerResponse, file: string): Promise<number> {
  const { size } = await stat(file);
  const range = parseRange(request.headers.range, size);
  const type = CONTENT_TYPES[extname(file)] ?? 'application/octet-stream';
  if (range === 'unsatisfiable') return sendUnsatisfiable(response, size);
  const [start, end, status] = range ? [range.start, range.end, 206] : [0, size - 1, 200];
  response.writeHead(status, bodyHeaders(type, end - start + 1, range && `bytes ${start}-${end}/${size}`));
  if (request.method === 'HEAD' || size === 0) {
    response.end();
    return status;
  }
  await new Promise<void>((done, failed) => {
    createReadStream(file, { start, end }).on('error', failed).pipe(response).on('finish', done).on('error', failed);
  });
  return status;
}

function sendBytes(request: IncomingMessage, response: ServerResponse, bytes: Buffer, type: string): number {
  const range = parseRange(request.headers.range, bytes.length);
  if (range === 'unsatisfiable') return sendUnsatisfiable(response, bytes.length);
  const [start, end, status] = range ? [range.start, range.end, 206] : [0, bytes.length - 1, 200];
  response.writeHead(status, bodyHeaders(type, end - start + 1, range && `bytes ${start}-${end}/${bytes.length}`));
  response.end(request.method === 'HEAD' ? undefined : bytes.subarray(start, end + 1));
  return status;
}

function bodyHeaders(type: string, length: number, contentRange: string | undefined): Record<string, string | number> {
  return {
    'content-type': type,
    'content-length': length,
    'accept-ranges': 'bytes',
    ...(contentRange ? { 'content-range': contentRange } : {}),
    // no HTTP cache: every run of the page really fetches the streamed weights from this server
    'cache-control': 'no-store',
    'x-content-type-options': 'nosniff',
  };
}

function sendUnsatisfiable(response: ServerResponse, size: number): number {
  response.writeHead(416, { 'content-range': `bytes */${size}`, 'accept-ranges': 'bytes' }).end();
  return 416;
}

function sendStatus(response: ServerResponse, status: number, text: string): number {
  response.writeHead(status, { 'content-type': 'text/plain; charset=utf-8' }).end(text);
  return status;
}

/**
 * One range of `Range: bytes=a-b`, `bytes=a-` or `bytes=-n`. Several ranges, other units and
 * malformed headers get the whole file (RFC 9110 lets a server ignore Range); a range past the
 * end is 'unsatisfiable' (416).
 */
export function parseRange(header: string | undefined, size: number): { start: number; end: number } | 'unsatisfiable' | undefined {
  const match = /^bytes=(\d*)-(\d*)$/.exec(header?.trim() ?? '');
  if (!match || (match[1] === '' && match[2] === '')) return undefined;
  const [first, last] = [match[1] === '' ? undefined : Number(match[1]), match[2] === '' ? undefined : Number(match[2])];
  if (first === undefined) {
    const suffix = last!;
    return suffix === 0 || size === 0 ? 'unsatisfiable' : { start: Math.max(0, size - suffix), end: size - 1 };
  }
  if (last !== undefined && last < first) return undefined;
  if (first >= size) return 'unsatisfiable';
  return { start: first, end: Math.min(last ?? size - 1, size - 1) };
}

// ------------------------------------------------------------------------------------ command line
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

function describeCompile(server: ExampleServer): string {
  const { report } = server;
  const streaming = report.streaming!;
  return `compiled ${relative(root, EXAMPLE_MODEL)} -> ${relative(root, server.bundleDir)}: weights ${kib(report.weightBytes)}, ` +
    `${streaming.streamedWeights} of ${streaming.streamedWeights + streaming.preloadedWeights} weights streamed on every run ` +
    `under a budget of ${kib(server.memoryBudget)} (planned peak ${kib(report.plannedPeakBytes)})`;
}

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: { port: { type: 'string', default: String(DEFAULT_PORT) }, budget: { type: 'string', default: `${DEFAULT_BUDGET / 1024}KiB` } },
  });
  const port = Number(values.port);
  if (!Number.isInteger(port) || port < 0 || port > 65535) throw new FlashmemError('FM_BAD_ARGUMENT', `--port ${values.port} is not a port number`);
  const server = await startExampleServer({
    port,
    memoryBudget: parseSize(values.budget),
    // each Range request for a shard is the runtime streaming weights into the budget
    onRequest: (request) => {
      if (request.range) console.log(`${request.method} ${request.url} ${request.range} -> ${request.status}`);
    },
  });
  console.log(describeCompile(server));
  console.log(`browser example: ${server.url}  (worker variant: ${server.url}?mode=worker); Ctrl-C stops`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(resolve(process.argv[1])).href) {
  main().catch((error: unknown) => {
    const inUse = (error as { code?: string }).code === 'EADDRINUSE';
    console.error(inUse ? `port in use: pass another one with --port (0 picks a free port)` : error instanceof Error ? error.message : error);
    process.exitCode = error instanceof FlashmemError ? 2 : 1;
  });
}
