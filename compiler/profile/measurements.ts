/**
 * Extra profile measurements: a hook for micro-benchmarks beyond the latency/carry sweep, e.g. the
 * 2.5D texture layout's cost (profile.layoutCost) or the mapped copies' bandwidth
 * (profile.copies). A measurement gets the device and the benchmark helpers and returns the
 * profile fields it fills; `flashmemc profile` runs every registered measurement after the sweep.
 * To add one: implement ProfileMeasurement in a module that calls registerProfileMeasurement when
 * loaded, and import that module from compiler/profile/extra-measurements.ts (one line).
 */
import type { ModelSpec } from '../../fixtures/onnx-builder.js';
import type { KernelProgram } from '../lower/program.js';
import type { TargetLimits } from '../target/limits.js';
import type { LayoutCost, MappedCopies } from '../../schemas/profile.js';
import type { ProgramOnDevice, SizePreset, TimingOptions } from './bench.js';

/** What a measurement may contribute to the profile (fields the sweep itself does not fill). */
export interface ProfileExtras {
  layoutCost?: LayoutCost;
  copies?: MappedCopies;
}

export interface MeasureContext {
  device: GPUDevice;
  /** limits the benchmark programs are compiled for */
  limits: TargetLimits;
  quick: boolean;
  sizes: SizePreset;
  timing: TimingOptions;
  /** a model spec through import and the pass pipeline */
  compile(spec: ModelSpec): KernelProgram;
  /** buffers for a compiled program on the device (destroy() when done) */
  upload(program: KernelProgram): ProgramOnDevice;
  /** median microseconds per repetition of a recorded dispatch sequence */
  timeUs(record: (pass: GPUComputePassEncoder) => void): Promise<number>;
  log(line: string): void;
}

export interface ProfileMeasurement {
  /** short name, shown in the profile run's log */
  name: string;
  run(ctx: MeasureContext): Promise<ProfileExtras>;
}

const registry: ProfileMeasurement[] = [];

export function registerProfileMeasurement(m: ProfileMeasurement): void {
  if (registry.some((r) => r.name === m.name)) throw new Error(`profile measurement ${m.name} registered twice`);
  registry.push(m);
}

export function profileMeasurements(): readonly ProfileMeasurement[] {
  return registry;
}

/** Merges extras into one object; later measurements add fields, they do not drop earlier ones. */
export function mergeExtras(into: ProfileExtras, extra: ProfileExtras): ProfileExtras {
  const layoutCost = into.layoutCost || extra.layoutCost ? { ...into.layoutCost, ...extra.layoutCost } : undefined;
  const copies = extra.copies ?? into.copies;
  return { ...into, ...(layoutCost ? { layoutCost } : {}), ...(copies ? { copies } : {}) };
}
