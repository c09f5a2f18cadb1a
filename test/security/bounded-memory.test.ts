/**
 * Memory and work a bundle may cause are bounded by what it declares and what the caller allows,
 * computed from the schedule before any GPU work. Each attack below passed `verify` before (an
 * attacker who edits a bundle also recomputes its hashes); now each gets FM_BUNDLE_BOUNDS from
 * both `flashmemc verify` and the runtime, which never allocates first.
 */
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import type { Schedule } from '../../schemas/schedule.js';
import { checkWorkBounds } from '../../runtime-template/work-bounds.js';
import { cli } from '../harness/cli.js';
import {
  assembleBundle, editJsonAndRehash, editManifest, importRuntime, mlpModel, rejectionOf, removeTempDirs, replaceAndRehash, writeFixtureBundle,
} from '../harness/bundle-fixtures.js';

afterAll(removeTempDirs);

const MIB = 1 << 20;

async function mlpBundle(): Promise<string> {
  return writeFixtureBundle(assembleBundle([mlpModel()]));
}

async function expectVerify(dir: string, code: number, ...args: string[]): Promise<string> {
  const r = await cli('verify', dir, ...args);
  expect(r.code, r.stderr || r.stdout).toBe(code);
  return r.stderr;
}

async function expectRuntimeRefusal(dir: string, fragment: string, options: Record<string, unknown> = {}): Promise<void> {
  const runtime = await importRuntime(dir);
  const refusal = await rejectionOf(runtime.verifyBundle(dir, options));
  expect(refusal).toMatchObject({ code: 'FM_BUNDLE_BOUNDS' });
  expect(refusal.message).toContain(fragment);
  // loadBundle refuses before asking for a device (this file has none)
  expect(await rejectionOf(runtime.loadBundle(dir, options))).toMatchObject({ code: 'FM_BUNDLE_BOUNDS' });
}

describe('GPU memory a bundle allocates', () => {
  it('refuses 40 extra 256 MiB buffers beyond the declared peak', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => {
      for (let i = 0; i < 40; i++) s.models[0]!.buffers.push({ role: 'activations', size: 256 * MIB });
    });
    expect(await expectVerify(dir, 2)).toMatch(/FM_BUNDLE_BOUNDS: .*takes? 10737\d+ bytes, it declares a planned peak of \d+/);
    await expectRuntimeRefusal(dir, 'declares a planned peak');
  });

  it('refuses 40 4096x4096 weight textures beyond the declared peak', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => {
      s.models[0]!.textures = Array.from({ length: 40 }, () => ({ format: 'rgba32float' as const, width: 4096, height: 4096, layers: 1 }));
    });
    expect(await expectVerify(dir, 2)).toContain('FM_BUNDLE_BOUNDS');
    await expectRuntimeRefusal(dir, 'declares a planned peak');
  });

  it('refuses a bundle that also raises its declared peak when the caller sets maxGpuBytes', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => {
      for (let i = 0; i < 40; i++) s.models[0]!.buffers.push({ role: 'activations', size: 256 * MIB });
      s.models[0]!.plannedPeakBytes += 40 * 256 * MIB;
    });
    await expectVerify(dir, 0);
    expect(await expectVerify(dir, 2, '--max-gpu-bytes', '64MiB')).toContain('more than maxGpuBytes 67108864');
    await expectRuntimeRefusal(dir, 'maxGpuBytes', { maxGpuBytes: 64 * MIB });
  });
});

