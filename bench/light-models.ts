/**
 * Compiles and runs the ONNX light CNNs (with random weights, see test/harness/randomize.ts) and
 * prints a table: compile time, load time, first and warm run times, peak GPU bytes, and the
 * largest error against onnxruntime-node on the same input. Results go to bench/results/<machine>/.
 *
 *   npx tsx bench/light-models.ts [--machine llvmpipe] [--models resnet50,squeezenet] [--runs 3]
 */
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { execSync } from 'node:child_process';
import * as ort from 'onnxruntime-node';
import { compileModel } from '../compiler/compile.js';
import { openBundle } from '../compiler/cli/bundle-session.js';
import { keepAlive } from '../compiler/target/webgpu.js';
import { randomInputs } from '../compiler/cli/inputs.js';
import { packageRoot } from '../compiler/bundle/runtime-gen.js';
import { randomizeConstantWeights } from '../test/harness/randomize.js';
import { CONFORMANCE_DIR, tempDir } from '../test/harness/paths.js';

const ALL = ['squeezenet', 'shufflenet', 'bvlc_alexnet', 'zfnet512', 'inception_v1', 'inception_v2', 'resnet50', 'densenet121', 'vgg19'];

function arg(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

interface Row {
  model: string;
  weightMiB: number;
  kernels: number;
  compileS: number;
  loadMs: number;
  firstRunMs: number;
  warmRunMs: number;
  peakGpuMiB: number;
  maxAbsError: number;
}

async function measure(name: string, runs: number): Promise<Row> {
  const tmp = tempDir('bench');
  try {
    const modelPath = join(tmp.dir, `${name}.onnx`);
    writeFileSync(modelPath, randomizeConstantWeights(readFileSync(join(CONFORMANCE_DIR, 'light', `light_${name}.onnx`))));
    const t0 = performance.now();
    const report = await compileModel(modelPath, join(tmp.dir, 'bundle'));
    const compileS = (performance.now() - t0) / 1000;
    const { session, manifest, device } = await openBundle(join(tmp.dir, 'bundle'));
    const model = manifest.models[0]!;
    const inputs = randomInputs(model, 7);
    const times: number[] = [];
    let outputs: Record<string, unknown> = {};
    for (let i = 0; i < runs + 1; i++) {
      const t = performance.now();
      outputs = await keepAlive(session.run(inputs));
      times.push(performance.now() - t);
    }
    const stats = session.stats();
    const ref = await ort.InferenceSession.create(readFileSync(modelPath));
    const feeds = Object.fromEntries(model.inputs.map((s) => [s.name, new ort.Tensor('float32', inputs[s.name] as Float32Array, s.shape)]));
    const expected = await ref.run(feeds);
    let maxAbsError = 0;
    for (const s of model.outputs) {
      const a = outputs[s.name] as Float32Array, e = expected[s.name]!.data as Float32Array;
      for (let i = 0; i < e.length; i++) maxAbsError = Math.max(maxAbsError, Math.abs(a[i]! - e[i]!));
    }
    session.dispose();
    device.destroy();
    await ref.release();
    const warm = times.slice(1).sort((a, b) => a - b);
    return {
      model: name, weightMiB: report.weightBytes / 1048576, kernels: report.kernels, compileS,
      loadMs: stats.loadMs, firstRunMs: times[0]!, warmRunMs: warm[Math.floor(warm.length / 2)]!,
      peakGpuMiB: stats.peakGpuBytes / 1048576, maxAbsError,
    };
  } finally {
    tmp.cleanup();
  }
}

async function main(): Promise<void> {
  const machine = arg('machine', 'llvmpipe');
  const models = arg('models', ALL.join(',')).split(',');
  const runs = Number(arg('runs', '3'));
  const rows: Row[] = [];
  for (const m of models) {
    rows.push(await measure(m, runs));
    console.error(`done ${m}`);
  }
  const header = '| model | weights MiB | kernels | compile s | load ms | first run ms | warm run ms (median) | peak GPU MiB | max abs err vs ORT |';
  const lines = [header, '|---|---|---|---|---|---|---|---|---|', ...rows.map((r) =>
    `| ${r.model} | ${r.weightMiB.toFixed(1)} | ${r.kernels} | ${r.compileS.toFixed(2)} | ${r.loadMs.toFixed(0)} | ${r.firstRunMs.toFixed(0)} | ${r.warmRunMs.toFixed(0)} | ${r.peakGpuMiB.toFixed(1)} | ${r.maxAbsError.toExponential(2)} |`)];
  const table = lines.join('\n');
  console.log(table);
  const dir = join(packageRoot(), 'bench', 'results', machine);
  mkdirSync(dir, { recursive: true });
  const commit = execSync('git rev-parse --short HEAD', { cwd: packageRoot() }).toString().trim();
  const command = `npx tsx bench/light-models.ts ${process.argv.slice(2).join(' ')}`.trim();
  writeFileSync(join(dir, 'light-models.json'), `${JSON.stringify({ command, commit, node: process.version, runs, rows }, null, 2)}\n`);
  writeFileSync(join(dir, 'light-models.md'), `# Light models on ${machine}\n\nCommand: \`${command}\` at commit ${commit}.\n\n${table}\n`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
