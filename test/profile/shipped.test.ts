/** The device profiles shipped in profiles/ are valid, and one of them is the default. */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { deviceProfileSchema, PROFILED_CLASSES } from '../../schemas/profile.js';
import { DEFAULT_PROFILE, defaultProfile, PROFILES_DIR, resolveProfile } from '../../compiler/profile/load.js';
import { THRESHOLD_RATIO } from '../../compiler/profile/run.js';
import { REPO_ROOT } from '../harness/paths.js';

const dir = join(REPO_ROOT, PROFILES_DIR);
const shipped = readdirSync(dir).filter((f) => f.endsWith('.json'));

describe('shipped device profiles', () => {
  it('include the default profile', () => {
    expect(shipped).toContain(`${DEFAULT_PROFILE}.json`);
    expect(defaultProfile().name).toBe(DEFAULT_PROFILE);
  });

  for (const file of shipped) {
    it(`${file} matches the schema, is named after its file and was fully measured`, () => {
      const profile = deviceProfileSchema.parse(JSON.parse(readFileSync(join(dir, file), 'utf8')));
      expect(`${profile.name}.json`).toBe(file);
      expect(profile.method.quick).toBe(false);
      expect(resolveProfile(profile.name)).toEqual(profile);
      for (const cls of PROFILED_CLASSES) {
        const c = profile.classes[cls];
        expect(c.thresholdRatio, cls).toBe(THRESHOLD_RATIO[cls]);
        expect(c.fitSamples, cls).toBeGreaterThanOrEqual(4);
        expect(c.heldOut.count, cls).toBeGreaterThanOrEqual(2);
      }
      expect(profile.classes.hierarchical.capacityBytesPerUs).toBe(0);
      // FlashMem's ordering of load capacities: elementwise kernels carry more than Conv/MatMul
      expect(profile.classes.elementwise.capacityBytesPerUs).toBeGreaterThan(profile.classes.reusable.capacityBytesPerUs);
    });
  }

  it('the schema refuses a capacity that is not threshold / carry cost, and unknown fields', () => {
    const good = defaultProfile();
    expect(deviceProfileSchema.safeParse(good).success).toBe(true);
    const badCapacity = structuredClone(good);
    badCapacity.classes.elementwise.capacityBytesPerUs += 1;
    expect(deviceProfileSchema.safeParse(badCapacity).success).toBe(false);
    expect(deviceProfileSchema.safeParse({ ...good, extra: 1 }).success).toBe(false);
    expect(deviceProfileSchema.safeParse({ ...good, layoutCost: { conv: { textureOverBuffer: 0.8 } } }).success).toBe(true);
    expect(deviceProfileSchema.safeParse({ ...good, layoutCost: { conv: { textureOverBuffer: -1 } } }).success).toBe(false);
  });
});