describe('work a run dispatches', () => {
  it('refuses a dispatch of 65535 x 65535 workgroups over a few bytes of bindings', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => {
      const step = s.models[0]!.run[1]!;
      if (step.op === 'dispatch') step.workgroups = [65535, 65535, 1];
    });
    expect(await expectVerify(dir, 2)).toMatch(/FM_BUNDLE_BOUNDS: .*4294836225 workgroups for 26 bound elements/);
    await expectRuntimeRefusal(dir, 'workgroups for 26 bound elements');
  });

  it('records each shader\'s largest grid in the schedule (the compiler knows each kernel\'s grid)', async () => {
    const dir = await mlpBundle();
    const schedule = JSON.parse(await readFile(join(dir, 'schedule.json'), 'utf8')) as Schedule;
    const grids = schedule.shaders.map(() => 0);
    for (const step of schedule.models[0]!.run) {
      if (step.op === 'dispatch') grids[step.shader] = Math.max(grids[step.shader]!, step.workgroups[0] * step.workgroups[1] * step.workgroups[2]);
    }
    expect(schedule.maxWorkgroups).toEqual(grids);
    expect(grids.every((g) => g > 0)).toBe(true);
  });

  it('refuses a dispatch above the grid the compiler recorded for its shader, though its bindings would allow it', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => {
      const step = s.models[0]!.run[1]!;
      if (step.op === 'dispatch') step.workgroups = [s.maxWorkgroups![step.shader]! + 1, 1, 1];
    });
    expect(await expectVerify(dir, 2)).toMatch(/FM_BUNDLE_BOUNDS: .*step 1 \(dispatch "[^"]+"\): 2 workgroups, more than the 1 the compiler recorded for shader 0 \(schedule.json maxWorkgroups\)/);
    await expectRuntimeRefusal(dir, 'the compiler recorded for shader 0');
  });

  it('still verifies a bundle without recorded grids (older compilers): the bindings bound applies alone', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => {
      delete s.maxWorkgroups;
      const step = s.models[0]!.run[1]!;
      if (step.op === 'dispatch') step.workgroups = [2, 1, 1];
    });
    await expectVerify(dir, 0);
    const runtime = await importRuntime(dir);
    await expect(runtime.verifyBundle(dir)).resolves.toBeDefined();
  });

  it('refuses a recorded grid above what the bindings of its shader\'s dispatches imply (the attacker writes it too)', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => {
      s.maxWorkgroups![0] = 65535 * 65535;
    });
    expect(await expectVerify(dir, 2)).toMatch(/FM_BUNDLE_BOUNDS: schedule.json maxWorkgroups\[0\] is 4294836225 workgroups, more than the \d+ the bindings of that shader's dispatches allow/);
    await expectRuntimeRefusal(dir, 'maxWorkgroups[0] is 4294836225 workgroups');
  });

  it('refuses a recorded grid at exactly the bindings bound plus one, and accepts it at the bound', async () => {
    const dir = await mlpBundle();
    const schedule = JSON.parse(await readFile(join(dir, 'schedule.json'), 'utf8')) as Schedule;
    const step = schedule.models[0]!.run.find((x) => x.op === 'dispatch' && x.shader === 0);
    if (step?.op !== 'dispatch') throw new Error('the mlp fixture has no dispatch of shader 0');
    const implied = step.bindings.reduce((sum, b) => sum + ('size' in b ? b.size : 0), 0) / 4 + 65535;
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => { s.maxWorkgroups![0] = implied; });
    await expectVerify(dir, 0);
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => { s.maxWorkgroups![0] = implied + 1; });
    expect(await expectVerify(dir, 2)).toContain(`maxWorkgroups[0] is ${implied + 1} workgroups, more than the ${implied}`);
  });

  it('refuses recorded grids that do not match the shader list', async () => {
    const dir = await mlpBundle();
    await editJsonAndRehash(dir, 'schedule.json', (s: Schedule) => { s.maxWorkgroups!.pop(); });
    expect(await expectVerify(dir, 2)).toMatch(/FM_BUNDLE_INVALID: schedule.json: maxWorkgroups has \d+ entries for \d+ shaders/);
    const runtime = await importRuntime(dir);
    expect(await rejectionOf(runtime.verifyBundle(dir))).toMatchObject({ code: 'FM_BUNDLE_INVALID' });
  });

  it('refuses runs above maxWorkgroupsPerRun (verify --max-workgroups)', async () => {
    const dir = await mlpBundle();
    await expectVerify(dir, 0, '--max-workgroups', '2');
    expect(await expectVerify(dir, 2, '--max-workgroups', '1')).toContain('more than maxWorkgroupsPerRun 1');
    await expectRuntimeRefusal(dir, 'maxWorkgroupsPerRun', { maxWorkgroupsPerRun: 1 });
  });
});

