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

export function jsonSchemas(): Record<string, unknown> {
  return {
    manifest: z.toJSONSchema(manifestSchema, { target: 'draft-2020-12' }),
    schedule: z.toJSONSchema(scheduleSchema, { target: 'draft-2020-12' }),
  };
}

export function jsonSchemaText(name: string): string {
  return `${JSON.stringify(jsonSchemas()[name], null, 2)}\n`;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const dir = process.argv[2] ?? 'schemas';
  for (const name of Object.keys(jsonSchemas())) writeFileSync(`${dir}/${name}.schema.json`, jsonSchemaText(name));
}
