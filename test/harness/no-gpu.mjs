// Makes importing the `webgpu` package (Dawn for Node) fail in this process, and, through
// NODE_OPTIONS, in every Node process it starts: `npm run test:unit` loads it (see
// vitest.unit.config.ts) so that no unit test creates a WebGPU device, neither through the test
// harness (harness/gpu.ts), nor through the compiler (compiler/target/webgpu.ts), nor through a
// bundle's runtime.js creating its own device, nor in a CLI child process.
//   node --import ./test/harness/no-gpu.mjs ...
import Module, { register } from 'node:module';
import { fileURLToPath } from 'node:url';

const MESSAGE = 'this test needs a GPU: it belongs outside test:unit (list it in GPU_TEST_FILES of vitest.unit.config.ts)';

const DAWN = /[\\/]node_modules[\\/]webgpu[\\/]/;

// ESM imports (the compiler's and the runtime's `import('webgpu')`), through a resolve hook
const hooks = `
const MESSAGE = ${JSON.stringify(MESSAGE)};
const DAWN = /[\\\\/]node_modules[\\\\/]webgpu[\\\\/]/;
export async function resolve(specifier, context, next) {
  if (specifier === 'webgpu' || specifier.startsWith('webgpu/') || DAWN.test(specifier)) throw new Error(MESSAGE + ' (it imports webgpu)');
  const resolved = await next(specifier, context);
  if (DAWN.test(resolved.url)) throw new Error(MESSAGE + ' (it imports webgpu)');
  return resolved;
}
`;

if (!globalThis.__flashmemNoGpu) {
  globalThis.__flashmemNoGpu = true;
  register(`data:text/javascript,${encodeURIComponent(hooks)}`);
  // require('webgpu') and require.resolve('webgpu')
  const resolveFilename = Module._resolveFilename;
  Module._resolveFilename = function (request, ...rest) {
    const resolved = resolveFilename.call(this, request, ...rest);
    if (request === 'webgpu' || DAWN.test(resolved)) throw new Error(`${MESSAGE} (it requires webgpu)`);
    return resolved;
  };
  const self = `--import=${fileURLToPath(import.meta.url)}`;
  if (!(process.env.NODE_OPTIONS ?? '').includes(self)) process.env.NODE_OPTIONS = `${process.env.NODE_OPTIONS ?? ''} ${self}`.trim();
}
