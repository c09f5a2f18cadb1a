// Runs compiled bundles with nothing but each bundle's runtime.js and the `webgpu` package (for the
// lent GPU machine, where only node and .gpu/ are unpacked), and prints one JSON line per bundle:
// load time, first and warm run times, peak GPU bytes and an output checksum; pairs NAME.preload /
// NAME.stream are compared element by element.
//   node bench/gpu-run.mjs <folder of bundles> [warm runs]
import { readdirSync, readFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { pathToFileURL } from 'node:url';

const root = resolve(process.argv[2] ?? 'out/h100');
const warmRuns = Number(process.argv[3] ?? 10);

function seeded(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = Math.imul(a ^ (a >>> 15), a | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const results = {};
for (const name of readdirSync(root).sort()) {
  const dir = join(root, name);
  const manifest = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8'));
  const { loadBundle } = await import(pathToFileURL(join(dir, 'runtime.js')).href);
  const t0 = performance.now();
  const session = await loadBundle(dir);
  const loadMs = performance.now() - t0;
  const model = manifest.models[0];
  const rnd = seeded(7);
  const inputs = Object.fromEntries(model.inputs.map((s) => [s.name, Float32Array.from({ length: s.shape.reduce((a, b) => a * b, 1) }, () => rnd() * 2 - 1)]));
  const times = [];
  let outputs;
  for (let i = 0; i <= warmRuns; i++) {
    const t = performance.now();
    outputs = await session.run(inputs);
    times.push(performance.now() - t);
  }
  const warm = times.slice(1).sort((a, b) => a - b);
  const stats = session.stats();
  results[name] = Object.values(outputs)[0];
  const line = {
    bundle: name, strategy: JSON.parse(readFileSync(join(dir, 'schedule.json'), 'utf8')).models[0].strategy,
    loadMs: +loadMs.toFixed(1), firstRunMs: +times[0].toFixed(2), warmMedianMs: +warm[Math.floor(warm.length / 2)].toFixed(2),
    warmP90Ms: +warm[Math.floor(warm.length * 0.9)].toFixed(2), peakGpuBytes: stats.peakGpuBytes, device: session.device.adapterInfo?.description ?? '',
  };
  const base = name.replace(/\.stream$/, '.preload');
  if (name.endsWith('.stream') && results[base]) {
    let worst = 0;
    for (let i = 0; i < results[base].length; i++) worst = Math.max(worst, Math.abs(results[base][i] - results[name][i]) / (1e-6 + Math.abs(results[base][i])));
    line.maxRelDiffVsPreload = worst;
  }
  console.log(JSON.stringify(line));
  session.dispose();
}
process.exit(0);
