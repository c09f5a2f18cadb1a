/**
 * `flashmemc profile`: measures a device profile on the current WebGPU device. Per operator
 * class, kernels of a sweep of sizes are timed alone and while carrying a sweep of extra bytes
 * (their carrier rewrite); the latency model and the carry cost are fitted on the kernels that
 * are not held out, and the prediction error is reported on the held-out ones.
 */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { createNodeDevice, keepAlive } from '../target/webgpu.js';
import { DEFAULT_LIMITS, type TargetLimits } from '../target/limits.js';
import { packageRoot } from '../package-root.js';
import {
  deviceProfileSchema, PROFILE_FORMAT_VERSION, PROFILED_CLASSES,
  type ClassProfile, type DeviceProfile, type ProfiledClass,
} from '../../schemas/profile.js';
import { benchCases, compileSpec, ProgramOnDevice, timePerDispatchUs, timeVariantsUs, type BenchCase, type SizePreset, type TimingOptions } from './bench.js';
import { kernelFeatures, type KernelFeatures } from '../schedule/kernel-features.js';
import { errorSummary, fitRobustRelative, median, round } from './fit.js';
import { predictUs } from '../schedule/latency-model.js';
import { mergeExtras, profileMeasurements, type MeasureContext, type ProfileExtras } from './measurements.js';
import './extra-measurements.js';

/**
 * FlashMem's latency thresholds per class: how much slower a kernel may get while carrying loads
 * (elementwise and copies +300%, Conv/MatMul +20%, LayerNorm/Softmax-like 0%: they never carry).
 */
export const THRESHOLD_RATIO: Record<ProfiledClass, number> = {
  elementwise: 3, 'data-movement': 3, reusable: 0.2, hierarchical: 0,
};

/** Carry costs below this (10 TB/s) are measurement noise; it also keeps capacities finite. */
const MIN_CARRY_US_PER_BYTE = 1e-7;

export interface ProfileRunOptions {
  backend?: string;
  /** a seconds-long run on tiny sizes, for tests */
  quick?: boolean;
  /** 'auto': small sizes on software adapters (llvmpipe, SwiftShader, lavapipe), large on GPUs */
  sizes?: SizePreset | 'auto';
  /** profile name; derived from the adapter by default */
  name?: string;
  log?: (line: string) => void;
  /** where the run is (a progress bar: compiler/cli/progress.ts) */
  onProgress?: (event: ProfileProgress) => void;
}

/**
 * What runProfile is measuring: the upload bandwidth, then each benchmark case of each sweep
 * (`index` from 0 of `count` cases in sweep `sweep` from 0 of `sweeps`), then each extra measurement.
 */
export type ProfileProgress =
  | { phase: 'upload' }
  | { phase: 'sweep'; sweep: number; sweeps: number; index: number; count: number; op: string; size: string }
  | { phase: 'measurement'; index: number; count: number; name: string };

export interface KernelSample {
  op: string;
  costClass: ProfiledClass;
  size: string;
  label: string;
  heldOut: boolean;
  features: KernelFeatures;
  /** median latency alone */
  us: number;
  /** median latency while carrying `bytes` */
  carried: { bytes: number; us: number }[];
}

export interface ProfileRun {
  profile: DeviceProfile;
  samples: KernelSample[];
  elapsedMs: number;
}

interface RunSettings {
  quick: boolean;
  /** sweeps over every case; a kernel's latency is the median over sweeps, so a burst of load from other processes spoils one sweep's value, not the result */
  passes: number;
  sizes: SizePreset;
  timing: TimingOptions;
  /** carried bytes as multiples of the kernel's own traffic */
  carryFractions: number[];
  maxCarryBytes: number;
  uploadBytes: number;
}

