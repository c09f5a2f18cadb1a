/**
 * flashmemc inspect --html: the report of a streamed bundle (examples/mini-resnet under 180 KiB:
 * carrier kernels and direct uploads), opened in headless Chromium from file://, shows what the
 * schedule holds (models, signatures, kernel counts, WGSL on demand, the memory chart against the
 * budget, one load-plan row per weight upload, a timeline in `flashmemc run --timeline`'s format);
 * a bundle whose every name is an injection attempt renders them as text and runs nothing. Bad
 * timelines and unwritable outputs fail with their FM_* codes. No GPU: the timelines here are
 * written from the schedule the way the runtime records a run; inspect-html.gpu.test.ts feeds a
 * real one. The Chromium part is skipped, with the reason printed, where no Chromium is installed.
 */
import { createHash } from 'node:crypto';
import { cpSync, existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../harness/cli.js';
import { REPO_ROOT, tempDir } from '../harness/paths.js';
import type { DispatchStep, ModelSchedule, Schedule, Step } from '../../schemas/schedule.js';
import type { TimelineEvent } from '../../runtime-template/api.js';
import { memoryOverTime } from '../../compiler/cli/memory-chart.js';
import { streamedLoads } from '../../compiler/cli/report/streamed-loads.js';
import { bundleReport, weightFormat } from '../../compiler/cli/report/summary.js';
import { CHROMIUM, HAS_CHROMIUM, launchChromium, openReport, tableText } from './report-page.js';

if (!HAS_CHROMIUM) console.log(`skipping the inspect --html rendering tests: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

const MINI_RESNET = join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx');

/** Names that would run script or add elements if the report pasted them into its markup. */
const INJECTIONS = [
  '<img src=x onerror=alert(1)>',
  '</script><script>alert(2)</script>',
  '"><svg onload=alert(3)>',
  "'><iframe src=javascript:alert(4)></iframe>",
  '</code></pre></details></td></tr></table><b id="injected">bold</b>',
  'line\u2028separator\u2029&amp;',
];

const readSchedule = (bundle: string) => JSON.parse(readFileSync(join(bundle, 'schedule.json'), 'utf8')) as Schedule;

function labelOf(step: Step): string | undefined {
  if (step.op === 'dispatch') return step.label;
  if (step.op === 'upload' || step.op === 'copy') return step.weight;
  return undefined;
}

/** A `flashmemc run --timeline` file for the model's schedule: one event per step as the runtime records them (runtime-template/replay.ts), a read before each load upload, GPU submissions. */
function timelineOf(model: ModelSchedule): { run: TimelineEvent[]; load: TimelineEvent[] } {
  let clock = 0;
  const event = (kind: TimelineEvent['kind'], step: number, label?: string, bytes?: number): TimelineEvent => {
    const startMs = clock;
    clock += 0.05 + (bytes ?? 0) / 1e6;
    return { kind, step, ...(label === undefined ? {} : { label }), ...(bytes === undefined ? {} : { bytes }), startMs, endMs: clock };
  };
  const bytesOf = (step: Step) => (step.op === 'upload' ? step.dst.size : step.op === 'writeInput' ? step.dst.size : step.op === 'readOutput' ? step.src.size : undefined);
  const load = model.init.flatMap((step, i) => [event('read', i, labelOf(step), bytesOf(step)), event('upload', i, labelOf(step), bytesOf(step))]);
  clock = 0;
  const run = model.run.map((step, i) => event(step.op, i, labelOf(step), bytesOf(step)));
  run.push({ kind: 'gpu', step: -1, startMs: 0.2, endMs: clock + 0.5 });
  return { run, load };
}

function writeJson(path: string, value: unknown): string {
  writeFileSync(path, JSON.stringify(value, null, 1));
  return path;
}

/** A copy of the bundle in a folder with a hostile name, every name and every shader rewritten to carry an injection. */
function hostileCopy(bundle: string, into: string): string {
  const dir = join(into, INJECTIONS[0]!);
  cpSync(bundle, dir, { recursive: true });
  const name = (i: number) => `${INJECTIONS[i % INJECTIONS.length]} #${i}`;
  const schedule = readSchedule(dir);
  const model = schedule.models[0]!;
  model.model = name(0);
  let n = 1;
  const weights = new Map<string, string>();
  const weightName = (w: string) => weights.get(w) ?? weights.set(w, name(n++)).get(w)!;
  for (const step of [...model.init, ...model.run]) {
    if (step.op === 'dispatch') Object.assign(step, { label: name(n++), node: name(n++) });
    if (step.op === 'upload' || step.op === 'copy') step.weight = weightName(step.weight);
  }
  model.loadPlan!.profile = { name: name(n++), device: name(n++) };
  writeJson(join(dir, 'schedule.json'), schedule);
  for (const shader of schedule.shaders) writeFileSync(join(dir, shader), `${readFileSync(join(dir, shader), 'utf8')}\n// ${INJECTIONS.join(' ')}\n`);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  manifest.models[0].name = name(0);
  for (const t of [...manifest.models[0].inputs, ...manifest.models[0].outputs]) t.name = name(n++);
  // as an attacker would: the edited files' sizes and hashes recomputed
  for (const entry of manifest.files as { path: string; size: number; sha256: string }[]) {
    if (entry.path !== 'schedule.json' && !entry.path.startsWith('shaders/')) continue;
    const bytes = readFileSync(join(dir, entry.path));
    entry.size = bytes.length;
    entry.sha256 = createHash('sha256').update(bytes).digest('hex');
  }
  writeJson(join(dir, 'manifest.json'), manifest);
  return dir;
}

describe('flashmemc inspect --html', () => {
  const tmp = tempDir('inspect-html');
  const bundle = join(tmp.dir, 'bundle');
  let schedule: Schedule;
  let model: ModelSchedule;

  beforeAll(async () => {
    const compiled = await cli('compile', MINI_RESNET, '--out', bundle, '--memory-budget', '180KiB');
    expect(compiled.code, compiled.stderr).toBe(0);
    schedule = readSchedule(bundle);
    model = schedule.models[0]!;
  });
  afterAll(() => tmp.cleanup());

  it('derives the load plan from the schedule: every run upload, by the path and bytes the compiler counted', () => {
    const loads = streamedLoads(model);
    expect(loads.map((l) => l.step)).toEqual(model.run.flatMap((s, i) => (s.op === 'upload' ? [i] : [])));
    const plan = model.loadPlan!;
    const bytesBy = (path: string) => loads.filter((l) => l.path === path).reduce((s, l) => s + l.bytes, 0);
    expect(bytesBy('carrier')).toBe(plan.carriedBytes);
    expect(bytesBy('direct')).toBe(plan.directBytes);
    expect(bytesBy('copy')).toBe(plan.copiedBytes);
    expect(plan.carriedBytes).toBeGreaterThan(0);
    expect(plan.directBytes).toBeGreaterThan(0);
    const dispatches = model.run.filter((s) => s.op === 'dispatch');
    for (const load of loads) {
      expect(load.firstUse, load.weight).toBeDefined();
      if (load.path === 'carrier') {
        expect(dispatches[load.loadKernel!]!.label).toMatch(/\+carry$/);
        expect(load.firstUse!).toBeGreaterThan(load.loadKernel!);
      } else {
        expect(load.firstUse!).toBeGreaterThanOrEqual(load.loadKernel!);
      }
    }
  });

  it('splits the arena\'s live bytes into streamed weights and activations', () => {
    const points = memoryOverTime(model);
    expect(points).toHaveLength(model.liveArenaBytes!.length);
    points.forEach((p, k) => {
      expect(p.streamed + p.activations, `kernel ${k}`).toBe(model.liveArenaBytes![k]);
      expect(p.activations).toBeGreaterThanOrEqual(0);
      expect(p.staging).toBe(model.loadPlan!.ringBytes);
      expect(p.resident + p.staging + p.streamed + p.activations).toBeLessThanOrEqual(model.loadPlan!.budgetBytes);
    });
    expect(Math.max(...points.map((p) => p.streamed))).toBeGreaterThan(0);
  });

  it('groups weights by format, layout (buffer or 2.5D texture) and residency', () => {
    expect(weightFormat('conv1::const0:conv_packed_weights')).toBe('conv_packed_weights');
    expect(weightFormat('fc::const2:weights_panels_cols32')).toBe('weights_panels');
    expect(weightFormat('fc.bias')).toBe('as in the model');
    const textured: ModelSchedule = {
      model: 'm', strategy: 'preload', buffers: [{ role: 'weights', size: 256 }, { role: 'activations', size: 512 }],
      textures: [{ format: 'rgba32float', width: 2, height: 4, layers: 1 }],
      init: [
        { op: 'upload', shard: 0, shardOffset: 0, dst: { texture: 0, layer: 0, y: 0, rows: 4, size: 128 }, weight: 'conv::texture0:conv_weight_texels' },
        { op: 'upload', shard: 0, shardOffset: 128, dst: { buffer: 0, offset: 0, size: 16 }, weight: 'conv.bias' },
      ],
      run: [{ op: 'dispatch', shader: 0, bindings: [{ buffer: 1, offset: 0, size: 64 }, { texture: 0 }, { buffer: 0, offset: 0, size: 16 }], workgroups: [1, 1, 1], label: 'conv_tex', node: 'conv' }],
      liveArenaBytes: [512], plannedPeakBytes: 896,
    };
    const report = bundleReport({
      bundle: 'b', shaders: ['// wgsl'],
      schedule: { formatVersion: 1, shaders: ['shaders/a.wgsl'], shards: [{ path: 'weights/0.bin', size: 144 }], models: [textured] },
      manifest: { format: 'flashmemc-bundle', formatVersion: 1, generator: { name: 'flashmemc', version: '0' }, models: [{ name: 'm', inputs: [], outputs: [], weightBytes: 144 }], requiredLimits: {}, requiredFeatures: [], files: [] },
    });
    expect(report.plans[0]!.weightGroups).toEqual([
      { format: 'conv_weight_texels', layout: 'texture', residency: 'resident', tensors: 1, bytes: 128 },
      { format: 'as in the model', layout: 'buffer', residency: 'resident', tensors: 1, bytes: 16 },
    ]);
    // texture bytes are resident memory (16 bytes per rgba32float texel)
    expect(report.plans[0]!.memory[0]!.resident).toBe(256 + 2 * 4 * 16);
  });

  it('writes one self-contained file, atomically; FM_IO when it cannot; --timeline needs --html', async () => {
    const out = join(tmp.dir, 'out');
    const report = join(tmp.dir, 'report.html');
    writeFileSync(report, 'old');
    const r = await cli('inspect', bundle, '--html', report);
    expect(r.code, r.stderr).toBe(0);
    const text = readFileSync(report, 'utf8');
    expect(text).toMatch(/^<!doctype html>/);
    expect(text).not.toMatch(/<script|<link|<iframe|<img|\ssrc=|url\(|@import/i);
    for (const [, href] of text.matchAll(/href="([^"]*)"/g)) expect(href).toMatch(/^#/);
    expect(text).toContain('Content-Security-Policy');
    // written by rename from a temporary sibling: nothing else is left in the folder
    expect(readdirSync(tmp.dir).filter((f) => f.includes('report'))).toEqual(['report.html']);
    const missingFolder = await cli('inspect', bundle, '--html', join(out, 'no', 'such', 'folder', 'r.html'));
    expect(missingFolder.code).toBe(2);
    expect(missingFolder.stderr).toMatch(/FM_IO: writing --html file .*r\.html/);
    const noHtml = await cli('inspect', bundle, '--timeline', join(tmp.dir, 't.json'));
    expect(noHtml.code).toBe(2);
    expect(noHtml.stderr).toMatch(/FM_BAD_ARGUMENT: --timeline goes into the HTML report/);
  });

  it('refuses a timeline that is unreadable (FM_IO), malformed or of another bundle (FM_BAD_ARGUMENT), writing nothing', async () => {
    const good = timelineOf(model);
    const dispatchAt = good.run.findIndex((e) => e.kind === 'dispatch');
    const cases: [string, string | object, RegExp][] = [
      ['missing', '', /FM_IO: cannot read --timeline/],
      ['not-json', 'not json {', /FM_BAD_ARGUMENT: --timeline .*not JSON/],
      ['shape', { run: [{ kind: 'dispatch', step: 'x' }], load: [] }, /FM_BAD_ARGUMENT: .*not a flashmemc run --timeline file: run\.0\.step/],
      ['kind', { run: [{ kind: 'launch', step: 0, startMs: 0, endMs: 1 }], load: [] }, /FM_BAD_ARGUMENT: .*run\.0\.kind/],
      ['backwards', { run: [{ kind: 'dispatch', step: 1, startMs: 2, endMs: 1 }], load: [] }, /FM_BAD_ARGUMENT: .*endMs is before startMs/],
      ['foreign-label', { ...good, run: good.run.map((e, i) => (i === dispatchAt ? { ...e, label: 'someone_elses_kernel' } : e)) }, /FM_BAD_ARGUMENT: .*event \d+ of "run" \(dispatch of step \d+ "someone_elses_kernel"\) matches no step .* another bundle/],
      ['foreign-step', { ...good, run: [...good.run, { kind: 'dispatch', step: 999, label: 'x', startMs: 0, endMs: 1 }] }, /FM_BAD_ARGUMENT: .*step 999/],
      ['foreign-load', { ...good, load: [{ kind: 'upload', step: 0, label: 'not a weight', startMs: 0, endMs: 1 }] }, /FM_BAD_ARGUMENT: .*event 0 of "load"/],
    ];
    for (const [name, content, error] of cases) {
      const file = join(tmp.dir, `${name}.json`);
      if (name !== 'missing') writeFileSync(file, typeof content === 'string' ? content : JSON.stringify(content));
      const out = join(tmp.dir, `${name}.html`);
      const r = await cli('inspect', bundle, '--html', out, '--timeline', file);
      expect(r.code, name).toBe(2);
      expect(r.stderr, name).toMatch(error);
      expect(existsSync(out), name).toBe(false);
    }
  });

  describe.skipIf(!HAS_CHROMIUM)('rendered in Chromium', () => {
    let browser: Browser;
    const report = join(tmp.dir, 'rendered.html');
    let events: TimelineEvent[];

    beforeAll(async () => {
      const timeline = timelineOf(model);
      events = timeline.run;
      const r = await cli('inspect', bundle, '--html', report, '--timeline', writeJson(join(tmp.dir, 'timeline.json'), timeline));
      expect(r.code, r.stderr).toBe(0);
      browser = await launchChromium();
    });
    afterAll(async () => browser?.close());

    it('shows the model, its signature and its kernels by kind with the schedule\'s counts', async () => {
      const { page, requests, close } = await openReport(browser, report);
      try {
        expect(await page.locator('section.plan .model-name').allInnerTexts()).toEqual(['model']);
        expect(await tableText(page, 'table.signature tbody tr')).toEqual([['input', 'image', 'float32', '[1, 3, 64, 64]'], ['output', 'probabilities', 'float32', '[1, 10]']]);
        const counts = new Map<string, number>();
        for (const step of model.run) if (step.op === 'dispatch') counts.set(step.label, (counts.get(step.label) ?? 0) + 1);
        const rows = await tableText(page, 'table.kernels > tbody > tr');
        expect(new Map(rows.map((cells) => [cells[0]!, Number(cells[1])]))).toEqual(counts);
        expect(requests).toEqual([]);
      } finally {
        await close();
      }
    });

    it('shows a kernel\'s WGSL when its <details> is opened', async () => {
      const { page, close } = await openReport(browser, report);
      try {
        const first = model.run.find((s): s is DispatchStep => s.op === 'dispatch')!;
        const wgsl = readFileSync(join(bundle, schedule.shaders[first.shader]!), 'utf8');
        const details = page.locator(`details.wgsl[data-shader="${first.shader}"]`);
        const code = details.locator('pre code');
        expect(await code.isVisible()).toBe(false);
        await details.locator('summary').click();
        expect(await code.isVisible()).toBe(true);
        expect(await code.innerText()).toBe(wgsl);
      } finally {
        await close();
      }
    });

    it('draws GPU memory over the run in four bands against the budget line', async () => {
      const { page, close } = await openReport(browser, report);
      try {
        const chart = page.locator('section.plan svg.memory-chart');
        expect(await chart.count()).toBe(1);
        expect(await chart.locator('line.budget').count()).toBe(1);
        expect(await chart.locator('text.budget-label').textContent()).toBe('budget 0.18 MiB (180.0 KiB)');
        const bands = await chart.locator('polygon').evaluateAll((ps) => ps.map((p) => p.getAttribute('class')));
        expect(bands).toEqual(['band-resident', 'band-staging', 'band-streamed', 'band-activations']);
      } finally {
        await close();
      }
    });

    it('lists one load-plan row per weight upload of the run, with its loading kernel, first use and distance', async () => {
      const { page, close } = await openReport(browser, report);
      try {
        const rows = await page.$$eval('table.load-plan tbody tr', (trs) => trs.map((tr) => ({
          step: Number(tr.getAttribute('data-step')), path: tr.className, weight: (tr.querySelector('td.weight') as HTMLElement).innerText, distance: (tr.querySelector('td.distance') as HTMLElement).innerText,
        })));
        const uploads = model.run.flatMap((s, i) => (s.op === 'upload' ? [{ step: i, weight: s.weight }] : []));
        expect(rows.map(({ step, weight }) => ({ step, weight }))).toEqual(uploads);
        const loads = streamedLoads(model);
        expect(rows.map((r) => r.path)).toEqual(loads.map((l) => l.path));
        expect(rows.map((r) => Number(r.distance))).toEqual(loads.map((l) => l.firstUse! - l.loadKernel!));
      } finally {
        await close();
      }
    });

    it('shows the run\'s timeline, one row per event, with the dispatches\' nodes', async () => {
      const { page, close } = await openReport(browser, report);
      try {
        const rows = await tableText(page, 'table.timeline.run tbody tr');
        expect(rows).toHaveLength(events.length);
        const dispatches = model.run.filter((s) => s.op === 'dispatch');
        const shown = rows.filter((cells) => cells[1] === 'dispatch');
        expect(shown.map((cells) => [cells[3], cells[4]])).toEqual(dispatches.map((d) => [d.label, d.node]));
        expect(await page.locator('svg.timeline-chart rect').count()).toBe(events.length);
      } finally {
        await close();
      }
    });

    it('shows hostile names as text and runs nothing', async () => {
      const hostile = hostileCopy(bundle, tmp.dir);
      const file = join(tmp.dir, 'hostile.html');
      const timeline = writeJson(join(tmp.dir, 'hostile-timeline.json'), timelineOf(readSchedule(hostile).models[0]!));
      const r = await cli('inspect', hostile, '--html', file, '--timeline', timeline);
      expect(r.code, r.stderr).toBe(0);
      const { page, dialogs, requests, consoleErrors, close } = await openReport(browser, file);
      try {
        for (const details of await page.locator('details').all()) await details.evaluate((d) => ((d as HTMLDetailsElement).open = true));
        const text = await page.locator('body').innerText();
        for (const injection of INJECTIONS) expect(text).toContain(injection);
        expect(await page.locator('script, img, iframe, object, embed, #injected, b').count()).toBe(0);
        // only the report's own charts: one memory chart, one timeline
        expect(await page.locator('svg').count()).toBe(2);
        const handlers = await page.evaluate(() => Array.from(document.querySelectorAll('*')).flatMap((e) => e.getAttributeNames().filter((a) => a.startsWith('on'))));
        expect(handlers).toEqual([]);
        expect(await page.title()).toBe(`flashmemc report: ${hostile}`);
        await page.waitForTimeout(200);
        expect(dialogs).toEqual([]);
        expect(requests).toEqual([]);
        expect(consoleErrors).toEqual([]);
      } finally {
        await close();
      }
    });
  });
});
