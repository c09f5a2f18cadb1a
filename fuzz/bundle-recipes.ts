/**
 * Hand-written bundle mutants, rebuilt from their seed bundle on every use: the crashers the bundle
 * fuzzer found in seeds too large to commit as folders (their case.json names the recipe), and
 * interesting cases of the corpus in the compiled seeds. Each edit selects what it changes by
 * meaning (the prefill model's first state write), not by index, so that recipes survive compiler
 * changes; the attacker then rehashes everything (bundle-mutate.ts editedBundle).
 */
import type { BundleCaseSidecar } from './bundle-cases.js';
import { editedBundle, type BundleMutant, type MutantState } from './bundle-mutate.js';
import type { BundleSeed } from './bundle-seeds.js';

/* eslint-disable @typescript-eslint/no-explicit-any -- recipes edit the JSON as an attacker would */
type Doc = any;

export interface BundleRecipe {
  name: string;
  /** the seed it starts from (bundle-seeds.ts) */
  seed: string;
  why: string;
  edit(state: MutantState): void;
  expect: Pick<BundleCaseSidecar, 'code' | 'runtimeCode' | 'mentions' | 'ok'>;
}

const schedule = (s: MutantState): Doc => s.schedule;
const manifest = (s: MutantState): Doc => s.manifest;
const modelPlan = (s: MutantState, name: string): Doc => schedule(s).models.find((m: Doc) => m.model === name);
const firstStep = (steps: Doc[], op: string): Doc => steps.find((step: Doc) => step.op === op);

const BOM = new Uint8Array([0xef, 0xbb, 0xbf]);