function settingsFor(sizes: SizePreset, quick: boolean): RunSettings {
  if (quick) {
    return { quick, sizes, passes: 1, timing: { batchTargetMs: 8, repeats: 3, maxDispatches: 200 }, carryFractions: [2], maxCarryBytes: 4 << 20, uploadBytes: 2 << 20 };
  }
  return sizes === 'small'
    ? { quick, sizes, passes: 3, timing: { batchTargetMs: 30, repeats: 3, maxDispatches: 2000 }, carryFractions: [0.5, 2, 6], maxCarryBytes: 16 << 20, uploadBytes: 16 << 20 }
    : { quick, sizes, passes: 3, timing: { batchTargetMs: 25, repeats: 5, maxDispatches: 5000 }, carryFractions: [0.5, 2, 6], maxCarryBytes: 64 << 20, uploadBytes: 64 << 20 };
}

const SOFTWARE_ADAPTER = /llvmpipe|lavapipe|swiftshader|softpipe/i;

export async function runProfile(options: ProfileRunOptions = {}): Promise<ProfileRun> {
  const start = performance.now();
  const log = options.log ?? (() => {});
  const progress = options.onProgress ?? (() => {});
  const gpu = await createNodeDevice({ backend: options.backend });
  const info = adapterDescription(gpu.adapter, gpu.backend);
  const software = SOFTWARE_ADAPTER.test(`${info.device} ${info.description}`);
  const settings = settingsFor(options.sizes && options.sizes !== 'auto' ? options.sizes : software ? 'small' : 'large', options.quick ?? false);
  const limits = deviceLimits(gpu.device);
  log(`profiling ${info.description || info.device} (${gpu.backend}), ${settings.sizes} sizes${settings.quick ? ', quick' : ''}`);
  try {
    progress({ phase: 'upload' });
    const uploadBytesPerMs = await measureUpload(gpu.device, settings.uploadBytes);
    log(`upload (queue.writeBuffer): ${(uploadBytesPerMs / 1e6).toFixed(2)} GB/s`);
    const passes: KernelSample[][] = [];
    const cases = benchCases(settings.sizes, settings.quick);
    for (let pass = 0; pass < settings.passes; pass++) {
      if (settings.passes > 1) log(`sweep ${pass + 1} of ${settings.passes}`);
      const samples: KernelSample[] = [];
      for (const [index, c] of cases.entries()) {
        progress({ phase: 'sweep', sweep: pass, sweeps: settings.passes, index, count: cases.length, op: c.op, size: c.size });
        samples.push(...(await measureCase(gpu.device, c, limits, settings, log)));
      }
      passes.push(samples);
    }
    const samples = combinePasses(passes);
    const extras = await runExtraMeasurements(gpu.device, limits, settings, log, progress);
    const profile = buildProfile({ samples, uploadBytesPerMs, info, settings, name: options.name ?? defaultName(info), extras });
    return { profile, samples, elapsedMs: performance.now() - start };
  } finally {
    gpu.device.destroy();
  }
}

function adapterDescription(adapter: GPUAdapter, backend: string): DeviceProfile['device'] {
  const i = adapter.info;
  return { backend, vendor: i.vendor ?? '', architecture: i.architecture ?? '', device: i.device ?? '', description: i.description ?? '' };
}

/** The compiler's limits raised to the device's, so the benchmark kernels are valid on it. */
function deviceLimits(device: GPUDevice): TargetLimits {
  const limits: TargetLimits = { ...DEFAULT_LIMITS };
  const supported = device.limits as unknown as Record<string, number | undefined>;
  for (const key of Object.keys(limits) as (keyof TargetLimits)[]) limits[key] = Math.max(limits[key] ?? 0, supported[key] ?? 0);
  return limits;
}

/** 'llvmpipe' for Mesa's software rasteriser, else the adapter's description, filesystem-safe. */
export function defaultName(info: DeviceProfile['device']): string {
  if (/llvmpipe/i.test(`${info.device} ${info.description}`)) return 'llvmpipe';
  const what = (info.device || info.description || info.vendor || 'device').toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '');
  return `${what.slice(0, 48)}-${info.backend}`.slice(0, 64);
}

