/**
 * Generates a bundle's runtime.js and runtime.d.ts from the modules of runtime-template/: the
 * template is type-checked as written, its modules (those runtime.ts reaches) are inlined in
 * dependency order into one source file, the bundle format's version and JSON Schemas are written
 * into its BUNDLE_FORMAT declaration through the AST, and that file is type-checked and emitted as
 * one self-contained ES2022 module with its declaration file.
 *
 * The template's modules import only each other, plus types (`import type`, erased at emit, e.g.
 * the bundle format's types from schemas/): nothing in runtime.js imports anything at run time.
 * Inlining drops the imports between template modules and keeps `export` only on the names the
 * entry exports, so every top-level name of every module must be unique; a collision is refused.
 * Nothing is written to disk: the edits and the emitted files stay in memory.
 */
import { createRequire } from 'node:module';
import { dirname, join, relative } from 'node:path';
import type { ExportDeclaration, ImportDeclaration, Node, Project, SourceFile, Statement } from 'ts-morph';
import { packageRoot } from '../package-root.js';
import { type GeneratedRuntime, readCachedRuntime, runtimeSourceKey, writeCachedRuntime } from './runtime-cache.js';
import { FORMAT_VERSION } from '../../schemas/common.js';
import { jsonSchemas } from '../../schemas/export.js';

export type { GeneratedRuntime };

const TEMPLATE_DIR = 'runtime-template';
const TEMPLATE_ENTRY = 'runtime.ts';
/** the declaration in the template whose initializer the generator replaces */
const PLACEHOLDER = 'BUNDLE_FORMAT';
/** the in-memory file the modules are inlined into (inside the template folder, so its type imports resolve as the modules' do); never written */
const INLINED_FILE = '__runtime.inlined.ts';
/** where emitted files go in memory; never written */
const VIRTUAL_OUT_DIR = '/flashmemc-runtime-out';

let cached: GeneratedRuntime | undefined;

/**
 * The runtime for bundles of this compiler: the package's copy in dist/runtime/ when it is current
 * (runtime-cache.ts), else generated (type-checking takes seconds) and written there; once per process.
 */
export function generateRuntime(): GeneratedRuntime {
  cached ??= cachedOrGenerated(packageRoot());
  return cached;
}

function cachedOrGenerated(root: string): GeneratedRuntime {
  const key = runtimeSourceKey(root);
  const current = readCachedRuntime(root, key);
  if (current) return current;
  const runtime = generateRuntimeFrom(join(root, TEMPLATE_DIR));
  writeCachedRuntime(root, key, runtime);
  return runtime;
}

export { packageRoot };

type TsMorph = typeof import('ts-morph');

/**
 * ts-morph (and the TypeScript compiler it loads) only when a runtime is generated: commands that
 * never generate one (profile, run, verify) then run without them. ts-morph is CommonJS, so a
 * synchronous require keeps generateRuntime synchronous.
 */
function tsMorph(): TsMorph {
  return createRequire(import.meta.url)('ts-morph') as TsMorph;
}

/** Generates from a given template folder (tests use broken copies); uncached. */
export function generateRuntimeFrom(templateDir: string): GeneratedRuntime {
  const morph = tsMorph();
  const { Project, ts } = morph;
  const project = new Project({
    tsConfigFilePath: join(templateDir, 'tsconfig.json'),
    // runtime.js is an ES2022 module for Node 20 and current browsers, whatever the editor settings say
    compilerOptions: {
      target: ts.ScriptTarget.ES2022, module: ts.ModuleKind.ES2022,
      noEmit: false, declaration: true, sourceMap: false, declarationMap: false, outDir: VIRTUAL_OUT_DIR,
      // the modules' type imports reach into the template's parent (../schemas); only the inlined file is emitted
      rootDir: dirname(templateDir),
    },
  });
  const entry = project.getSourceFile(join(templateDir, TEMPLATE_ENTRY));
  if (!entry) throw new Error(`the runtime template has no entry module ${TEMPLATE_ENTRY} in ${templateDir}`);
  const modules = templateModules(morph, project, entry, templateDir);
  assertNoTypeErrors(project, 'the runtime template has type errors');
  const inlined = project.createSourceFile(join(templateDir, INLINED_FILE), inlineModules(morph, modules, entry, templateDir), { overwrite: true });
  injectBundleFormat(inlined);
  assertNoTypeErrors(project, `the runtime template's modules inlined into one file have type errors (${INLINED_FILE} below)`, inlined);
  return emitRuntime(morph, project, inlined);
}

