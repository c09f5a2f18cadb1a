/**
 * `npm run example:pipeline`: a three-model pipeline (detector -> classifier -> recogniser) in one
 * flashmemc bundle under a GPU memory budget smaller than the three models' weights together.
 * For each frame of a synthetic stream the detector finds the most object-like cell, the
 * classifier labels a crop around it and the recogniser reads a strip through it; every model
 * call is checked against onnxruntime-node on the same inputs.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileMultiContents, compileMultiModel } from '../../compiler/compile-multi.js';
import { openBundle } from '../../compiler/cli/bundle-session.js';
import { keepAlive } from '../../compiler/target/webgpu.js';
import { randomFloats } from '../../fixtures/onnx-builder.js';
import { packageRoot } from '../../compiler/bundle/runtime-gen.js';

const root = packageRoot();
const MODELS = ['detector', 'classifier', 'recogniser'] as const;
type ModelName = (typeof MODELS)[number];
const bundleDir = join(root, 'out', 'pipeline.bundle');
const FRAMES = Number(process.env.PIPELINE_FRAMES ?? 6);
const TOLERANCE = 1e-4;

async function main(): Promise<void> {
  const paths = Object.fromEntries(MODELS.map((m) => [m, join(root, 'examples', 'pipeline', `${m}.onnx`)])) as Record<ModelName, string>;
  const inputs = MODELS.map((m) => ({ path: paths[m], name: m }));
  // half of the three models' weights (the preload plan tells them): preloading them all cannot fit
  const weightBytes = (await compileMultiContents(inputs)).report.models.reduce((s, m) => s + m.weightBytes, 0);
  const budget = Math.floor(weightBytes / 2);
  const report = await compileMultiModel(inputs, bundleDir, { memoryBudget: budget, sequence: [...MODELS] });
  console.log(`compiled ${MODELS.join(' + ')} -> ${bundleDir}: weights ${kib(weightBytes)} in all, budget ${kib(budget)}, planned peak ${kib(report.plannedPeakBytes)}`);

  const references = Object.fromEntries(await Promise.all(MODELS.map(async (m) => [m, await ort.InferenceSession.create(readFileSync(paths[m]))]))) as Record<ModelName, ort.InferenceSession>;
  const { session, device } = await openBundle(bundleDir);
  let worst = 0;
  const check = async (model: ModelName, inputName: string, shape: number[], data: Float32Array): Promise<Float32Array> => {
    const ours = Object.values(await keepAlive(session.run(model, { [inputName]: data })))[0] as Float32Array;
    const theirs = Object.values(await references[model].run({ [inputName]: new ort.Tensor('float32', data, shape) }))[0]!.data as Float32Array;
    for (let i = 0; i < theirs.length; i++) worst = Math.max(worst, Math.abs(ours[i]! - theirs[i]!) / (1 + Math.abs(theirs[i]!)));
    return ours;
  };
  try {
    for (let frame = 0; frame < FRAMES; frame++) {
      const image = randomFloats(3 * 64 * 64, 1000 + frame, 0, 1);
      const heat = await check('detector', 'image', [1, 3, 64, 64], image);
      const cell = argmax(heat);
      const [cy, cx] = [Math.floor(cell / 16) * 4 + 2, (cell % 16) * 4 + 2];
      const probabilities = await check('classifier', 'crop', [1, 3, 32, 32], crop(image, cy, cx));
      const logits = await check('recogniser', 'strip', [1, 1, 16, 64], strip(image, cy));
      console.log(`frame ${frame}: object at (${cx}, ${cy}) score ${heat[cell]!.toFixed(3)}, class ${argmax(probabilities)} (p ${Math.max(...probabilities).toFixed(3)}), text "${decode(logits)}"`);
    }
    const stats = session.stats();
    const calls = stats.calls as { model: string; plan: string; ms: number }[];
    for (const m of MODELS) {
      const mine = calls.filter((c) => c.model === m);
      console.log(`  ${m.padEnd(10)} ${mine.length} calls, median ${median(mine.map((c) => c.ms)).toFixed(1)} ms, plans: ${[...new Set(mine.map((c) => c.plan))].join(', ')}`);
    }
    console.log(`peak GPU ${kib(stats.peakGpuBytes)} (budget ${kib(budget)}, weights ${kib(weightBytes)}); max relative error vs onnxruntime-node ${worst.toExponential(2)} -> ${worst <= TOLERANCE && stats.peakGpuBytes <= budget ? 'OK' : 'FAIL'}`);
    if (worst > TOLERANCE || stats.peakGpuBytes > budget) process.exitCode = 1;
  } finally {
    session.dispose();
    device.destroy();
    for (const r of Object.values(references)) await r.release();
  }
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** 3x32x32 crop of the 3x64x64 image centred at (cy, cx), clamped to the image */
function crop(image: Float32Array, cy: number, cx: number): Float32Array {
  const out = new Float32Array(3 * 32 * 32);
  const y0 = Math.min(Math.max(cy - 16, 0), 32);
  const x0 = Math.min(Math.max(cx - 16, 0), 32);
  for (let c = 0; c < 3; c++) for (let y = 0; y < 32; y++) for (let x = 0; x < 32; x++) out[(c * 32 + y) * 32 + x] = image[(c * 64 + y0 + y) * 64 + x0 + x]!;
  return out;
}

/** grey 16x64 strip through row cy */
function strip(image: Float32Array, cy: number): Float32Array {
  const out = new Float32Array(16 * 64);
  const y0 = Math.min(Math.max(cy - 8, 0), 48);
  for (let y = 0; y < 16; y++) for (let x = 0; x < 64; x++) {
    out[y * 64 + x] = (image[(y0 + y) * 64 + x]! + image[(64 + y0 + y) * 64 + x]! + image[(128 + y0 + y) * 64 + x]!) / 3;
  }
  return out;
}

const ALPHABET = '-abcdefghijklmnopqrstuvwxyz0123456789';

/** greedy CTC-style decoding of [1, 32, 37] logits ('-' is blank) */
function decode(logits: Float32Array): string {
  let text = '';
  let last = 0;
  for (let t = 0; t < 32; t++) {
    const best = argmax(logits.subarray(t * 37, (t + 1) * 37));
    if (best !== 0 && best !== last) text += ALPHABET[best];
    last = best;
  }
  return text;
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const kib = (bytes: number) => `${(bytes / 1024).toFixed(1)} KiB`;

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
