/**
 * `npm run example:llm`: an autoregressive decoder of GPT-Neo-125M shape (generated with
 * deterministic random weights by fixtures/families, never committed) compiled as prefill +
 * decode graphs sharing one copy of the weights, streamed under a GPU memory budget of one eighth
 * of those weights with the KV cache on the GPU, then greedy generation: prints the tokens,
 * tokens/s and peak GPU bytes, for the streamed bundle and (with --compare-preload) a preload one.
 *
 *   node dist/examples/llm/run-llm.js [--config gpt-neo-125m] [--set context=128 --set sequence=16]
 *     [--tokens 16] [--fraction 0.125 | --budget 1GiB] [--compare-preload] [--target-limits file.json]
 *     [--profile h100-vulkan] [--out out/llm]
 * The 125M shape keeps GPT-Neo's layers, widths and vocabulary; by default its context is 128
 * slots and its prefill 16 tokens, because at one eighth of the weights (60 MiB) the budget must
 * also hold the KV cache (9 MiB at 128 slots, 144 MiB at GPT-Neo's 2048), the prefill's logits
 * (3 MiB for 16 tokens, plus as much for their readback), the staging ring and the weights in use.
 * On this machine's software GPU the 125M shape takes minutes per token; --config gpt-neo-tiny
 * runs the same path in seconds.
 */
import { existsSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { packageRoot } from '../../compiler/package-root.js';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

interface Generated { tokens: number[]; prefillMs: number; decodeMs: number; tokensPerSecond: number }
interface DecoderSession {
  generate(prompt: number[], options: { maxNewTokens: number }): Promise<Generated>;
  stats(): { peakGpuBytes: number; loadMs: number };
  dispose(): void;
}

/** every `--set key=value`, or the defaults when none is given */
function sets(defaults: string[]): string[] {
  const given = process.argv.flatMap((a, i) => (a === '--set' ? [process.argv[i + 1]!] : []));
  return given.length > 0 ? given : defaults;
}

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const config = arg('config', 'gpt-neo-125m')!;
  const overrides = sets(config === 'gpt-neo-125m' ? ['context=128', 'sequence=16'] : []);
  const tokens = Number(arg('tokens', '16'));
  const fraction = Number(arg('fraction', '0.125'));
  const out = arg('out', join(packageRoot(), 'out', 'llm'))!;
  const variant = [config, ...overrides.map((o) => o.replace('=', ''))].join('-');
  const modelDir = join(out, 'models', variant);
  // everything that blocks the thread (generation, compilation) happens before a GPU device exists
  const { generate } = await import('../../fixtures/families/generate.js');
  const { compileDecoder } = await import('../../compiler/compile-decoder.js');
  const { parseSize } = await import('../../compiler/cli/compile-command.js');
  const { resolveTargetLimits } = await import('../../compiler/target/limits.js');
  const { resolveProfile } = await import('../../compiler/profile/load.js');
  const sizeFile = join(modelDir, 'weight-bytes.json');
  if (!existsSync(sizeFile)) {
    const t = performance.now();
    const { weightBytes } = generate(config, join(out, 'models'), overrides);
    renameSync(join(out, 'models', config), modelDir);
    writeFileSync(sizeFile, JSON.stringify({ weightBytes }));
    console.log(`generated ${config} (${mib(weightBytes)} of weights) in ${((performance.now() - t) / 1000).toFixed(1)} s -> ${modelDir}`);
  }
  const { weightBytes } = JSON.parse(readFileSync(sizeFile, 'utf8')) as { weightBytes: number };
  const limits = resolveTargetLimits(arg('target-limits', 'webgpu')!);
  const { resolveConfig } = await import('../../fixtures/families/generate.js');
  const family = resolveConfig(config, overrides);
  const window = family.family === 'decoder' ? family.window : 0;
  const budget = arg('budget') ? parseSize(arg('budget')!) : Math.floor(weightBytes * fraction);
  const profile = arg('profile') ? resolveProfile(arg('profile')!) : undefined;
  const bundles: { label: string; dir: string }[] = [];
  const compile = async (label: string, dir: string, memoryBudget?: number) => {
    const t = performance.now();
    // weights split into pieces of at most 1/8 of the budget, so that one streams while another is in use
    const options = memoryBudget ? { memoryBudget, maxWeightBytes: Math.floor(memoryBudget / 8) } : {};
    const report = await compileDecoder(join(modelDir, 'prefill.onnx'), join(modelDir, 'decode.onnx'), dir, { limits, window, profile, ...options });
    console.log(`compiled ${label}: planned peak GPU ${mib(report.plannedPeakBytes)} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    bundles.push({ label, dir });
  };
  await compile(`stream under ${mib(budget)} (${(budget / weightBytes).toFixed(3)} of the weights)`, join(out, `${variant}.stream`), budget);
  if (process.argv.includes('--compare-preload')) await compile('preload', join(out, `${variant}.preload`));

  const { openBundle } = await import('../../compiler/cli/bundle-session.js');
  const { keepAlive } = await import('../../compiler/target/webgpu.js');
  const prompt = [464, 2068, 7586, 21831, 18045, 625, 262, 16931].map((t) => t % 50257);
  for (const { label, dir } of bundles) {
    const { session: opened, device } = await openBundle(dir);
    const session = opened as unknown as DecoderSession;
    try {
      const result = await keepAlive(session.generate(prompt, { maxNewTokens: tokens }));
      const stats = session.stats();
      console.log(`${label}: tokens ${result.tokens.join(',')}`);
      console.log(`  load ${stats.loadMs.toFixed(0)} ms, prefill ${result.prefillMs.toFixed(0)} ms, ${result.tokensPerSecond.toFixed(2)} tokens/s, peak GPU ${mib(stats.peakGpuBytes)}`);
    } finally {
      session.dispose();
      device.destroy();
    }
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