// ------------------------------------------------------------------------------------ the modules

interface TemplateModule {
  file: SourceFile;
  /** path relative to the template folder, for messages */
  name: string;
}

function moduleName(file: SourceFile, templateDir: string): string {
  return relative(templateDir, file.getFilePath());
}

/** A module of the template: a TypeScript source file directly in the template folder. */
function isTemplateFile(file: SourceFile | undefined, templateDir: string): file is SourceFile {
  return file !== undefined && !file.isDeclarationFile() && dirname(file.getFilePath()) === templateDir && file.getBaseName() !== INLINED_FILE;
}

/**
 * The template's modules in dependency order (each after the modules it imports), the entry last.
 * Refuses imports that would remain in runtime.js (anything but template modules and type-only
 * imports), import forms that inlining cannot keep (renames, namespaces, defaults), import cycles
 * (inlined code runs in file order) and modules the entry does not reach.
 */
function templateModules(morph: TsMorph, project: Project, entry: SourceFile, templateDir: string): TemplateModule[] {
  const order: TemplateModule[] = [];
  const state = new Map<SourceFile, 'visiting' | 'done'>();
  const visit = (file: SourceFile, chain: string[]): void => {
    const name = moduleName(file, templateDir);
    if (state.get(file) === 'done') return;
    if (state.get(file) === 'visiting') {
      throw new Error(`the runtime template's modules import each other in a cycle (${[...chain.slice(chain.indexOf(name)), name].join(' -> ')}): inlined into one runtime.js, they must have an order`);
    }
    state.set(file, 'visiting');
    for (const dependency of templateDependencies(morph, file, name, entry, templateDir)) visit(dependency, [...chain, name]);
    state.set(file, 'done');
    order.push({ file, name });
  };
  visit(entry, []);
  const stray = project.getSourceFiles().filter((file) => isTemplateFile(file, templateDir) && state.get(file) === undefined);
  if (stray.length > 0) {
    throw new Error(`the runtime template has modules that ${TEMPLATE_ENTRY} does not import, directly or not: ${stray.map((file) => moduleName(file, templateDir)).join(', ')}`);
  }
  return order;
}

function templateDependencies(morph: TsMorph, file: SourceFile, name: string, entry: SourceFile, templateDir: string): SourceFile[] {
  const { SyntaxKind } = morph;
  const dependencies: SourceFile[] = [];
  const where = (node: Node) => `${name}:${node.getStartLineNumber()}`;
  for (const statement of file.getStatements()) {
    if (statement.isKind(SyntaxKind.ImportEqualsDeclaration)) {
      throw new Error(`${where(statement)} must not import statically (runtime.js is one self-contained file): ${statement.getText()}`);
    }
    if (statement.isKind(SyntaxKind.ExportAssignment)) {
      throw new Error(`${where(statement)}: the runtime template's modules export by name, not with ${statement.getText().split(/\s/, 2).join(' ')}`);
    }
  }
  for (const declaration of file.getImportDeclarations()) {
    const target = declaration.getModuleSpecifierSourceFile();
    if (isTemplateFile(target, templateDir)) {
      assertInlinableImport(declaration, where(declaration));
      dependencies.push(target);
    } else if (!isTypeOnlyImport(declaration)) {
      throw new Error(
        `${where(declaration)} must not import statically from outside the runtime template (runtime.js is one self-contained file, nothing in it may import at run time): ` +
        `${declaration.getText()}; import types with \`import type\`, and Node modules dynamically`,
      );
    }
  }
  for (const declaration of file.getExportDeclarations()) {
    if (!declaration.hasModuleSpecifier()) {
      if (file !== entry) throw new Error(`${where(declaration)}: export declarations with the export keyword (${declaration.getText()}); only ${TEMPLATE_ENTRY} has export lists`);
      assertNoRenames(declaration, where(declaration));
      continue;
    }
    const target = declaration.getModuleSpecifierSourceFile();
    if (file !== entry) throw new Error(`${where(declaration)}: only ${TEMPLATE_ENTRY}, the public API, re-exports (${declaration.getText()})`);
    if (!isTemplateFile(target, templateDir)) {
      throw new Error(`${where(declaration)} re-exports from outside the runtime template; runtime.js and runtime.d.ts must be self-contained: ${declaration.getText()}`);
    }
    if (declaration.isNamespaceExport() && declaration.getNamespaceExport() !== undefined) {
      throw new Error(`${where(declaration)}: \`export * as\` cannot be inlined: ${declaration.getText()}`);
    }
    assertNoRenames(declaration, where(declaration));
    dependencies.push(target);
  }
  return dependencies;
}

