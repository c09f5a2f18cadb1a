/**
 * Device profiles the compiler plans with: the shipped ones in profiles/<name>.json, or any file
 * given with --profile. One shipped profile is the default.
 */
import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fail } from '../errors.js';
import { packageRoot } from '../package-root.js';
import { deviceProfileSchema, type DeviceProfile } from '../../schemas/profile.js';

/** The profile compile uses without --profile. Switch to 'h100-vulkan' once profiles/h100-vulkan.json is measured. */
export const DEFAULT_PROFILE = 'llvmpipe';

export const PROFILES_DIR = 'profiles';

export function shippedProfilePath(name: string): string {
  return join(packageRoot(), PROFILES_DIR, `${name}.json`);
}

/** A shipped profile name (e.g. 'llvmpipe') or the path of a profile file. */
export function resolveProfile(spec: string): DeviceProfile {
  const shipped = /^[A-Za-z0-9_.-]+$/.test(spec) && !spec.endsWith('.json') ? shippedProfilePath(spec) : undefined;
  return loadProfileFile(shipped && existsSync(shipped) ? shipped : spec);
}

let defaultCache: DeviceProfile | undefined;

export function defaultProfile(): DeviceProfile {
  defaultCache ??= loadProfileFile(shippedProfilePath(DEFAULT_PROFILE));
  return defaultCache;
}

export function loadProfileFile(file: string): DeviceProfile {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (e) {
    fail('FM_IO', `device profile ${JSON.stringify(file)} cannot be read: ${(e as Error).message}`, e);
  }
  return parseProfile(text, file);
}

/** Validates a profile's text; errors name the file and the first offending fields. */
export function parseProfile(text: string, file: string): DeviceProfile {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    fail('FM_PROFILE', `device profile ${JSON.stringify(file)} is not valid JSON: ${(e as Error).message}`, e);
  }
  const parsed = deviceProfileSchema.safeParse(json);
  if (!parsed.success) {
    const issues = parsed.error.issues.slice(0, 3).map((i) => `${i.path.join('.') || '(root)'}: ${i.message}`).join('; ');
    fail('FM_PROFILE', `device profile ${JSON.stringify(file)} does not match the profile schema: ${issues}`);
  }
  return parsed.data;
}
