/**
 * Compiling with a device profile: capacities follow the profile (threshold x predicted latency /
 * carry cost), the schedule and report name the profile, bundles stay deterministic, and a bad
 * --profile file is refused with a stable code naming the file.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { compileStreamingContents } from '../../compiler/compile.js';
import { cli } from '../harness/cli.js';
import { defaultProfile, DEFAULT_PROFILE, loadProfileFile } from '../../compiler/profile/load.js';
import { capacityBytes, kernelCapacityBytes, predictKernelUs } from '../../compiler/schedule/latency-model.js';
import { kernelFeatures } from '../../compiler/schedule/kernel-features.js';
import type { KernelProgram } from '../../compiler/lower/program.js';
import type { DeviceProfile } from '../../schemas/profile.js';
import { REPO_ROOT, tempDir } from '../harness/paths.js';
import { expectFlashmemError } from '../harness/single-node.js';

const MODEL = join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx');
const BUDGET = 200 * 1024;
const tmp = tempDir('compile-profile');
afterAll(() => tmp.cleanup());

/**
 * The default profile without its layout costs (weight layout choice is not under test here, and
 * texture weights are never streamed), renamed.
 */
function planningProfile(name: string): DeviceProfile {
  const { layoutCost: _, ...p } = structuredClone(defaultProfile());
  return { ...p, name };
}

/** The default profile with every class's capacity scaled by `factor` (through the carry cost). */
function scaledCapacity(factor: number, name: string): DeviceProfile {
  const p = planningProfile(name);
  for (const c of Object.values(p.classes)) {
    c.carryUsPerByte /= factor;
    c.capacityBytesPerUs = c.thresholdRatio / c.carryUsPerByte;
  }
  return p;
}


describe('load capacities from the device profile', () => {
  const profile = defaultProfile();
  const program: KernelProgram = {
    tensors: new Map([
      ['x', { id: 'x', type: { dtype: 'float32', shape: [1, 16, 32, 32] }, role: 'input', bytes: 65536 }],
      ['w', { id: 'w', type: { dtype: 'float32', shape: [16 * 16 * 9] }, role: 'weight', bytes: 9216 }],
      ['y', { id: 'y', type: { dtype: 'float32', shape: [1, 16, 32, 32] }, role: 'activation', bytes: 65536 }],
    ]),
    kernels: [
      { label: 'conv2d_3x3', wgsl: '', bindings: ['x', 'w', 'y'], workgroups: [1, 1, 1], node: 'c', opType: 'Conv', costClass: 'reusable' },
      { label: 'softmax', wgsl: '', bindings: ['x', 'y'], workgroups: [1, 1, 1], node: 's', opType: 'Softmax', costClass: 'hierarchical' },
      { label: 'relu', wgsl: '', bindings: ['x', 'y'], workgroups: [1, 1, 1], node: 'r', opType: 'Relu', costClass: 'elementwise' },
    ],
    inputs: ['x'],
    outputs: ['y'],
  };

  it('a kernel carries threshold x predicted latency / carry cost per byte; hierarchical kernels carry nothing', () => {
    const [conv, softmax, relu] = program.kernels as [typeof program.kernels[0], typeof program.kernels[0], typeof program.kernels[0]];
    const f = kernelFeatures(program, conv);
    expect(f).toEqual({ bytes: 65536 + 9216 + 65536, flops: 2 * 16 * 32 * 32 * (16 * 9) });
    const predicted = predictKernelUs(profile, 'reusable', f);
    expect(kernelCapacityBytes(profile, program, conv)).toBe(Math.floor(profile.classes.reusable.thresholdRatio * predicted / profile.classes.reusable.carryUsPerByte));
    expect(kernelCapacityBytes(profile, program, softmax)).toBe(0);
    expect(kernelCapacityBytes(profile, program, relu)).toBeGreaterThan(0);
    expect(capacityBytes(profile, 'view', f)).toBe(0);
  });

  it('a profile with 4x cheaper carries gives 4x the capacity', () => {
    const cheap = scaledCapacity(4, 'cheap');
    for (const k of program.kernels) {
      const base = kernelCapacityBytes(profile, program, k);
      expect(Math.abs(kernelCapacityBytes(cheap, program, k) - 4 * base)).toBeLessThanOrEqual(4);
    }
  });
});