/** Inlining drops imports between template modules, so the names must arrive as they are declared. */
function assertInlinableImport(declaration: ImportDeclaration, where: string): void {
  if (declaration.getDefaultImport() || declaration.getNamespaceImport()) {
    throw new Error(`${where}: template modules import each other by name (no default or namespace imports): ${declaration.getText()}`);
  }
  const renamed = declaration.getNamedImports().filter((specifier) => specifier.getAliasNode() !== undefined);
  if (renamed.length > 0) throw new Error(`${where}: template modules import each other's names unrenamed: ${declaration.getText()}`);
}

function assertNoRenames(declaration: ExportDeclaration, where: string): void {
  const renamed = declaration.getNamedExports().filter((specifier) => specifier.getAliasNode() !== undefined);
  if (renamed.length > 0) throw new Error(`${where}: the public API exports names as they are declared: ${declaration.getText()}`);
}

/** `import type { A } from 'x'`, or `import { type A, type B } from 'x'`: erased at emit. */
function isTypeOnlyImport(declaration: ImportDeclaration): boolean {
  if (declaration.isTypeOnly()) return true;
  const named = declaration.getNamedImports();
  return declaration.getDefaultImport() === undefined && declaration.getNamespaceImport() === undefined && named.length > 0 && named.every((specifier) => specifier.isTypeOnly());
}

// ------------------------------------------------------------------------------------- inlining

/** Where each top-level name comes from, to find collisions. */
interface NameOrigin {
  /** the module declaring it, or importing it from outside the template */
  module: string;
  /** for imported names: `from '<specifier>'` and the imported name */
  imported?: string;
}

/** top-level names a statement declares */
function declaredNames(morph: TsMorph, statement: Statement): string[] {
  const { Node: N } = morph;
  if (N.isVariableStatement(statement)) {
    return statement.getDeclarations().flatMap((declaration) => {
      const nameNode = declaration.getNameNode();
      return N.isIdentifier(nameNode) ? [nameNode.getText()] : nameNode.getDescendantsOfKind(morph.SyntaxKind.BindingElement).map((element) => element.getName());
    });
  }
  if (N.isFunctionDeclaration(statement) || N.isClassDeclaration(statement) || N.isInterfaceDeclaration(statement) ||
    N.isTypeAliasDeclaration(statement) || N.isEnumDeclaration(statement) || N.isModuleDeclaration(statement)) {
    const name = statement.getName();
    return name === undefined ? [] : [name];
  }
  return [];
}

/** The names runtime.js exports: the entry's own exports and what it re-exports from template modules. */
function publicNames(morph: TsMorph, modules: TemplateModule[], entry: SourceFile): Set<string> {
  const names = new Set<string>();
  for (const statement of entry.getStatements()) {
    if (morph.Node.isExportable(statement) && statement.hasExportKeyword()) for (const name of declaredNames(morph, statement)) names.add(name);
  }
  for (const declaration of entry.getExportDeclarations()) {
    const named = declaration.getNamedExports();
    if (named.length > 0) {
      for (const specifier of named) names.add(specifier.getName());
      continue;
    }
    // export * from './module.js': every name the module exports
    const target = modules.find((module) => module.file === declaration.getModuleSpecifierSourceFile())!;
    for (const statement of target.file.getStatements()) {
      if (morph.Node.isExportable(statement) && statement.hasExportKeyword()) for (const name of declaredNames(morph, statement)) names.add(name);
    }
  }
  return names;
}

