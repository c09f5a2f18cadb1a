/**
 * `npm run bench:multi`: five distinct models called in a random order (10 calls each) under a
 * GPU memory budget of 25% of their weights, three ways:
 *   (a) joint   - one flashmemc bundle streaming under the budget, the order declared (--sequence)
 *                 and planned as one joint program;
 *   (b) all     - every model preloaded at once (five preload bundles, ignoring the budget);
 *   (c) switch  - one model resident at a time: a shared-memory preload bundle that reloads the
 *                 model's weights on every switch.
 * Reports total time, per-call latency distribution and peak GPU bytes, checks that (a) and (c)
 * give (b)'s outputs, and draws allocated GPU bytes over the sequence as an SVG chart.
 * Results: bench/results/<machine>/multi.{json,md,svg}.
 *
 *   npx tsx bench/multi.ts [--machine llvmpipe] [--calls 10] [--seed 1] [--models light|fixtures] [--profile h100-vulkan]
 *                          [--stream-path carriers|copies] [--uploads queue|mapped]
 *                                                                           compile and run here
 *   npx tsx bench/multi.ts --compile-only out/multi                          bundles for another machine
 *   node dist/bench/multi.js --run out/multi --machine h100                  run compiled bundles
 * The run phase imports only the bundle runtime loader, so it runs from dist/ with node_modules
 * trimmed to the runtime's needs (the H100 device machine).
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative, resolve } from 'node:path';
import { openBundle, type RuntimeSession } from '../compiler/cli/bundle-session.js';
import { keepAlive } from '../compiler/target/webgpu.js';
import type { Manifest } from '../schemas/manifest.js';

const MIB = 1048576;
/** --uploads mapped: streamed bytes copied from host-visible staging (LoadOptions.uploads) */
/** --stream-path copies: the joint bundle streams by direct copies (no ring, no carriers) */
const STREAM_PATH = (process.argv.includes('--stream-path') ? process.argv[process.argv.indexOf('--stream-path') + 1] : 'carriers') as 'carriers' | 'copies';
const UPLOADS = (process.argv.includes('--uploads') ? process.argv[process.argv.indexOf('--uploads') + 1] : 'queue') as 'queue' | 'mapped';

function arg(name: string, fallback?: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : fallback;
}

interface Plan {
  order: string[];
  budgetBytes: number;
  weightBytes: Record<string, number>;
  models: string[];
  compileMs: Record<string, number>;
  /** 'light' (conformance CNNs) or 'fixtures' */
  set: string;
}

// ------------------------------------------------------------------------------------ compile

/** The conformance light CNNs at their real sizes, with random weights (the same five as bench:memory). */
const LIGHT = ['squeezenet', 'shufflenet', 'inception_v1', 'densenet121', 'resnet50'];

/** The five models: the light CNNs when the conformance data is there, else small fixture models. */
async function writeModels(modelDir: string, set: string): Promise<{ name: string; path: string }[]> {
  mkdirSync(modelDir, { recursive: true });
  if (set === 'light') {
    const { randomizeConstantWeights } = await import('../test/harness/randomize.js');
    const { CONFORMANCE_DIR } = await import('../test/harness/paths.js');
    return LIGHT.map((name) => {
      const path = join(modelDir, `${name}.onnx`);
      writeFileSync(path, randomizeConstantWeights(readFileSync(join(CONFORMANCE_DIR, 'light', `light_${name}.onnx`))));
      return { name, path };
    });
  }
  const { writePipelineModels, embedderSpec } = await import('../fixtures/models/pipeline.js');
  const { miniResnetSpec } = await import('../fixtures/models/mini-resnet.js');
  const { buildModel } = await import('../fixtures/onnx-builder.js');
  const pipeline = writePipelineModels(modelDir);
  writeFileSync(join(modelDir, 'resnet.onnx'), buildModel(miniResnetSpec()));
  writeFileSync(join(modelDir, 'embedder.onnx'), buildModel(embedderSpec()));
  return [
    { name: 'detector', path: pipeline.detector }, { name: 'classifier', path: pipeline.classifier }, { name: 'recogniser', path: pipeline.recogniser },
    { name: 'resnet', path: join(modelDir, 'resnet.onnx') }, { name: 'embedder', path: join(modelDir, 'embedder.onnx') },
  ];
}

