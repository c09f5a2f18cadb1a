/**
 * Runtime generation: the template's modules inlined into one self-contained ES module with the
 * bundle format embedded, a self-contained declaration file for apps, and loud failures when the
 * template is broken or breaks the inlining rules.
 */
import { cp, mkdir, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import ts from 'typescript';
import { afterAll, describe, expect, it } from 'vitest';
import { generateRuntime, generateRuntimeFrom, packageRoot } from '../../compiler/bundle/runtime-gen.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { jsonSchemas } from '../../schemas/export.js';

// inside the repository, so that the template copies resolve @webgpu/types, @types/node and zod
const scratch = join(packageRoot(), '.vitest-tmp', `runtime-gen-${process.pid}`);
afterAll(() => rm(scratch, { recursive: true, force: true }));

const PUBLIC_VALUES = ['FlashmemRuntimeError', 'loadBundle', 'verifyBundle'];

/** A copy of runtime-template/ (with schemas/ beside it, which its type imports name) with one module changed. */
async function templateCopy(name: string, module: string, change: (source: string) => string): Promise<string> {
  const dir = join(scratch, name, 'runtime-template');
  await mkdir(dir, { recursive: true });
  await cp(join(packageRoot(), 'runtime-template'), dir, { recursive: true });
  await cp(join(packageRoot(), 'schemas'), join(scratch, name, 'schemas'), { recursive: true });
  const file = join(dir, module);
  let source = '';
  try {
    source = await readFile(file, 'utf8');
  } catch {
    // a new module
  }
  await writeFile(file, change(source));
  return dir;
}

/** Import, export-from and import-equals statements, and import("...") types, of a JS or d.ts text. */
function moduleReferences(text: string, fileName: string): string[] {
  const source = ts.createSourceFile(fileName, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: ts.Node): void => {
    if (ts.isImportDeclaration(node) || ts.isImportEqualsDeclaration(node) || (ts.isExportDeclaration(node) && node.moduleSpecifier) || ts.isImportTypeNode(node)) {
      found.push(node.getText(source));
    } else {
      ts.forEachChild(node, visit);
    }
  };
  visit(source);
  return found;
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

  it('emits one ES module with no import statements, exporting the public API only', () => {
    expect(moduleReferences(runtime.js, 'runtime.js')).toEqual([]);
    expect(runtime.js).not.toMatch(/^\s*import\s[^(]/m);
    expect(runtime.js).not.toMatch(/^\s*export\s.*\sfrom\s/m);
    expect(runtime.js).not.toMatch(/['"][./]*schemas\//);
    expect(runtime.js).toMatch(/^export async function loadBundle\(/m);
    expect(runtime.js).toMatch(/^export class FlashmemRuntimeError extends Error/m);
    const exported = [...runtime.js.matchAll(/^export (?:async )?(?:function|class|const|let) ([\w$]+)/gm)].map((match) => match[1]);
    expect(exported.sort()).toEqual([...PUBLIC_VALUES].sort());
  });

  it('declares the public API for apps, with the WebGPU types it refers to', () => {
    expect(runtime.dts).toContain('/// <reference types="@webgpu/types" preserve="true" />');
    expect(runtime.dts).toContain('export declare function loadBundle(dirOrUrl: string | URL, options?: LoadOptions): Promise<FlashmemSession>;');
    for (const name of ['FlashmemSession', 'SessionStats', 'LoadOptions', 'RunInputs', 'RunOutputs', 'ModelInfo', 'RuntimeErrorCode', 'CallStats', 'TimelineEvent']) {
      expect(runtime.dts).toMatch(new RegExp(`export (interface|type) ${name}\\b`));
    }
    // internals stay out of the declarations
    expect(runtime.dts).not.toMatch(/BUNDLE_FORMAT\s*[:=]/);
    expect(runtime.dts).not.toContain('class Session');
    expect(runtime.dts).not.toMatch(/\bexport declare (function|class|const) (?!loadBundle\b|verifyBundle\b|FlashmemRuntimeError\b)/);
  });

  it('declares the API in a self-contained runtime.d.ts that an app compiles against alone', async () => {
    expect(moduleReferences(runtime.dts, 'runtime.d.ts')).toEqual([]);
    expect(runtime.dts).not.toMatch(/['"][./]*schemas\//);
    const dir = join(scratch, 'dts-app');
    await mkdir(dir, { recursive: true });
    await writeFile(join(dir, 'runtime.d.ts'), runtime.dts);
    await writeFile(join(dir, 'runtime.js'), runtime.js);
    await writeFile(join(dir, 'app.ts'), [
      "import { loadBundle, verifyBundle, FlashmemRuntimeError, type SessionStats, type RunOutputs, type TimelineEvent } from './runtime.js';",
      "const session = await loadBundle('./bundle', { streamedWeights: 'storage', readFile: async (path, range) => new Uint8Array(range?.length ?? path.length) });",
      "const outputs: RunOutputs = await session.run({ image: new Float32Array(4) });",
      'const stats: SessionStats = session.stats();',
      'const events: TimelineEvent[] = stats.timeline;',
      "const summary = await verifyBundle(new URL('https://example.com/b/'), { limits: { maxBufferSize: 1 } });",
      "const error = new FlashmemRuntimeError('FM_IO', 'x');",
      'export const all = [outputs, events, summary.models[0]?.inputs[0]?.dtype, error.code, session.device.limits.maxBufferSize];',
      '',
    ].join('\n'));
    const program = ts.createProgram([join(dir, 'app.ts')], {
      target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022, moduleResolution: ts.ModuleResolutionKind.Bundler,
      lib: ['lib.es2022.d.ts', 'lib.dom.d.ts'], types: [], strict: true, noEmit: true, skipLibCheck: false, skipDefaultLibCheck: true,
    });
    const diagnostics = ts.getPreEmitDiagnostics(program);
    expect(ts.formatDiagnostics(diagnostics, { getCanonicalFileName: (f) => f, getCurrentDirectory: () => dir, getNewLine: () => '\n' })).toBe('');
    // the app's program holds the declarations, the WebGPU types and the standard library only
    const files = program.getSourceFiles().map((file) => file.fileName).filter((file) => !/[/\\]typescript[/\\]lib[/\\]/.test(file));
    expect(files.filter((file) => !file.includes('@webgpu/types')).map((file) => file.slice(dir.length + 1)).sort()).toEqual(['app.ts', 'runtime.d.ts']);
  });

  it('is built from template modules of at most 600 lines each', async () => {
    const dir = join(packageRoot(), 'runtime-template');
    const modules = (await readdir(dir)).filter((file) => file.endsWith('.ts'));
    expect(modules.length).toBeGreaterThan(5);
    for (const module of modules) {
      const lines = (await readFile(join(dir, module), 'utf8')).split('\n').length;
      expect({ module, lines: Math.min(lines, 600) }).toEqual({ module, lines });
    }
  });

  it('fails loudly when the template has a type error', async () => {
    const dir = await templateCopy('type-error', 'runtime.ts', (source) => `${source}\nconst broken: number = 'not a number';\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/type errors[\s\S]*broken/);
  });

  it('refuses a template module that imports a non-template module at run time', async () => {
    const dir = await templateCopy('imports-node', 'session.ts', (source) => `${source}\nimport { join } from 'node:path';\nexport const j = join;\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/session\.ts:\d+ must not import statically from outside the runtime template[\s\S]*node:path/);
  });

  it('refuses a value import from schemas/ (only types may come from outside the template)', async () => {
    const dir = await templateCopy('imports-schema-value', 'verify.ts', (source) => `${source}\nimport { scheduleSchema } from '../schemas/schedule.js';\nexport const s = scheduleSchema;\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/verify\.ts:\d+ must not import statically[\s\S]*scheduleSchema/);
  });

  it('refuses two modules declaring the same top-level name', async () => {
    // decoder.ts does not import errors.ts' quote, so each module type-checks alone
    const dir = await templateCopy('collision', 'decoder.ts', (source) => `${source}\nexport function quote(text: string): string {\n  return text;\n}\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/top-level names must be unique; colliding: "quote" is declared in errors\.ts and declared in decoder\.ts/);
  });

  it('refuses a module declaring a name that another module imports from schemas/', async () => {
    const dir = await templateCopy('collision-import', 'timeline.ts', (source) => `${source}\nexport interface Step { op: string }\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/colliding: "Step" is (imported Step from '..\/schemas\/schedule\.js' in \w+\.ts and declared in timeline\.ts|declared in timeline\.ts and imported)/);
  });

  it('refuses a public API that refers to types from outside the template (runtime.d.ts must be self-contained)', async () => {
    const dir = await templateCopy('dts-leak', 'runtime.ts', (source) =>
      `${source}\nimport type { Manifest } from '../schemas/manifest.js';\nexport function manifestFormat(manifest: Manifest): string {\n  return manifest.format;\n}\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/generated runtime\.d\.ts must be self-contained, but imports: import type \{ Manifest \} from '..\/schemas\/manifest\.js'/);
  });

  it('refuses re-exports from outside the template', async () => {
    const dir = await templateCopy('reexport', 'runtime.ts', (source) => `${source}\nexport type { Manifest } from '../schemas/manifest.js';\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/runtime\.ts:\d+ re-exports from outside the runtime template/);
  });

  it('refuses modules that import each other in a cycle', async () => {
    const dir = await templateCopy('cycle', 'errors.ts', (source) => `${source}\nimport { Session } from './session.js';\nexport const sessionClass = Session;\n`);
    expect(() => generateRuntimeFrom(dir)).toThrow(/import each other in a cycle \(errors\.ts -> session\.ts -> [\w.\- >]*errors\.ts\)/);
  });

  it('refuses a module that the entry does not reach', async () => {
    const dir = await templateCopy('stray', 'stray.ts', () => 'export const unused = 1;\n');
    expect(() => generateRuntimeFrom(dir)).toThrow(/modules that runtime\.ts does not import, directly or not: stray\.ts/);
  });

  it('refuses a template without the BUNDLE_FORMAT placeholder', async () => {
    const rename = (source: string) => source.replace(/\bBUNDLE_FORMAT\b/g, 'RENAMED_FORMAT');
    const dir = await templateCopy('no-placeholder', 'format.ts', rename);
    for (const user of ['verify.ts', 'signature.ts']) await writeFile(join(dir, user), rename(await readFile(join(dir, user), 'utf8')));
    expect(() => generateRuntimeFrom(dir)).toThrow(/no BUNDLE_FORMAT declaration/);
  });
});
