/**
 * The bundle crashers the fuzzer found on the GPU (fuzz/crashers/bundle-<hash>/ whose case.json has
 * a `gpu` expectation), loaded and run once by the package runtime on the test device: the session
 * must keep what the case names (its peak GPU bytes within the planned peak stats() reports).
 * Their verification is replayed by bundle-corpus.test.ts.
 */
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { importOwnRuntime } from '../../compiler/bundle/own-runtime.js';
import { randomInputs } from '../../compiler/cli/inputs.js';
import { caseFiles, listBundleCases, writeFiles } from '../../fuzz/bundle-cases.js';
import { fastTmpRoot } from '../../fuzz/exec.js';
import { FUZZ_DIR } from '../../fuzz/seeds.js';
import { keepAlive, testDevice } from '../harness/gpu.js';
import type { ManifestModel } from '../../schemas/manifest.js';

const tmp = fastTmpRoot('flashmemc-bundle-gpu-test-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Session {
  models: ManifestModel[];
  run(name: string, inputs: unknown): Promise<unknown>;
  stats(): { peakGpuBytes: number; plannedPeakGpuBytes: number };
  dispose(): void;
}

describe('bundle crashers on the GPU', () => {
  const cases = listBundleCases(path.join(FUZZ_DIR, 'crashers'), 'bundle-').filter((c) => c.sidecar.gpu && !c.sidecar.recipe);
  if (cases.length === 0) it('(none saved)', () => {});
  for (const c of cases) {
    it(`${c.name}: ${c.sidecar.mutations?.join(' | ').slice(0, 100) ?? ''}`, async () => {
      const dir = path.join(tmp, c.name);
      writeFiles(dir, caseFiles(c));
      const runtime = await importOwnRuntime();
      const session = (await runtime.loadBundle(dir, { device: await testDevice() })) as Session;
      try {
        const model = session.models[0]!;
        await keepAlive(session.run(model.name, randomInputs(model, 1)));
        const stats = session.stats();
        if (c.sidecar.gpu!.peakWithinPlanned) expect(stats.peakGpuBytes).toBeLessThanOrEqual(stats.plannedPeakGpuBytes);
      } finally {
        session.dispose();
      }
    });
  }
});
