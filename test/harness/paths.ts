/**
 * Where peer test data lives. The ONNX conformance data is read in place from ../shared (never
 * copied into the repo); FLASHMEM_CONFORMANCE_DIR overrides the location. Suites that need it
 * are skipped, with a printed reason, when it is absent (as on a user's fresh clone).
 */
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REPO_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..', '..');

export const CONFORMANCE_DIR = resolve(process.env.FLASHMEM_CONFORMANCE_DIR ?? join(REPO_ROOT, '..', 'shared', 'conformance', 'onnx'));

export function conformanceAvailable(suite: string): boolean {
  const ok = existsSync(CONFORMANCE_DIR);
  if (!ok) {
    console.warn(`[${suite}] SKIPPED: ONNX conformance data not found at ${CONFORMANCE_DIR} (set FLASHMEM_CONFORMANCE_DIR)`);
  }
  return ok;
}

/** A temp folder removed by the returned cleanup function. */
export function tempDir(prefix: string): { dir: string; cleanup: () => void } {
  const dir = mkdtempSync(join(tmpdir(), `flashmemc-${prefix}-`));
  return { dir, cleanup: () => rmSync(dir, { recursive: true, force: true }) };
}
