/**
 * Setup of every `npm run test:unit` file (vitest.unit.config.ts): importing `webgpu` fails here
 * and in child processes (no-gpu.mjs), and harness/gpu.ts refuses to create a device
 * (FLASHMEM_TEST_UNIT, set by the config), so a test that needs a GPU fails loudly in the unit
 * run: "this test needs a GPU: it belongs outside test:unit" from the harness, the compiler's
 * createNodeDevice and child processes; FM_WEBGPU "the 'webgpu' package (Dawn for Node) could
 * not be imported" from a bundle's runtime.js creating its own device.
 */
import './no-gpu.mjs';