export const RECIPES: readonly BundleRecipe[] = [
  {
    name: 'state-write-position-in-prefill',
    seed: 'onnx:decoder',
    why: 'crasher: a state write at the decode position in a model run() runs (no position) made NaN copy offsets (TypeError in copyBufferToBuffer, reported as FM_WEBGPU)',
    edit: (s) => { firstStep(modelPlan(s, schedule(s).decoder.prefill).run, 'stateWrite').at = 'position'; },
    expect: { code: 'FM_BUNDLE_INVALID', mentions: 'belongs to the decode model of a decoder' },
  },
  {
    name: 'state-write-position-overruns-block',
    seed: 'onnx:decoder',
    why: 'two rows written at the last decode position would run past their cache block into the next head\'s',
    edit: (s) => {
      const step = firstStep(modelPlan(s, schedule(s).decoder.decode).run, 'stateWrite');
      step.rows = 2;
      step.src.size *= 2;
    },
    expect: { code: 'FM_BUNDLE_INVALID', mentions: 'overrun blocks of 48 rows' },
  },
  {
    name: 'decoder-prefill-is-decode',
    seed: 'onnx:decoder',
    why: 'the prefill would run the decode model without a position',
    edit: (s) => { schedule(s).decoder.prefill = schedule(s).decoder.decode; },
    expect: { code: 'FM_BUNDLE_INVALID' },
  },
  {
    name: 'planned-peak-on-separate-memory',
    seed: 'fixture:streamed-mlp',
    why: 'crasher (GPU): stats().plannedPeakGpuBytes reported the schedule-level plannedPeakBytes, which only shared memory uses and verification ignores otherwise (1 byte, below the 832 the session allocates)',
    edit: (s) => { schedule(s).plannedPeakBytes = 1; },
    expect: { ok: true },
  },
  {
    name: 'bom-before-schedule',
    seed: 'fixture:mlp',
    why: 'a UTF-8 BOM before schedule.json: both verifications decode it away (TextDecoder), as the runtime does',
    edit: (s) => { s.rawSchedule.push((b) => { const c = new Uint8Array(b.length + 3); c.set(BOM); c.set(b, 3); return c; }); },
    expect: { ok: true },
  },
  {
    name: 'proto-key-in-required-limits',
    seed: 'fixture:mlp',
    why: 'zod drops "__proto__" record keys unseen; the runtime\'s validator checks it (-1 is not a limit value)',
    edit: (s) => { Object.defineProperty(manifest(s).requiredLimits, '__proto__', { value: -1, enumerable: true, writable: true, configurable: true }); },
    expect: { code: 'FM_BUNDLE_INVALID', mentions: '__proto__' },
  },
  {
    name: 'to-string-limit',
    seed: 'fixture:mlp',
    why: 'requiredLimits keys must be WebGPU limit names (max*/min*): "toString" once reached device creation as a limit',
    edit: (s) => { manifest(s).requiredLimits.toString = 5; },
    expect: { code: 'FM_BUNDLE_INVALID', mentions: 'toString' },
  },
  {
    name: 'block-size-not-power-of-two',
    seed: 'fixture:mlp',
    why: 'a zod refinement the JSON Schema cannot express: verify refuses it, the runtime reads any block size',
    edit: (s) => { manifest(s).files.find((f: Doc) => f.kind === 'weights').blocks.size = 5000; },
    expect: { code: 'FM_BUNDLE_INVALID', runtimeCode: 'ok', mentions: 'power of two' },
  },
  {
    name: 'texture-upload-in-run',
    seed: 'resnet:texture',
    why: 'texture weights are resident: their uploads belong to init steps',
    edit: (s) => {
      const plan = schedule(s).models[0];
      const i = plan.init.findIndex((step: Doc) => step.op === 'upload' && 'texture' in step.dst);
      plan.run.unshift(...plan.init.splice(i, 1));
    },
    expect: { code: 'FM_BUNDLE_INVALID', mentions: 'texture uploads belong to init steps' },
  },
  {
    name: 'streamed-upload-past-shard',
    seed: 'resnet:stream',
    why: 'a streamed upload reading past the end of its shard',
    edit: (s) => {
      const step = firstStep(schedule(s).models[0].run, 'upload');
      step.shardOffset = schedule(s).shards[step.shard].size;
    },
    expect: { code: 'FM_BUNDLE_INVALID', mentions: 'reads bytes' },
  },
  {
    name: 'sequence-call-out-of-order',
    seed: 'onnx:sequence',
    why: 'a declared sequence with a call fewer than its model list',
    edit: (s) => { schedule(s).sequence.calls.splice(1, 1); },
    expect: { code: 'FM_BUNDLE_INVALID' },
  },
  {
    name: 'dispatch-above-recorded-grid',
    seed: 'resnet:stream',
    why: 'one workgroup more than the compiler recorded for the shader (schedule.maxWorkgroups), well within what its bindings allow',
    edit: (s) => {
      const bounds: number[] = schedule(s).maxWorkgroups;
      const step = schedule(s).models[0].run.find((x: Doc) => x.op === 'dispatch' && bounds[x.shader]! < 65535);
      step.workgroups = [bounds[step.shader]! + 1, 1, 1];
    },
    expect: { code: 'FM_BUNDLE_BOUNDS', mentions: 'the compiler recorded for shader' },
  },
  {
    name: 'recorded-grid-above-bindings',
    seed: 'onnx:sequence',
    why: 'the attacker also writes schedule.maxWorkgroups: a recorded grid above what its dispatches\' bindings imply is refused',
    edit: (s) => { schedule(s).maxWorkgroups[0] = 2 ** 32; },
    expect: { code: 'FM_BUNDLE_BOUNDS', mentions: 'maxWorkgroups[0] is 4294967296 workgroups' },
  },
  {
    name: 'recorded-grids-dropped',
    seed: 'fixture:mlp',
    why: 'a bundle without schedule.maxWorkgroups (older compilers) still verifies: the binding-implied bound applies alone',
    edit: (s) => { delete schedule(s).maxWorkgroups; },
    expect: { ok: true },
  },
];

export function recipeByName(name: string): BundleRecipe {
  const recipe = RECIPES.find((r) => r.name === name);
  if (!recipe) throw new Error(`no bundle recipe ${JSON.stringify(name)}`);
  return recipe;
}

export function buildRecipe(recipe: BundleRecipe, seeds: readonly BundleSeed[]): BundleMutant {
  const seed = seeds.find((s) => s.name === recipe.seed);
  if (!seed) throw new Error(`recipe ${recipe.name}: seed ${recipe.seed} was not built`);
  return editedBundle(seed, recipe.name, recipe.edit);
}
