/**
 * Digests of the bundles of the ONNX light CNNs (constant weights as shipped) and the shipped
 * examples, preloaded and streamed: sha256 of every bundle file except the generated runtime
 * (runtime.js / runtime.d.ts, and their entries in manifest.json). A refactoring of the compiler
 * that must not change what it emits compares this output before and after the change:
 *
 *   npx tsx bench/bundle-digests.ts --out before.json   (at the old commit)
 *   npx tsx bench/bundle-digests.ts --compare before.json [--filter REGEX]   (at the new one)
 *
 * --compare prints every case whose files differ and exits 1 if any does; --filter keeps the
 * cases whose name matches (e.g. `node/test_conv|light`).
 */
import { createHash } from 'node:crypto';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join, relative } from 'node:path';
import { compileModel, type CompileOptions } from '../compiler/compile.js';
import { FlashmemError } from '../compiler/errors.js';
import { familyGraphs, resolveConfig } from '../fixtures/families/generate.js';
import { writeGraphs } from '../fixtures/families/builder.js';
import { CONFORMANCE_DIR, REPO_ROOT, tempDir } from '../test/harness/paths.js';

const LIGHT = ['squeezenet', 'shufflenet', 'bvlc_alexnet', 'zfnet512', 'inception_v1', 'inception_v2', 'resnet50', 'densenet121', 'vgg19'];
const RUNTIME_FILES = new Set(['runtime.js', 'runtime.d.ts']);

function arg(name: string): string | undefined {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1] : undefined;
}

function listFiles(root: string, dir = root): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    (e.isDirectory() ? listFiles(root, join(dir, e.name)) : [relative(root, join(dir, e.name))])).sort();
}

/** manifest.json without the runtime's file entries (their hashes change with the runtime's source) */
function manifestWithoutRuntime(bytes: Buffer): string {
  const manifest = JSON.parse(bytes.toString('utf8')) as { files?: { path: string }[]; generator?: unknown };
  if (manifest.files) manifest.files = manifest.files.filter((f) => !RUNTIME_FILES.has(f.path));
  return JSON.stringify(manifest);
}

function digestBundle(dir: string): Record<string, string> {
  const out: Record<string, string> = {};
  for (const file of listFiles(dir)) {
    if (RUNTIME_FILES.has(file)) continue;
    const bytes = readFileSync(join(dir, file));
    const content = file === 'manifest.json' ? manifestWithoutRuntime(bytes) : bytes;
    out[file] = createHash('sha256').update(content).digest('hex');
  }
  return out;
}

interface Case { name: string; model: string; options: CompileOptions }

const FAMILIES = ['vit-tiny', 'bert-tiny', 'gpt-neo-tiny', 'gpt2-tiny', 'whisper-encoder-tiny'];

/** the tiny model families (generated into `dir`): transformer ops the CNNs lack */
function familyCases(dir: string): Case[] {
  return FAMILIES.flatMap((name) => writeGraphs(join(dir, name), familyGraphs(resolveConfig(name)))
    .map((model) => ({ name: `${name}/${model.split('/').pop()}`, model, options: {} })));
}

/** every case of a conformance suite folder (node/, pytorch-operator/...): compiled, or its error code */
function suiteCases(suite: string): Case[] {
  const root = join(CONFORMANCE_DIR, suite);
  if (!existsSync(root)) return [];
  return readdirSync(root, { withFileTypes: true }).filter((e) => e.isDirectory()).map((e) => e.name).sort()
    .map((name) => ({ name: `${suite}/${name}`, model: join(root, name, 'model.onnx'), options: {} }))
    .filter((c) => existsSync(c.model));
}

function selected(list: Case[]): Case[] {
  const filter = arg('filter');
  return filter ? list.filter((c) => new RegExp(filter).test(c.name)) : list;
}

/** Cases whose digests differ from `before` (only cases both runs have). */
function differences(before: Record<string, Record<string, string>>, after: Record<string, Record<string, string>>): string[] {
  const out: string[] = [];
  for (const [name, files] of Object.entries(after)) {
    const old = before[name];
    if (!old) continue;
    const changed = [...new Set([...Object.keys(old), ...Object.keys(files)])].filter((f) => old[f] !== files[f]);
    if (changed.length > 0) out.push(`${name}: ${changed.map((f) => `${f} (${old[f] ?? 'absent'} -> ${files[f] ?? 'absent'})`).join(', ')}`);
  }
  return out;
}

function cases(tmp: string): Case[] {
  const list: Case[] = [{ name: 'mini-resnet', model: join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx'), options: {} }];
  list.push({ name: 'mini-resnet@stream', model: list[0]!.model, options: { strategy: 'stream', memoryBudget: 256 * 1024 } });
  const only = arg('models')?.split(',');
  for (const name of LIGHT) {
    if (only && !only.includes(name)) continue;
    const model = join(CONFORMANCE_DIR, 'light', `light_${name}.onnx`);
    if (!existsSync(model)) continue;
    list.push({ name, model, options: {} });
    if (name === 'squeezenet' || name === 'shufflenet' || name === 'inception_v1') {
      list.push({ name: `${name}@stream`, model, options: { strategy: 'stream', memoryBudget: 6 * 1024 * 1024 } });
    }
  }
  list.push(...familyCases(join(tmp, 'families')));
  for (const suite of ['node', 'pytorch-operator', 'pytorch-converted', 'simple']) list.push(...suiteCases(suite));
  return list;
}

async function main(): Promise<void> {
  const result: Record<string, Record<string, string>> = {};
  const tmp = tempDir('digests');
  try {
    for (const c of selected(cases(tmp.dir))) {
      const dir = join(tmp.dir, 'bundles', c.name.replace(/[@/]/g, '-'));
      const start = performance.now();
      try {
        await compileModel(c.model, dir, { ...c.options, onProgress: undefined });
        result[c.name] = digestBundle(dir);
      } catch (e) {
        // a refusal must stay the same refusal
        result[c.name] = { error: e instanceof FlashmemError ? e.code : `internal: ${(e as Error).message}` };
      }
      const ms = performance.now() - start;
      if (ms > 2000) console.error(`${c.name}: ${Object.keys(result[c.name]!).length} files, ${(ms / 1000).toFixed(1)} s`);
    }
    console.error(`${Object.keys(result).length} cases`);
  } finally {
    tmp.cleanup();
  }
  const json = `${JSON.stringify(result, null, 1)}\n`;
  const compare = arg('compare');
  if (compare) {
    const diffs = differences(JSON.parse(readFileSync(compare, 'utf8')), result);
    for (const d of diffs) console.log(d);
    console.log(`${Object.keys(result).length} cases compared, ${diffs.length} differ`);
    if (diffs.length > 0) process.exitCode = 1;
    return;
  }
  const out = arg('out');
  if (out) writeFileSync(out, json);
  else process.stdout.write(json);
}

await main();
