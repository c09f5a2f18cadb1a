/**
 * Decode throughput of a decoder bundle: prefill tokens/s and decode tokens/s of generate(), for
 * the GPU decode loop (one submission and an 8-byte token readback per token) and, with --legacy,
 * the host loop of bundles without one (logits read back, argmax and inputs on the host), whose
 * tokens it must equal. The model is the GPT-Neo-125M shape of examples/llm (deterministic random
 * weights from fixtures/families, generated on demand), preloaded by default.
 *
 *   npx tsx bench/decode-bench.ts [--config gpt-neo-125m] [--set context=256 --set sequence=16] [--tokens 128]
 *     [--repeat 3] [--legacy] [--stream [--fraction 0.125]] [--sample] [--profile h100-vulkan] [--out out/decode-bench] [--json file]
 *   FLASHMEM_WEBGPU_BACKEND=vulkan node node_modules/tsx/dist/cli.mjs bench/decode-bench.ts --tokens 256 --legacy
 * Here (llvmpipe): npx tsx bench/decode-bench.ts --config gpt-neo-tiny --tokens 8
 * FLASHMEM_DAWN_TOGGLES (comma-separated Dawn toggles) is passed to the device; the table header names it.
 */
import { cpSync, existsSync, mkdirSync, readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { packageRoot } from '../compiler/package-root.js';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}
const flag = (name: string) => process.argv.includes(`--${name}`);

/** every `--set key=value`, or the defaults when none is given */
function sets(defaults: string[]): string[] {
  const given = process.argv.flatMap((a, i) => (a === '--set' ? [process.argv[i + 1]!] : []));
  return given.length > 0 ? given : defaults;
}

interface Generated {
  tokens: number[]; prefillMs: number; decodeMs: number; tokensPerSecond: number; prefillTokensPerSecond?: number; decodeTokensPerSecond?: number;
}
interface DecoderSession {
  generate(prompt: number[], options: { maxNewTokens: number; sample?: Record<string, number> }): Promise<Generated>;
  stats(): { peakGpuBytes: number; loadMs: number; submissions?: number; readbackBytes?: number };
  dispose(): void;
}

interface Row {
  bundle: string;
  mode: string;
  prompt: number;
  tokens: number;
  prefillMs: number;
  prefillTokensPerSecond: number;
  decodeTokensPerSecond: number;
  /** median over --repeat runs, and the best */
  bestDecodeTokensPerSecond: number;
  submissionsPerToken: number;
  readbackBytesPerToken: number;
  peakGpuMiB: number;
  tokenIds: number[];
}

const mib = (bytes: number) => bytes / 1048576;
const median = (values: number[]) => [...values].sort((a, b) => a - b)[Math.floor(values.length / 2)]!;

/** A copy of a bundle without its decode loop, rehashed: what a bundle of an older compiler decodes like. */
function withoutLoop(dir: string, out: string): void {
  rmSync(out, { recursive: true, force: true });
  cpSync(dir, out, { recursive: true });
  const schedule = JSON.parse(readFileSync(join(out, 'schedule.json'), 'utf8'));
  const loop = schedule.decoder.loop;
  delete schedule.decoder.loop;
  // shaders only the loop dispatched keep no recorded grid (verification bounds it by their dispatches: none)
  const dispatched = new Set<number>();
  for (const model of schedule.models) for (const step of [...model.init, ...model.run]) if (step.op === 'dispatch') dispatched.add(step.shader);
  if (schedule.maxWorkgroups) schedule.maxWorkgroups = schedule.maxWorkgroups.map((n: number, i: number) => (dispatched.has(i) ? n : 0));
  schedule.plannedPeakBytes -= loop.buffers.reduce((s: number, b: { size: number }) => s + b.size, 0) + loop.tokenReadbacks * 16;
  const bytes = Buffer.from(JSON.stringify(schedule));
  writeFileSync(join(out, 'schedule.json'), bytes);
  const manifest = JSON.parse(readFileSync(join(out, 'manifest.json'), 'utf8'));
  const entry = manifest.files.find((f: { path: string }) => f.path === 'schedule.json');
  entry.size = bytes.length;
  entry.sha256 = createHash('sha256').update(bytes).digest('hex');
  rmSync(join(out, 'signature.json'), { force: true });
  writeFileSync(join(out, 'manifest.json'), JSON.stringify(manifest));
}

