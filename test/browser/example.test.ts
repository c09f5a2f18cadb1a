/**
 * The browser example (examples/browser): its server, started in-process, compiles the mini-ResNet
 * into a bundle streamed under a budget and serves the page, the bundle and the runtime; headless
 * Chromium (WebGPU on SwiftShader) opens the page and its worker variant. Checks what the page
 * shows: outputs against onnxruntime-node, GPU memory against the budget, weights read by HTTP
 * Range requests on every run, and the FM_* code of a failure. Rewrites the README's screenshot
 * (docs/screenshots/browser-example.png) with FLASHMEM_UPDATE_SCREENSHOTS=1. Skipped, with the reason printed, where no Chromium is
 * installed.
 */
import { chromiumOrSkip, launchWebGpuChromium } from '../harness/chromium.js';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request as httpRequest } from 'node:http';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type Browser, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileToContents } from '../../compiler/compile.js';
import { generateRuntime, packageRoot } from '../../compiler/bundle/runtime-gen.js';
import { DEFAULT_BUDGET, EXAMPLE_MODEL, startExampleServer, type ExampleServer, type ServedRequest } from '../../examples/browser/serve.js';
import { exampleImage } from '../../examples/browser/input.js';
import type { Manifest } from '../../schemas/manifest.js';
import type { Schedule } from '../../schemas/schedule.js';
import { runOrt } from '../harness/ort.js';

const hasChromium = chromiumOrSkip('the browser example test');

const SCREENSHOT = join(packageRoot(), 'docs', 'screenshots', 'browser-example.png');
const UPDATE_SCREENSHOT = process.env.FLASHMEM_UPDATE_SCREENSHOTS === '1';
const VIEWPORT = { width: 900, height: 600 };
const RELATIVE_TOLERANCE = 1e-4;
/** the page's default seed */
const SEED = 1;

/** What the page shows, read from its DOM (the data-* attributes next to the text it renders). */
interface Shown {
  state: string;
  mode: string;
  runs: number;
  error: string;
  errorCode?: string;
  outputs: number[];
  memory: { liveBytes: number; maxLiveBytes: number; peakBytes: number; budgetBytes: number; uploadedBytes: number; weightReads: number };
}

const READ_SHOWN = `(() => {
  const memory = document.getElementById('memory').dataset;
  return {
    state: document.body.dataset.state,
    mode: document.body.dataset.mode,
    runs: Number(document.body.dataset.runs ?? 0),
    error: document.getElementById('error').textContent,
    errorCode: document.getElementById('error').dataset.code,
    outputs: [...document.querySelectorAll('#outputs tr')].map((row) => Number(row.dataset.value)),
    memory: Object.fromEntries(['liveBytes', 'maxLiveBytes', 'peakBytes', 'budgetBytes', 'uploadedBytes', 'weightReads'].map((key) => [key, Number(memory[key])])),
  };
})()`;

