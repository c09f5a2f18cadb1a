/**
 * The bundle fuzzer: an attacker who controls a bundle completely and recomputes every sha256.
 *
 *   npx tsx fuzz/bundle-fuzz.ts --seconds 60 [--seed N] [--max-execs N] [--gpu-rate 0.01] [--out fuzz/crashers | --no-save]
 *   npx tsx fuzz/fuzz.ts --target bundle ...      (the same)
 *   npm run fuzz:bundle
 *
 * Seeds (bundle-seeds.ts: the test fixtures and the mini-resnet example compiled at start) are
 * mutated at the structure level (bundle-mutate.ts) and rehashed as an attacker would; each mutant
 * is written to its own temp folder (unchanged files hard-linked from the seed's copy) and verified
 * in a worker thread by verifyBundleDir and the package runtime's verifyBundle, with a differential
 * check of the two schema validators; a sample (--gpu-rate) of those that pass is loaded and run
 * once on the software GPU in a child process, with runTimeoutMs and maxGpuBytes (bundle-exec.ts).
 * Outcomes: ok, an FM_* error (counted by code), or a crasher: an exception without an FM_* code,
 * an FM_* error wrapping an engine error from our code, a schema disagreement, a hang, a memory
 * blow-up, or a session whose peak GPU bytes exceed what verification reported. Crashers are
 * minimised (mutations dropped) and saved as fuzz/crashers/bundle-<hash>/ (bundle-cases.ts).
 * Exit code 1 when crashers were found.
 */
