/**
 * Saved bundle cases: crashers (fuzz/crashers/bundle-<hash>/) and the corpus of interesting
 * mutants (fuzz/bundle-corpus/<name>/). A case is a folder:
 *
 *   bundle/      the mutant's files, except runtime.js and runtime.d.ts when they were the
 *                package's own (they are large, and change whenever the runtime template does)
 *   case.json    what verifying it must give (`code`, or `ok`), what the fuzzer saw, and which
 *                manifest entries listed the package's runtime files (`runtimeEntries`)
 *
 * Replaying (materializeCase) copies bundle/ into a temp folder, writes this package's runtime.js
 * and runtime.d.ts where they were left out, and recomputes the size and sha256 of the manifest
 * entries named in `runtimeEntries` (an attacker's manifest always lists the runtime it ships).
 */
import { createHash } from 'node:crypto';
import { existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { generateRuntime } from '../compiler/bundle/runtime-gen.js';
import { readBundleDir, type BundleFiles } from './bundle-seeds.js';
import { MANIFEST } from './bundle-mutate.js';
import { classifyBundleError, type BundleOutcome } from './bundle-exec.js';

export interface BundleCaseSidecar {
  /** the FM_* code verifyBundleDir must give */
  code?: string;
  /** the code the runtime's verifyBundle must give, when it differs from `code` (e.g. FM_BUNDLE_FOREIGN is verifyBundleDir's only) */
  runtimeCode?: string;
  /** a substring the error message must contain */
  mentions?: string;
  /** verification must pass */
  ok?: boolean;
  /** the crash is in a file this suite may not change: the regression test skips it, printing `reason` */
  knownCrash?: boolean;
  reason?: string;
  /** crashers: what fixed it */
  fixedBy?: string;
  /** the package's runtime files as manifest.json listed them when the case was saved (replay substitutes the current ones) */
  runtimeEntries?: { path: string; size: number; sha256: string }[];
  /** what the fuzzer saw */
  crash?: { phase: string; reason: string; name: string; message: string; stack?: string };
  seed?: string;
  mutations?: string[];
  /** corpus: why the case is interesting */
  category?: string;
  /** the case is rebuilt from this recipe (bundle-recipes.ts) instead of a bundle/ folder (its seed is too large to commit) */
  recipe?: string;
  /** GPU crashers: what loading and running it must show (test/fuzz/bundle-crashers.gpu.test.ts) */
  gpu?: { peakWithinPlanned?: boolean };
}

export interface BundleCase {
  name: string;
  dir: string;
  sidecar: BundleCaseSidecar;
}

const RUNTIME_FILES = ['runtime.js', 'runtime.d.ts'] as const;

function runtimeBytes(): Record<(typeof RUNTIME_FILES)[number], Uint8Array> {
  const runtime = generateRuntime();
  return { 'runtime.js': Buffer.from(runtime.js), 'runtime.d.ts': Buffer.from(runtime.dts) };
}

const sha256 = (b: Uint8Array) => createHash('sha256').update(b).digest('hex');

/** Content hash of a bundle's files (names and bytes), for crasher folder names. */
export function filesHash(files: BundleFiles): string {
  const h = createHash('sha256');
  for (const [p, b] of [...files].sort((a, b) => a[0].localeCompare(b[0]))) h.update(`${p}\0${b.length}\0`).update(b);
  return h.digest('hex').slice(0, 16);
}

/** Writes a case folder; runtime files that are the package's are left out and noted in the sidecar. */
export function saveCase(dir: string, files: BundleFiles, sidecar: BundleCaseSidecar): void {
  const own = runtimeBytes();
  const bundleDir = path.join(dir, 'bundle');
  mkdirSync(bundleDir, { recursive: true });
  const runtimeEntries = RUNTIME_FILES.map((name) => ({ path: name, size: own[name].length, sha256: sha256(own[name]) }));
  for (const [p, b] of files) {
    const name = RUNTIME_FILES.find((r) => r === p);
    if (name && Buffer.from(b).equals(own[name])) continue;
    const target = path.join(bundleDir, p);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, b);
  }
  const missingRuntime = RUNTIME_FILES.filter((name) => !files.has(name));
  writeFileSync(path.join(dir, 'case.json'), `${JSON.stringify({ ...sidecar, runtimeEntries, ...(missingRuntime.length ? { absentRuntimeFiles: missingRuntime } : {}) }, null, 2)}\n`);
}

export function listBundleCases(root: string, prefix = ''): BundleCase[] {
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true })
    .filter((e) => e.isDirectory() && e.name.startsWith(prefix) && existsSync(path.join(root, e.name, 'case.json')))
    .map((e) => e.name).sort()
    .map((name) => ({ name, dir: path.join(root, name), sidecar: JSON.parse(readFileSync(path.join(root, name, 'case.json'), 'utf8')) as BundleCaseSidecar }));
}

