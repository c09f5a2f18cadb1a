/**
 * The light CNNs of ONNX's test data (real architectures, constant-filled weights) compile, run
 * on WebGPU and match onnxruntime-node on the same random inputs.
 */
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { compileAndOpen } from '../harness/compile-run.js';
import { compareWithOrt } from '../harness/reference.js';
import { CONFORMANCE_DIR, conformanceAvailable } from '../harness/paths.js';

const available = conformanceAvailable('light models');
export const LIGHT_MODELS = ['squeezenet', 'shufflenet', 'bvlc_alexnet', 'zfnet512', 'inception_v1', 'inception_v2', 'resnet50', 'densenet121', 'vgg19'];

describe.skipIf(!available)('light models match onnxruntime-node', () => {
  for (const name of LIGHT_MODELS) {
    it(name, async () => {
      const path = join(CONFORMANCE_DIR, 'light', `light_${name}.onnx`);
      const bundle = await compileAndOpen(path);
      try {
        const agreement = await compareWithOrt(path, bundle);
        console.log(`light ${name}: compile ${(bundle.report.totalMs / 1000).toFixed(2)} s, run ${agreement.runMs.toFixed(0)} ms, max abs err ${agreement.maxAbsError.toExponential(2)}, max rel err ${agreement.maxRelError.toExponential(2)}`);
        expect(agreement.violation).toBeLessThanOrEqual(1);
      } finally {
        bundle.close();
      }
    }, 600_000);
  }
});
