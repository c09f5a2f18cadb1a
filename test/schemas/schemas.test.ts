/** The committed JSON Schema files are exactly what the zod schemas export (`npm run schemas`). */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { jsonSchemaText, jsonSchemas, toolJsonSchemas } from '../../schemas/export.js';
import { REPO_ROOT } from '../harness/paths.js';

describe('exported JSON Schemas', () => {
  for (const name of Object.keys({ ...jsonSchemas(), ...toolJsonSchemas() })) {
    it(`schemas/${name}.schema.json is up to date`, () => {
      expect(readFileSync(join(REPO_ROOT, 'schemas', `${name}.schema.json`), 'utf8'), 'stale: run npm run schemas').toBe(jsonSchemaText(name));
    });
  }
});
