/**
 * `npm run example:llm`: an autoregressive decoder of GPT-Neo-125M shape (generated with
 * deterministic random weights by fixtures/families, never committed) compiled as prefill +
 * decode graphs sharing one copy of the weights, streamed under a GPU memory budget of one eighth
 * of those weights with the KV cache on the GPU, then greedy generation: prints the tokens,
 * tokens/s and peak GPU bytes, for the streamed bundle and (with --compare-preload) a preload one.
 *
 *   node dist/examples/llm/run-llm.js [--config gpt-neo-125m] [--tokens 16] [--fraction 0.125]
 *     [--compare-preload] [--target-limits file.json] [--out out/llm]
 * On this machine's software GPU the 125M shape takes minutes per token; --config gpt-neo-tiny
 * runs the same path in seconds.
 */
import { existsSync, readFileSync, writeFileSync } from 'node:fs';
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

const mib = (bytes: number) => `${(bytes / 1048576).toFixed(1)} MiB`;

async function main(): Promise<void> {
  const config = arg('config', 'gpt-neo-125m')!;
  const tokens = Number(arg('tokens', '16'));
  const fraction = Number(arg('fraction', '0.125'));
  const out = arg('out', join(packageRoot(), 'out', 'llm'))!;
  const modelDir = join(out, 'models', config);
  // everything that blocks the thread (generation, compilation) happens before a GPU device exists
  const { generate } = await import('../../fixtures/families/generate.js');
  const { compileDecoder } = await import('../../compiler/compile-decoder.js');
  const { resolveTargetLimits } = await import('../../compiler/cli/compile-command.js');
  const sizeFile = join(modelDir, 'weight-bytes.json');
  if (!existsSync(sizeFile)) {
    const t = performance.now();
    const { weightBytes } = generate(config, join(out, 'models'));
    writeFileSync(sizeFile, JSON.stringify({ weightBytes }));
    console.log(`generated ${config} (${mib(weightBytes)} of weights) in ${((performance.now() - t) / 1000).toFixed(1)} s -> ${modelDir}`);
  }
  const { weightBytes } = JSON.parse(readFileSync(sizeFile, 'utf8')) as { weightBytes: number };
  const limits = resolveTargetLimits(arg('target-limits', 'webgpu')!);
  const budget = Math.floor(weightBytes * fraction);
  const bundles: { label: string; dir: string }[] = [];
  const compile = async (label: string, dir: string, memoryBudget?: number) => {
    const t = performance.now();
    const report = await compileDecoder(join(modelDir, 'prefill.onnx'), join(modelDir, 'decode.onnx'), dir, { limits, ...(memoryBudget ? { memoryBudget } : {}) });
    console.log(`compiled ${label}: planned peak GPU ${mib(report.plannedPeakBytes)} in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    bundles.push({ label, dir });
  };
  await compile(`stream under ${mib(budget)} (${fraction} of the weights)`, join(out, `${config}.stream`), budget);
  if (process.argv.includes('--compare-preload')) await compile('preload', join(out, `${config}.preload`));

  const { openBundle } = await import('../../compiler/cli/bundle-session.js');
  const { keepAlive } = await import('../../compiler/cli/webgpu.js');
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