interface Edit { start: number; end: number; text: string }

function applyEdits(text: string, edits: Edit[]): string {
  let out = text;
  for (const edit of [...edits].sort((a, b) => b.start - a.start)) out = out.slice(0, edit.start) + edit.text + out.slice(edit.end);
  return out;
}

/** `/// <reference ... />` lines at the top of a module */
const REFERENCE_DIRECTIVE = /^\/\/\/\s*<reference\s[^>]*\/>[ \t]*$/;

/**
 * One source file of all modules, in order: the imports between them dropped, type imports from
 * outside kept once at the top (TypeScript erases them at emit), `export` kept only on public names.
 */
function inlineModules(morph: TsMorph, modules: TemplateModule[], entry: SourceFile, templateDir: string): string {
  const exported = publicNames(morph, modules, entry);
  const origins = new Map<string, NameOrigin>();
  const collisions: string[] = [];
  const claim = (name: string, origin: NameOrigin) => {
    const earlier = origins.get(name);
    if (!earlier) {
      origins.set(name, origin);
      return;
    }
    // the same outside type imported by several modules is one import
    if (earlier.imported !== undefined && earlier.imported === origin.imported) return;
    const describe = (o: NameOrigin) => (o.imported ? `imported ${o.imported} in ${o.module}` : `declared in ${o.module}`);
    collisions.push(`${JSON.stringify(name)} is ${describe(earlier)} and ${describe(origin)}`);
  };
  const directives = new Set<string>();
  const typeImports = new Set<string>();
  const namedTypeImports = new Map<string, Set<string>>();
  const bodies: string[] = [];
  for (const { file, name } of modules) {
    const edits: Edit[] = [];
    const fullText = file.getFullText();
    for (const statement of file.getStatements()) {
      const names = declaredNames(morph, statement);
      for (const declared of names) claim(declared, { module: name });
      // (a public name declared twice is a collision, reported below)
      if (morph.Node.isExportable(statement) && statement.hasExportKeyword() && !names.every((declared) => exported.has(declared))) {
        const keyword = statement.getModifiers().find((modifier) => modifier.getKind() === morph.SyntaxKind.ExportKeyword)!;
        let end = keyword.getEnd();
        while (/\s/.test(fullText[end] ?? '')) end++;
        edits.push({ start: keyword.getStart(), end, text: '' });
      }
    }
    for (const declaration of [...file.getImportDeclarations(), ...file.getExportDeclarations()]) {
      edits.push({ start: declaration.getStart(), end: declaration.getEnd(), text: '' });
      if (!morph.Node.isImportDeclaration(declaration) || isTemplateFile(declaration.getModuleSpecifierSourceFile(), templateDir)) continue;
      // a type import from outside the template: kept (once), its specifier as seen from the inlined file
      const specifier = declaration.getModuleSpecifierValue();
      const from = `from '${specifier}'`;
      for (const local of localImportNames(declaration)) {
        claim(local.local, { module: name, imported: `${local.imported} ${from}` });
        const clause = local.imported === '*' ? `* as ${local.local}` : local.imported === 'default' ? local.local : local.local === local.imported ? local.local : `${local.imported} as ${local.local}`;
        if (local.imported === '*' || local.imported === 'default') typeImports.add(`import type ${clause} ${from};`);
        else namedTypeImports.set(from, (namedTypeImports.get(from) ?? new Set()).add(clause));
      }
    }
    let text = applyEdits(fullText, edits);
    const lines = text.split('\n');
    while (lines.length > 0 && REFERENCE_DIRECTIVE.test(lines[0]!)) directives.add(lines.shift()!.trim());
    text = lines.join('\n').trim();
    bodies.push(`// ${'-'.repeat(40)} ${TEMPLATE_DIR}/${name}\n\n${text}\n`);
  }
  if (collisions.length > 0) {
    throw new Error(`the runtime template's modules are inlined into one runtime.js, so their top-level names must be unique; colliding: ${collisions.join('; ')}`);
  }
  for (const [from, clauses] of namedTypeImports) typeImports.add(`import type { ${[...clauses].sort().join(', ')} } ${from};`);
  // the banner stays at the top of runtime.js (a comment detached from the first statement); the
  // type imports go last, where their erasure takes no comment with it
  const banner = [
    '/**',
    ` * flashmemc runtime: ${TEMPLATE_DIR}/${TEMPLATE_ENTRY} and the modules it imports, inlined in dependency order by`,
    ` * compiler/bundle/runtime-gen.ts (${modules.map((module) => module.name).join(', ')}), with the bundle format`,
    ' * (BUNDLE_FORMAT) filled in. Loads, verifies and runs flashmemc bundles on WebGPU in Node and in browsers.',
    ' */',
  ].join('\n');
  return [...directives, banner, '', ...bodies, `// ${'-'.repeat(40)} types from outside the template (erased at emit)`, '', ...typeImports, ''].join('\n');
}

