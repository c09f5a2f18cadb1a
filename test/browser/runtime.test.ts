/**
 * The generated runtime in a browser: bundles served from a Node http server on 127.0.0.1 (a
 * secure context), loaded and run by their own runtime.js in headless Chromium (WebGPU on
 * SwiftShader), with outputs compared to the CPU references. Skipped, with the reason printed,
 * where no Chromium is installed.
 */
import { chromiumOrSkip, launchWebGpuChromium } from '../harness/chromium.js';
import { readFile } from 'node:fs/promises';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { extname, join, normalize } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assembleBundle, counterModel, counterReference, flipByte, mlpModel, mlpReference, MLP, removeTempDirs, seededFloats,
  streamedMlpModel, tamperFile, writeFixtureBundle,
} from '../harness/bundle-fixtures.js';
import { generateSigningKey, parsePrivateKey, signBundleDir } from '../../compiler/bundle/sign.js';

const SIGNER = generateSigningKey();

const hasChromium = chromiumOrSkip('the browser runtime tests');

const CONTENT_TYPES: Record<string, string> = {
  '.html': 'text/html', '.js': 'text/javascript', '.json': 'application/json', '.ts': 'text/plain',
  '.wgsl': 'text/plain', '.bin': 'application/octet-stream',
};

/** HTTP Range requests the server answered with 206, as 'path bytes=a-b' */
const rangeRequests: string[] = [];

/** Serves each bundle folder under /<name>/ (with single-range Range support) and an empty page at /. */
function serveBundles(bundles: Map<string, string>): Promise<Server> {
  const server = createServer(async (request, response) => {
    const [, name, ...rest] = (request.url ?? '/').split('?')[0]!.split('/');
    const root = bundles.get(name ?? '');
    const relative = normalize(rest.join('/'));
    if (!root || relative.startsWith('..')) {
      const page = request.url === '/';
      response.writeHead(page ? 200 : 404, { 'content-type': 'text/html' }).end(page ? '<!doctype html><title>flashmemc</title>' : 'not found');
      return;
    }
    try {
      const body = await readFile(join(root, relative));
      const type = CONTENT_TYPES[extname(relative)] ?? 'application/octet-stream';
      const range = /^bytes=(\d+)-(\d+)$/.exec(request.headers.range ?? '');
      if (range) {
        const [from, to] = [Number(range[1]), Math.min(Number(range[2]), body.length - 1)];
        rangeRequests.push(`${request.url} ${request.headers.range}`);
        if (from >= body.length) response.writeHead(416).end();
        else response.writeHead(206, { 'content-type': type, 'content-range': `bytes ${from}-${to}/${body.length}` }).end(body.subarray(from, to + 1));
        return;
      }
      response.writeHead(200, { 'content-type': type }).end(body);
    } catch {
      response.writeHead(404).end('not found');
    }
  });
  return new Promise((resolve) => server.listen(0, '127.0.0.1', () => resolve(server)));
}

/** Runs in the page: load the bundle with its own runtime.js, run once, report outputs or the error. */
const PAGE_RUN = `async ({ bundle, inputs, int64, options }) => {
  const { loadBundle } = await import(bundle + 'runtime.js');
  try {
    const session = await loadBundle(bundle, options);
    const feed = {};
    for (const [name, values] of Object.entries(inputs)) {
      feed[name] = int64 ? BigInt64Array.from(values, (v) => BigInt(v)) : new Float32Array(values);
    }
    const outputs = await session.run(feed);
    const stats = session.stats();
    session.dispose();
    const plain = {};
    for (const [name, values] of Object.entries(outputs)) {
      plain[name] = { type: values.constructor.name, values: Array.from(values, (v) => (typeof v === 'bigint' ? String(v) : v)) };
    }
    return { outputs: plain, stats };
  } catch (error) {
    return { error: { name: error.name, code: error.code, message: error.message } };
  }
}`;

interface PageResult {
  outputs?: Record<string, { type: string; values: (number | string)[] }>;
  stats?: Record<string, number>;
  error?: { name: string; code: string; message: string };
}

