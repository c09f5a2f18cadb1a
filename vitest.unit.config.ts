/**
 * `npm run test:unit`: every test file that needs no WebGPU device, in seconds. The main config
 * (vitest.config.ts, `npm test`) still runs everything; this one leaves out GPU_TEST_FILES and
 * enforces the split: FLASHMEM_TEST_UNIT makes harness/gpu.ts refuse to create a device, and the
 * setup file makes importing `webgpu` fail in the test processes and the processes they start.
 * A new test that needs the GPU fails here with "this test needs a GPU": list it below (or name
 * it *.gpu.test.ts).
 */
import { configDefaults, defineConfig, mergeConfig } from 'vitest/config';
import base from './vitest.config.js';

/** Files that create a WebGPU device (Dawn, or Chromium for test/browser), by what they run. */
export const GPU_TEST_FILES = [
  // the GPU part of a file otherwise unit-tested (passes, split-weights, security names)
  'test/**/*.gpu.test.ts',
  // op kernels on the device against onnxruntime (also the CPU folds, beside the kernels they check)
  'test/ops/**',
  // bundles loaded and run by their runtime
  'test/bundle/runtime.test.ts', 'test/bundle/validation.test.ts', 'test/bundle/weight-texture.test.ts',
  'test/faults/device-loss.test.ts', 'test/faults/runtime-faults.test.ts',
  'test/conformance/**', 'test/models/**', 'test/multi/**', 'test/schedule/stream.test.ts',
  'test/families/families.test.ts', 'test/families/decoder-bundle.test.ts',
  // `flashmemc run` and `flashmemc profile` in child processes
  'test/cli/cli.test.ts', 'test/profile/cli-profile.test.ts',
  // headless Chromium's WebGPU
  'test/browser/**',
];

export default mergeConfig(base, defineConfig({
  test: {
    exclude: [...configDefaults.exclude, ...GPU_TEST_FILES],
    setupFiles: ['test/harness/unit-setup.ts'],
    env: { FLASHMEM_TEST_UNIT: '1' },
  },
}));