async function compileAll(dir: string, callsPerModel: number, seed: number, set: string): Promise<Plan> {
  const { compileModel } = await import('../compiler/compile.js');
  const { compileMultiContents, compileMultiModel } = await import('../compiler/compile-multi.js');
  const { resolveProfile } = await import('../compiler/profile/load.js');
  // --profile: the device profile every bundle is compiled for (kernel choices, load capacities, copy costs)
  const profile = resolveProfile(arg('profile', 'llvmpipe')!);
  const inputs = await writeModels(join(dir, 'models'), set);
  const order = shuffle(inputs.flatMap((m) => Array<string>(callsPerModel).fill(m.name)), seed);
  const preload = await compileMultiContents(inputs, { profile });
  const weightBytes = Object.fromEntries(preload.report.models.map((m) => [m.name, m.weightBytes]));
  const budgetBytes = Math.floor(Object.values(weightBytes).reduce((s, n) => s + n, 0) / 4);
  const compileMs: Record<string, number> = {};
  let t = performance.now();
  await compileMultiModel(inputs, join(dir, 'joint'), { memoryBudget: budgetBytes, sequence: order, streamPath: STREAM_PATH, profile });
  compileMs.joint = performance.now() - t;
  t = performance.now();
  for (const m of inputs) await compileModel(m.path, join(dir, `all-${m.name}`), { modelName: m.name, profile });
  compileMs.all = performance.now() - t;
  t = performance.now();
  await compileMultiModel(inputs, join(dir, 'switch'), { profile });
  compileMs.switch = performance.now() - t;
  const plan: Plan = { order, budgetBytes, weightBytes, models: inputs.map((m) => m.name), compileMs, set };
  writeFileSync(join(dir, 'plan.json'), `${JSON.stringify(plan, null, 2)}\n`);
  return plan;
}

/** deterministic Fisher-Yates */
function shuffle<T>(items: T[], seed: number): T[] {
  const out = [...items];
  let state = seed >>> 0 || 1;
  const next = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
  for (let i = out.length - 1; i > 0; i--) {
    const j = Math.floor(next() * (i + 1));
    [out[i], out[j]] = [out[j]!, out[i]!];
  }
  return out;
}

// ---------------------------------------------------------------------------------------- run

type System = 'joint' | 'all' | 'switch';

interface SystemResult {
  system: System;
  loadMs: number;
  totalMs: number;
  callMs: number[];
  peakGpuBytes: number;
  /** (elapsed ms, allocated GPU bytes) after load and after each call */
  memory: [number, number][];
  /** largest |difference| from system 'all' over every output of every call */
  maxAbsDiffVsAll: number;
  /** calls served by a reload (switch) or by the declared sequence (joint) */
  plans: Record<string, number>;
}

/** a deterministic input per model, from its signature */
function inputsFor(manifest: Manifest, model: string): Record<string, Float32Array> {
  const info = manifest.models.find((m) => m.name === model)!;
  return Object.fromEntries(info.inputs.map((input, i) => {
    const data = new Float32Array(input.shape.reduce((a, b) => a * b, 1));
    let state = 12345 + i * 7919 + model.length;
    for (let k = 0; k < data.length; k++) data[k] = ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32) * 2 - 1;
    return [input.name, data];
  }));
}

interface Opened { sessions: Map<string, RuntimeSession>; manifests: Map<string, Manifest>; dispose(): void; loadMs: number }

async function openSystem(dir: string, system: System, models: string[], device: GPUDevice): Promise<Opened> {
  const start = performance.now();
  const sessions = new Map<string, RuntimeSession>();
  const manifests = new Map<string, Manifest>();
  const bundles = system === 'all' ? models.map((m) => [m, join(dir, `all-${m}`)]) : [[null, join(dir, system)]];
  for (const [model, bundle] of bundles) {
    const { session, manifest } = await openBundle(bundle!, { device, load: { uploads: UPLOADS } });
    for (const m of model ? [model] : manifest.models.map((x) => x.name)) {
      sessions.set(m, session);
      manifests.set(m, manifest);
    }
  }
  const unique = [...new Set(sessions.values())];
  return { sessions, manifests, loadMs: performance.now() - start, dispose: () => unique.forEach((s) => s.dispose()) };
}

const liveBytes = (opened: Opened) => [...new Set(opened.sessions.values())].reduce((s, x) => s + x.stats().liveGpuBytes, 0);

