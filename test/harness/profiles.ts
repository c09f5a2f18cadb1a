/**
 * A fixed, synthetic device profile for tests whose expectations must not move when the shipped
 * profiles are re-measured (golden files). It reproduces the planner's former fixed ratios: a
 * kernel's latency is proportional to its traffic (1 us per KB) and carrying costs as much per
 * byte, so capacity = threshold x traffic (elementwise 3x, Conv/MatMul 0.2x, Softmax 0); uploads at 1 GB/s.
 */
import { deviceProfileSchema, type ClassProfile, type DeviceProfile } from '../../schemas/profile.js';

const US_PER_BYTE = 1e-3;

function proportional(thresholdRatio: number, ops: string[]): ClassProfile {
  return {
    latency: { fixedUs: 0, perByteUs: US_PER_BYTE, perFlopUs: 0 },
    thresholdRatio,
    carryUsPerByte: US_PER_BYTE,
    capacityBytesPerUs: thresholdRatio / US_PER_BYTE,
    ops,
    fitSamples: 0,
    heldOut: { count: 0, meanAbsRelError: 0, maxAbsRelError: 0 },
  };
}

export function fixedTestProfile(): DeviceProfile {
  return deviceProfileSchema.parse({
    format: 'flashmemc-device-profile',
    formatVersion: 1,
    name: 'fixed-test',
    device: { backend: 'none', vendor: '', architecture: '', device: 'synthetic', description: 'synthetic test profile' },
    measuredAt: '2026-01-01T00:00:00.000Z',
    generator: { name: 'flashmemc', version: '0.0.0' },
    method: { quick: true, passes: 1, repeats: 1, batchTargetMs: 1 },
    uploadBytesPerMs: 1e6,
    classes: {
      elementwise: proportional(3, ['synthetic']),
      'data-movement': proportional(3, ['synthetic']),
      reusable: proportional(0.2, ['synthetic']),
      hierarchical: proportional(0, ['synthetic']),
    },
    heldOut: { count: 0, meanAbsRelError: 0, maxAbsRelError: 0 },
    heldOutCarried: { count: 0, meanAbsRelError: 0, maxAbsRelError: 0 },
  });
}