describe('compile with a device profile', () => {
  it('uses the default profile and records it in schedule.json and the report', async () => {
    const { contents, report } = await compileStreamingContents(MODEL, { memoryBudget: BUDGET });
    const expected = { name: DEFAULT_PROFILE, device: expect.stringContaining(defaultProfile().device.backend) };
    expect(contents.schedule.models[0]!.loadPlan!.profile).toEqual(expected);
    expect(report.streaming!.profile).toEqual(expected);
  });

  it('plans with the profile: no capacity means predicted stalls, ample capacity means none', async () => {
    const none = planningProfile('no-capacity');
    for (const c of Object.values(none.classes)) c.thresholdRatio = c.capacityBytesPerUs = 0;
    const ample = scaledCapacity(1e6, 'ample');
    const [starved, roomy] = await Promise.all([none, ample].map((profile) => compileStreamingContents(MODEL, { memoryBudget: BUDGET, profile })));
    expect(starved!.report.streaming!.profile.name).toBe('no-capacity');
    expect(starved!.report.streaming!.predictedStallMs).toBeGreaterThan(0);
    expect(roomy!.report.streaming!.predictedStallMs).toBe(0);
    expect(roomy!.contents.schedule.models[0]!.loadPlan!.profile!.name).toBe('ample');
  });

  it('the same model and profile give byte-identical schedules and shaders', async () => {
    const profile = scaledCapacity(2, 'twice');
    const [a, b] = await Promise.all([1, 2].map(() => compileStreamingContents(MODEL, { memoryBudget: BUDGET, profile })));
    expect(JSON.stringify(a!.contents.schedule)).toBe(JSON.stringify(b!.contents.schedule));
    expect([...a!.contents.shaders]).toEqual([...b!.contents.shaders]);
  });
});

describe('compile --profile', () => {
  const compile = (profile: string) => cli('compile', MODEL, '--out', join(tmp.dir, 'bundle'), '--memory-budget', `${BUDGET}`, '--profile', profile);

  it('accepts a shipped profile by name and a profile file', async () => {
    const file = join(tmp.dir, 'copy.json');
    writeFileSync(file, JSON.stringify({ ...defaultProfile(), name: 'my-copy' }));
    const byName = await compile(DEFAULT_PROFILE);
    expect(byName.code, byName.stderr).toBe(0);
    expect(byName.stdout).toContain(`device profile ${DEFAULT_PROFILE}`);
    const byFile = await compile(file);
    expect(byFile.code, byFile.stderr).toBe(0);
    expect(byFile.stdout).toContain('device profile my-copy');
  });

  it('refuses a profile that is not JSON, does not match the schema, or is missing, naming the file', async () => {
    const notJson = join(tmp.dir, 'not-json.json');
    writeFileSync(notJson, '{ "format": ');
    const wrong = join(tmp.dir, 'wrong-schema.json');
    const broken = structuredClone(defaultProfile()) as unknown as { classes: Record<string, { capacityBytesPerUs: number }> };
    broken.classes.reusable!.capacityBytesPerUs *= 2; // no longer threshold / carry cost
    writeFileSync(wrong, JSON.stringify(broken));
    for (const [file, code] of [[notJson, 'FM_PROFILE'], [wrong, 'FM_PROFILE'], [join(tmp.dir, 'absent.json'), 'FM_IO']] as const) {
      const r = await compile(file);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(code);
      expect(r.stderr).toContain(file);
      expectFlashmemError(() => loadProfileFile(file), code, /device profile/);
    }
    expect((await compile(wrong)).stderr).toMatch(/classes\.reusable.*threshold/);
  });
});
