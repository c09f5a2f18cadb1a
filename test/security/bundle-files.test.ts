/**
 * A hostile bundle: whoever made it controls every file and name in it and recomputes every sha256
 * of its manifest. Its files are read only when they are regular files inside the bundle folder
 * (runtime-template/node-reader.ts, compiler/bundle/safe-read.ts): symlinks (out of the bundle, to
 * /dev/zero, or even inside it), FIFOs, devices and folders are refused with FM_BUNDLE_INVALID
 * naming the bundle-relative path, never hang, and never tell the size or hash of anything
 * outside. Over HTTP (runtime-template/http-reader.ts) an endless body is cut at the cap as it
 * streams, a drip-feeding server runs into the deadline (FM_TIMEOUT), and a redirect to another
 * origin is refused without asking that origin anything. Hard links are allowed (package managers
 * install files as hard links): the name inside the bundle is what is read, with every check, and
 * no message tells the digest of what was read. Leftovers: requiredLimits keys that name
 * Object.prototype members, names 100,000 characters long, and zero-size tensors.
 * No GPU: storage-mode re-reads and running zero-size models are in bundle-files.gpu.test.ts.
 */
import { execFileSync } from 'node:child_process';
import { copyFileSync, linkSync, mkdirSync, readdirSync, readFileSync, rmSync, statSync, symlinkSync, writeFileSync } from 'node:fs';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readBundleFileSync } from '../../compiler/bundle/safe-read.js';
import { compileModel } from '../../compiler/compile.js';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { cli } from '../harness/cli.js';
import {
  assembleBundle, editJsonAndRehash, editManifest, importRuntime, mlpModel, readJson, rejectionOf, removeTempDirs, sha256Hex,
  tempDir, writeFixtureBundle, type RuntimeModule,
} from '../harness/bundle-fixtures.js';

const SHARD = 'weights/0.bin';
/** generous for a refusal that must come at once; a hang would sit here until the test times out */
const NO_HANG_MS = 10_000;

let runtime: RuntimeModule;
let outside: string;
/** a file outside of an odd size: no message may tell it */
let LARGER_SECRET: string;
const LARGER_SECRET_BYTES = 4321;
/** a file outside every bundle, of the shard's size: an old reader hashed it and printed its sha256 */
let secret: { path: string; sha256: string; size: number };

beforeAll(async () => {
  const dir = await mlpBundle();
  runtime = await importRuntime(dir);
  outside = await tempDir();
  const size = readFileSync(join(dir, SHARD)).length;
  const bytes = Buffer.alloc(size, 'S');
  secret = { path: join(outside, 'secret.bin'), sha256: sha256Hex(bytes), size };
  writeFileSync(secret.path, bytes);
  LARGER_SECRET = join(outside, 'larger-secret.bin');
  writeFileSync(LARGER_SECRET, Buffer.alloc(LARGER_SECRET_BYTES, 'L'));
});
afterAll(removeTempDirs);

async function mlpBundle(): Promise<string> {
  return writeFixtureBundle(assembleBundle([mlpModel()]));
}

/** Rejects if `promise` has not settled within NO_HANG_MS: the refusals below must come at once. */
function settlesSoon<T>(promise: Promise<T>): Promise<T> {
  let timer: NodeJS.Timeout;
  const hang = new Promise<never>((_, reject) => { timer = setTimeout(() => reject(new Error(`hung for ${NO_HANG_MS} ms`)), NO_HANG_MS); });
  return Promise.race([promise, hang]).finally(() => clearTimeout(timer));
}

function mkfifo(path: string): void {
  execFileSync('mkfifo', [path]);
}

