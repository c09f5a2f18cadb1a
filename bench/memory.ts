/**
 * `npm run bench:memory`: peak GPU bytes and latency of preload vs stream bundles at budgets of
 * 50%, 25% and 12.5% of each model's weight bytes (or the smallest feasible budget found above that),
 * on the light CNNs with random weights and the shipped mini-ResNet. All bundles are compiled
 * first and run afterwards (dawn-node must not see a blocked main thread while a device exists).
 * Results: bench/results/<machine>/memory.{md,json}.
 *
 *   npx tsx bench/memory.ts [--machine llvmpipe] [--models squeezenet,shufflenet] [--runs 5] [--uploads queue|mapped] [--target-limits file.json]
 *                           [--profile h100-vulkan] [--stream-path carriers|copies] [--weight-layout auto|buffer]
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execFileSync, execSync } from 'node:child_process';
import { compileModel, type CompileReport } from '../compiler/compile.js';
import { resolveTargetLimits } from '../compiler/target/limits.js';
import { FlashmemError } from '../compiler/errors.js';
import { resolveProfile } from '../compiler/profile/load.js';
import type { StreamPath } from '../compiler/schedule/stream.js';
import { packageRoot } from '../compiler/bundle/runtime-gen.js';
import { randomizeConstantWeights } from '../test/harness/randomize.js';
import { CONFORMANCE_DIR, tempDir } from '../test/harness/paths.js';

const FRACTIONS = [0.5, 0.25, 0.125];
/** --target-limits webgpu|compat|file.json: the limits bundles are compiled for (a real GPU's allow larger buffers) */
const LIMITS = resolveTargetLimits(arg('target-limits', 'webgpu'));
/** --profile: the device profile bundles are compiled for; --stream-path carriers|copies */
const PROFILE = resolveProfile(arg('profile', 'llvmpipe'));
const STREAM_PATH = arg('stream-path', 'carriers') as StreamPath;
/** --weight-layout buffer: preload bundles in storage buffers like the streamed ones (auto lets the profile pick textures) */
const WEIGHT_LAYOUT = arg('weight-layout', 'auto') as 'auto' | 'buffer' | 'texture';
const LIGHT = ['squeezenet', 'shufflenet', 'inception_v1', 'densenet121', 'resnet50'];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

interface Built { model: string; label: string; dir: string; report: CompileReport; budget?: number }

async function compileAtBudget(model: string, path: string, dir: string, budget: number): Promise<Built> {
  for (let attempt = 0; attempt < 8; attempt++) {
    try {
      const report = await compileModel(path, dir, { strategy: 'stream', memoryBudget: budget, limits: LIMITS, profile: PROFILE, streamPath: STREAM_PATH });
      return { model, label: '', dir, report, budget };
    } catch (e) {
      const min = e instanceof FlashmemError ? /smallest feasible budget[^,]*, (\d+) bytes|needs (\d+) bytes/.exec(e.message) : null;
      if (!min) throw e;
      // the smallest feasible budget moves with the budget (weights are split at a quarter of it): always grow
      budget = Math.max(Math.ceil(budget * 1.15), Math.ceil(Number(min[1] ?? min[2]) * 1.15));
    }
  }
  throw new Error(`${model}: no feasible streaming budget found`);
}

