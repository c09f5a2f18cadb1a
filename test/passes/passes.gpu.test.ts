/** The pass pipeline's optimised model, compiled and run on WebGPU, still matches onnxruntime. */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { compareWithOrt } from '../harness/reference.js';
import { tempDir } from '../harness/paths.js';
import { convBnRelu } from './conv-bn-relu.js';

describe('graph passes', () => {
  it('the optimised model still matches onnxruntime', async () => {
    const tmp = tempDir('passes');
    const path = join(tmp.dir, 'model.onnx');
    writeFileSync(path, buildModel(convBnRelu()));
    const bundle = await compileAndOpen(path);
    try {
      expect((await compareWithOrt(path, bundle)).violation).toBeLessThanOrEqual(1);
    } finally {
      bundle.close();
      tmp.cleanup();
    }
  });
});
