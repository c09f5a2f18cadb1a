import { join } from 'node:path';
import type { Argv } from 'yargs';
import { FlashmemError, quoteName } from '../errors.js';
import type { DType } from '../ir/types.js';
import { inputsFromDir, randomInputs } from './inputs.js';
import { safeFileName, writeNpy, type NumericArray } from './npy.js';
import { openBundle, type RuntimeSession } from './bundle-session.js';
import { guarded, startWatchdog, type Watchdog } from './watchdog.js';
import { rawPublicKeyBase64 } from '../bundle/sign.js';
import { readPublicKeyFiles } from './sign-command.js';
import { positiveCount } from './verify-command.js';
import { makeOutputFolder, writeOutputFile } from '../output-file.js';
import { keepAlive } from '../target/webgpu.js';
import { mib, parseSize } from './compile-command.js';
import type { Manifest } from '../../schemas/manifest.js';

export function runCommand(cli: Argv): void {
  cli.command(
    'run <bundle>',
    'run a compiled bundle on WebGPU (Dawn) and print or save its outputs',
    (y) => y
      .positional('bundle', { type: 'string', demandOption: true, describe: 'bundle folder written by flashmemc compile' })
      .option('inputs', { type: 'string', describe: 'folder with <input name>.npy or input_<i>.pb files' })
      .option('random-inputs', { type: 'boolean', default: false, describe: 'use deterministic random inputs' })
      .option('seed', { type: 'number', default: 0, describe: 'seed for --random-inputs' })
      .option('model', { type: 'string', describe: 'model to run in a multi-model bundle (default: the first)' })
      .option('sequence', { type: 'string', describe: 'multi-model bundles: run these models in this order (e.g. a,b,c,b; --repeat passes), with random inputs, and report every call' })
      .option('save-outputs', { type: 'string', describe: 'write <output name>.npy files into this folder' })
      .option('repeat', { type: 'number', default: 1, describe: 'runs to time (the first is cold)' })
      .option('backend', { type: 'string', describe: 'Dawn backend (vulkan, opengles...); default FLASHMEM_WEBGPU_BACKEND or the first that works' })
      .option('dawn-toggles', { type: 'string', describe: "Dawn toggles, comma-separated ('-name' disables one), e.g. allow_unsafe_apis; default FLASHMEM_DAWN_TOGGLES" })
      .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' })
      .option('generate', { type: 'string', describe: 'decoder bundles: greedy generation after these prompt token ids (e.g. 464,2068,7586)' })
      .option('max-new-tokens', { type: 'number', default: 32, describe: 'with --generate: tokens to generate' })
      .option('streamed-weights', { choices: ['memory', 'storage'] as const, default: 'memory' as const, describe: 'streamed weights: read once and kept in host memory, or re-read by byte range on every run' })
      .option('uploads', { choices: ['queue', 'mapped'] as const, default: 'queue' as const, describe: 'streamed weights reach the GPU by queue.writeBuffer, or by copies from host-visible staging buffers filled once at load (one submission per run)' })
      .option('timeout', { type: 'number', describe: 'ms a run may take; after it the device is destroyed and run fails with FM_TIMEOUT' })
      .option('max-gpu-bytes', { type: 'string', describe: 'refuse a bundle that allocates more GPU memory than this: bytes or KiB/MiB/GiB' })
      .option('key', { type: 'string', array: true, describe: 'trusted public key file (flashmemc keygen; repeatable): refuse bundles not signed by one of them' })
      .option('timeline', { type: 'string', describe: 'write the last run\'s per-step timeline (and the load\'s) to this JSON file' })
      .check((a) => {
        if (a.generate !== undefined) return true;
        if (!a.inputs === !a['random-inputs']) throw new FlashmemError('FM_BAD_ARGUMENT', 'give exactly one of --inputs <dir> or --random-inputs');
        if (!Number.isInteger(a.repeat) || a.repeat < 1) throw new FlashmemError('FM_BAD_ARGUMENT', '--repeat must be a positive integer');
        if (a.sequence !== undefined && (a.model !== undefined || a.inputs !== undefined)) throw new FlashmemError('FM_BAD_ARGUMENT', '--sequence runs each model with --random-inputs: drop --model and --inputs');
        return true;
      }),
    async (args) => {
      const started = performance.now();
      const { session, manifest, device, foreignRuntime } = await openBundle(args.bundle, { backend: args.backend, dawnToggles: args['dawn-toggles']?.split(',').map((t) => t.trim()).filter((t) => t !== ''), load: { streamedWeights: args['streamed-weights'], gpuTimeline: args.timeline !== undefined, uploads: args.uploads,
        trustedKeys: args.key && readPublicKeyFiles(args.key).map(rawPublicKeyBase64),
        runTimeoutMs: positiveCount(args.timeout, '--timeout'),
        maxGpuBytes: args['max-gpu-bytes'] === undefined ? undefined : parseSize(args['max-gpu-bytes']),
      } });
      // the bundle ran with flashmemc's own runtime regardless; say that its runtime.js is not ours
      if (foreignRuntime) process.stderr.write(`flashmemc: warning FM_BUNDLE_FOREIGN: ${foreignRuntime}\n`);
      const watchdog = args.timeout === undefined ? undefined : startWatchdog();
      if (watchdog) guardRuns(session, watchdog, args.timeout!, args['max-new-tokens']);
      try {
        if (args.generate !== undefined) {
          await runGenerate(session as unknown as GeneratingSession, args.generate, args['max-new-tokens'], args.json, performance.now() - started);
          return;
        }
        if (args.sequence !== undefined) {
          await runSequence(session, manifest, args.sequence.split(',').map((n) => n.trim()), args.repeat, args.seed, args.json, performance.now() - started);
          const stats = session.stats();
          if (args.timeline) writeOutputFile(args.timeline, `${JSON.stringify({ run: stats.timeline, load: stats.loadTimeline }, null, 1)}\n`, '--timeline');
          return;
        }
        const model = args.model ? manifest.models.find((m) => m.name === args.model) : manifest.models[0];
        if (!model) throw new FlashmemError('FM_BAD_ARGUMENT', `no model ${quoteName(args.model!)} in the bundle; it has ${manifest.models.map((m) => m.name).join(', ')}`);
        const inputs = args.inputs ? inputsFromDir(model, args.inputs) : randomInputs(model, args.seed);
        const runTimes: number[] = [];
        let outputs: Record<string, NumericArray> = {};
        for (let i = 0; i < args.repeat; i++) {
          const t = performance.now();
          outputs = await keepAlive(manifest.models.length > 1 ? session.run(model.name, inputs) : session.run(inputs));
          runTimes.push(performance.now() - t);
        }
        const stats = session.stats();
        if (args['save-outputs']) saveOutputs(args['save-outputs'], model.outputs, outputs);
        if (args.timeline) writeOutputFile(args.timeline, `${JSON.stringify({ run: stats.timeline, load: stats.loadTimeline }, null, 1)}\n`, '--timeline');
        const report = {
          model: model.name,
          outputs: model.outputs.map((o) => ({ name: o.name, dtype: o.dtype, shape: o.shape, summary: summarize(outputs[o.name]!) })),
          peakGpuBytes: stats.peakGpuBytes,
          plannedPeakGpuBytes: stats.plannedPeakGpuBytes as number,
          hostStagingBytes: stats.hostStagingBytes as number,
          timings: { loadMs: stats.loadMs, runMs: runTimes, firstOutputMs: stats.loadMs + runTimes[0]!, totalMs: performance.now() - started },
        };
        printReport(report, args.json);
      } finally {
        await watchdog?.stop();
        session.dispose();
        device.destroy();
      }
    },
  );
}