describe.skipIf(!hasChromium)('browser example (examples/browser)', () => {
  let scratch: string;
  let server: ExampleServer;
  let browser: Browser;
  let manifest: Manifest;
  let reference: Float32Array;
  const served: ServedRequest[] = [];

  beforeAll(async () => {
    scratch = await mkdtemp(join(tmpdir(), 'flashmemc-browser-example-'));
    server = await startExampleServer({ port: 0, bundleDir: join(scratch, 'bundle'), onRequest: (request) => served.push(request) });
    manifest = JSON.parse(await readFile(join(server.bundleDir, 'manifest.json'), 'utf8')) as Manifest;
    const [input, output] = [manifest.models[0]!.inputs[0]!, manifest.models[0]!.outputs[0]!];
    const feeds = { [input.name]: { dtype: 'float32', shape: [...input.shape], data: exampleImage(input.shape, SEED) } };
    reference = (await runOrt(await readFile(EXAMPLE_MODEL), feeds))[output.name]!.data as Float32Array;
    browser = await launchWebGpuChromium();
  });

  afterAll(async () => {
    await browser?.close();
    await server?.close();
    if (scratch) await rm(scratch, { recursive: true, force: true });
  });

  /** Opens `path` in a fresh page and waits until it shows results (or an error). */
  async function open(path: string): Promise<{ page: Page; shown: Shown; log: string[] }> {
    const page = await browser.newPage({ viewport: VIEWPORT });
    const log: string[] = [];
    page.on('console', (message) => log.push(`${message.type()}: ${message.text()}`));
    page.on('pageerror', (error) => log.push(`pageerror: ${error.message}`));
    await page.goto(new URL(path, server.url).href);
    return { page, shown: await settled(page, 1), log };
  }

  /** Waits until the page finished its `runs`-th run or failed, then reads what it shows. */
  async function settled(page: Page, runs: number): Promise<Shown> {
    await page.waitForFunction(`document.body.dataset.state === 'error' || (document.body.dataset.state === 'done' && Number(document.body.dataset.runs) >= ${runs})`, undefined, { timeout: 60_000 });
    return (await page.evaluate(READ_SHOWN)) as Shown;
  }

  function expectReferenceOutputs(outputs: number[]): void {
    expect(outputs).toHaveLength(reference.length);
    reference.forEach((want, i) => {
      const got = outputs[i]!;
      expect(Math.abs(got - want), `output ${i}: ${got} vs onnxruntime ${want}`).toBeLessThanOrEqual(RELATIVE_TOLERANCE * Math.abs(want) + 1e-7);
    });
  }

  function expectWithinBudget(memory: Shown['memory']): void {
    expect(memory.budgetBytes).toBe(server.memoryBudget);
    expect(memory.liveBytes).toBeGreaterThan(0);
    expect(memory.maxLiveBytes).toBeLessThanOrEqual(memory.budgetBytes);
    expect(memory.peakBytes).toBeLessThanOrEqual(memory.budgetBytes);
    // streamed weights really went to the GPU during the run, and came from the server by range
    expect(memory.uploadedBytes).toBeGreaterThan(0);
    expect(memory.weightReads).toBeGreaterThan(0);
  }

  /** Range requests for weight shards the server answered with 206 since `from` */
  function weightRangeRequests(from: number): ServedRequest[] {
    return served.slice(from).filter((r) => r.url.startsWith('/bundle/weights/') && r.range !== undefined && r.status === 206);
  }

  function weightShard() {
    return manifest.files.find((file) => file.kind === 'weights')!;
  }

  /** paths of the page's own resource-timing entries (its fetches and scripts) */
  async function fetchedByPage(page: Page): Promise<string[]> {
    return (await page.evaluate(`performance.getEntriesByType('resource').map((entry) => new URL(entry.name).pathname)`)) as string[];
  }

  it('compiles a bundle that streams its weights under a budget smaller than preloading needs', async () => {
    const schedule = JSON.parse(await readFile(join(server.bundleDir, 'schedule.json'), 'utf8')) as Schedule;
    const model = schedule.models[0]!;
    expect(server.memoryBudget).toBe(DEFAULT_BUDGET);
    expect(model.strategy).toBe('stream');
    expect(model.loadPlan!.budgetBytes).toBe(server.memoryBudget);
    expect(model.loadPlan!.streamedWeights).toBeGreaterThan(0);
    expect(model.run.filter((step) => step.op === 'upload').length).toBeGreaterThan(0);
    expect(model.plannedPeakBytes).toBeLessThanOrEqual(server.memoryBudget);
    const preloaded = compileToContents(EXAMPLE_MODEL).contents.schedule.models[0]!;
    expect(preloaded.plannedPeakBytes).toBeGreaterThan(server.memoryBudget);
  });

  it("serves the package's runtime at /runtime.js: the bytes of the bundle's runtime.js", async () => {
    const [served, bundled] = await Promise.all([get('/runtime.js'), get('/bundle/runtime.js')]);
    expect(served.status).toBe(200);
    expect(served.headers['content-type']).toMatch(/^text\/javascript/);
    expect(served.body.toString()).toBe(generateRuntime().js);
    expect(served.body.equals(bundled.body)).toBe(true);
  });

  it('runs on the page: outputs match onnxruntime, memory stays under the budget, weights stream by Range requests', async () => {
    const from = served.length;
    const { page, shown, log } = await open('/');
    expect(shown.error, log.join('\n')).toBe('');
    expect(shown).toMatchObject({ state: 'done', mode: 'page', runs: 1 });
    expectReferenceOutputs(shown.outputs);
    expectWithinBudget(shown.memory);
    expect(weightRangeRequests(from).length).toBeGreaterThan(0);
    expect(await fetchedByPage(page)).toContain(`/bundle/${weightShard().path}`);

    // a second run reads the streamed weights from the server again ('storage' mode) and gives the same outputs
    const beforeRerun = served.length;
    await page.click('#run');
    const again = await settled(page, 2);
    expect(again).toMatchObject({ state: 'done', runs: 2 });
    expect(again.outputs).toEqual(shown.outputs);
    expectWithinBudget(again.memory);
    expect(weightRangeRequests(beforeRerun).length).toBeGreaterThan(0);

    // the committed screenshot is rewritten only on request (its timings differ on every run)
    const png = await page.screenshot(UPDATE_SCREENSHOT ? { path: SCREENSHOT } : {});
    expect(pngSize(png)).toEqual(VIEWPORT);
    await page.close();
  });

  it('runs in a dedicated Web Worker: the page only posts inputs and receives outputs and stats', async () => {
    const from = served.length;
    const { page, shown, log } = await open('/?mode=worker');
    expect(shown.error, log.join('\n')).toBe('');
    expect(shown).toMatchObject({ state: 'done', mode: 'worker', runs: 1 });
    expect(page.workers().map((worker) => new URL(worker.url()).pathname)).toEqual(['/worker.js']);
    expectReferenceOutputs(shown.outputs);
    expectWithinBudget(shown.memory);
    expect(weightRangeRequests(from).length).toBeGreaterThan(0);
    // the page itself never imported the runtime: only the worker did
    // the bundle's files were fetched by the worker: the page's own resource timeline has none of them
    expect((await fetchedByPage(page)).filter((path) => path.startsWith('/bundle/'))).toEqual([]);
    await page.close();
  });

  it('shows the FM_* code of a failure, on the page and from the worker', async () => {
    for (const mode of ['page', 'worker']) {
      // a folder of the bundle without manifest.json
      const { page, shown } = await open(`/?mode=${mode}&bundle=/bundle/weights/`);
      expect(shown).toMatchObject({ state: 'error', mode, errorCode: 'FM_BUNDLE_INVALID' });
      expect(shown.error).toMatch(/^FM_BUNDLE_INVALID: bundle file manifest\.json is missing \(404/);
      await page.close();
    }
  });

  it('answers single-range requests and refuses paths outside its roots', async () => {
    const shard = weightShard();
    const bytes = await readFile(join(server.bundleDir, shard.path));
    const part = await get(`/bundle/${shard.path}`, { range: 'bytes=10-19' });
    expect(part.status).toBe(206);
    expect(part.headers['content-range']).toBe(`bytes 10-19/${bytes.length}`);
    expect(part.body.equals(bytes.subarray(10, 20))).toBe(true);
    expect((await get(`/bundle/${shard.path}`, { range: 'bytes=-4' })).body.equals(bytes.subarray(bytes.length - 4))).toBe(true);
    expect((await get(`/bundle/${shard.path}`, { range: `bytes=${bytes.length}-` })).status).toBe(416);
    expect((await get('/index.html')).headers['content-type']).toBe('text/html; charset=utf-8');
    expect((await get('/bundle/manifest.json')).headers['content-type']).toBe('application/json');
    for (const path of ['/bundle/..%2f..%2fpackage.json', '/..%2Fpackage.json', '/bundle/%2e%2e/manifest.json', '/../package.json', '/bundle/', '/nothing.js']) {
      const answer = await get(path);
      expect([403, 404], `${path} -> ${answer.status}`).toContain(answer.status);
    }
    expect((await get('/bundle/..%2f..%2fpackage.json')).status).toBe(403);
  });

  /** A raw HTTP GET (not fetch: it would normalise `..` away before the server sees it). */
  function get(path: string, headers: Record<string, string> = {}): Promise<{ status: number; headers: Record<string, string | string[] | undefined>; body: Buffer }> {
    const { hostname, port } = new URL(server.url);
    return new Promise((resolve, reject) => {
      httpRequest({ hostname, port, path, headers }, (response) => {
        const chunks: Buffer[] = [];
        response.on('data', (chunk: Buffer) => chunks.push(chunk));
        response.on('end', () => resolve({ status: response.statusCode!, headers: response.headers, body: Buffer.concat(chunks) }));
      }).on('error', reject).end();
    });
  }
});

/** width and height from a PNG's IHDR chunk */
function pngSize(png: Buffer): { width: number; height: number } {
  expect(png.subarray(1, 4).toString('latin1')).toBe('PNG');
  return { width: png.readUInt32BE(16), height: png.readUInt32BE(20) };
}