async function main(): Promise<void> {
  const machine = arg('machine', 'llvmpipe');
  const runs = Number(arg('runs', '5'));
  const models = arg('models', ['mini-resnet', ...LIGHT].join(',')).split(',');
  const tmp = tempDir('bench-memory');
  const built: Built[] = [];
  try {
    for (const model of models) {
      const path = join(tmp.dir, `${model}.onnx`);
      const source = model === 'mini-resnet' ? join(packageRoot(), 'examples', 'mini-resnet', 'model.onnx') : join(CONFORMANCE_DIR, 'light', `light_${model}.onnx`);
      if (!existsSync(source)) {
        console.error(`skipping ${model}: ${source} not found`);
        continue;
      }
      writeFileSync(path, model === 'mini-resnet' ? readFileSync(source) : randomizeConstantWeights(readFileSync(source)));
      const preload = { model, label: 'preload', dir: join(tmp.dir, `${model}.preload`), report: await compileModel(path, join(tmp.dir, `${model}.preload`), { limits: LIMITS, profile: PROFILE, weightLayout: WEIGHT_LAYOUT }) };
      built.push(preload);
      for (const f of FRACTIONS) {
        const b = await compileAtBudget(model, path, join(tmp.dir, `${model}.stream${f}`), Math.round(preload.report.weightBytes * f));
        built.push({ ...b, label: `stream ${f * 100}%` });
      }
      console.error(`compiled ${model}`);
    }
    const rows: Record<string, unknown>[] = [];
    for (const b of built) {
      // a fresh process per bundle, as an app would start: cold start = its load + first run
      const report = runInFreshProcess(b.dir, runs + 1);
      const warm = report.timings.runMs.slice(1).sort((x, y) => x - y);
      rows.push({
        model: b.model, bundle: b.label, weightMiB: b.report.weightBytes / 1048576, budgetMiB: b.budget === undefined ? null : b.budget / 1048576,
        plannedPeakMiB: b.report.plannedPeakBytes / 1048576, measuredPeakMiB: report.peakGpuBytes / 1048576,
        hostStagingMiB: report.hostStagingBytes / 1048576, loadMs: report.timings.loadMs, coldStartMs: report.timings.loadMs + report.timings.runMs[0]!, warmMedianMs: warm[Math.floor(warm.length / 2)]!,
        solver: b.report.streaming?.solverStatus ?? '', solveMs: b.report.streaming?.solveMs ?? null,
      });
    }
    const fmt = (v: unknown) => (typeof v === 'number' ? (Number.isInteger(v) ? String(v) : v.toFixed(2)) : v === null ? '-' : String(v));
    const cols = ['model', 'bundle', 'weightMiB', 'budgetMiB', 'plannedPeakMiB', 'measuredPeakMiB', 'hostStagingMiB', 'loadMs', 'coldStartMs', 'warmMedianMs', 'solver', 'solveMs'];
    const table = [`| ${cols.join(' | ')} |`, `|${cols.map(() => '---').join('|')}|`, ...rows.map((r) => `| ${cols.map((c) => fmt(r[c])).join(' | ')} |`)].join('\n');
    console.log(table);
    const dir = join(packageRoot(), 'bench', 'results', machine);
    mkdirSync(dir, { recursive: true });
    const commit = process.env.FLASHMEM_COMMIT ?? gitCommit();
    const command = `npx tsx bench/memory.ts ${process.argv.slice(2).join(' ')}`.trim();
    writeFileSync(join(dir, 'memory.json'), `${JSON.stringify({ command, commit, runs, rows }, null, 2)}\n`);
    writeFileSync(join(dir, 'memory.md'), `# Preload vs stream on ${machine}\n\nCommand: \`${command}\` at commit ${commit}. Each bundle runs in a fresh \`flashmemc run\` process (${runs} warm runs after the first); cold start = its load + first run (driver shader caches may be warm). Budgets that cannot be met are raised to the smallest feasible one found (+15% per try).\n\n${table}\n`);
  } finally {
    tmp.cleanup();
  }
}

interface RunReport { peakGpuBytes: number; hostStagingBytes: number; timings: { loadMs: number; runMs: number[] } }

/** `flashmemc run <bundle> --random-inputs --repeat n --json` in a child process (the built CLI in dist/). */
function runInFreshProcess(bundle: string, repeat: number): RunReport {
  const cli = join(packageRoot(), 'dist', 'compiler', 'cli', 'main.js');
  const out = execFileSync(process.execPath, [cli, 'run', bundle, '--random-inputs', '--seed', '3', '--repeat', String(repeat), '--json', '--uploads', arg('uploads', 'queue')], { encoding: 'utf8', maxBuffer: 64 << 20 });
  return JSON.parse(out) as RunReport;
}

function gitCommit(): string {
  try {
    return execSync('git rev-parse --short HEAD', { cwd: packageRoot(), stdio: ['ignore', 'pipe', 'ignore'] }).toString().trim();
  } catch {
    return 'unknown';
  }
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
