/** The bundle of the hostile-name model (hostile-model.ts) runs on WebGPU by its exact names and matches onnxruntime. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { compareWithOrt } from '../harness/reference.js';
import { tempDir } from '../harness/paths.js';
import { HOSTILE, hostileModel } from './hostile-model.js';

describe('hostile names', () => {
  it('run with exact names and match onnxruntime', async () => {
    const tmp = tempDir('names');
    const path = join(tmp.dir, 'model.onnx');
    writeFileSync(path, buildModel(hostileModel()));
    const bundle = await compileAndOpen(path, { modelName: HOSTILE[1] });
    try {
      const model = bundle.manifest.models[0]!;
      expect(model.name).toBe(HOSTILE[1]);
      expect(model.inputs.map((t) => t.name)).toEqual([HOSTILE[0]]);
      expect((await compareWithOrt(path, bundle)).violation).toBeLessThanOrEqual(1);
    } finally {
      bundle.close();
      tmp.cleanup();
    }
  });
});