/**
 * Arms the watchdog around every run (and every generate(), for all its steps) of the session:
 * where the backend blocks the thread on a hostile kernel, the runtime's runTimeoutMs cannot fire.
 */
function guardRuns(session: RuntimeSession, watchdog: Watchdog, ms: number, maxNewTokens: number): void {
  const run = session.run.bind(session) as (...args: unknown[]) => Promise<Record<string, NumericArray>>;
  (session as { run: unknown }).run = (...args: unknown[]) => guarded(watchdog, ms, 'a run', () => run(...args));
  const generating = session as unknown as Partial<GeneratingSession>;
  const generate = generating.generate?.bind(session);
  if (generate) generating.generate = (prompt, options) => guarded(watchdog, ms * (maxNewTokens + 1), 'generation', () => generate(prompt, options));
}

interface GeneratingSession {
  generate(prompt: number[], options: { maxNewTokens: number }): Promise<{ tokens: number[]; prefillMs: number; decodeMs: number; tokensPerSecond: number }>;
  stats(): { peakGpuBytes: number; plannedPeakGpuBytes?: unknown; loadMs: number };
}

/** Greedy generation with a decoder bundle: the tokens, tokens/s and peak GPU bytes. */
async function runGenerate(session: GeneratingSession, promptText: string, maxNewTokens: number, json: boolean, loadMs: number): Promise<void> {
  const prompt = promptText.split(',').map((t) => Number(t.trim()));
  if (prompt.some((t) => !Number.isInteger(t) || t < 0)) throw new FlashmemError('FM_BAD_ARGUMENT', `--generate ${JSON.stringify(promptText)} must be comma-separated token ids`);
  if (!Number.isInteger(maxNewTokens) || maxNewTokens < 1) throw new FlashmemError('FM_BAD_ARGUMENT', '--max-new-tokens must be a positive integer');
  if (typeof (session as { generate?: unknown }).generate !== 'function') throw new FlashmemError('FM_BAD_ARGUMENT', 'the bundle\'s runtime has no generate(): recompile it with this flashmemc');
  const result = await keepAlive(session.generate(prompt, { maxNewTokens }));
  const stats = session.stats();
  const report = { prompt, ...result, loadMs, peakGpuBytes: stats.peakGpuBytes, plannedPeakGpuBytes: stats.plannedPeakGpuBytes as number };
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  process.stdout.write(`tokens: ${result.tokens.join(',')}\n`);
  process.stdout.write(`prefill ${result.prefillMs.toFixed(1)} ms, then ${result.tokensPerSecond.toFixed(2)} tokens/s; peak GPU ${mib(stats.peakGpuBytes)} (planned ${mib(report.plannedPeakGpuBytes)}); load ${loadMs.toFixed(0)} ms\n`);
}

