/**
 * The light CNNs of ONNX's test data (real architectures whose weights ConstantOfShape fills)
 * compile, run on WebGPU and match onnxruntime-node on the same random inputs, both as shipped
 * and with their constant weights replaced by random ones (see harness/randomize.ts).
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileAndOpen } from '../harness/compile-run.js';
import { compareWithOrt } from '../harness/reference.js';
import { CONFORMANCE_DIR, conformanceAvailable, tempDir } from '../harness/paths.js';
import { randomizeConstantWeights } from '../harness/randomize.js';

const available = conformanceAvailable('light models');
export const LIGHT_MODELS = ['squeezenet', 'shufflenet', 'bvlc_alexnet', 'zfnet512', 'inception_v1', 'inception_v2', 'resnet50', 'densenet121', 'vgg19'];

describe.skipIf(!available)('light models match onnxruntime-node', () => {
  for (const name of LIGHT_MODELS) {
    it(`${name} (random weights)`, async () => {
      const tmp = tempDir('light');
      const path = join(tmp.dir, `${name}-random.onnx`);
      writeFileSync(path, randomizeConstantWeights(readFileSync(join(CONFORMANCE_DIR, 'light', `light_${name}.onnx`))));
      const bundle = await compileAndOpen(path);
      try {
        const agreement = await compareWithOrt(path, bundle);
        console.log(`light ${name} (random weights): compile ${(bundle.report.totalMs / 1000).toFixed(2)} s, first run ${agreement.runMs.toFixed(0)} ms, ` +
          `max abs err ${agreement.maxAbsError.toExponential(2)}, max rel err ${agreement.maxRelError.toExponential(2)}`);
        expect(agreement.violation).toBeLessThanOrEqual(1);
      } finally {
        bundle.close();
        tmp.cleanup();
      }
    }, 600_000);
  }

  it('squeezenet as shipped (constant weights)', async () => {
    const path = join(CONFORMANCE_DIR, 'light', 'light_squeezenet.onnx');
    const bundle = await compileAndOpen(path);
    try {
      expect((await compareWithOrt(path, bundle)).violation).toBeLessThanOrEqual(1);
    } finally {
      bundle.close();
    }
  }, 600_000);
});
