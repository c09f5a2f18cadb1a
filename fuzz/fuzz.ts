/**
 * A structured fuzzer for ONNX import + compile (no fuzzing dependency):
 *
 *   npx tsx fuzz/fuzz.ts --seconds 60 [--seed N] [--out fuzz/crashers] [--max-execs N] [--no-conformance] [--runs-log fuzz/RUNS.md]
 *   npm run fuzz
 *   npx tsx fuzz/fuzz.ts --target bundle ...     the bundle fuzzer (bundle-fuzz.ts), with its flags
 *
 * Seeds (seeds.ts) are mutated at the byte and the structure level (mutate.ts), each input is
 * materialised in its own temp folder and compiled with compileToContents in a worker thread
 * (exec.ts) under a wall-clock watchdog and memory bounds. Outcomes: success, a FlashmemError
 * (expected; counted by code), or a crasher (any other exception, a hang, a memory blow-up).
 * Crashers are minimised a little and saved as `<out>/<hash>.onnx` with a `<hash>.json` sidecar.
 * Exit code 1 when crashers were found.
 */
import { createHash } from 'node:crypto';
import { parseFuzzArgs, type CommonFuzzOptions } from './args.js';
import { existsSync, mkdirSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import onnxProto from 'onnx-proto';
import { crashSignature, Executor, topFrame, type ExecResult, type ExecutorOptions, type FuzzInput, type Outcome } from './exec.js';
import { mutate, Rng } from './mutate.js';
import { filesToJson, type Sidecar } from './cases.js';
import { FUZZ_DIR, loadSeeds, type Seed } from './seeds.js';

const { onnx } = onnxProto;

export interface FuzzOptions extends ExecutorOptions {
  /** wall-clock budget in seconds (default 60) */
  seconds?: number;
  /** stop after this many executions */
  maxExecs?: number;
  seed?: number;
  /** where crashers are saved; undefined: not saved */
  outDir?: string;
  /** conformance models as seeds (default: when present) */
  conformance?: boolean;
  /** probability of picking a slow seed (default 0.03) */
  slowSeedRate?: number;
  /** progress and crash lines (default: none) */
  log?: (line: string) => void;
  /** executions per minimisation of one crasher (default 40) */
  minimizeBudget?: number;
}

export interface CrashRecord {
  signature: string;
  outcome: Extract<Outcome, { kind: 'crash' }>;
  seed: string;
  mutations: string[];
  bytes: number;
  /** saved file, when outDir was given */
  file?: string;
}

export interface FuzzStats {
  executions: number;
  seconds: number;
  execsPerSecond: number;
  /** 'ok', a FlashmemError code, or 'crash:<reason>' -> count */
  outcomes: Record<string, number>;
  /** FlashmemErrors wrapping a TypeError/RangeError... raised in compiler code (classified, but worth a look) */
  internalWrapped: Record<string, { count: number; example: string }>;
  crashers: CrashRecord[];
  slowest: { ms: number; seed: string; mutations: string[] };
  workerRestarts: number;
}

function outcomeKey(o: Outcome): string {
  return o.kind === 'ok' ? 'ok' : o.kind === 'error' ? o.code : `crash:${o.reason}`;
}

/** A seed, mostly fast ones; `slow` seeds (seconds per compile) now and then. */
function pickSeed(seeds: readonly Seed[], rng: Rng, slowRate: number): Seed {
  const slow = seeds.filter((s) => s.slow);
  const fast = seeds.filter((s) => !s.slow);
  if (slow.length && (fast.length === 0 || rng.chance(slowRate))) return rng.pick(slow);
  return rng.pick(fast);
}

// ---------------------------------------------------------------------------------------------
// Minimisation: smaller inputs that fail the same way

function* structuralCandidates(input: FuzzInput): Generator<FuzzInput> {
  let model: onnxProto.onnx.ModelProto;
  try {
    model = onnx.ModelProto.decode(input.model);
  } catch {
    return;
  }
  const g = model.graph;
  if (!g) return;
  const variant = (edit: (m: onnxProto.onnx.ModelProto) => void): FuzzInput | undefined => {
    const copy = onnx.ModelProto.decode(input.model);
    edit(copy);
    try {
      return { ...input, model: onnx.ModelProto.encode(copy).finish() };
    } catch {
      return undefined;
    }
  };
  // later nodes first: they are usually not the ones that fail
  for (let i = (g.node?.length ?? 0) - 1; i >= 0; i--) {
    const v = variant((m) => m.graph!.node!.splice(i, 1));
    if (v) yield v;
  }
  for (let i = (g.initializer?.length ?? 0) - 1; i >= 0; i--) {
    const v = variant((m) => m.graph!.initializer!.splice(i, 1));
    if (v) yield v;
  }
  for (let i = (g.node?.length ?? 0) - 1; i >= 0; i--) {
    const attrs = g.node![i]!.attribute?.length ?? 0;
    if (attrs > 1) {
      const v = variant((m) => { const n = m.graph!.node![i]!; n.attribute = (n.attribute ?? []).slice(0, 1); });
      if (v) yield v;
    }
  }
  const v = variant((m) => { m.producerName = ''; m.docString = ''; m.graph!.docString = ''; m.graph!.valueInfo = []; m.metadataProps = []; });
  if (v) yield v;
}

function* byteCandidates(input: FuzzInput): Generator<FuzzInput> {
  for (const frac of [0.5, 0.75, 0.9, 0.97]) {
    const len = Math.floor(input.model.length * frac);
    if (len > 0 && len < input.model.length) yield { ...input, model: input.model.slice(0, len) };
  }
}

async function minimize(exec: Executor, input: FuzzInput, signature: string, budget: number): Promise<FuzzInput> {
  let best = input;
  let runs = 0;
  let improved = true;
  while (improved && runs < budget) {
    improved = false;
    for (const candidate of [...structuralCandidates(best), ...byteCandidates(best)]) {
      if (runs++ >= budget) break;
      if (candidate.model.length >= best.model.length) continue;
      const r = await exec.run(candidate);
      if (crashSignature(r.outcome) === signature) {
        best = { ...candidate, mutations: [...input.mutations, '(minimised)'] };
        improved = true;
        break;
      }
    }
  }
  return best;
}

function saveCrasher(outDir: string, input: FuzzInput, outcome: Extract<Outcome, { kind: 'crash' }>): string {
  mkdirSync(outDir, { recursive: true });
  const hash = createHash('sha256').update(input.model).update(JSON.stringify(filesToJson(input.files))).digest('hex').slice(0, 16);
  const file = path.join(outDir, `${hash}.onnx`);
  if (!existsSync(file)) {
    writeFileSync(file, input.model);
    const root = path.resolve(FUZZ_DIR, '..');
    const sidecar: Sidecar = {
      crash: { reason: outcome.reason, name: outcome.name, message: outcome.message, stack: outcome.stack?.split(root).join('<repo>') },
      seed: input.seed,
      mutations: input.mutations,
      ...(input.files.length ? { files: filesToJson(input.files) } : {}),
    };
    writeFileSync(path.join(outDir, `${hash}.json`), `${JSON.stringify(sidecar, null, 2)}\n`);
  }
  return file;
}

// ---------------------------------------------------------------------------------------------
// The loop

export async function runFuzz(options: FuzzOptions = {}): Promise<FuzzStats> {
  const seconds = options.seconds ?? 60;
  const seed = options.seed ?? Date.now() % 2 ** 31;
  const log = options.log ?? (() => {});
  const rng = new Rng(seed);
  const seeds = loadSeeds({ conformance: options.conformance });
  const exec = new Executor(options);
  const stats: FuzzStats = {
    executions: 0, seconds: 0, execsPerSecond: 0, outcomes: {}, internalWrapped: {}, crashers: [],
    slowest: { ms: 0, seed: '', mutations: [] }, workerRestarts: 0,
  };
  const seen = new Set<string>();
  log(`fuzz: seed ${seed}, ${seeds.length} seeds (${seeds.filter((s) => s.slow).length} slow), ${seconds} s`);
  const start = performance.now();
  const deadline = start + seconds * 1000;
  let lastReport = start;
  let harnessErrors = 0;
  try {
    while (performance.now() < deadline && (options.maxExecs === undefined || stats.executions < options.maxExecs)) {
      const s = pickSeed(seeds, rng, options.slowSeedRate ?? 0.03);
      const input = mutate(s.load(), s.name, rng);
      let result: ExecResult;
      try {
        result = await exec.run(input);
      } catch (e) {
        // the harness itself failed (temp folder, worker start): not the compiler's fault, but say so
        log(`harness error on ${s.name}: ${(e as Error).message}`);
        if (++harnessErrors >= 20) throw new Error(`the fuzz harness failed 20 times in a row; last: ${(e as Error).message}`, { cause: e });
        continue;
      }
      harnessErrors = 0;
      stats.executions++;
      const key = outcomeKey(result.outcome);
      stats.outcomes[key] = (stats.outcomes[key] ?? 0) + 1;
      if (result.ms > stats.slowest.ms) stats.slowest = { ms: result.ms, seed: input.seed, mutations: input.mutations };
      if (result.outcome.kind === 'error' && result.outcome.internal) {
        const site = result.outcome.internal.replace(/: .*/s, '');
        const entry = stats.internalWrapped[site] ??= { count: 0, example: `${result.outcome.message.slice(0, 300)} [seed ${input.seed}; ${input.mutations.join(' | ')}]` };
        entry.count++;
      }
      if (result.outcome.kind === 'crash') {
        const signature = crashSignature(result.outcome);
        if (!seen.has(signature)) {
          seen.add(signature);
          log(`CRASH ${signature}: ${result.outcome.message.slice(0, 200)} [seed ${input.seed}; ${input.mutations.join(' | ')}]`);
          const expensive = result.outcome.reason !== 'exception';
          const small = expensive ? input : await minimize(exec, input, signature, options.minimizeBudget ?? 40);
          const record: CrashRecord = { signature, outcome: result.outcome, seed: input.seed, mutations: small.mutations, bytes: small.model.length };
          if (options.outDir) record.file = saveCrasher(options.outDir, small, result.outcome);
          stats.crashers.push(record);
        }
      }
      const now = performance.now();
      if (now - lastReport > 10_000) {
        lastReport = now;
        log(`  ${stats.executions} execs, ${(stats.executions / ((now - start) / 1000)).toFixed(0)}/s, ${stats.crashers.length} crashers`);
      }
    }
  } finally {
    stats.workerRestarts = exec.restarts;
    await exec.close();
  }
  stats.seconds = (performance.now() - start) / 1000;
  stats.execsPerSecond = stats.executions / Math.max(stats.seconds, 1e-9);
  return stats;
}

export function formatStats(stats: FuzzStats): string {
  const lines: string[] = [];
  lines.push('');
  lines.push(`executions      ${stats.executions}`);
  lines.push(`seconds         ${stats.seconds.toFixed(1)}`);
  lines.push(`executions/s    ${stats.execsPerSecond.toFixed(1)}`);
  lines.push(`worker restarts ${stats.workerRestarts}`);
  lines.push(`slowest         ${stats.slowest.ms.toFixed(0)} ms (${stats.slowest.seed})`);
  lines.push('');
  lines.push('outcome                   count');
  for (const [k, n] of Object.entries(stats.outcomes).sort((a, b) => b[1] - a[1])) lines.push(`${k.padEnd(24)} ${String(n).padStart(7)}`);
  const wrapped = Object.entries(stats.internalWrapped).sort((a, b) => b[1].count - a[1].count);
  if (wrapped.length) {
    lines.push('');
    lines.push('classified, but wrapping an internal exception (op robustness gaps):');
    for (const [site, { count, example }] of wrapped) lines.push(`  ${String(count).padStart(6)}  ${site}\n          e.g. ${example}`);
  }
  lines.push('');
  lines.push(`crashers found  ${stats.crashers.length}`);
  for (const c of stats.crashers) {
    lines.push(`  ${c.signature}  ${c.outcome.message.slice(0, 160)}`);
    lines.push(`    seed ${c.seed}; ${c.mutations.join(' | ')}${c.file ? `\n    saved ${c.file}` : ''}`);
    if (c.outcome.stack) lines.push(`    at ${topFrame(c.outcome.stack)}`);
  }
  return lines.join('\n');
}

function parseArgs(argv: readonly string[]): FuzzOptions & CommonFuzzOptions {
  const out: FuzzOptions & CommonFuzzOptions = { outDir: path.join(FUZZ_DIR, 'crashers') };
  return parseFuzzArgs(argv, 'onnx', out, (o, a) => {
    if (a !== '--no-conformance') return false;
    o.conformance = false;
    return true;
  });
}

async function main(): Promise<void> {
  const argv = process.argv.slice(2);
  const target = argv.indexOf('--target');
  if (target >= 0 && argv[target + 1] === 'bundle') {
    const { bundleFuzzMain } = await import('./bundle-fuzz.js');
    await bundleFuzzMain(argv);
    return;
  }
  let options: ReturnType<typeof parseArgs>;
  try {
    options = parseArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    process.exitCode = 2;
    return;
  }
  if (options.help) {
    console.log('usage: tsx fuzz/fuzz.ts [--target onnx] [--seconds 60] [--seed N] [--out fuzz/crashers | --no-save] [--max-execs N] [--timeout-ms 10000] [--no-conformance] [--runs-log fuzz/RUNS.md]\n' +
      '       tsx fuzz/fuzz.ts --target bundle --help');
    return;
  }
  options.seed ??= Date.now() % 2 ** 31;
  const stats = await runFuzz({ ...options, log: (line) => console.log(line) });
  console.log(formatStats(stats));
  if (options.runsLog) {
    const { logRun } = await import('./bundle-fuzz.js');
    logRun(options.runsLog, { target: 'onnx', seed: options.seed, seconds: stats.seconds, executions: stats.executions, crashers: stats.crashers.length, command: `npx tsx fuzz/fuzz.ts ${argv.join(' ')}` });
  }
  process.exitCode = stats.crashers.length > 0 ? 1 : 0;
}

if (isMainThread && process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void main();
}
