/**
 * Seeds of the bundle fuzzer: valid bundles held in memory as path -> bytes, built once per process.
 *
 * - fixture:*  the hand-made bundles of test/harness/bundle-fixtures.ts (preloaded and streamed
 *              mlp, the int64/bool counter, a two-model bundle, and the heavy one-dispatch bundle
 *              whose run takes minutes on a software GPU, for the run timeout);
 * - resnet:*   examples/mini-resnet/model.onnx compiled with compileModel: preload, stream under a
 *              180 KiB budget, and preload with weight textures (texture declarations and uploads);
 * - onnx:*     a shared-memory bundle with a declared call sequence (two built-in fuzz models) and a
 *              decoder bundle (gpt2-tiny prefill + decode), for the memory/sequence/decoder fields.
 *
 * `quick` builds only the fixtures (milliseconds; the unit tests use it).
 */
import { mkdirSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { compileModel } from '../compiler/compile.js';
import { writeBundle } from '../compiler/bundle/write.js';
import { generateRuntime } from '../compiler/bundle/runtime-gen.js';
import {
  assembleBundle, counterModel, heavyModel, mlpModel, streamedMlpModel,
} from '../test/harness/bundle-fixtures.js';
import type { BundleContents } from '../compiler/bundle/contents.js';
import { FUZZ_DIR } from './seeds.js';

export const REPO_ROOT = path.resolve(FUZZ_DIR, '..');
export const MINI_RESNET = path.join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx');
export const STREAM_BUDGET = 180 * 1024;

/** A bundle as its files: relative path -> bytes. */
export type BundleFiles = Map<string, Uint8Array>;

export interface BundleSeed {
  name: string;
  files: BundleFiles;
  /** relative pick weight */
  weight: number;
  /** runs on the software GPU in well under a second when valid (the heavy fixture does not) */
  gpuFriendly: boolean;
}

export interface BundleSeedOptions {
  /** fixtures only (no compile): for tests */
  quick?: boolean;
  /** only the seeds with these names (the compiled ones are compiled only when named) */
  only?: readonly string[];
  /** where seed bundles are compiled (a temp folder; removed afterwards) */
  workDir: string;
  log?: (line: string) => void;
}

export function readBundleDir(dir: string): BundleFiles {
  const files: BundleFiles = new Map();
  const walk = (rel: string) => {
    for (const name of readdirSync(path.join(dir, rel)).sort()) {
      const r = rel ? `${rel}/${name}` : name;
      const st = statSync(path.join(dir, r));
      if (st.isDirectory()) walk(r);
      else files.set(r, new Uint8Array(readFileSync(path.join(dir, r))));
    }
  };
  walk('');
  return files;
}

async function contentsSeed(workDir: string, name: string, contents: BundleContents): Promise<BundleFiles> {
  const dir = path.join(workDir, name.replace(/[^a-z0-9-]/gi, '_'));
  await writeBundle(dir, contents, { runtime: generateRuntime() });
  return readBundleDir(dir);
}

export async function buildBundleSeeds(options: BundleSeedOptions): Promise<BundleSeed[]> {
  const log = options.log ?? (() => {});
  const work = options.workDir;
  mkdirSync(work, { recursive: true });
  const seeds: BundleSeed[] = [];
  const wanted = (name: string) => options.only === undefined || options.only.includes(name);
  const add = (name: string, files: BundleFiles, weight: number, gpuFriendly = true) => { if (wanted(name)) seeds.push({ name, files, weight, gpuFriendly }); };
  // weights: the fixtures are cheap to verify (a few KiB of JSON), so most executions go to them
  add('fixture:mlp', await contentsSeed(work, 'mlp', assembleBundle([mlpModel()])), 4);
  add('fixture:streamed-mlp', await contentsSeed(work, 'streamed', assembleBundle([streamedMlpModel()])), 4);
  add('fixture:counter', await contentsSeed(work, 'counter', assembleBundle([counterModel()])), 3);
  add('fixture:two-models', await contentsSeed(work, 'two', assembleBundle([mlpModel('a'), counterModel('b')])), 3);
  add('fixture:heavy', await contentsSeed(work, 'heavy', assembleBundle([heavyModel()])), 0.6, false);
  if (options.quick) return seeds;

  const t0 = performance.now();
  const compiled = async (name: string, weight: number, compile: (dir: string) => Promise<unknown>) => {
    if (!wanted(name)) return;
    const dir = path.join(work, name.replace(/[^a-z0-9-]/gi, '_'));
    await compile(dir);
    add(name, readBundleDir(dir), weight);
  };
  await compiled('resnet:preload', 1, (dir) => compileModel(MINI_RESNET, dir, {}));
  await compiled('resnet:stream', 1, (dir) => compileModel(MINI_RESNET, dir, { strategy: 'stream', memoryBudget: STREAM_BUDGET }));
  await compiled('resnet:texture', 0.6, (dir) => compileModel(MINI_RESNET, dir, { weightLayout: 'texture' }));
  await compiled('onnx:sequence', 0.6, async (dir) => {
    const { compileMultiModel } = await import('../compiler/compile-multi.js');
    const { buildModel } = await import('../fixtures/onnx-builder.js');
    const { BUILTIN_SPECS } = await import('./seeds.js');
    const models = path.join(work, 'models');
    mkdirSync(models, { recursive: true });
    writeFileSync(path.join(models, 'a.onnx'), buildModel(BUILTIN_SPECS.mlp!));
    writeFileSync(path.join(models, 'b.onnx'), buildModel(BUILTIN_SPECS.convnet!));
    await compileMultiModel([{ path: path.join(models, 'a.onnx'), name: 'a' }, { path: path.join(models, 'b.onnx'), name: 'b' }], dir,
      { memoryBudget: 64 * 1024, sequence: ['a', 'b', 'a'] });
  });
  await compiled('onnx:decoder', 0.5, async (dir) => {
    const { serializeInline } = await import('../fixtures/families/builder.js');
    const { CONFIGS } = await import('../fixtures/families/configs.js');
    const { familyGraphs } = await import('../fixtures/families/generate.js');
    const { compileDecoder } = await import('../compiler/compile-decoder.js');
    const models = path.join(work, 'decoder-models');
    mkdirSync(models, { recursive: true });
    const paths: Record<string, string> = {};
    for (const g of familyGraphs(CONFIGS['gpt2-tiny']!, ['prefill', 'decode'])) {
      paths[g.name] = path.join(models, `${g.name}.onnx`);
      writeFileSync(paths[g.name]!, serializeInline(g));
    }
    await compileDecoder(paths.prefill!, paths.decode!, dir);
  });
  log(`bundle seeds: ${seeds.length} (compiled in ${((performance.now() - t0) / 1000).toFixed(1)} s)`);
  rmSync(path.join(work, 'models'), { recursive: true, force: true });
  return seeds;
}