/** queue.writeBuffer bandwidth, bytes per ms: the rate at which streamed weights reach the GPU. */
async function measureUpload(device: GPUDevice, bytes: number): Promise<number> {
  const buffer = device.createBuffer({ size: bytes, usage: GPUBufferUsage.COPY_DST | GPUBufferUsage.STORAGE });
  const data = new Uint8Array(bytes).fill(1);
  const rates: number[] = [];
  try {
    for (let i = 0; i < 4; i++) {
      const t0 = performance.now();
      device.queue.writeBuffer(buffer, 0, data);
      await keepAlive(device.queue.onSubmittedWorkDone());
      if (i > 0) rates.push(bytes / Math.max(performance.now() - t0, 1e-3)); // the first write warms up
    }
  } finally {
    buffer.destroy();
  }
  return round(median(rates));
}

async function measureCase(device: GPUDevice, c: BenchCase, limits: TargetLimits, s: RunSettings, log: (l: string) => void): Promise<KernelSample[]> {
  const program = compileSpec(c.model, limits);
  const onDevice = new ProgramOnDevice(device, program);
  const samples: KernelSample[] = [];
  try {
    for (let k = 0; k < program.kernels.length; k++) {
      const kernel = program.kernels[k]!;
      if (kernel.costClass !== c.costClass) continue;
      const features = kernelFeatures(program, kernel);
      const carries = onDevice.canCarry(k) ? carrySweep(features.bytes, s) : [];
      const records = [await onDevice.dispatcher(k)];
      for (const bytes of carries) records.push(await onDevice.dispatcher(k, bytes));
      const [us, ...carriedUs] = await timeVariantsUs(device, records, s.timing) as [number, ...number[]];
      const carried = carries.map((bytes, i) => ({ bytes, us: carriedUs[i]! }));
      samples.push({ op: c.op, costClass: c.costClass, size: c.size, label: kernel.label, heldOut: c.heldOut, features, us, carried });
      log(`${c.costClass.padEnd(13)} ${c.op.padEnd(10)} ${c.size.padEnd(10)} ${kernel.label.padEnd(18)} ${us.toFixed(1).padStart(9)} us` +
        `${carried.map((x) => `  +${(x.bytes / 1024).toFixed(0)} KiB: ${x.us.toFixed(1)} us`).join('')}${c.heldOut ? '  (held out)' : ''}`);
    }
  } finally {
    onDevice.destroy();
  }
  return samples;
}

/** Each kernel's median over sweeps (every sweep measures the same kernels in the same order). */
export function combinePasses(passes: readonly KernelSample[][]): KernelSample[] {
  return passes[0]!.map((first, i) => ({
    ...first,
    us: median(passes.map((p) => p[i]!.us)),
    carried: first.carried.map((c, j) => ({ bytes: c.bytes, us: median(passes.map((p) => p[i]!.carried[j]!.us)) })),
  }));
}

/** Carried byte counts: multiples of the kernel's own traffic, 256-byte aligned, capped. */
function carrySweep(trafficBytes: number, s: RunSettings): number[] {
  const sizes = s.carryFractions.map((f) => Math.min(s.maxCarryBytes, Math.max(256, Math.round((f * trafficBytes) / 256) * 256)));
  return [...new Set(sizes)];
}

async function runExtraMeasurements(
  device: GPUDevice, limits: TargetLimits, s: RunSettings, log: (l: string) => void, progress: (event: ProfileProgress) => void,
): Promise<ProfileExtras> {
  let extras: ProfileExtras = {};
  const ctx: MeasureContext = {
    device, limits, quick: s.quick, sizes: s.sizes, timing: s.timing, log,
    compile: (spec) => compileSpec(spec, limits),
    upload: (program) => new ProgramOnDevice(device, program),
    timeUs: (record) => timePerDispatchUs(device, record, s.timing),
  };
  const measurements = profileMeasurements();
  for (const [index, m] of measurements.entries()) {
    progress({ phase: 'measurement', index, count: measurements.length, name: m.name });
    log(`measurement ${m.name}`);
    extras = mergeExtras(extras, await m.run(ctx));
  }
  return extras;
}