describe('host memory a bundle can make the runtime or the CLI allocate', () => {
  it('refuses a manifest input that no step writes (it could declare a billion elements)', async () => {
    const dir = await mlpBundle();
    await editManifest(dir, (m) => {
      (m.models as { inputs: unknown[] }[])[0]!.inputs.push({ name: 'huge', dtype: 'float32', shape: [1000000000] });
    });
    expect(await expectVerify(dir, 2)).toContain('input "huge" is written 0 times per run');
    await expectRuntimeRefusal(dir, 'input "huge" is written 0 times');
  });

  it('refuses schedule.json above 64 MiB before reading it, and reports a schedule of a million errors in a short message', async () => {
    const huge = await mlpBundle();
    await editManifest(huge, (m) => { m.files.find((f) => f.path === 'schedule.json')!.size = 80 * MIB; });
    expect(await expectVerify(huge, 2)).toContain('FM_BUNDLE_BOUNDS');

    const errors = await mlpBundle();
    const bad = { op: 'explode' };
    const schedule = JSON.stringify({ formatVersion: 1, shaders: [], shards: [], models: [{ model: 'mlp', strategy: 'preload', buffers: [], init: [], run: Array(1_000_000).fill(bad), plannedPeakBytes: 0 }] });
    expect(schedule.length).toBeGreaterThan(16 * MIB);
    await replaceAndRehash(errors, 'schedule.json', Buffer.from(schedule));
    const stderr = await expectVerify(errors, 2);
    expect(stderr).toContain('FM_BUNDLE_INVALID: schedule.json does not match the bundle format');
    expect(stderr.length).toBeLessThan(4096);
    const runtime = await importRuntime(errors);
    const refusal = await rejectionOf(runtime.verifyBundle(errors));
    expect(refusal.code).toBe('FM_BUNDLE_INVALID');
    expect(refusal.message.length).toBeLessThan(4096);
  }, 60_000);

  it('refuses blocks larger than 64 MiB (a shard is read one block at a time)', async () => {
    const dir = await mlpBundle();
    await editManifest(dir, (m) => {
      const shard = m.files.find((f) => f.path.startsWith('weights/')) as unknown as { blocks: { size: number } };
      shard.blocks.size = 1 << 30;
    });
    expect(await expectVerify(dir, 2)).toContain('FM_BUNDLE_BOUNDS');
  });
});

describe('decoder context', () => {
  it('refuses a context of 1.5e9 that the decode model\'s attention bias does not have', () => {
    const model = (name: string, bias: number[]) => ({ name, inputs: [{ name: 'bias', dtype: 'float32' as const, shape: bias }], outputs: [], weightBytes: 0 });
    const schedule = {
      formatVersion: 1, shaders: [], shards: [], models: [], memory: 'shared', plannedPeakBytes: 0,
      decoder: { prefill: 'p', decode: 'd', context: 1_500_000_000, promptLength: 4, vocab: 10, inputIds: 'ids', positionIds: 'pos', attentionBias: 'bias', window: 0, logits: 'l' },
    } as unknown as Schedule;
    expect(() => checkWorkBounds(schedule, [model('p', [1, 4]), model('d', [1, 1, 1, 64])])).toThrow(/FM_BUNDLE_BOUNDS: .*context 1500000000 does not match the 64 elements/);
    const fitting = { ...schedule, decoder: { ...schedule.decoder!, context: 64 } };
    expect(() => checkWorkBounds(fitting, [model('p', [1, 4]), model('d', [1, 1, 1, 64])])).not.toThrow();
  });
});

it('keeps the written bundle fixtures within their declared peak (the control)', async () => {
  const dir = await mlpBundle();
  await writeFile(join(dir, 'unused.txt'), 'not listed, never read');
  await expectVerify(dir, 0, '--max-gpu-bytes', '4096');
});
