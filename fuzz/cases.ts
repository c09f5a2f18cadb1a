/**
 * Corpus and crasher entries: `<name>.onnx` with a JSON sidecar (`<name>.expect.json` in the
 * corpus, `<name>.json` for crashers) saying what compiling it must give, plus the files that
 * lie next to the model (external data, symlinks, folders). runCase compiles one in-process.
 */
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import * as path from 'node:path';
import { compileToContents } from '../compiler/compile.js';
import { FlashmemError } from '../compiler/errors.js';
import { materialize, removeMaterialized, type AuxFile, type FuzzInput } from './exec.js';

export interface CaseFile {
  name: string;
  onnxPath: string;
  sidecarPath: string;
  sidecar: Sidecar;
}

export interface AuxFileJson { name: string; kind: AuxFile['kind']; base64?: string; target?: string }

export interface Sidecar {
  /** expected FlashmemError code */
  code?: string;
  /** a substring the error message must contain (the offending node or tensor name) */
  mentions?: string;
  /** the model must compile */
  ok?: boolean;
  /** a crash in code this suite may not change; the regression test skips it, printing `reason` */
  knownCrash?: boolean;
  reason?: string;
  category?: string;
  /** crashers: what fixed it */
  fixedBy?: string;
  files?: AuxFileJson[];
  /** crashers: what the fuzzer saw */
  crash?: { reason: string; name: string; message: string; stack?: string };
  seed?: string;
  mutations?: string[];
}

export function filesToJson(files: readonly AuxFile[]): AuxFileJson[] {
  return files.map((f) => ({
    name: f.name, kind: f.kind,
    ...(f.kind === 'file' ? { base64: Buffer.from(f.bytes ?? new Uint8Array()).toString('base64') } : {}),
    ...(f.kind === 'symlink' ? { target: f.target } : {}),
  }));
}

export function filesFromJson(files: readonly AuxFileJson[] | undefined): AuxFile[] {
  return (files ?? []).map((f) => ({
    name: f.name, kind: f.kind,
    ...(f.kind === 'file' ? { bytes: new Uint8Array(Buffer.from(f.base64 ?? '', 'base64')) } : {}),
    ...(f.kind === 'symlink' ? { target: f.target } : {}),
  }));
}

/** `<dir>/*.onnx` with their sidecars, sorted by name. */
export function listCases(dir: string): CaseFile[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir).filter((f) => f.endsWith('.onnx')).sort().map((f) => {
    const name = f.slice(0, -'.onnx'.length);
    const candidates = [path.join(dir, `${name}.expect.json`), path.join(dir, `${name}.json`)];
    const sidecarPath = candidates.find((c) => existsSync(c)) ?? candidates[0]!;
    const sidecar = existsSync(sidecarPath) ? (JSON.parse(readFileSync(sidecarPath, 'utf8')) as Sidecar) : {};
    return { name, onnxPath: path.join(dir, f), sidecarPath, sidecar };
  });
}

export function loadCase(c: CaseFile): Pick<FuzzInput, 'model' | 'files'> {
  return { model: readFileSync(c.onnxPath), files: filesFromJson(c.sidecar.files) };
}

export type CaseResult =
  | { kind: 'ok' }
  | { kind: 'error'; code: string; message: string }
  | { kind: 'crash'; error: unknown };

/** Compiles `input` in this thread, in `<root>/<name>/` (root must be a temp folder). */
export function runCase(root: string, name: string, input: Pick<FuzzInput, 'model' | 'files'>): CaseResult {
  const dir = path.join(root, name);
  const { modelPath, created } = materialize(dir, input);
  try {
    compileToContents(modelPath);
    return { kind: 'ok' };
  } catch (e) {
    return e instanceof FlashmemError ? { kind: 'error', code: e.code, message: e.message } : { kind: 'crash', error: e };
  } finally {
    removeMaterialized(dir, created);
  }
}

/** Why `result` does not meet `sidecar` (undefined when it does). */
export function expectationMismatch(sidecar: Sidecar, result: CaseResult): string | undefined {
  const got = result.kind === 'ok' ? 'success' : result.kind === 'error' ? result.message : `a crash: ${(result.error as Error)?.stack ?? String(result.error)}`;
  if (sidecar.ok) return result.kind === 'ok' ? undefined : `expected success, got ${got}`;
  if (!sidecar.code) return `the sidecar names neither "code" nor "ok"; got ${got}`;
  if (result.kind !== 'error') return `expected ${sidecar.code}, got ${got}`;
  if (result.code !== sidecar.code) return `expected ${sidecar.code}, got ${got}`;
  if (sidecar.mentions !== undefined && !result.message.includes(sidecar.mentions)) {
    return `expected the message to mention ${JSON.stringify(sidecar.mentions)}, got ${got}`;
  }
  return undefined;
}