/** The case's files as the fuzzer had them, with this package's runtime files put back. */
export function caseFiles(c: BundleCase): BundleFiles {
  const files = readBundleDir(path.join(c.dir, 'bundle'));
  const own = runtimeBytes();
  const absent = new Set((c.sidecar as { absentRuntimeFiles?: string[] }).absentRuntimeFiles ?? []);
  for (const name of RUNTIME_FILES) if (!files.has(name) && !absent.has(name)) files.set(name, own[name]);
  // the manifest's text is kept as it is (it may hold edits JSON.stringify would undo): the saved
  // runtime's sha256 becomes the current one's, and the size next to it (within the same entry) too
  // latin1: byte for byte, whatever the file holds
  let text = Buffer.from(files.get(MANIFEST) ?? new Uint8Array()).toString('latin1');
  for (const saved of c.sidecar.runtimeEntries ?? []) {
    const bytes = own[saved.path as (typeof RUNTIME_FILES)[number]];
    if (!bytes) continue;
    const current = { size: bytes.length, sha256: sha256(bytes) };
    for (let at = text.indexOf(saved.sha256); at >= 0; at = text.indexOf(saved.sha256, at + 1)) {
      const start = text.lastIndexOf('{', at);
      const end = text.indexOf('}', at);
      const entry = text.slice(start, end).replace(new RegExp(`("size"\\s*:\\s*)${saved.size}(?=\\D)`), `$1${current.size}`);
      text = `${text.slice(0, start)}${entry.replace(saved.sha256, current.sha256)}${text.slice(end)}`;
    }
  }
  if (files.has(MANIFEST)) files.set(MANIFEST, Buffer.from(text, 'latin1'));
  return files;
}

/** Writes `files` into `dir` (created). */
export function writeFiles(dir: string, files: BundleFiles): void {
  for (const [p, b] of files) {
    const target = path.join(dir, p);
    mkdirSync(path.dirname(target), { recursive: true });
    writeFileSync(target, b);
  }
}

export interface CaseVerdict {
  /** verifyBundleDir */
  dir: BundleOutcome;
  /** the package runtime's verifyBundle */
  runtime: BundleOutcome;
}

/** Verifies a bundle folder in this thread, both ways, as the fuzzer does (maxGpuBytes 256 MiB). */
export async function verifyInProcess(dir: string, maxGpuBytes = 256 * 1024 ** 2): Promise<CaseVerdict> {
  const { verifyBundleDir } = await import('../compiler/bundle/verify.js');
  const { importOwnRuntime } = await import('../compiler/bundle/own-runtime.js');
  const runtime = await importOwnRuntime();
  const outcome = async (run: () => Promise<unknown>): Promise<BundleOutcome> => {
    try {
      await run();
      return { kind: 'ok' };
    } catch (e) {
      return classifyBundleError(e);
    }
  };
  return {
    dir: await outcome(() => verifyBundleDir(dir, { maxGpuBytes })),
    runtime: await outcome(() => runtime.verifyBundle(dir, { maxGpuBytes })),
  };
}

const describeOutcome = (o: BundleOutcome) => (o.kind === 'ok' ? 'success' : o.kind === 'error' ? o.message : o.kind === 'blocked' ? o.message : `a crash (${o.reason}): ${o.stack ?? o.message}`);

/** Why `verdict` does not meet the expectation (undefined when it does). */
export function caseMismatch(expect: Pick<BundleCaseSidecar, 'code' | 'runtimeCode' | 'mentions' | 'ok'>, verdict: CaseVerdict): string | undefined {
  const code = (o: BundleOutcome) => (o.kind === 'ok' ? 'ok' : o.kind === 'error' ? o.code : `crash:${o.kind === 'crash' ? o.reason : o.kind}`);
  const want = expect.ok ? 'ok' : expect.code;
  if (!want) return 'the case names neither "code" nor "ok"';
  if (code(verdict.dir) !== want) return `verifyBundleDir: expected ${want}, got ${describeOutcome(verdict.dir)}`;
  const wantRuntime = expect.runtimeCode ?? want;
  if (code(verdict.runtime) !== wantRuntime) return `verifyBundle: expected ${wantRuntime}, got ${describeOutcome(verdict.runtime)}`;
  if (expect.mentions !== undefined) {
    const messages = [verdict.dir, verdict.runtime].map((o) => (o.kind === 'error' ? o.message : ''));
    if (!messages.some((m) => m.includes(expect.mentions!))) return `expected a message mentioning ${JSON.stringify(expect.mentions)}, got ${messages.join(' / ')}`;
  }
  return undefined;
}