import { appendFileSync, existsSync, linkSync, mkdirSync, rmSync, unlinkSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { parseFuzzArgs, type CommonFuzzOptions } from './args.js';
import { fileURLToPath } from 'node:url';
import { isMainThread } from 'node:worker_threads';
import { BundleExecutor, bundleCrashSignature, type BundleExecutorOptions, type BundleOutcome, type GpuResult, type VerifyResult } from './bundle-exec.js';
import { buildMutant, describeMutant, mutateBundle, type BundleMutant } from './bundle-mutate.js';
import { buildBundleSeeds, type BundleSeed } from './bundle-seeds.js';
import { filesHash, saveCase, type BundleCaseSidecar } from './bundle-cases.js';
import { fastTmpRoot, topFrame } from './exec.js';
import { Rng } from './mutate.js';
import { FUZZ_DIR } from './seeds.js';

export interface BundleFuzzOptions extends BundleExecutorOptions {
  /** wall-clock budget in seconds (default 60) */
  seconds?: number;
  /** stop after this many executions */
  maxExecs?: number;
  seed?: number;
  /** probability that a mutant which passed verification is also loaded and run on the GPU (default 0: verification only) */
  gpuRate?: number;
  /** fixtures only: no mini-resnet, sequence or decoder seeds (no compile at start) */
  quickSeeds?: boolean;
  /** where crashers are saved; undefined: not saved */
  outDir?: string;
  /** save one mutant of a fixture seed per new (outcome, mutation kind) here, as a corpus case (at most corpusLimit) */
  corpusDir?: string;
  corpusLimit?: number;
  /** executions per minimisation of one crasher (default 30) */
  minimizeBudget?: number;
  log?: (line: string) => void;
  /** tests: only these seeds */
  seedFilter?: (name: string) => boolean;
  /**
   * verifications in flight at once, each in its own worker (default 1). Verification mostly waits
   * for file reads and WebCrypto digests on the libuv thread pool, so 2-3 keep one core busy
   * instead of leaving it idle; GPU executions are always one at a time.
   */
  jobs?: number;
}

export interface BundleCrashRecord {
  signature: string;
  phase: 'verifyBundleDir' | 'verifyBundle' | 'gpu';
  outcome: Extract<BundleOutcome, { kind: 'crash' }>;
  seed: string;
  mutations: string[];
  dir?: string;
}

export interface BundleFuzzStats {
  executions: number;
  seconds: number;
  execsPerSecond: number;
  /** verifyBundleDir: 'ok', an FM_* code, or 'crash:<reason>' */
  outcomes: Record<string, number>;
  /** the own runtime's verifyBundle */
  runtimeOutcomes: Record<string, number>;
  /** loadBundle + run on the GPU ('blocked': the GPU work held the thread past the deadline, a limit of the software GPU) */
  gpuOutcomes: Record<string, number>;
  /** a few distinct messages (digits and quoted names elided) of each FM_* code the GPU step gave, to review */
  gpuMessages: Record<string, Record<string, number>>;
  gpuExecutions: number;
  gpuSeconds: number;
  /** mutants the zod schemas reject only by a refinement the runtime's JSON Schema cannot express */
  refinementOnly: number;
  bySeed: Record<string, number>;
  crashers: BundleCrashRecord[];
  slowest: { ms: number; seed: string; mutations: string[] };
  workerRestarts: number;
  gpuRestarts: number;
  corpusSaved: number;
}

const key = (o: BundleOutcome) => (o.kind === 'ok' || o.kind === 'blocked' ? o.kind : o.kind === 'error' ? o.code : `crash:${o.reason}`);
const bump = (r: Record<string, number>, k: string) => { r[k] = (r[k] ?? 0) + 1; };

// ---------------------------------------------------------------------------------------------
// Materialising a mutant

/** Writes each seed once under `root`; mutants hard-link its unchanged files. */
function writeSeedDirs(root: string, seeds: readonly BundleSeed[]): Map<string, string> {
  const dirs = new Map<string, string>();
  seeds.forEach((seed, i) => {
    const dir = path.join(root, 'seeds', String(i));
    for (const [p, b] of seed.files) {
      mkdirSync(path.dirname(path.join(dir, p)), { recursive: true });
      writeFileSync(path.join(dir, p), b);
    }
    dirs.set(seed.name, dir);
  });
  return dirs;
}

/**
 * A lane's working copy of a seed: every file hard-linked from the seed's folder, once. A mutant is
 * applied to it in place (changed files unlinked and written, missing ones unlinked, extra ones
 * added) and undone afterwards: a handful of file operations per execution instead of a folder of
 * links. Hard-linked files are never written through (that would change the seed's copy).
 */
class WorkingCopy {
  private clean = false;
  constructor(readonly dir: string, private readonly seed: BundleSeed, private readonly seedDir: string) {}

  private reset(): void {
    rmSync(this.dir, { recursive: true, force: true });
    for (const p of this.seed.files.keys()) {
      mkdirSync(path.dirname(path.join(this.dir, p)), { recursive: true });
      linkSync(path.join(this.seedDir, p), path.join(this.dir, p));
    }
    this.clean = true;
  }

  /** Applies `mutant`; returns the function that undoes it. */
  apply(mutant: BundleMutant): () => void {
    if (!this.clean) this.reset();
    this.clean = false;
    const undo: (() => void)[] = [];
    try {
      for (const [p, b] of mutant.files) {
        const original = this.seed.files.get(p);
        if (original === b) continue;
        const target = path.join(this.dir, p);
        if (original) {
          unlinkSync(target);
          undo.push(() => { unlinkSync(target); linkSync(path.join(this.seedDir, p), target); });
        } else {
          const parent = path.dirname(target);
          if (!existsSync(parent)) {
            mkdirSync(parent, { recursive: true });
            undo.push(() => rmSync(parent, { recursive: true, force: true }));
          }
          undo.push(() => unlinkSync(target));
        }
        writeFileSync(target, b);
      }
      for (const p of this.seed.files.keys()) {
        if (mutant.files.has(p)) continue;
        const target = path.join(this.dir, p);
        unlinkSync(target);
        undo.push(() => linkSync(path.join(this.seedDir, p), target));
      }
    } catch (e) {
      this.clean = false;
      throw e;
    }
    return () => {
      try {
        for (let i = undo.length - 1; i >= 0; i--) undo[i]!();
        this.clean = true;
      } catch {
        // rebuilt before the next use
        this.clean = false;
      }
    };
  }
}

// ---------------------------------------------------------------------------------------------
// The loop

interface Execution { verify: VerifyResult; gpu?: GpuResult }

function firstCrash(e: Execution): { phase: BundleCrashRecord['phase']; outcome: Extract<BundleOutcome, { kind: 'crash' }> } | undefined {
  if (e.verify.dir.kind === 'crash') return { phase: 'verifyBundleDir', outcome: e.verify.dir };
  if (e.verify.runtime.kind === 'crash') return { phase: 'verifyBundle', outcome: e.verify.runtime };
  if (e.gpu?.outcome.kind === 'crash') return { phase: 'gpu', outcome: e.gpu.outcome };
  return undefined;
}

export async function runBundleFuzz(options: BundleFuzzOptions = {}): Promise<BundleFuzzStats> {
  const seconds = options.seconds ?? 60;
  const seedValue = options.seed ?? Date.now() % 2 ** 31;
  const log = options.log ?? (() => {});
  const rng = new Rng(seedValue);
  // GPU sampling has its own stream: the mutants of a seed do not depend on --gpu-rate
  const gpuRng = new Rng(seedValue ^ 0x5bd1e995);
  const gpuRate = options.gpuRate ?? 0;
  const tmpRoot = fastTmpRoot('flashmemc-bundle-fuzz-');
  const jobs = Math.max(1, Math.trunc(options.jobs ?? 1));
  const pool = Array.from({ length: jobs }, () => new BundleExecutor(options));
  const idle = [...pool];
  // GPU executions share one child, one at a time
  const gpuExec = pool[0]!;
  let gpuQueue: Promise<unknown> = Promise.resolve();
  const runGpu = (dir: string, bytes: number): Promise<GpuResult> => {
    const r = gpuQueue.then(() => gpuExec.gpu(dir, bytes));
    gpuQueue = r.catch(() => undefined);
    return r;
  };
  const stats: BundleFuzzStats = {
    executions: 0, seconds: 0, execsPerSecond: 0, outcomes: {}, runtimeOutcomes: {}, gpuOutcomes: {}, gpuMessages: {}, gpuExecutions: 0, gpuSeconds: 0,
    refinementOnly: 0, bySeed: {}, crashers: [], slowest: { ms: 0, seed: '', mutations: [] }, workerRestarts: 0, gpuRestarts: 0, corpusSaved: 0,
  };
  const seenCorpus = new Set<string>();
  const seen = new Set<string>();
  const copies = new Map<string, WorkingCopy>();
  try {
    let seeds = await buildBundleSeeds({ quick: options.quickSeeds, workDir: path.join(tmpRoot, 'build'), log });
    if (options.seedFilter) seeds = seeds.filter((s) => options.seedFilter!(s.name));
    rmSync(path.join(tmpRoot, 'build'), { recursive: true, force: true });
    const seedDirs = writeSeedDirs(tmpRoot, seeds);
    const weighted = seeds.map((s) => [s.weight, s] as const);

    const execute = async (seed: BundleSeed, mutant: BundleMutant, gpu: boolean): Promise<Execution> => {
      const exec = idle.pop()!;
      const lane = pool.indexOf(exec);
      const copyKey = `${lane}:${seed.name}`;
      let copy = copies.get(copyKey);
      if (!copy) copies.set(copyKey, (copy = new WorkingCopy(path.join(tmpRoot, 'lanes', String(lane), String(seeds.indexOf(seed))), seed, seedDirs.get(seed.name)!)));
      const execDir = copy.dir;
      let restore = () => {};
      try {
        restore = copy.apply(mutant);
        const verify = await exec.verify(execDir);
        const passed = verify.dir.kind === 'ok' && verify.runtime.kind === 'ok' && verify.gpuBytes !== undefined;
        const result: Execution = { verify };
        if (gpu && passed) result.gpu = await runGpu(execDir, verify.gpuBytes!);
        return result;
      } finally {
        restore();
        idle.push(exec);
      }
    };

    /** drops mutations (and the attacker's slips) while the crash keeps its signature */
    const minimize = async (seed: BundleSeed, mutant: BundleMutant, signature: string, gpu: boolean): Promise<BundleMutant> => {
      let best = mutant;
      let runs = 0;
      const budget = options.minimizeBudget ?? 30;
      const same = async (candidate: BundleMutant) => {
        runs++;
        const c = firstCrash(await execute(seed, candidate, gpu));
        return c !== undefined && bundleCrashSignature(c.outcome) === signature;
      };
      const full = { rehash: 'all' as const, skipIndex: 0, syncShardSizes: true, indent: best.attacker.indent };
      if (best.attacker.rehash !== 'all' || !best.attacker.syncShardSizes) {
        const candidate = buildMutant(seed, best.mutations, full);
        if (await same(candidate)) best = candidate;
      }
      for (let i = best.mutations.length - 1; i >= 0 && runs < budget && best.mutations.length > 1; i--) {
        const candidate = buildMutant(seed, best.mutations.filter((_, k) => k !== i), best.attacker);
        if (await same(candidate)) best = candidate;
      }
      return best;
    };

    log(`bundle fuzz: seed ${seedValue}, ${seeds.length} seeds (${seeds.map((s) => s.name).join(', ')}), ${seconds} s, gpu rate ${gpuRate}`);
    const start = performance.now();
    const deadline = start + seconds * 1000;
    let lastReport = start;
    let harnessErrors = 0;
    let started = 0;
    const more = () => performance.now() < deadline && (options.maxExecs === undefined || started < options.maxExecs);
    /** what one finished execution adds to the stats (crashers are minimised here, holding up the others) */
    const record = async (seed: BundleSeed, mutant: BundleMutant, result: Execution) => {
      harnessErrors = 0;
      stats.executions++;
      bump(stats.bySeed, seed.name);
      bump(stats.outcomes, key(result.verify.dir));
      bump(stats.runtimeOutcomes, key(result.verify.runtime));
      if (result.verify.schema === 'refinement') stats.refinementOnly++;
      if (result.gpu) {
        stats.gpuExecutions++;
        stats.gpuSeconds += result.gpu.ms / 1000;
        bump(stats.gpuOutcomes, key(result.gpu.outcome));
        const o = result.gpu.outcome;
        if (o.kind === 'error') {
          const messages = (stats.gpuMessages[o.code] ??= {});
          const shape = o.message.replace(/"(?:[^"\\]|\\.)*"/g, '"…"').replace(/\d+/g, 'N').slice(0, 200);
          if (messages[shape] !== undefined || Object.keys(messages).length < 12) bump(messages, shape);
        }
      }
      const ms = result.verify.ms + (result.gpu?.ms ?? 0);
      if (ms > stats.slowest.ms) stats.slowest = { ms, seed: seed.name, mutations: describeMutant(mutant) };
      const crash = firstCrash(result);
      if (crash) {
        const signature = `${crash.phase}:${bundleCrashSignature(crash.outcome)}`;
        if (!seen.has(signature)) {
          seen.add(signature);
          log(`CRASH ${signature}: ${crash.outcome.message.slice(0, 300)} [${seed.name}; ${describeMutant(mutant).join(' | ')}]`);
          const expensive = crash.outcome.reason === 'hang' || crash.outcome.reason === 'memory';
          const small = expensive ? mutant : await minimize(seed, mutant, bundleCrashSignature(crash.outcome), crash.phase === 'gpu');
          const record: BundleCrashRecord = { signature, phase: crash.phase, outcome: crash.outcome, seed: seed.name, mutations: describeMutant(small) };
          if (options.outDir) {
            const dir = path.join(options.outDir, `bundle-${filesHash(small.files)}`);
            const root = path.resolve(FUZZ_DIR, '..');
            const sidecar: BundleCaseSidecar = {
              crash: { phase: crash.phase, reason: crash.outcome.reason, name: crash.outcome.name, message: crash.outcome.message, stack: crash.outcome.stack?.split(root).join('<repo>') },
              seed: seed.name, mutations: record.mutations,
            };
            if (!existsSync(dir)) saveCase(dir, small.files, sidecar);
            record.dir = dir;
          }
          stats.crashers.push(record);
        }
      } else if (options.corpusDir && seed.name.startsWith('fixture:') && seed.name !== 'fixture:heavy' && stats.corpusSaved < (options.corpusLimit ?? 40)) {
        // one small mutant per (outcome, first mutation kind), with the code it must keep giving
        const dirKey = key(result.verify.dir);
        const kind = (mutant.mutations[0]?.name ?? 'none').replace(/[[\]\d]+/g, '#').replace(/ :=.*| \(.*|: .*/, '').slice(0, 60);
        const k = `${dirKey}|${key(result.verify.runtime)}|${kind}`;
        if (!seenCorpus.has(k) && mutant.mutations.length === 1) {
          seenCorpus.add(k);
          const name = `${dirKey === 'ok' ? 'ok' : dirKey.replace(/^FM_(BUNDLE_)?/, '').toLowerCase()}-${filesHash(mutant.files).slice(0, 8)}`;
          const runtimeKey = key(result.verify.runtime);
          saveCase(path.join(options.corpusDir, name), mutant.files, {
            ...(dirKey === 'ok' ? { ok: true } : { code: dirKey }),
            ...(runtimeKey !== dirKey ? { runtimeCode: runtimeKey } : {}),
            category: describeMutant(mutant).join(' | ').slice(0, 300), seed: seed.name,
          });
          stats.corpusSaved++;
        }
      }
    };
    const one = async (): Promise<void> => {
      const seed = rng.weighted(weighted);
      const mutant = mutateBundle(seed, rng);
      // the heavy fixture's one kernel runs for minutes, blocking the thread on a software GPU: never on the GPU
      const gpu = gpuRate > 0 && gpuRng.chance(gpuRate) && seed.gpuFriendly;
      started++;
      let result: Execution;
      try {
        result = await execute(seed, mutant, gpu);
      } catch (e) {
        started--;
        log(`harness error on ${seed.name}: ${(e as Error).stack ?? e}`);
        if (++harnessErrors >= 20) throw new Error(`the bundle fuzz harness failed 20 times in a row; last: ${(e as Error).message}`, { cause: e });
        return;
      }
      await record(seed, mutant, result);
      const now = performance.now();
      if (now - lastReport > 10_000) {
        lastReport = now;
        log(`  ${stats.executions} execs, ${(stats.executions / ((now - start) / 1000)).toFixed(0)}/s, ${stats.gpuExecutions} on the GPU, ${stats.crashers.length} crashers`);
      }
    };
    // `jobs` lanes, each running executions one after another
    await Promise.all(Array.from({ length: jobs }, async () => {
      while (more()) await one();
    }));
    stats.seconds = (performance.now() - start) / 1000;
  } finally {
    stats.workerRestarts = pool.reduce((n, e) => n + e.restarts, 0);
    stats.gpuRestarts = gpuExec.gpuRestarts;
    await Promise.all(pool.map((e) => e.close()));
    rmSync(tmpRoot, { recursive: true, force: true });
  }
  stats.execsPerSecond = stats.executions / Math.max(stats.seconds, 1e-9);
  return stats;
}

export function formatBundleStats(stats: BundleFuzzStats): string {
  const lines: string[] = [''];
  lines.push(`executions        ${stats.executions}`);
  lines.push(`seconds           ${stats.seconds.toFixed(1)}`);
  lines.push(`executions/s      ${stats.execsPerSecond.toFixed(1)}`);
  lines.push(`GPU executions    ${stats.gpuExecutions} (${stats.gpuSeconds.toFixed(1)} s)`);
  lines.push(`worker restarts   ${stats.workerRestarts} (GPU child ${stats.gpuRestarts})`);
  lines.push(`refinement-only   ${stats.refinementOnly} (zod refinements the runtime's JSON Schema cannot express)`);
  lines.push(`slowest           ${stats.slowest.ms.toFixed(0)} ms (${stats.slowest.seed}; ${stats.slowest.mutations.join(' | ').slice(0, 200)})`);
  const table = (title: string, r: Record<string, number>) => {
    if (!Object.keys(r).length) return;
    lines.push('');
    lines.push(`${title.padEnd(26)}count`);
    for (const [k, n] of Object.entries(r).sort((a, b) => b[1] - a[1])) lines.push(`  ${k.padEnd(24)}${String(n).padStart(8)}`);
  };
  table('verifyBundleDir outcome', stats.outcomes);
  table('verifyBundle outcome', stats.runtimeOutcomes);
  table('GPU outcome', stats.gpuOutcomes);
  for (const [code, messages] of Object.entries(stats.gpuMessages)) {
    lines.push(`  ${code} messages:`);
    for (const [m, n] of Object.entries(messages).sort((a, b) => b[1] - a[1])) lines.push(`    ${String(n).padStart(6)}  ${m}`);
  }
  table('seed', stats.bySeed);
  lines.push('');
  lines.push(`crashers found    ${stats.crashers.length}`);
  for (const c of stats.crashers) {
    lines.push(`  ${c.signature}  ${c.outcome.message.slice(0, 200)}`);
    lines.push(`    ${c.seed}; ${c.mutations.join(' | ').slice(0, 400)}${c.dir ? `\n    saved ${path.relative(process.cwd(), c.dir)}` : ''}`);
    if (c.outcome.stack) lines.push(`    at ${topFrame(c.outcome.stack)}`);
  }
  return lines.join('\n');
}

/** Appends one row to the runs table (fuzz/RUNS.md), creating it with its header. */
export function logRun(file: string, row: { target: string; seed: number | string; seconds: number; executions: number; crashers: number; command: string }): void {
  if (!existsSync(file)) {
    writeFileSync(file, '# Fuzz runs\n\n| date | target | seed | seconds | executions | crashers found | command |\n|---|---|---|---|---|---|---|\n');
  }
  const date = new Date().toISOString().replace(/\.\d+Z$/, 'Z');
  appendFileSync(file, `| ${date} | ${row.target} | ${row.seed} | ${row.seconds.toFixed(0)} | ${row.executions} | ${row.crashers} | \`${row.command.replace(/\|/g, '\\|')}\` |\n`);
}

function parseArgs(argv: readonly string[]): BundleFuzzOptions & CommonFuzzOptions {
  const out: BundleFuzzOptions & CommonFuzzOptions = { outDir: path.join(FUZZ_DIR, 'crashers') };
  return parseFuzzArgs(argv, 'bundle', out, (o, a, value, num) => {
    if (a === '--gpu-rate') o.gpuRate = Math.min(1, num(value()));
    else if (a === '--run-timeout-ms') o.runTimeoutMs = num(value());
    else if (a === '--max-gpu-bytes') o.maxGpuBytes = Math.trunc(num(value()));
    else if (a === '--quick-seeds') o.quickSeeds = true;
    else if (a === '--schema-rate') o.schemaRate = Math.min(1, num(value()));
    else if (a === '--jobs') o.jobs = Math.max(1, Math.trunc(num(value())));
    else if (a === '--corpus-out') o.corpusDir = path.resolve(value());
    else if (a === '--corpus-limit') o.corpusLimit = Math.trunc(num(value()));
    else return false;
    return true;
  });
}

export async function bundleFuzzMain(argv: readonly string[]): Promise<void> {
  let options: ReturnType<typeof parseArgs>;
  try {
    options = parseArgs(argv);
  } catch (e) {
    console.error((e as Error).message);
    process.exitCode = 2;
    return;
  }
  if (options.help) {
    console.log('usage: tsx fuzz/bundle-fuzz.ts [--seconds 60] [--seed N] [--max-execs N] [--gpu-rate 0] [--run-timeout-ms 3000] [--max-gpu-bytes 268435456]\n' +
      '         [--out fuzz/crashers | --no-save] [--timeout-ms 10000] [--quick-seeds] [--corpus-out DIR [--corpus-limit 40]] [--runs-log fuzz/RUNS.md]');
    return;
  }
  options.seed ??= Date.now() % 2 ** 31;
  const stats = await runBundleFuzz({ ...options, log: (line) => console.log(line) });
  console.log(formatBundleStats(stats));
  if (options.runsLog) {
    logRun(options.runsLog, {
      target: `bundle${options.gpuRate ? ` (gpu ${options.gpuRate}, ${stats.gpuExecutions} GPU execs)` : ''}`, seed: options.seed, seconds: stats.seconds,
      executions: stats.executions, crashers: stats.crashers.length, command: `npx tsx fuzz/fuzz.ts --target bundle ${argv.filter((a) => a !== '--target' && a !== 'bundle').join(' ')}`.trim(),
    });
  }
  process.exitCode = stats.crashers.length > 0 ? 1 : 0;
}

if (isMainThread && process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  void bundleFuzzMain(process.argv.slice(2));
}
