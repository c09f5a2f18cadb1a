/**
 * Generates a bundle's runtime.js and runtime.d.ts from runtime-template/runtime.ts: the template is
 * type-checked, the bundle format's version and JSON Schemas are written into its BUNDLE_FORMAT
 * declaration through the AST, and it is emitted as one ES2022 module with its declaration file.
 * Nothing is written to disk: the template's edits and the emitted files stay in memory.
 */
import { createRequire } from 'node:module';
import { join } from 'node:path';
import type { Project, SourceFile } from 'ts-morph';
import { packageRoot } from '../package-root.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { jsonSchemas } from '../../schemas/export.js';

export interface GeneratedRuntime {
  js: string;
  dts: string;
}

const TEMPLATE_DIR = 'runtime-template';
const TEMPLATE_ENTRY = 'runtime.ts';
/** the declaration in the template whose initializer the generator replaces */
const PLACEHOLDER = 'BUNDLE_FORMAT';
/** where emitted files go in memory; never written */
const VIRTUAL_OUT_DIR = '/flashmemc-runtime-out';

let cached: GeneratedRuntime | undefined;

/** The runtime for bundles of this compiler; generated once per process (type-checking takes seconds). */
export function generateRuntime(): GeneratedRuntime {
  cached ??= generateRuntimeFrom(join(packageRoot(), TEMPLATE_DIR));
  return cached;
}

export { packageRoot };

/**
 * ts-morph (and the TypeScript compiler it loads) only when a runtime is generated: commands that
 * never generate one (profile, run, verify) then run without them. ts-morph is CommonJS, so a
 * synchronous require keeps generateRuntime synchronous.
 */
function tsMorph(): typeof import('ts-morph') {
  return createRequire(import.meta.url)('ts-morph') as typeof import('ts-morph');
}

/** Generates from a given template folder (tests use broken copies); uncached. */
export function generateRuntimeFrom(templateDir: string): GeneratedRuntime {
  const { Project, ts } = tsMorph();
  const project = new Project({
    tsConfigFilePath: join(templateDir, 'tsconfig.json'),
    // runtime.js is an ES2022 module for Node 20 and current browsers, whatever the editor settings say
    compilerOptions: {
      target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022,
      noEmit: false, declaration: true, sourceMap: false, declarationMap: false, outDir: VIRTUAL_OUT_DIR, rootDir: templateDir,
    },
  });
  const entry = project.getSourceFileOrThrow(join(templateDir, TEMPLATE_ENTRY));
  assertSingleModule(project, entry);
  injectBundleFormat(entry);
  assertNoTypeErrors(project);
  return emitRuntime(project, entry);
}

/** A bundle ships one runtime.js, so the template may neither import nor be split over files. */
function assertSingleModule(project: Project, entry: SourceFile): void {
  const others = project.getSourceFiles().filter((file) => file !== entry && !file.isDeclarationFile());
  if (others.length > 0) {
    throw new Error(`the runtime template must be the one file ${TEMPLATE_ENTRY}; found also ${others.map((f) => f.getFilePath()).join(', ')}`);
  }
  const imports = [...entry.getImportDeclarations(), ...entry.getExportDeclarations().filter((d) => d.hasModuleSpecifier())];
  if (imports.length > 0) {
    throw new Error(`the runtime template must not import statically (runtime.js is one self-contained file): ${imports.map((d) => d.getText()).join('; ')}`);
  }
}

function injectBundleFormat(entry: SourceFile): void {
  const placeholder = entry.getVariableDeclaration(PLACEHOLDER);
  if (!placeholder) throw new Error(`the runtime template has no ${PLACEHOLDER} declaration to fill in`);
  const format = { formatVersion: FORMAT_VERSION, schemas: jsonSchemas() };
  placeholder.setInitializer(JSON.stringify(format));
}

function assertNoTypeErrors(project: Project): void {
  const diagnostics = project.getPreEmitDiagnostics();
  if (diagnostics.length > 0) {
    throw new Error(`the runtime template has type errors:\n${project.formatDiagnosticsWithColorAndContext(diagnostics)}`);
  }
}

function emitRuntime(project: Project, entry: SourceFile): GeneratedRuntime {
  const result = project.emitToMemory({ targetSourceFile: entry });
  if (result.getEmitSkipped()) throw new Error('emitting the runtime template was skipped');
  const emitted = result.getFiles();
  const js = emitted.find((file) => file.filePath.endsWith('.js'));
  const dts = emitted.find((file) => file.filePath.endsWith('.d.ts'));
  if (!js || !dts || emitted.length !== 2) {
    throw new Error(`emitting the runtime template gave ${emitted.map((f) => f.filePath).join(', ')}, expected one .js and one .d.ts`);
  }
  return { js: js.text, dts: dts.text };
}
