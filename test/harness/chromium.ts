/**
 * Headless Chromium for the browser tests: Debian's build by default (FLASHMEM_CHROMIUM names
 * another), launched with the flags WebGPU on SwiftShader needs here (../shared/peers/browser.md).
 */
import { existsSync } from 'node:fs';
import { chromium, type Browser } from 'playwright-core';

export const CHROMIUM = process.env.FLASHMEM_CHROMIUM ?? '/usr/bin/chromium';
export const HAS_CHROMIUM = existsSync(CHROMIUM);

const WEBGPU_ARGS = [
  '--no-sandbox', '--disable-gpu-sandbox', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
  '--disable-component-update', '--disable-sync', '--disable-quic', '--enable-unsafe-webgpu',
];

/** Prints why a suite is skipped where Chromium is missing (CI installs it); returns whether it can run. */
export function chromiumOrSkip(suite: string): boolean {
  if (!HAS_CHROMIUM) console.log(`skipping ${suite}: no Chromium at ${CHROMIUM} (apt-get install chromium)`);
  return HAS_CHROMIUM;
}

export function launchWebGpuChromium(): Promise<Browser> {
  return chromium.launch({ executablePath: CHROMIUM, headless: true, args: WEBGPU_ARGS });
}
