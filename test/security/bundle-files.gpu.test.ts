/**
 * The GPU part of bundle-files.test.ts: with streamed weights read from storage, every run re-reads
 * its shard ranges, and each of those reads makes the checks of the first (a shard swapped for a
 * symlink or a FIFO between runs is refused, even with identical bytes); and zero-size tensors
 * compile into bundles that verify and run.
 */
import { copyFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { execFileSync } from 'node:child_process';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openBundle } from '../../compiler/cli/bundle-session.js';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { cli } from '../harness/cli.js';
import { compileOffThread } from '../harness/compile-run.js';
import { testDevice } from '../harness/gpu.js';
import {
  assembleBundle, importRuntime, mlpReference, rejectionOf, removeTempDirs, seededFloats, sharedDevice, streamedMlpModel, tempDir,
  writeFixtureBundle, type RuntimeModule,
} from '../harness/bundle-fixtures.js';

const SHARD = 'weights/0.bin';

let device: GPUDevice;
let runtime: RuntimeModule;
let streamedDir: string;
let zeroDir: string;
let mixedDir: string;

beforeAll(async () => {
  streamedDir = await writeFixtureBundle(assembleBundle([streamedMlpModel()]));
  runtime = await importRuntime(streamedDir);
  const tmp = await tempDir();
  writeFileSync(join(tmp, 'empty.onnx'), buildModel({
    opset: 13, inputs: [{ name: 'x', dtype: 'float32', shape: [0, 4] }], outputs: [{ name: 'y', dtype: 'float32' }],
    nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }],
  }));
  writeFileSync(join(tmp, 'mixed.onnx'), buildModel({
    opset: 13,
    inputs: [{ name: 'x', dtype: 'float32', shape: [0, 4] }, { name: 'a', dtype: 'float32', shape: [2, 4] }],
    outputs: [{ name: 'y', dtype: 'float32' }, { name: 'b', dtype: 'float32' }],
    nodes: [{ opType: 'Relu', inputs: ['x'], outputs: ['y'] }, { opType: 'Sigmoid', inputs: ['a'], outputs: ['b'] }],
  }));
  zeroDir = join(tmp, 'empty-bundle');
  mixedDir = join(tmp, 'mixed-bundle');
  await compileOffThread(join(tmp, 'empty.onnx'), zeroDir);
  await compileOffThread(join(tmp, 'mixed.onnx'), mixedDir);
  device = await sharedDevice();
});
afterAll(removeTempDirs);

describe("streamedWeights 'storage': every read makes the checks", () => {
  it('a shard swapped for a symlink to an identical copy outside, or for a FIFO, between runs is refused', async () => {
    const outside = await tempDir();
    const session = await runtime.loadBundle(streamedDir, { device, streamedWeights: 'storage' });
    try {
      const x = seededFloats(6, 3);
      const expected = mlpReference(x);
      const expectRunOk = async () => {
        const { y } = await session.run({ x });
        expected.forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));
      };
      await expectRunOk();
      const shard = join(streamedDir, SHARD);
      const copy = join(outside, '0.bin');
      copyFileSync(shard, copy);

      rmSync(shard);
      symlinkSync(copy, shard);
      const linked = await rejectionOf(session.run({ x }));
      expect(linked.code, linked.message).toBe('FM_BUNDLE_INVALID');
      expect(linked.message).toContain(`"${SHARD}" is a symlink`);

      rmSync(shard);
      copyFileSync(copy, shard);
      await expectRunOk();

      rmSync(shard);
      execFileSync('mkfifo', [shard]);
      const fifo = await rejectionOf(session.run({ x }));
      expect(fifo.code, fifo.message).toBe('FM_BUNDLE_INVALID');
      expect(fifo.message).toContain(`"${SHARD}" is a FIFO`);
      rmSync(shard);
      copyFileSync(copy, shard);
    } finally {
      session.dispose();
    }
  });
});

describe('zero-size tensors', () => {
  it('a model whose only output is empty compiles, verifies and runs', async () => {
    const verified = await cli('verify', zeroDir);
    expect(verified.code, verified.stderr).toBe(0);
    const { session } = await openBundle(zeroDir, { device: await testDevice() });
    try {
      const outputs = await session.run({ x: new Float32Array(0) });
      expect(Object.keys(outputs)).toEqual(['y']);
      expect(outputs.y!.length).toBe(0);
    } finally {
      session.dispose();
    }
  });

  it('an empty output beside a real one: both come back', async () => {
    const verified = await cli('verify', mixedDir);
    expect(verified.code, verified.stderr).toBe(0);
    const { session } = await openBundle(mixedDir, { device: await testDevice() });
    try {
      const a = seededFloats(8, 5);
      const outputs = await session.run({ x: new Float32Array(0), a });
      expect(outputs.y!.length).toBe(0);
      Array.from(a).forEach((v, i) => expect(outputs.b![i]).toBeCloseTo(1 / (1 + Math.exp(-v)), 5));
    } finally {
      session.dispose();
    }
  });
});
