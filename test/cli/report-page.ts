/**
 * Opening an `inspect --html` report in headless Chromium (Debian's /usr/bin/chromium, or
 * FLASHMEM_CHROMIUM) as a user would, from file://, recording what the page tries to do: dialogs
 * (an alert() that ran), requests other than the file itself, and console errors.
 */
import { existsSync } from 'node:fs';
import { pathToFileURL } from 'node:url';
import { chromium, type Browser, type Page } from 'playwright-core';

export const CHROMIUM = process.env.FLASHMEM_CHROMIUM ?? '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);

const CHROMIUM_ARGS = ['--no-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];

export function launchChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: CHROMIUM_ARGS });
}

export interface OpenedReport {
  page: Page;
  dialogs: string[];
  /** URLs requested besides the report itself */
  requests: string[];
  consoleErrors: string[];
  close(): Promise<void>;
}

export async function openReport(browser: Browser, file: string): Promise<OpenedReport> {
  const context = await browser.newContext({ viewport: { width: 1200, height: 900 } });
  const page = await context.newPage();
  const url = pathToFileURL(file).href;
  const opened: OpenedReport = { page, dialogs: [], requests: [], consoleErrors: [], close: () => context.close() };
  page.on('dialog', (dialog) => {
    opened.dialogs.push(dialog.message());
    void dialog.dismiss();
  });
  page.on('request', (request) => {
    if (request.url() !== url) opened.requests.push(request.url());
  });
  page.on('console', (message) => {
    if (message.type() === 'error') opened.consoleErrors.push(message.text());
  });
  await page.goto(url, { waitUntil: 'load' });
  return opened;
}

/** The text of each cell of the rows matching `rows`, as the page renders it. */
export function tableText(page: Page, rows: string): Promise<string[][]> {
  return page.$$eval(rows, (trs) => trs.map((tr) => Array.from(tr.querySelectorAll('td'), (td) => (td as HTMLElement).innerText.trim())));
}