interface ProfileInputs {
  samples: KernelSample[];
  uploadBytesPerMs: number;
  info: DeviceProfile['device'];
  settings: RunSettings;
  name: string;
  extras: ProfileExtras;
}

/** Fits every class and assembles the profile (validated against the schema). */
export function buildProfile(p: ProfileInputs): DeviceProfile {
  const classes = Object.fromEntries(PROFILED_CLASSES.map((cls) => [cls, fitClass(cls, p.samples.filter((x) => x.costClass === cls))]));
  const heldOut = p.samples.filter((x) => x.heldOut);
  const predicted = (x: KernelSample) => predictUs((classes[x.costClass] as ClassProfile).latency, x.features);
  const profile: DeviceProfile = {
    format: 'flashmemc-device-profile',
    formatVersion: PROFILE_FORMAT_VERSION,
    name: p.name,
    device: p.info,
    measuredAt: new Date().toISOString(),
    generator: { name: 'flashmemc', version: packageVersion() },
    method: { quick: p.settings.quick, passes: p.settings.passes, repeats: p.settings.timing.repeats, batchTargetMs: p.settings.timing.batchTargetMs },
    uploadBytesPerMs: p.uploadBytesPerMs,
    classes: classes as DeviceProfile['classes'],
    heldOut: errorSummary(heldOut.map((x) => ({ predicted: predicted(x), measured: x.us }))),
    heldOutCarried: errorSummary(heldOut.flatMap((x) => x.carried.map((c) => ({
      predicted: predicted(x) + (classes[x.costClass] as ClassProfile).carryUsPerByte * c.bytes, measured: c.us,
    })))),
    ...p.extras,
  };
  return deviceProfileSchema.parse(profile);
}

/** The latency model and carry cost of one class, fitted on its kernels that are not held out. */
export function fitClass(cls: ProfiledClass, samples: readonly KernelSample[]): ClassProfile {
  const fit = samples.filter((x) => !x.heldOut);
  if (fit.length === 0) throw new Error(`profile: no kernels of class ${cls} to fit`);
  const [fixedUs, perByteUs, perFlopUs] = fitRobustRelative(
    fit.map((x) => ({ x: [1, x.features.bytes, x.features.flops], y: x.us })),
    [true, true, cls === 'reusable'],
  ).map((v) => round(v)) as [number, number, number];
  const latency = { fixedUs, perByteUs, perFlopUs };
  const carryUsPerByte = round(Math.max(MIN_CARRY_US_PER_BYTE, fitCarryCost(fit)));
  const thresholdRatio = THRESHOLD_RATIO[cls];
  const heldOut = samples.filter((x) => x.heldOut);
  return {
    latency,
    thresholdRatio,
    carryUsPerByte,
    capacityBytesPerUs: thresholdRatio / carryUsPerByte,
    ops: [...new Set(samples.map((x) => x.op))],
    fitSamples: fit.length,
    heldOut: errorSummary(heldOut.map((x) => ({ predicted: predictUs(latency, x.features), measured: x.us }))),
  };
}

/**
 * Extra microseconds per carried byte: the median over kernels and carried sizes of
 * (latency carrying - latency alone) / bytes carried. A median, because single timings on a shared
 * CPU (llvmpipe) jump by 2x or more when other processes run.
 */
export function fitCarryCost(samples: readonly Pick<KernelSample, 'us' | 'carried'>[]): number {
  const slopes = samples.flatMap((x) => x.carried.map((c) => (c.us - x.us) / c.bytes));
  return slopes.length ? median(slopes) : 0;
}

function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}
