/**
 * Using a device profile: predicted kernel latency and load capacity, as the load planner needs them.
 */
import type { CostClass } from '../ops/op.js';
import type { KernelProgram, ProgramKernel } from '../lower/program.js';
import type { DeviceProfile, LatencyModel } from '../../schemas/profile.js';
import { kernelFeatures, type KernelFeatures } from './kernel-features.js';

export function predictUs(model: LatencyModel, f: KernelFeatures): number {
  return model.fixedUs + model.perByteUs * f.bytes + model.perFlopUs * f.flops;
}

/** Predicted latency of a kernel of `costClass` in microseconds; 0 for view ops (they emit no kernel). */
export function predictKernelUs(profile: DeviceProfile, costClass: CostClass, f: KernelFeatures): number {
  return costClass === 'view' ? 0 : predictUs(profile.classes[costClass].latency, f);
}

/**
 * Bytes the kernel can carry while slowing down by at most its class's threshold:
 * threshold * predicted latency / carry cost per byte. Floored so plans do not depend on the last bits.
 */
export function capacityBytes(profile: DeviceProfile, costClass: CostClass, f: KernelFeatures): number {
  if (costClass === 'view') return 0;
  return Math.floor(profile.classes[costClass].capacityBytesPerUs * predictKernelUs(profile, costClass, f));
}

export function kernelCapacityBytes(profile: DeviceProfile, program: KernelProgram, kernel: ProgramKernel): number {
  return capacityBytes(profile, kernel.costClass, kernelFeatures(program, kernel));
}

/** What compile reports and schedules record about the profile a plan used. */
export interface ProfileIdentity {
  name: string;
  device: string;
}

export function profileIdentity(profile: DeviceProfile): ProfileIdentity {
  const d = profile.device;
  const what = d.description || [d.vendor, d.architecture, d.device].filter(Boolean).join(' ') || 'unknown device';
  return { name: profile.name, device: `${what} (${d.backend})` };
}
