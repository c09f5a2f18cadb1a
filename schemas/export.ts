/**
 * Writes the JSON Schema files of the bundle format (schemas/*.schema.json) from the zod
 * schemas, which are the single source of truth. `npm run schemas`; a test fails when the
 * committed files are stale. The generated runtime embeds these JSON Schemas to validate bundles.
 */
import { writeFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { z } from 'zod';
import { manifestSchema } from './manifest.js';
import { scheduleSchema } from './schedule.js';
import { signatureSchema } from './signature.js';
import { deviceProfileSchema } from './profile.js';

export function jsonSchemas(): Record<string, unknown> {
  return {
    manifest: z.toJSONSchema(manifestSchema, { target: 'draft-2020-12' }),
    schedule: z.toJSONSchema(scheduleSchema, { target: 'draft-2020-12' }),
    signature: z.toJSONSchema(signatureSchema, { target: 'draft-2020-12' }),
  };
}

/** Schemas of the other files flashmemc reads (device profiles): exported, not embedded in runtimes. */
export function toolJsonSchemas(): Record<string, unknown> {
  return { profile: z.toJSONSchema(deviceProfileSchema, { target: 'draft-2020-12' }) };
}

export function jsonSchemaText(name: string): string {
  return `${JSON.stringify({ ...jsonSchemas(), ...toolJsonSchemas() }[name], null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2] ?? 'schemas';
  for (const name of Object.keys({ ...jsonSchemas(), ...toolJsonSchemas() })) writeFileSync(`${dir}/${name}.schema.json`, jsonSchemaText(name));
}