async function main(): Promise<void> {
  const config = arg('config', 'gpt-neo-125m')!;
  const overrides = sets(config === 'gpt-neo-125m' ? ['context=256', 'sequence=16'] : []);
  const tokens = Number(arg('tokens', config === 'gpt-neo-125m' ? '128' : '16'));
  const repeat = Number(arg('repeat', '3'));
  const out = arg('out', join(packageRoot(), 'out', 'decode-bench'))!;
  const variant = [config, ...overrides.map((o) => o.replace('=', ''))].join('-');
  const modelDir = join(out, 'models', variant);
  const { generate, resolveConfig } = await import('../fixtures/families/generate.js');
  const { compileDecoder } = await import('../compiler/compile-decoder.js');
  const { resolveProfile } = await import('../compiler/profile/load.js');
  const sizeFile = join(modelDir, 'weight-bytes.json');
  if (!existsSync(sizeFile)) {
    const t = performance.now();
    mkdirSync(join(out, 'models'), { recursive: true });
    rmSync(join(out, 'models', config), { recursive: true, force: true });
    const { weightBytes } = generate(config, join(out, 'models'), overrides);
    if (variant !== config) {
      rmSync(modelDir, { recursive: true, force: true });
      renameSync(join(out, 'models', config), modelDir);
    }
    writeFileSync(sizeFile, JSON.stringify({ weightBytes }));
    console.log(`generated ${config} (${mib(weightBytes).toFixed(1)} MiB of weights) in ${((performance.now() - t) / 1000).toFixed(1)} s`);
  }
  const { weightBytes } = JSON.parse(readFileSync(sizeFile, 'utf8')) as { weightBytes: number };
  const family = resolveConfig(config, overrides);
  if (family.family !== 'decoder') throw new Error(`--config ${config} is not a decoder`);
  const profile = arg('profile') ? resolveProfile(arg('profile')!) : undefined;
  const bundles: { label: string; dir: string }[] = [];
  const compile = async (label: string, dir: string, memoryBudget?: number) => {
    const t = performance.now();
    const options = memoryBudget ? { memoryBudget, maxWeightBytes: Math.floor(memoryBudget / 8) } : {};
    const report = await compileDecoder(join(modelDir, 'prefill.onnx'), join(modelDir, 'decode.onnx'), dir, { window: family.window, profile, force: true, ...options });
    console.log(`compiled ${label}: planned peak GPU ${mib(report.plannedPeakBytes).toFixed(1)} MiB in ${((performance.now() - t) / 1000).toFixed(1)} s`);
    bundles.push({ label, dir });
    if (flag('legacy')) {
      withoutLoop(dir, `${dir}.host-loop`);
      bundles.push({ label: `${label}, host loop`, dir: `${dir}.host-loop` });
    }
  };
  await compile('preload', join(out, `${variant}.preload`));
  if (flag('stream')) {
    const fraction = Number(arg('fraction', '0.125'));
    await compile(`stream ${fraction}`, join(out, `${variant}.stream`), Math.floor(weightBytes * fraction));
  }

  const { openBundle } = await import('../compiler/cli/bundle-session.js');
  const { keepAlive } = await import('../compiler/target/webgpu.js');
  const prompt = [464, 2068, 7586, 21831, 18045, 625, 262, 16931].map((t) => t % family.vocab);
  const modes: [string, Record<string, number> | undefined][] = [['greedy', undefined], ...(flag('sample') ? [['sample k40 p0.95 t0.8', { topK: 40, topP: 0.95, temperature: 0.8, seed: 1 }] as [string, Record<string, number>]] : [])];
  const rows: Row[] = [];
  for (const { label, dir } of bundles) {
    const { session: opened, device } = await openBundle(dir);
    const session = opened as unknown as DecoderSession;
    try {
      for (const [mode, sample] of modes) {
        if (sample && label.includes('host loop')) continue;
        // warm-up: first submissions of each pipeline, driver caches
        await keepAlive(session.generate(prompt, { maxNewTokens: Math.min(4, tokens), sample }));
        const runs: Generated[] = [];
        const before = session.stats();
        for (let r = 0; r < repeat; r++) runs.push(await keepAlive(session.generate(prompt, { maxNewTokens: tokens, sample })));
        const after = session.stats();
        const generated = runs.reduce((s, run) => s + run.tokens.length, 0);
        const decodeRates = runs.map((run) => run.decodeTokensPerSecond ?? run.tokensPerSecond);
        const last = runs.at(-1)!;
        rows.push({
          bundle: label, mode, prompt: prompt.length, tokens: last.tokens.length,
          prefillMs: median(runs.map((run) => run.prefillMs)),
          prefillTokensPerSecond: median(runs.map((run) => run.prefillTokensPerSecond ?? (prompt.length * 1000) / run.prefillMs)),
          decodeTokensPerSecond: median(decodeRates), bestDecodeTokensPerSecond: Math.max(...decodeRates),
          submissionsPerToken: ((after.submissions ?? 0) - (before.submissions ?? 0)) / generated,
          readbackBytesPerToken: ((after.readbackBytes ?? 0) - (before.readbackBytes ?? 0)) / generated,
          peakGpuMiB: mib(after.peakGpuBytes), tokenIds: last.tokens,
        });
        console.log(`${label} ${mode}: ${last.tokens.slice(0, 16).join(',')}${last.tokens.length > 16 ? ',...' : ''}`);
      }
    } finally {
      session.dispose();
      device.destroy();
    }
  }
  printTable(rows, { config: variant, tokens, repeat });
  // the host loop is the reference the decoder tests check against onnxruntime: the GPU loop must give its tokens
  let mismatch = false;
  for (const row of rows.filter((r) => r.bundle.endsWith('host loop'))) {
    const gpu = rows.find((r) => r.bundle === row.bundle.replace(', host loop', '') && r.mode === row.mode)!;
    const same = JSON.stringify(gpu.tokenIds) === JSON.stringify(row.tokenIds);
    console.log(`${gpu.bundle}: GPU loop tokens ${same ? 'equal' : 'DIFFER FROM'} the host loop's`);
    mismatch ||= !same;
  }
  const json = arg('json');
  if (json) writeFileSync(json, `${JSON.stringify({ config: variant, tokens, repeat, backend: process.env.FLASHMEM_WEBGPU_BACKEND ?? 'auto', dawnToggles: process.env.FLASHMEM_DAWN_TOGGLES ?? '', rows }, null, 2)}\n`);
  if (mismatch) process.exitCode = 1;
}

function printTable(rows: Row[], run: { config: string; tokens: number; repeat: number }): void {
  console.log(`\n${run.config}, ${run.tokens} new tokens, median of ${run.repeat} runs; backend ${process.env.FLASHMEM_WEBGPU_BACKEND ?? 'auto'}, Dawn toggles '${process.env.FLASHMEM_DAWN_TOGGLES ?? ''}'\n`);
  console.log('| bundle | mode | prompt | tokens | prefill ms | prefill tok/s | decode tok/s (median) | decode tok/s (best) | submissions/token | readback B/token | peak GPU MiB |');
  console.log('|---|---|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    console.log(`| ${r.bundle} | ${r.mode} | ${r.prompt} | ${r.tokens} | ${r.prefillMs.toFixed(1)} | ${r.prefillTokensPerSecond.toFixed(1)} | ${r.decodeTokensPerSecond.toFixed(1)} | ${r.bestDecodeTokensPerSecond.toFixed(1)} | ${r.submissionsPerToken.toFixed(2)} | ${r.readbackBytesPerToken.toFixed(0)} | ${r.peakGpuMiB.toFixed(1)} |`);
  }
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