/** A character device (/dev/zero's numbers) inside the bundle; false where mknod is not allowed. */
function mknodZero(path: string): boolean {
  try {
    execFileSync('mknod', [path, 'c', '1', '5'], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

function expectNothingOfTheSecret(message: string): void {
  expect(message).not.toContain(secret.sha256);
  expect(message).not.toContain(sha256Hex(readFileSync(LARGER_SECRET)));
  expect(message).not.toContain(String(LARGER_SECRET_BYTES));
}

interface Attack {
  name: string;
  /** changes the bundle; returns the path the refusal must name */
  apply(dir: string): string;
  fragment: RegExp;
  /** false where the compiler's own verify.ts reads the file first (the manifest) */
  viaCli?: boolean;
}

const ATTACKS: Attack[] = [
  { name: 'a shard symlinked to a file outside the bundle', fragment: /symlink/, apply: (dir) => swapFor(dir, SHARD, (path) => symlinkSync(secret.path, path)) },
  { name: 'a shard symlinked to a larger file outside the bundle', fragment: /symlink/, apply: (dir) => swapFor(dir, SHARD, (path) => symlinkSync(LARGER_SECRET, path)) },
  { name: 'a shard symlinked to /dev/zero', fragment: /symlink/, apply: (dir) => swapFor(dir, SHARD, (path) => symlinkSync('/dev/zero', path)) },
  { name: 'a shard that is a FIFO', fragment: /a FIFO, not a regular file/, apply: (dir) => swapFor(dir, SHARD, mkfifo) },
  { name: 'a shard that is a folder', fragment: /a folder, not a regular file/, apply: (dir) => swapFor(dir, SHARD, (path) => mkdirSync(path)) },
  {
    name: 'the weights folder symlinked to a folder outside holding the same shard', fragment: /"weights", which is a symlink/,
    apply: (dir) => {
      const copy = join(outside, `weights-${Math.random().toString(36).slice(2)}`);
      mkdirSync(copy);
      copyFileSync(join(dir, SHARD), join(copy, '0.bin'));
      rmSync(join(dir, 'weights'), { recursive: true });
      symlinkSync(copy, join(dir, 'weights'));
      return SHARD;
    },
  },
  {
    name: 'a shard symlinked to an identical file inside the bundle (all symlinks are refused)', fragment: /symlink/,
    apply: (dir) => {
      copyFileSync(join(dir, SHARD), join(dir, 'weights', 'same.bin'));
      return swapFor(dir, SHARD, (path) => symlinkSync('same.bin', path));
    },
  },
  {
    name: 'manifest.json symlinked to a manifest outside', fragment: /symlink/, viaCli: false,
    apply: (dir) => {
      const copy = join(outside, `manifest-${Math.random().toString(36).slice(2)}.json`);
      copyFileSync(join(dir, 'manifest.json'), copy);
      return swapFor(dir, 'manifest.json', (path) => symlinkSync(copy, path));
    },
  },
];

/** Replaces a bundle file by what `make` creates at its path. */
function swapFor(dir: string, relative: string, make: (path: string) => void): string {
  rmSync(join(dir, relative));
  make(join(dir, relative));
  return relative;
}

describe('bundle files: only regular files inside the bundle folder', () => {
  for (const attack of ATTACKS) {
    it(`${attack.name}: runtime verifyBundle refuses it with FM_BUNDLE_INVALID`, async () => {
      const dir = await mlpBundle();
      const path = attack.apply(dir);
      const error = await rejectionOf(settlesSoon(runtime.verifyBundle(dir)));
      expect(error.code, error.message).toBe('FM_BUNDLE_INVALID');
      expect(error.message).toContain(`"${path}"`);
      expect(error.message).toMatch(attack.fragment);
      expectNothingOfTheSecret(error.message);
    });
    if (attack.viaCli === false) continue;
    it(`${attack.name}: flashmemc verify refuses it`, async () => {
      const dir = await mlpBundle();
      const path = attack.apply(dir);
      const r = await settlesSoon(cli('verify', dir));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('FM_BUNDLE_INVALID');
      expect(r.stderr).toContain(`"${path}"`);
      expectNothingOfTheSecret(r.stderr);
    });
  }

  it('a device file as a shard is refused before it is opened', async (context) => {
    const dir = await mlpBundle();
    rmSync(join(dir, SHARD));
    if (!mknodZero(join(dir, SHARD))) context.skip('mknod of a device file is not allowed here (needs root)');
    const error = await rejectionOf(settlesSoon(runtime.verifyBundle(dir)));
    expect(error.code, error.message).toBe('FM_BUNDLE_INVALID');
    expect(error.message).toContain(`"${SHARD}" is a device, not a regular file`);
  });

  it('a shard of another size than declared is refused before it is read (FM_BUNDLE_HASH)', async () => {
    const dir = await mlpBundle();
    writeFileSync(join(dir, SHARD), Buffer.concat([readFileSync(join(dir, SHARD)), Buffer.alloc(1 << 20)]));
    const error = await rejectionOf(runtime.verifyBundle(dir));
    expect(error.code, error.message).toBe('FM_BUNDLE_HASH');
    expect(error.message).toContain(`"${SHARD}" has more than 64 bytes, the manifest says 64`);
  });

  it('the bundle folder itself may be a symlink (the caller chose it)', async () => {
    const dir = await mlpBundle();
    const link = join(outside, `link-${Math.random().toString(36).slice(2)}`);
    symlinkSync(dir, link);
    await expect(runtime.verifyBundle(link)).resolves.toMatchObject({ models: [{ name: 'mlp' }] });
  });
});

describe('bundle files: the compiler side (inspect, run) reads the manifest and schedule the same way', () => {
  const cases: [string, string, (path: string) => void][] = [
    ['manifest.json symlinked outside', 'manifest.json', (path) => { copyFileSync(path, join(outside, 'm.json')); rmSync(path); symlinkSync(join(outside, 'm.json'), path); }],
    ['manifest.json as a FIFO', 'manifest.json', (path) => { rmSync(path); mkfifo(path); }],
    ['schedule.json symlinked outside', 'schedule.json', (path) => { copyFileSync(path, join(outside, 's.json')); rmSync(path); symlinkSync(join(outside, 's.json'), path); }],
    ['schedule.json as a FIFO', 'schedule.json', (path) => { rmSync(path); mkfifo(path); }],
  ];
  for (const [name, file, attack] of cases) {
    it(`inspect: ${name} is FM_BUNDLE_INVALID, no hang`, async () => {
      const dir = await mlpBundle();
      attack(join(dir, file));
      const r = await settlesSoon(cli('inspect', dir));
      expect(r.code, r.stderr).toBe(2);
      expect(r.stderr).toContain('FM_BUNDLE_INVALID');
      expect(r.stderr).toContain(`"${file}"`);
    });
  }

  it('run: a manifest symlinked outside is refused before runtime.js is imported or a device created', async () => {
    const dir = await mlpBundle();
    const copy = join(outside, 'run-manifest.json');
    copyFileSync(join(dir, 'manifest.json'), copy);
    rmSync(join(dir, 'manifest.json'));
    symlinkSync(copy, join(dir, 'manifest.json'));
    const r = await settlesSoon(cli('run', dir, '--random-inputs'));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('FM_BUNDLE_INVALID');
    expect(r.stderr).toContain('"manifest.json" is a symlink');
  });
});

// ------------------------------------------------------------------------------- hard links

/** `cp -al`: every file of `from` hard-linked under its name into `to` (how pnpm's store installs files). */
function hardLinkTree(from: string, to: string): void {
  mkdirSync(to);
  for (const entry of readdirSync(from, { withFileTypes: true })) {
    if (entry.isDirectory()) hardLinkTree(join(from, entry.name), join(to, entry.name));
    else linkSync(join(from, entry.name), join(to, entry.name));
  }
}

describe('hard links: allowed (package managers install files as hard links), read by their name inside the bundle', () => {
  it('a bundle installed as hard links (cp -al, pnpm\'s store) verifies: runtime, flashmemc verify and inspect, the compiler-side reader', async () => {
    const store = await mlpBundle();
    const installed = join(await tempDir(), 'installed');
    hardLinkTree(store, installed);
    for (const file of ['manifest.json', 'schedule.json', 'runtime.js', SHARD]) expect(statSync(join(installed, file)).nlink, file).toBe(2);
    await expect(runtime.verifyBundle(installed)).resolves.toMatchObject({ models: [{ name: 'mlp' }] });
    const verify = await cli('verify', installed);
    expect(verify.code, verify.stderr).toBe(0);
    const inspect = await cli('inspect', installed);
    expect(inspect.code, inspect.stderr).toBe(0);
    expect(readBundleFileSync(installed, 'schedule.json', { maxBytes: 1 << 20 })).toEqual(readFileSync(join(store, 'schedule.json')));
  });

  it('a shard hard-linked to a file outside is checked like any file: FM_BUNDLE_HASH naming the bundle path, never the digest or size of what was read', async () => {
    const dir = await mlpBundle();
    // of the shard's size: the hash of what was read was in the message (one block: the file's sha256)
    swapFor(dir, SHARD, (path) => linkSync(secret.path, path));
    expect(statSync(join(dir, SHARD)).nlink).toBeGreaterThan(1);
    const error = await rejectionOf(runtime.verifyBundle(dir));
    expect(error.code, error.message).toBe('FM_BUNDLE_HASH');
    expect(error.message).toContain(`"${SHARD}" block 0`);
    expect(error.message).toContain('does not have the sha256 the manifest says');
    expectNothingOfTheSecret(error.message);
    const r = await cli('verify', dir);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('FM_BUNDLE_HASH');
    expectNothingOfTheSecret(r.stderr);
    // of another size: refused before a byte is read, telling the declared size only
    swapFor(dir, SHARD, (path) => linkSync(LARGER_SECRET, path));
    const larger = await rejectionOf(runtime.verifyBundle(dir));
    expect(larger.code, larger.message).toBe('FM_BUNDLE_HASH');
    expect(larger.message).toContain(`"${SHARD}" has more than 64 bytes, the manifest says 64`);
    expectNothingOfTheSecret(larger.message);
  });

  it('a schedule.json hard-linked to a file outside: the compiler side tells neither its digest', async () => {
    const dir = await mlpBundle();
    const size = statSync(join(dir, 'schedule.json')).size;
    const other = join(outside, `same-size-${Math.random().toString(36).slice(2)}.json`);
    const bytes = Buffer.alloc(size, ' ');
    writeFileSync(other, bytes);
    swapFor(dir, 'schedule.json', (path) => linkSync(other, path));
    const r = await cli('verify', dir);
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('FM_BUNDLE_HASH');
    expect(r.stderr).not.toContain(sha256Hex(bytes));
  });

  it('the safe-read checks still apply to a name with several links: a hard-linked FIFO is refused, no hang', async () => {
    const dir = await mlpBundle();
    const fifo = join(outside, `fifo-${Math.random().toString(36).slice(2)}`);
    mkfifo(fifo);
    swapFor(dir, SHARD, (path) => linkSync(fifo, path));
    expect(statSync(join(dir, SHARD)).nlink).toBe(2);
    const error = await rejectionOf(settlesSoon(runtime.verifyBundle(dir)));
    expect(error.code, error.message).toBe('FM_BUNDLE_INVALID');
    expect(error.message).toContain(`"${SHARD}" is a FIFO, not a regular file`);
    const r = await settlesSoon(cli('verify', dir));
    expect(r.code, r.stderr).toBe(2);
    expect(r.stderr).toContain('FM_BUNDLE_INVALID');
  });
});

// ------------------------------------------------------------------------------------- HTTP

interface TestServer {
  origin: string;
  /** requests received, by path */
  requests: string[];
  /** bytes written into response bodies */
  sent: { bytes: number };
  close(): Promise<void>;
}

async function startServer(handle: (request: IncomingMessage, response: ServerResponse, sent: { bytes: number }) => void): Promise<TestServer> {
  const requests: string[] = [];
  const sent = { bytes: 0 };
  const server: Server = createServer((request, response) => {
    requests.push(request.url ?? '');
    handle(request, response, sent);
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as { port: number };
  return {
    origin: `http://127.0.0.1:${port}`, requests, sent,
    close: () => new Promise<void>((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

/** Serves the files of `dir` under /bundle/ (no Range support: the runtime copes with 200 answers). */
function serveFolder(dir: string, request: IncomingMessage, response: ServerResponse): void {
  try {
    const body = readFileSync(join(dir, decodeURIComponent((request.url ?? '').replace(/^\/bundle\//, ''))));
    response.writeHead(200, { 'Content-Length': body.length }).end(body);
  } catch {
    response.writeHead(404).end();
  }
}

describe('bundle files over HTTP', () => {
  let dir: string;
  const servers: TestServer[] = [];
  beforeAll(async () => { dir = await mlpBundle(); });
  afterAll(async () => { await Promise.all(servers.map((server) => server.close())); });
  const server = async (handle: Parameters<typeof startServer>[0]) => {
    const started = await startServer(handle);
    servers.push(started);
    return started;
  };

  it('a well-behaved server: the bundle verifies', async () => {
    const good = await server((request, response) => serveFolder(dir, request, response));
    await expect(runtime.verifyBundle(`${good.origin}/bundle/`)).resolves.toMatchObject({ models: [{ name: 'mlp' }] });
  });

  it('an endless manifest is cut at the 16 MiB cap while it streams', async () => {
    const chunk = Buffer.alloc(1 << 16, 0x20);
    const endless = await server((_, response, sent) => {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      const pump = () => {
        let more = true;
        while (!response.destroyed && more) {
          more = response.write(chunk);
          sent.bytes += chunk.length;
        }
        if (!response.destroyed) response.once('drain', pump);
      };
      response.on('close', () => response.removeAllListeners('drain'));
      pump();
    });
    const error = await rejectionOf(settlesSoon(runtime.verifyBundle(`${endless.origin}/bundle/`)));
    expect(error.code, error.message).toBe('FM_BUNDLE_INVALID');
    expect(error.message).toContain('larger than 16777216 bytes');
    // the download stopped at the cap (plus what was in flight), not at the end of memory
    await new Promise((resolve) => setTimeout(resolve, 200));
    expect(endless.sent.bytes).toBeLessThan(64 << 20);
  });

  it('a manifest drip-fed a byte at a time runs into the deadline (FM_TIMEOUT)', async () => {
    const drip = await server((_, response) => {
      response.writeHead(200, { 'Content-Type': 'application/json' });
      const timer = setInterval(() => response.write(' '), 50);
      response.on('close', () => clearInterval(timer));
    });
    const started = Date.now();
    const error = await rejectionOf(settlesSoon(runtime.verifyBundle(`${drip.origin}/bundle/`, { fetchTimeoutMs: 800 })));
    expect(error.code, error.message).toBe('FM_TIMEOUT');
    expect(error.message).toContain('"manifest.json"');
    expect(Date.now() - started).toBeLessThan(5000);
  });

  it('a server that never answers runs into the deadline (FM_TIMEOUT)', async () => {
    const silent = await server(() => {});
    const error = await rejectionOf(settlesSoon(runtime.verifyBundle(`${silent.origin}/bundle/`, { fetchTimeoutMs: 500 })));
    expect(error.code, error.message).toBe('FM_TIMEOUT');
  });

  it('fetchTimeoutMs must be a positive number', async () => {
    const error = await rejectionOf(runtime.verifyBundle('http://127.0.0.1:9/bundle/', { fetchTimeoutMs: -1 }));
    expect(error.name).toBe('TypeError');
  });

  it('a redirect to another origin is refused, and the other origin is never asked', async () => {
    const other = await server((_, response) => response.writeHead(200).end(readFileSync(secret.path)));
    for (const redirected of [SHARD, 'manifest.json']) {
      const redirecting = await server((request, response) => {
        if (request.url === `/bundle/${redirected}`) response.writeHead(302, { Location: `${other.origin}/secret.bin` }).end();
        else serveFolder(dir, request, response);
      });
      const error = await rejectionOf(settlesSoon(runtime.verifyBundle(`${redirecting.origin}/bundle/`)));
      expect(error.code, error.message).toBe('FM_BUNDLE_INVALID');
      expect(error.message).toContain(`"${redirected}" redirects to another origin`);
      expectNothingOfTheSecret(error.message);
    }
    expect(other.requests).toEqual([]);
  });

  it('a redirect within the origin is followed', async () => {
    const moved = await server((request, response) => {
      if (request.url === `/bundle/${SHARD}`) response.writeHead(302, { Location: `/elsewhere/${SHARD}` }).end();
      else if (request.url === `/elsewhere/${SHARD}`) response.writeHead(200).end(readFileSync(join(dir, SHARD)));
      else serveFolder(dir, request, response);
    });
    await expect(runtime.verifyBundle(`${moved.origin}/bundle/`)).resolves.toMatchObject({ models: [{ name: 'mlp' }] });
    expect(moved.requests).toContain(`/elsewhere/${SHARD}`);
  });
});

// --------------------------------------------------------------------------------- leftovers

/** manifest.json with `"<key>": 1` added to requiredLimits, written as text ("__proto__" cannot be set as a key through an object). */
function addRequiredLimit(dir: string, key: string): void {
  const path = join(dir, 'manifest.json');
  const text = readFileSync(path, 'utf8');
  writeFileSync(path, text.replace('"requiredLimits": {', `"requiredLimits": {\n    ${JSON.stringify(key)}: 1,`));
}

describe('leftovers: requiredLimits keys that name Object.prototype members', () => {
  for (const key of ['toString', '__proto__', 'constructor']) {
    it(`"${key}": verify, run, verifyBundle and loadBundle refuse it with FM_BUNDLE_INVALID`, async () => {
      const dir = await mlpBundle();
      addRequiredLimit(dir, key);
      expect(readFileSync(join(dir, 'manifest.json'), 'utf8')).toContain(`"${key}": 1`);
      for (const command of [['verify', dir], ['run', dir, '--random-inputs']]) {
        const r = await cli(...command);
        expect(r.code, `${command[0]}: ${r.stderr}`).toBe(2);
        expect(r.stderr, command[0]).toContain('FM_BUNDLE_INVALID');
      }
      expect((await rejectionOf(runtime.verifyBundle(dir))).code).toBe('FM_BUNDLE_INVALID');
      // refused while validating, before any device is asked for (none exists in this test process)
      expect((await rejectionOf(runtime.loadBundle(dir))).code).toBe('FM_BUNDLE_INVALID');
    });
  }
});

describe('leftovers: names 100,000 characters long give short messages', () => {
  const long = 'a'.repeat(100_000);

  it('a shard path', async () => {
    const dir = await mlpBundle();
    const path = `weights/${long}`;
    await editJsonAndRehash(dir, 'schedule.json', (schedule) => { schedule.shards[0].path = path; });
    await editManifest(dir, (manifest) => { manifest.files.find((file) => file.path === SHARD)!.path = path; });
    const r = await cli('verify', dir);
    expect(r.code, r.stderr.slice(0, 500)).toBe(2);
    expect(r.stderr.length).toBeLessThan(2000);
    const error = await rejectionOf(runtime.verifyBundle(dir));
    expect(error.message.length).toBeLessThan(2000);
    expect(error.message).toContain('aaaa…');
  });

  it('a model name, in a bounds error', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (schedule) => {
      schedule.models[0].model = long;
      schedule.models[0].run[1].bindings[0].offset = 1 << 20;
    });
    await editManifest(dir, (manifest) => { (manifest.models as { name: string }[])[0]!.name = long; });
    const r = await cli('verify', dir);
    expect(r.code, r.stderr.slice(0, 500)).toBe(2);
    expect(r.stderr).toContain('FM_BUNDLE_INVALID');
    expect(r.stderr.length).toBeLessThan(2000);
  });

  it('a schema violation that quotes the value', async () => {
    const dir = await mlpBundle();
    await editManifest(dir, (manifest) => { manifest.files[0]!.sha256 = long; });
    const error = await rejectionOf(runtime.verifyBundle(dir));
    expect(error.code).toBe('FM_BUNDLE_INVALID');
    expect(error.message.length).toBeLessThan(2000);
  });
});

describe('leftovers: zero-size tensors', () => {
  it('a kernel that would bind an empty tensor is refused at compile time with FM_SHAPE', async () => {
    const tmp = await tempDir();
    const model = join(tmp, 'reduce-empty.onnx');
    writeFileSync(model, buildModel({
      opset: 13, inputs: [{ name: 'x', dtype: 'float32', shape: [0, 4] }], outputs: [{ name: 'y', dtype: 'float32' }],
      nodes: [{ opType: 'ReduceSum', inputs: ['x'], outputs: ['y'], attrs: { keepdims: 1 } }],
    }));
    const error = await rejectionOf(compileModel(model, join(tmp, 'bundle')));
    expect(error.code, error.message).toBe('FM_SHAPE');
    expect(error.message).toContain('zero-size tensor');
    expect(await readJson(tmp, 'bundle/manifest.json').catch(() => undefined)).toBeUndefined();
  });
});