function localImportNames(declaration: ImportDeclaration): { local: string; imported: string }[] {
  const names: { local: string; imported: string }[] = [];
  const defaultImport = declaration.getDefaultImport();
  if (defaultImport) names.push({ local: defaultImport.getText(), imported: 'default' });
  const namespace = declaration.getNamespaceImport();
  if (namespace) names.push({ local: namespace.getText(), imported: '*' });
  for (const specifier of declaration.getNamedImports()) {
    names.push({ local: specifier.getAliasNode()?.getText() ?? specifier.getName(), imported: specifier.getName() });
  }
  return names;
}

// ------------------------------------------------------------------------------- check and emit

function injectBundleFormat(inlined: SourceFile): void {
  const placeholder = inlined.getVariableDeclaration(PLACEHOLDER);
  if (!placeholder) throw new Error(`the runtime template has no ${PLACEHOLDER} declaration to fill in`);
  const format = { formatVersion: FORMAT_VERSION, schemas: jsonSchemas() };
  placeholder.setInitializer(JSON.stringify(format));
}

function assertNoTypeErrors(project: Project, what: string, only?: SourceFile): void {
  const diagnostics = only ? [...project.getProgram().getSyntacticDiagnostics(only), ...project.getProgram().getSemanticDiagnostics(only)] : project.getPreEmitDiagnostics();
  if (diagnostics.length > 0) throw new Error(`${what}:\n${project.formatDiagnosticsWithColorAndContext(diagnostics)}`);
}

function emitRuntime(morph: TsMorph, project: Project, inlined: SourceFile): GeneratedRuntime {
  const result = project.emitToMemory({ targetSourceFile: inlined });
  if (result.getEmitSkipped()) throw new Error('emitting the runtime template was skipped');
  const emitted = result.getFiles();
  const js = emitted.find((file) => file.filePath.endsWith('.js'));
  const dts = emitted.find((file) => file.filePath.endsWith('.d.ts'));
  if (!js || !dts || emitted.length !== 2) {
    throw new Error(`emitting the runtime template gave ${emitted.map((f) => f.filePath).join(', ')}, expected one .js and one .d.ts`);
  }
  assertSelfContained(morph, js.text, 'runtime.js');
  assertSelfContained(morph, dts.text, 'runtime.d.ts');
  return { js: js.text, dts: dts.text };
}

/** No import or re-export statement, and in declarations no `import("...")` type either. */
function assertSelfContained(morph: TsMorph, text: string, file: string): void {
  const { ts } = morph;
  const source = ts.createSourceFile(file, text, ts.ScriptTarget.ES2022, true);
  const found: string[] = [];
  const visit = (node: import('ts-morph').ts.Node): void => {
    const importing = ts.isImportDeclaration(node) || ts.isImportEqualsDeclaration(node) || (ts.isExportDeclaration(node) && node.moduleSpecifier !== undefined) || ts.isImportTypeNode(node);
    if (importing) found.push(node.getText(source));
    else ts.forEachChild(node, visit);
  };
  visit(source);
  if (found.length > 0) {
    throw new Error(`the generated ${file} must be self-contained, but imports: ${found.join('; ')} (keep types from outside the template out of the public API)`);
  }
}
