/**
 * flashmemc inspect --html --timeline with the timeline a real `flashmemc run --timeline` wrote
 * (Dawn): the file is accepted as the runtime writes it, and the report lists every event of the
 * run, GPU submissions included, next to the schedule's kernels. Also takes the README's
 * screenshot of the report (the memory chart and the load plan): into a temp folder, or over
 * docs/screenshots/inspect-report.png with FLASHMEM_UPDATE_SCREENSHOTS=1.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Browser } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { cli } from '../harness/cli.js';
import { REPO_ROOT, tempDir } from '../harness/paths.js';
import type { Schedule } from '../../schemas/schedule.js';
import { CHROMIUM, HAS_CHROMIUM, launchChromium, openReport, tableText } from './report-page.js';

if (!HAS_CHROMIUM) console.log(`skipping the inspect --html timeline tests: no Chromium at ${CHROMIUM} (apt-get install chromium)`);

const UPDATE = process.env.FLASHMEM_UPDATE_SCREENSHOTS === '1';
const SCREENSHOT = join(REPO_ROOT, 'docs', 'screenshots', 'inspect-report.png');
const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47];

describe.skipIf(!HAS_CHROMIUM)('flashmemc inspect --html with a run\'s timeline', () => {
  const tmp = tempDir('inspect-timeline');
  const bundle = join(tmp.dir, 'bundle');
  const timeline = join(tmp.dir, 'timeline.json');
  const report = join(tmp.dir, 'report.html');
  let browser: Browser;

  beforeAll(async () => {
    const compiled = await cli('compile', join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx'), '--out', bundle, '--memory-budget', '180KiB');
    expect(compiled.code, compiled.stderr).toBe(0);
    const ran = await cli('run', bundle, '--random-inputs', '--seed', '2', '--repeat', '2', '--timeline', timeline);
    expect(ran.code, ran.stderr).toBe(0);
    browser = await launchChromium();
  });
  afterAll(async () => {
    await browser?.close();
    tmp.cleanup();
  });

  it('accepts the file run --timeline wrote and shows every event of the last run', async () => {
    const r = await cli('inspect', bundle, '--html', report, '--timeline', timeline);
    expect(r.code, r.stderr).toBe(0);
    const recorded = JSON.parse(readFileSync(timeline, 'utf8')) as { run: { kind: string; label?: string }[]; load: unknown[] };
    const schedule = JSON.parse(readFileSync(join(bundle, 'schedule.json'), 'utf8')) as Schedule;
    const { page, dialogs, requests, close } = await openReport(browser, report);
    try {
      expect(await page.locator('.timeline-plan').innerText()).toBe('model');
      const rows = await tableText(page, 'table.timeline.run tbody tr');
      expect(rows.map((cells) => cells[1])).toEqual(recorded.run.map((e) => e.kind));
      expect(rows.filter((cells) => cells[1] === 'gpu').length).toBeGreaterThan(0);
      const nodes = schedule.models[0]!.run.flatMap((s) => (s.op === 'dispatch' ? [s.node] : []));
      expect(rows.filter((cells) => cells[1] === 'dispatch').map((cells) => cells[4])).toEqual(nodes);
      expect(await page.locator('table.timeline.load tbody tr').count()).toBe(recorded.load.length);
      expect(dialogs).toEqual([]);
      expect(requests).toEqual([]);
    } finally {
      await close();
    }
  });

  it('screenshot of the memory chart and the load plan', async () => {
    const { page, close } = await openReport(browser, report);
    try {
      const top = (await page.locator('section.plan h3', { hasText: 'GPU memory' }).boundingBox())!;
      const bottom = (await page.locator('table.load-plan').boundingBox())!;
      const path = UPDATE ? SCREENSHOT : join(tmp.dir, 'inspect-report.png');
      const png = await page.screenshot({ path, fullPage: true, clip: { x: 0, y: top.y - 12, width: 1200, height: bottom.y + bottom.height - top.y + 24 } });
      expect([...png.subarray(0, 4)]).toEqual(PNG_SIGNATURE);
      expect(png.length).toBeLessThan(1 << 20);
    } finally {
      await close();
    }
  });
});
