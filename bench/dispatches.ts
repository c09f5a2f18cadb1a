/**
 * Dispatches per run (issue 17, dispatch economy): the kernels the pass pipeline lowers for the
 * transformer families, with every pass and without the fusion passes named by --without
 * (default fuse-matmul-bias), on the real-GPU kernel choices. No GPU needed: it counts lowered kernels.
 *
 *   npx tsx bench/dispatches.ts [--models bert-base,vit-base,gpt-neo-125m] [--without fuse-matmul-bias,fuse-activations]
 */
import { importOnnx } from '../compiler/frontend/onnx.js';
import { PIPELINE, runPassesSync } from '../compiler/passes/pipeline.js';
import { DEFAULT_LIMITS, kernelChoicesFor } from '../compiler/target/limits.js';
import { resolveProfile } from '../compiler/profile/load.js';
import { familyGraphs, resolveConfig } from '../fixtures/families/generate.js';
import { serializeInline } from '../fixtures/families/builder.js';

const arg = (name: string, fallback: string) => {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
};
const models = arg('models', 'bert-base,vit-base,gpt-neo-125m').split(',');
const without = arg('without', 'fuse-matmul-bias').split(',');
const limits = { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 };
const kernelChoices = kernelChoicesFor(resolveProfile('h100-vulkan'));

function kernelCount(name: string, skip: readonly string[]): { kernels: number; adds: number } {
  const graph = importOnnx(serializeInline(familyGraphs(resolveConfig(name), ['full'])[0]!));
  const passes = PIPELINE.filter((p) => !skip.includes(p.name));
  const { program } = runPassesSync(passes, { graph }, { limits, kernelChoices }).state;
  return { kernels: program!.kernels.length, adds: program!.kernels.filter((k) => k.opType === 'Add').length };
}

console.log(`| model | dispatches, all passes | Add dispatches | dispatches without ${without.join(', ')} | Add dispatches |`);
console.log('|---|---|---|---|---|');
for (const name of models) {
  const all = kernelCount(name, []);
  const less = kernelCount(name, without);
  console.log(`| ${name} | ${all.kernels} | ${all.adds} | ${less.kernels} | ${less.adds} |`);
}