async function runSystem(dir: string, system: System, plan: Plan, device: GPUDevice, reference?: Map<number, Record<string, ArrayLike<number>>>): Promise<{ result: SystemResult; outputs: Map<number, Record<string, ArrayLike<number>>> }> {
  const opened = await openSystem(dir, system, plan.models, device);
  try {
    const run = (model: string) => {
      const session = opened.sessions.get(model)!;
      const inputs = inputsFor(opened.manifests.get(model)!, model);
      return keepAlive(opened.manifests.get(model)!.models.length > 1 ? session.run(model, inputs) : session.run(inputs));
    };
    // warm-up pass: first dispatches compile shaders (Mesa) and fault in memory
    for (const model of plan.order) await run(model);
    const callMs: number[] = [];
    const outputs = new Map<number, Record<string, ArrayLike<number>>>();
    const memory: [number, number][] = [[0, liveBytes(opened)]];
    const start = performance.now();
    for (const [i, model] of plan.order.entries()) {
      const t = performance.now();
      outputs.set(i, await run(model) as Record<string, ArrayLike<number>>);
      callMs.push(performance.now() - t);
      memory.push([performance.now() - start, liveBytes(opened)]);
    }
    const totalMs = performance.now() - start;
    let maxAbsDiffVsAll = 0;
    for (const [i, out] of outputs) {
      for (const [name, values] of Object.entries(out)) {
        const expected = reference?.get(i)?.[name];
        if (!expected) continue;
        for (let k = 0; k < values.length; k++) maxAbsDiffVsAll = Math.max(maxAbsDiffVsAll, Math.abs(Number(values[k]) - Number(expected[k])));
      }
    }
    const plans: Record<string, number> = {};
    for (const session of new Set(opened.sessions.values())) {
      // the warm-up pass and the timed pass made the same calls: count the second half
      const calls = session.stats().calls as { plan: string; reloaded: boolean }[];
      for (const call of calls.slice(calls.length / 2)) {
        const key = call.reloaded ? `${call.plan}+reload` : call.plan;
        plans[key] = (plans[key] ?? 0) + 1;
      }
    }
    const peakGpuBytes = [...new Set(opened.sessions.values())].reduce((s, x) => s + x.stats().peakGpuBytes, 0);
    return { result: { system, loadMs: opened.loadMs, totalMs, callMs, peakGpuBytes, memory, maxAbsDiffVsAll, plans }, outputs };
  } finally {
    opened.dispose();
  }
}

// ------------------------------------------------------------------------------------- report

const percentile = (xs: number[], p: number) => [...xs].sort((a, b) => a - b)[Math.min(xs.length - 1, Math.floor(p * xs.length))] ?? 0;

function markdown(machine: string, device: string, plan: Plan, results: SystemResult[]): string {
  const weights = Object.values(plan.weightBytes).reduce((s, n) => s + n, 0);
  const all = results.find((r) => r.system === 'all')!;
  const rows = results.map((r) => `| ${r.system} | ${(r.peakGpuBytes / MIB).toFixed(2)} | ${(all.peakGpuBytes / r.peakGpuBytes).toFixed(2)}x | ${r.totalMs.toFixed(1)} | ` +
    `${percentile(r.callMs, 0.5).toFixed(2)} | ${percentile(r.callMs, 0.9).toFixed(2)} | ${Math.max(...r.callMs).toFixed(2)} | ${r.loadMs.toFixed(0)} | ${r.maxAbsDiffVsAll.toExponential(1)} | ${Object.entries(r.plans).map(([k, v]) => `${k} ${v}`).join(', ')} |`);
  return [
    `# bench:multi on ${machine}`, '',
    `Device: ${device}. Uploads: ${UPLOADS}. ${plan.models.length} models (${plan.models.join(', ')}), ${plan.order.length} calls in a seeded random order; weights ${(weights / MIB).toFixed(2)} MiB in all, budget ${(plan.budgetBytes / MIB).toFixed(2)} MiB (25%).`,
    'Times after one warm-up pass of the same order. (a) joint: one streamed bundle, the order declared and planned jointly; (b) all: five preload bundles loaded at once; (c) switch: one shared-memory preload bundle reloading the model on each switch.', '',
    '| system | peak GPU MiB | memory vs all | total ms | p50 call ms | p90 call ms | max call ms | load ms | max abs diff vs all | plans used |',
    '|---|---|---|---|---|---|---|---|---|---|',
    ...rows, '',
    `Chart: multi.svg (allocated GPU bytes over the timed pass).`, '',
  ].join('\n');
}