describe.skipIf(!hasChromium)('runtime in headless Chromium', () => {
  const bundles = new Map<string, string>();
  let server: Server;
  let browser: Browser;
  let page: Page;
  let origin: string;

  beforeAll(async () => {
    bundles.set('mlp', await writeFixtureBundle(assembleBundle([mlpModel()])));
    bundles.set('streamed', await writeFixtureBundle(assembleBundle([streamedMlpModel()])));
    bundles.set('counter', await writeFixtureBundle(assembleBundle([counterModel()])));
    const tampered = await writeFixtureBundle(assembleBundle([mlpModel()]));
    await tamperFile(tampered, 'weights/0.bin', (bytes) => flipByte(bytes, 3));
    bundles.set('tampered', tampered);
    const signed = await writeFixtureBundle(assembleBundle([mlpModel()]));
    await signBundleDir(signed, parsePrivateKey(SIGNER.privatePem, 'test key'));
    bundles.set('signed', signed);
    server = await serveBundles(bundles);
    origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
    browser = await launchWebGpuChromium();
    page = await browser.newPage();
    await page.goto(`${origin}/`);
  });

  afterAll(async () => {
    await browser?.close();
    await new Promise((resolve) => (server ? server.close(resolve) : resolve(undefined)));
    await removeTempDirs();
  });

  function runInPage(bundle: string, inputs: Record<string, number[]>, int64 = false, options: object = {}): Promise<PageResult> {
    return page.evaluate(`(${PAGE_RUN})(${JSON.stringify({ bundle: `${origin}/${bundle}/`, inputs, int64, options })})`) as Promise<PageResult>;
  }

  function expectMlpOutput(result: PageResult, x: number[]): void {
    expect(result.error).toBeUndefined();
    expect(result.outputs!.y!.type).toBe('Float32Array');
    const y = result.outputs!.y!.values as number[];
    mlpReference(x).forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
  }

  it('loads the bundle over http and matches the CPU reference', async () => {
    const x = Array.from(seededFloats(MLP.M * MLP.K, 41));
    const result = await runInPage('mlp', { x });
    expectMlpOutput(result, x);
    expect(result.stats).toMatchObject({ runs: 1, dispatches: 2, uploads: 2 });
  });

  it('keeps streamed uploads ordered with the dispatches', async () => {
    const x = Array.from(seededFloats(MLP.M * MLP.K, 42));
    expectMlpOutput(await runInPage('streamed', { x }), x);
  });

  it("streams weights from the server by HTTP Range requests in 'storage' mode", async () => {
    rangeRequests.length = 0;
    const x = Array.from(seededFloats(MLP.M * MLP.K, 43));
    expectMlpOutput(await runInPage('streamed', { x }, false, { streamedWeights: 'storage' }), x);
    const weightRanges = rangeRequests.filter((r) => r.startsWith('/streamed/weights/'));
    expect(weightRanges.length).toBeGreaterThan(0);
    for (const r of weightRanges) expect(r).toMatch(/ bytes=\d+-\d+$/);
  });

  it('returns int64 and bool outputs as BigInt64Array and Uint8Array', async () => {
    const a = [5n, -1n, 0n, 12n, -7n];
    const result = await runInPage('counter', { a: a.map(Number) }, true);
    expect(result.error).toBeUndefined();
    const expected = counterReference(a);
    expect(result.outputs!.next).toEqual({ type: 'BigInt64Array', values: expected.next.map(String) });
    expect(result.outputs!.positive).toEqual({ type: 'Uint8Array', values: expected.positive });
  });

  it('checks Ed25519 signatures with the browser\'s WebCrypto (trustedKeys)', async () => {
    const x = Array.from(seededFloats(MLP.M * MLP.K, 44));
    expectMlpOutput(await runInPage('signed', { x }, false, { trustedKeys: [SIGNER.publicKeyBase64] }), x);
    const stranger = await runInPage('signed', { x }, false, { trustedKeys: [generateSigningKey().publicKeyBase64] });
    expect(stranger.error).toMatchObject({ code: 'FM_BUNDLE_SIGNATURE' });
    const unsigned = await runInPage('mlp', { x }, false, { trustedKeys: [SIGNER.publicKeyBase64] });
    expect(unsigned.error).toMatchObject({ code: 'FM_BUNDLE_SIGNATURE', message: expect.stringContaining('is not signed') });
  });

  it('rejects a tampered shard fetched over http', async () => {
    const result = await runInPage('tampered', { x: [0, 0, 0, 0, 0, 0] });
    expect(result.error).toMatchObject({ name: 'FlashmemRuntimeError', code: 'FM_BUNDLE_HASH' });
    expect(result.error!.message).toContain('weights/0.bin');
  });

  it('reports a missing bundle as FM_BUNDLE_INVALID (HTTP 404)', async () => {
    // a folder without manifest.json, loaded by the runtime.js of a real bundle
    bundles.set('empty', join(bundles.get('mlp')!, 'weights'));
    const result = (await page.evaluate(`(async () => {
      const { loadBundle } = await import('${origin}/mlp/runtime.js');
      return loadBundle('${origin}/empty/').then(() => ({}), (error) => ({ error: { name: error.name, code: error.code, message: error.message } }));
    })()`)) as PageResult;
    expect(result.error).toMatchObject({ code: 'FM_BUNDLE_INVALID' });
    expect(result.error!.message).toContain('"manifest.json" is missing (404');
  });
});
