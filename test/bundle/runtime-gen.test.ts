/**
 * Runtime generation: one self-contained ES module with the bundle format embedded, a declaration
 * file for apps, and loud failures when the template is broken.
 */
import { cp, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateRuntime, generateRuntimeFrom, packageRoot } from '../../compiler/bundle/runtime-gen.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { jsonSchemas } from '../../schemas/export.js';

// inside the repository, so that the template copies resolve @webgpu/types and @types/node
const scratch = join(packageRoot(), '.vitest-tmp', `runtime-gen-${process.pid}`);
afterAll(() => rm(scratch, { recursive: true, force: true }));

async function templateCopy(name: string, change: (source: string) => string): Promise<string> {
  const dir = join(scratch, name);
  await mkdir(dir, { recursive: true });
  await cp(join(packageRoot(), 'runtime-template'), dir, { recursive: true });
  const entry = join(dir, 'runtime.ts');
  await writeFile(entry, change(await readFile(entry, 'utf8')));
  return dir;
}

describe('generateRuntime', () => {
  const runtime = generateRuntime();

  it('is cached per process', () => {
    expect(generateRuntime()).toBe(runtime);
  });

  it('embeds the format version and the JSON Schemas of schemas/*.ts', () => {
    const initializer = /^const BUNDLE_FORMAT = (.*);$/m.exec(runtime.js)?.[1];
    expect(initializer).toBeDefined();
    expect(JSON.parse(initializer!)).toEqual({ formatVersion: FORMAT_VERSION, schemas: jsonSchemas() });
  });

  it('emits one ES module with no static imports', () => {
    expect(runtime.js).not.toMatch(/^\s*import\s[^(]/m);
    expect(runtime.js).not.toMatch(/^\s*export\s.*\sfrom\s/m);
    expect(runtime.js).toMatch(/^export async function loadBundle\(/m);
    expect(runtime.js).toMatch(/^export class FlashmemRuntimeError extends Error/m);
  });

  it('declares the public API for apps, with the WebGPU types it refers to', () => {
    expect(runtime.dts).toContain('/// <reference types="@webgpu/types" preserve="true" />');
    expect(runtime.dts).toContain('export declare function loadBundle(dirOrUrl: string | URL, options?: LoadOptions): Promise<FlashmemSession>;');
    for (const name of ['FlashmemSession', 'SessionStats', 'LoadOptions', 'RunInputs', 'RunOutputs', 'ModelInfo']) {
      expect(runtime.dts).toMatch(new RegExp(`export (interface|type) ${name}\\b`));
    }
    // internals stay out of the declarations
    expect(runtime.dts).not.toMatch(/BUNDLE_FORMAT\s*[:=]/);
    expect(runtime.dts).not.toContain('class Session');
  });

  it('fails loudly when the template has a type error', async () => {
    const dir = await templateCopy('type-error', (source) => `${source}\nconst broken: number = 'not a number';\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/type errors[\s\S]*broken/);
  });

  it('refuses a template that imports statically, since runtime.js must be one file', async () => {
    const dir = await templateCopy('imports', (source) => `${source}\nimport { join } from 'node:path';\nexport const j = join;\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/must not import statically/);
  });

  it('refuses a template without the BUNDLE_FORMAT placeholder', async () => {
    const dir = await templateCopy('no-placeholder', (source) => source.replace(/const BUNDLE_FORMAT\b/g, 'const RENAMED_FORMAT').replace(/BUNDLE_FORMAT\./g, 'RENAMED_FORMAT.'));
    expect(() => generateRuntimeFrom(dir)).toThrow(/no BUNDLE_FORMAT declaration/);
  });
});