function svg(plan: Plan, results: SystemResult[]): string {
  const width = 900, height = 380, left = 80, right = 150, top = 30, bottom = 45;
  const maxX = Math.max(...results.map((r) => r.totalMs), 1);
  const maxY = Math.max(plan.budgetBytes, ...results.map((r) => r.peakGpuBytes)) * 1.1;
  const x = (ms: number) => left + ((width - left - right) * ms) / maxX;
  const y = (bytes: number) => height - bottom - ((height - top - bottom) * bytes) / maxY;
  const colours: Record<System, string> = { joint: '#1f77b4', all: '#d62728', switch: '#2ca02c' };
  const lines = results.map((r) => {
    const pts = r.memory.map(([ms, bytes]) => `${x(ms).toFixed(1)},${y(bytes).toFixed(1)}`).join(' ');
    const last = r.memory[r.memory.length - 1]!;
    return `<polyline fill="none" stroke="${colours[r.system]}" stroke-width="2" points="${pts}"/>` +
      `<text x="${x(last[0]) + 6}" y="${y(last[1]) + 4}" font-size="12" fill="${colours[r.system]}">${r.system} ${(r.peakGpuBytes / MIB).toFixed(2)} MiB</text>`;
  }).join('\n');
  const ticks = [0, 0.25, 0.5, 0.75, 1].map((f) => `<text x="${left - 8}" y="${y(f * maxY) + 4}" font-size="11" text-anchor="end">${((f * maxY) / MIB).toFixed(2)}</text>`).join('');
  return `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
<text x="${left}" y="18" font-size="14">Allocated GPU memory (MiB) over ${plan.order.length} calls of ${plan.models.length} models</text>
<line x1="${left}" y1="${y(plan.budgetBytes)}" x2="${width - right}" y2="${y(plan.budgetBytes)}" stroke="#888" stroke-dasharray="6,4"/>
<text x="${width - right + 6}" y="${y(plan.budgetBytes) + 4}" font-size="12" fill="#888">budget</text>
<line x1="${left}" y1="${height - bottom}" x2="${width - right}" y2="${height - bottom}" stroke="black"/>
<line x1="${left}" y1="${top}" x2="${left}" y2="${height - bottom}" stroke="black"/>
${ticks}
<text x="${(left + width - right) / 2}" y="${height - 10}" font-size="12" text-anchor="middle">elapsed ms (timed pass; longest ${maxX.toFixed(0)} ms)</text>
${lines}
</svg>
`;
}

/** The command as run from the repository root (no machine-specific absolute paths in results). */
function repoCommand(): string {
  return ['node', relative(process.cwd(), process.argv[1]!), ...process.argv.slice(2)].join(' ');
}

// --------------------------------------------------------------------------------------- main

async function main(): Promise<void> {
  const machine = arg('machine', 'llvmpipe')!;
  const calls = Number(arg('calls', '10'));
  const seed = Number(arg('seed', '1'));
  const compileOnly = arg('compile-only');
  const runDir = arg('run');
  const dir = resolve(compileOnly ?? runDir ?? join('out', 'bench-multi'));
  mkdirSync(dir, { recursive: true });
  // compile everything before any device exists (dawn-node must not see a blocked main thread)
  const { existsSync } = await import('node:fs');
  const { CONFORMANCE_DIR } = await import('../test/harness/paths.js');
  const set = arg('models', existsSync(join(CONFORMANCE_DIR, 'light')) ? 'light' : 'fixtures')!;
  const plan = runDir ? (JSON.parse(readFileSync(join(dir, 'plan.json'), 'utf8')) as Plan) : await compileAll(dir, calls, seed, set);
  if (compileOnly) {
    console.log(`compiled into ${dir}: budget ${plan.budgetBytes} bytes, ${plan.order.length} calls`);
    return;
  }
  const { createNodeDevice } = await import('../compiler/target/webgpu.js');
  // the adapter's maxima cover every bundle of the three systems
  const { device, adapter, backend } = await createNodeDevice();
  const info = adapter.info;
  const deviceName = `${[info.vendor, info.architecture, info.description].filter(Boolean).join(' ')} (Dawn ${backend})`;
  const all = await runSystem(dir, 'all', plan, device);
  const joint = await runSystem(dir, 'joint', plan, device, all.outputs);
  const switching = await runSystem(dir, 'switch', plan, device, all.outputs);
  const results = [joint.result, all.result, switching.result];
  const out = join('bench', 'results', machine);
  mkdirSync(out, { recursive: true });
  writeFileSync(join(out, 'multi.json'), `${JSON.stringify({ command: repoCommand(), device: deviceName, date: new Date().toISOString(), plan, results }, null, 1)}\n`);
  writeFileSync(join(out, 'multi.md'), markdown(machine, deviceName, plan, results));
  writeFileSync(join(out, 'multi.svg'), svg(plan, results));
  console.log(markdown(machine, deviceName, plan, results));
  device.destroy();
}

main().catch((e) => {
  console.error(e instanceof Error ? e.stack ?? e.message : e);
  process.exitCode = 1;
});