interface CallFigure { model: string; plan: string; sequenceCall?: number; reloaded: boolean; ms: number; uploadedBytes: number }

/** Runs the models in the given order `repeat` times and reports each call (stats().calls) and the peak GPU bytes. */
async function runSequence(session: Awaited<ReturnType<typeof openBundle>>['session'], manifest: Manifest, order: string[], repeat: number, seed: number, json: boolean, loadMs: number): Promise<void> {
  const byName = new Map(manifest.models.map((m) => [m.name, m]));
  const unknown = order.find((name) => !byName.has(name));
  if (unknown !== undefined) throw new FlashmemError('FM_BAD_ARGUMENT', `--sequence names model ${quoteName(unknown)}; the bundle has ${manifest.models.map((m) => m.name).join(', ')}`);
  const inputs = new Map(order.map((name) => [name, randomInputs(byName.get(name)!, seed)]));
  const started = performance.now();
  for (let pass = 0; pass < repeat; pass++) {
    for (const name of order) await keepAlive(session.run(name, inputs.get(name)!));
  }
  const totalMs = performance.now() - started;
  const stats = session.stats();
  const calls = (stats.calls as CallFigure[]).slice(-order.length * repeat);
  const report = { order, passes: repeat, loadMs, totalMs, peakGpuBytes: stats.peakGpuBytes, plannedPeakGpuBytes: stats.plannedPeakGpuBytes as number, calls };
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  for (const c of calls) {
    const plan = c.plan === 'sequence' ? `sequence call ${c.sequenceCall}` : `${c.plan} plan${c.reloaded ? ' (reloaded)' : ''}`;
    process.stdout.write(`${c.model.padEnd(16)} ${c.ms.toFixed(1).padStart(9)} ms  ${mib(c.uploadedBytes).padStart(12)} uploaded  ${plan}\n`);
  }
  process.stdout.write(`${calls.length} calls in ${totalMs.toFixed(1)} ms; peak GPU ${mib(report.peakGpuBytes)} (planned ${mib(report.plannedPeakGpuBytes)}); load ${loadMs.toFixed(1)} ms\n`);
}

function saveOutputs(dir: string, signature: { name: string; dtype: string; shape: number[] }[], outputs: Record<string, NumericArray>): void {
  makeOutputFolder(dir, '--save-outputs');
  const used = new Set<string>();
  for (const sig of signature) {
    let file = safeFileName(sig.name);
    for (let i = 1; used.has(file); i++) file = `${safeFileName(sig.name)}_${i}`;
    used.add(file);
    writeOutputFile(join(dir, `${file}.npy`), writeNpy({ dtype: sig.dtype as DType, shape: sig.shape, data: outputs[sig.name]! }), '--save-outputs');
  }
}

function summarize(data: NumericArray): { min: number; max: number; mean: number; first: number[] } {
  const values = Array.from(data as ArrayLike<number | bigint>, Number);
  let min = Infinity, max = -Infinity, sum = 0;
  for (const v of values) {
    min = Math.min(min, v);
    max = Math.max(max, v);
    sum += v;
  }
  return { min, max, mean: values.length ? sum / values.length : 0, first: values.slice(0, 5) };
}

type Report = {
  model: string;
  outputs: { name: string; dtype: string; shape: number[]; summary: ReturnType<typeof summarize> }[];
  peakGpuBytes: number;
  plannedPeakGpuBytes: number;
  hostStagingBytes: number;
  timings: { loadMs: number; runMs: number[]; firstOutputMs: number; totalMs: number };
};

function printReport(report: Report, json: boolean): void {
  if (json) {
    process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
    return;
  }
  for (const o of report.outputs) {
    const s = o.summary;
    process.stdout.write(`${JSON.stringify(o.name)} ${o.dtype}[${o.shape}] min ${s.min.toPrecision(5)} max ${s.max.toPrecision(5)} mean ${s.mean.toPrecision(5)} first [${s.first.map((v) => v.toPrecision(5)).join(', ')}]\n`);
  }
  const runs = report.timings.runMs.map((t) => t.toFixed(1)).join(', ');
  process.stdout.write(`peak GPU ${mib(report.peakGpuBytes)} (planned ${mib(report.plannedPeakGpuBytes)}); load ${report.timings.loadMs.toFixed(1)} ms; runs [${runs}] ms\n`);
}
