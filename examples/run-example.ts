/**
 * `npm run example`: compiles the shipped mini-ResNet ONNX model into a bundle, runs the bundle
 * on WebGPU through its generated runtime, and checks the output against onnxruntime-node.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as ort from 'onnxruntime-node';
import { compileModel } from '../compiler/compile.js';
import { openBundle } from '../compiler/cli/bundle-session.js';
import { keepAlive } from '../compiler/target/webgpu.js';
import { randomFloats } from '../fixtures/onnx-builder.js';
import { packageRoot } from '../compiler/bundle/runtime-gen.js';

const root = packageRoot();
const modelPath = join(root, 'examples', 'mini-resnet', 'model.onnx');
const bundleDir = join(root, 'out', 'mini-resnet.bundle');

async function main(): Promise<void> {
  const report = await compileModel(modelPath, bundleDir);
  console.log(`compiled ${modelPath}\n  -> ${bundleDir}: ${report.kernels} kernels, weights ${(report.weightBytes / 1024).toFixed(1)} KiB, ` +
    `planned peak GPU ${(report.plannedPeakBytes / 1024).toFixed(1)} KiB, in ${report.totalMs.toFixed(0)} ms`);

  const { session, manifest, device } = await openBundle(bundleDir);
  const input = manifest.models[0]!.inputs[0]!;
  const output = manifest.models[0]!.outputs[0]!;
  const image = randomFloats(input.shape.reduce((a, b) => a * b, 1), 42);
  const start = performance.now();
  const result = (await keepAlive(session.run({ [input.name]: image })))[output.name] as Float32Array;
  const firstRunMs = performance.now() - start;

  const reference = await ort.InferenceSession.create(readFileSync(modelPath));
  const expected = (await reference.run({ [input.name]: new ort.Tensor('float32', image, input.shape) }))[output.name]!.data as Float32Array;
  let maxError = 0;
  for (let i = 0; i < expected.length; i++) maxError = Math.max(maxError, Math.abs(result[i]! - expected[i]!));
  const stats = session.stats();
  console.log(`WebGPU output  ${output.name}[${output.shape}]: ${Array.from(result, (v) => v.toFixed(4)).join(' ')}`);
  console.log(`onnxruntime    ${output.name}[${output.shape}]: ${Array.from(expected, (v) => v.toFixed(4)).join(' ')}`);
  console.log(`max |error| vs onnxruntime-node: ${maxError.toExponential(2)} -> ${maxError <= 1e-4 ? 'OK' : 'MISMATCH'}`);
  console.log(`peak GPU bytes: ${stats.peakGpuBytes} (${(stats.peakGpuBytes / 1024).toFixed(1)} KiB); load ${stats.loadMs.toFixed(0)} ms, first run ${firstRunMs.toFixed(0)} ms`);
  session.dispose();
  device.destroy();
  await reference.release();
  if (maxError > 1e-4) process.exitCode = 1;
}

main().catch((e) => {
  console.error(e instanceof Error ? e.message : e);
  process.exitCode = 1;
});
