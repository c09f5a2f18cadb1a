/**
 * Bundles with weights in the 2.5D texture layout: same outputs as the buffer layout (mini-resnet
 * and a light CNN), textures counted in the runtime's GPU bytes, layout selection from profile
 * costs, streaming with texture weights pinned resident, tampered texture steps refused, and the
 * layouts visible in `flashmemc inspect`.
 */
import { cpSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { compileAndOpen, type CompiledBundle } from '../harness/compile-run.js';
import { CONFORMANCE_DIR, REPO_ROOT, conformanceAvailable, tempDir } from '../harness/paths.js';
import { maxViolation } from '../harness/single-node.js';
import { testDevice } from '../harness/gpu.js';
import { randomizeConstantWeights } from '../harness/randomize.js';
import { editJsonAndRehash } from '../harness/bundle-fixtures.js';
import { randomInputs } from '../../compiler/cli/inputs.js';
import { openBundle } from '../../compiler/cli/bundle-session.js';
import { main } from '../../compiler/cli/main.js';
import type { CompileOptions } from '../../compiler/compile.js';
import type { Schedule } from '../../schemas/schedule.js';
import { buildModel, randomFloats } from '../../fixtures/onnx-builder.js';
import { DEFAULT_LIMITS } from '../../compiler/target/limits.js';

const MINI_RESNET = join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx');

async function outputsOf(bundle: CompiledBundle, seed: number) {
  return bundle.run(randomInputs(bundle.manifest.models[0]!, seed) as Record<string, Float32Array>);
}

function scheduleOf(bundle: CompiledBundle): Schedule {
  return JSON.parse(readFileSync(join(bundle.dir, 'schedule.json'), 'utf8')) as Schedule;
}

function textureDispatchLabels(schedule: Schedule): string[] {
  return schedule.models[0]!.run.flatMap((s) => (s.op === 'dispatch' && s.bindings.some((b) => 'texture' in b) ? [s.label] : []));
}

/** Compiles `path` with the buffer layout and `options`, and checks both give the same outputs. */
async function expectSameOutputs(path: string, options: CompileOptions, check: (bundle: CompiledBundle) => void, tolerance = { rtol: 1e-4, atol: 1e-5 }): Promise<void> {
  const reference = await compileAndOpen(path, { weightLayout: 'buffer' });
  try {
    const expected = await outputsOf(reference, 5);
    const bundle = await compileAndOpen(path, options);
    try {
      const actual = await outputsOf(bundle, 5);
      for (const [name, values] of Object.entries(expected)) {
        expect(maxViolation(actual[name] as Float32Array, values as Float32Array, tolerance.rtol, tolerance.atol), name).toBeLessThanOrEqual(1);
      }
      check(bundle);
    } finally {
      bundle.close();
    }
  } finally {
    reference.close();
  }
}

describe('texture-layout bundles', () => {
  it('mini-resnet with --weight-layout texture equals the buffer bundle; textures count in GPU bytes', async () => {
    await expectSameOutputs(MINI_RESNET, { weightLayout: 'texture' }, (bundle) => {
      const schedule = scheduleOf(bundle);
      const model = schedule.models[0]!;
      expect(model.textures!.length).toBe(7);
      expect(textureDispatchLabels(schedule)).toContain('gemm_gemv_tex');
      // every weight texture is uploaded at load, straight from shard bytes, whole rows at a time
      const textureUploads = model.init.filter((s) => s.op === 'upload' && 'texture' in s.dst);
      expect(textureUploads.length).toBeGreaterThanOrEqual(7);
      expect(model.run.some((s) => s.op === 'upload' && 'texture' in s.dst)).toBe(false);
      const textureBytes = model.textures!.reduce((s, t) => s + t.width * t.height * t.layers * 16, 0);
      const stats = bundle.session.stats();
      expect(stats.peakGpuBytes).toBe(model.plannedPeakBytes);
      expect(stats.peakGpuBytes).toBeGreaterThanOrEqual(textureBytes + model.buffers.reduce((s, b) => s + b.size, 0));
      expect(bundle.manifest.requiredLimits.maxSampledTexturesPerShaderStage).toBe(1);
    });
  }, 300_000);

  it('a weight texture larger than one writeTexture band (64 MiB) is uploaded in bands: same outputs as buffers', async () => {
    // a 1 x 4352 x 4096 gemv: its texture holds 71 MB, and Dawn stages each writeTexture in one buffer
    const tmp = tempDir('big-texture');
    try {
      const [K, N] = [4352, 4096];
      const path = join(tmp.dir, 'big.onnx');
      writeFileSync(path, buildModel({
        opset: 13, inputs: [{ name: 'x', dtype: 'float32', shape: [1, K] }], outputs: [{ name: 'y', dtype: 'float32' }],
        initializers: [{ name: 'w', dtype: 'float32', shape: [K, N], data: randomFloats(K * N, 9) }],
        nodes: [{ opType: 'MatMul', inputs: ['x', 'w'], outputs: ['y'] }],
      }));
      // (the H100 failure this guards against needed a texture over maxBufferSize, 256 MiB: too slow
      // for llvmpipe; here the texture takes two bands and must still give the buffer bundle's outputs)
      const limits = { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 128 << 20, maxBufferSize: 256 << 20 };
      await expectSameOutputs(path, { weightLayout: 'texture', limits }, (bundle) => {
        const texture = scheduleOf(bundle).models[0]!.textures![0]!;
        expect(texture.width * texture.height * texture.layers * 16).toBeGreaterThan(64 << 20);
        // sums over K = 4352 of values in [-1, 1] reach ~20: the two kernels' summation orders differ by ~1e-4
      }, { rtol: 1e-4, atol: 1e-3 });
    } finally {
      tmp.cleanup();
    }
  }, 300_000);

  it('auto picks per op class from the profile costs (texture for conv at 0.5, buffer for matmul at 2)', async () => {
    const layoutCost = { conv: { textureOverBuffer: 0.5 }, matmul: { textureOverBuffer: 2 } };
    await expectSameOutputs(MINI_RESNET, { weightLayout: 'auto', layoutCost }, (bundle) => {
      const labels = textureDispatchLabels(scheduleOf(bundle));
      expect(labels.length).toBe(6);
      expect(labels.every((l) => l.startsWith('conv2d_'))).toBe(true);
    });
  }, 300_000);

  it('auto without layout costs keeps every weight in buffers', async () => {
    const bundle = await compileAndOpen(MINI_RESNET, { weightLayout: 'auto' });
    try {
      expect(scheduleOf(bundle).models[0]!.textures).toBeUndefined();
    } finally {
      bundle.close();
    }
  }, 300_000);

  it('stream strategy: texture weights are pinned resident, peak within the budget, same outputs', async () => {
    const budget = 320 * 1024;
    await expectSameOutputs(MINI_RESNET, { weightLayout: 'texture', strategy: 'stream', memoryBudget: budget }, (bundle) => {
      const model = scheduleOf(bundle).models[0]!;
      expect(model.strategy).toBe('stream');
      expect(model.textures!.length).toBe(7);
      expect(model.run.some((s) => s.op === 'upload' && 'texture' in s.dst)).toBe(false);
      expect(bundle.session.stats().peakGpuBytes).toBeLessThanOrEqual(budget);
    });
  }, 300_000);

  it('stream strategy with auto keeps weights streamable (buffers) even when textures are cheaper', async () => {
    const bundle = await compileAndOpen(MINI_RESNET, {
      weightLayout: 'auto', layoutCost: { conv: { textureOverBuffer: 0.5 } }, strategy: 'stream', memoryBudget: 200 * 1024,
    });
    try {
      expect(scheduleOf(bundle).models[0]!.textures).toBeUndefined();
      expect(bundle.report.streaming!.streamedWeights).toBeGreaterThan(0);
    } finally {
      bundle.close();
    }
  }, 300_000);

  const light = conformanceAvailable('texture layout: light squeezenet');
  it.skipIf(!light)('light squeezenet (random weights) with --weight-layout texture equals the buffer bundle', async () => {
    const tmp = tempDir('tex-light');
    try {
      const path = join(tmp.dir, 'squeezenet-random.onnx');
      writeFileSync(path, randomizeConstantWeights(readFileSync(join(CONFORMANCE_DIR, 'light', 'light_squeezenet.onnx'))));
      await expectSameOutputs(path, { weightLayout: 'texture' }, (bundle) => {
        expect(textureDispatchLabels(scheduleOf(bundle)).length).toBe(26);
      });
    } finally {
      tmp.cleanup();
    }
  }, 600_000);
});

describe('tampered texture steps are refused with FM_BUNDLE_INVALID', () => {
  let compiled: CompiledBundle;
  const tmp = tempDir('tex-tamper');
  beforeAll(async () => {
    compiled = await compileAndOpen(MINI_RESNET, { weightLayout: 'texture' });
  }, 300_000);
  afterAll(() => {
    compiled?.close();
    tmp.cleanup();
  });

  let copies = 0;
  async function tampered(edit: (s: Schedule) => void): Promise<string> {
    const dir = join(tmp.dir, `copy${copies++}`);
    cpSync(compiled.dir, dir, { recursive: true });
    await editJsonAndRehash(dir, 'schedule.json', edit);
    return dir;
  }

  const firstTextureUpload = (s: Schedule) => s.models[0]!.init.find((step) => step.op === 'upload' && 'texture' in step.dst) as { dst: { texture: number; layer: number; y: number; rows: number; size: number } };
  const firstTextureDispatch = (s: Schedule) => s.models[0]!.run.find((step) => step.op === 'dispatch' && step.bindings.some((b) => 'texture' in b)) as { bindings: object[] };

  const cases: [string, (s: Schedule) => void, RegExp][] = [
    ['a binding of a texture that does not exist', (s) => { firstTextureDispatch(s).bindings[1] = { texture: 99 }; }, /texture 99 does not exist/],
    ['a binding naming both a texture and a buffer', (s) => { firstTextureDispatch(s).bindings[1] = { texture: 0, buffer: 0 }; }, /schedule\.json/],
    ['an upload past the texture height', (s) => { firstTextureUpload(s).dst.y = 1000; }, /outside texture/],
    ['an upload into a missing layer', (s) => { firstTextureUpload(s).dst.layer = 3; }, /outside texture/],
    ['an upload whose size is not its rows', (s) => { firstTextureUpload(s).dst.size -= 16; }, /bytes for \d+ rows/],
    // the declared peak grows too: the device limit is what refuses it
    ['a texture wider than the device allows', (s) => { const t = s.models[0]!.textures![0]!; s.models[0]!.plannedPeakBytes += ((1 << 20) - t.width) * t.height * t.layers * 16; t.width = 1 << 20; }, /maxTextureDimension2D/],
    ['a texture upload moved into the run steps', (s) => {
      const upload = firstTextureUpload(s);
      s.models[0]!.run.unshift({ ...(upload as object) } as Schedule['models'][0]['run'][0]);
    }, /init steps/],
  ];
  for (const [name, edit, message] of cases) {
    it(name, async () => {
      const dir = await tampered(edit);
      await expect(openBundle(dir, { device: await testDevice() })).rejects.toMatchObject({ code: 'FM_BUNDLE_INVALID', message: expect.stringMatching(message) });
    });
  }

  it('a texture bound where the shader declares a buffer fails as FM_WEBGPU, not a crash', async () => {
    const dir = await tampered((s) => { firstTextureDispatch(s).bindings[0] = { texture: 0 }; });
    await expect(openBundle(dir, { device: await testDevice() })).rejects.toMatchObject({ code: 'FM_WEBGPU' });
  });

  it('flashmemc inspect shows the chosen layouts', async () => {
    let stdout = '';
    const out = vi.spyOn(process.stdout, 'write').mockImplementation((s) => ((stdout += String(s)), true));
    try {
      expect(await main(['inspect', compiled.dir])).toBe(0);
    } finally {
      out.mockRestore();
    }
    expect(stdout).toMatch(/weight layouts: 7 textures \(2\.5D rgba32float/);
    expect(stdout).toMatch(/texture 72x32x1 texels: conv2d_3x3_tex node "layer2\.a\.conv"/);
    expect(stdout).toMatch(/gemm_gemv_tex node "fc"/);
  });
});
