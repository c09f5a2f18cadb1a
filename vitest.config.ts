import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 120_000,
    hookTimeout: 120_000,
    // one WebGPU device per worker; the software GPU is CPU-bound, so two workers fill the 2 cores
    pool: 'forks',
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
    env: { EGL_PLATFORM: 'surfaceless' },
  },
});
