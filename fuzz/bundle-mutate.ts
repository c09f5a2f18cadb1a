/**
 * The structured bundle mutator. A mutant starts as a seed bundle's files (bundle-seeds.ts) with
 * manifest.json and schedule.json parsed; 1 to 4 mutations are applied, then the attacker's
 * finishing touch: schedule.json's shard sizes follow the shard files, and every file the
 * manifest lists gets its size, sha256 and block hashes recomputed (most of the time: sometimes one
 * file, the block hashes, or everything is left stale, for the hash checks).
 *
 * Mutations work on:
 * - the JSON structure of manifest.json and schedule.json: numbers to boundary values (0, -1, 2^31,
 *   2^32, 2^53, 1e300, values near the buffer sizes, numbers found elsewhere in the document),
 *   NaN-like strings, other types; array items swapped, duplicated, deleted, repeated; object keys
 *   deleted, added (unknown keys, "__proto__", "toString"), grafted from other objects;
 * - what the fields mean: steps (op, order, moved between init and run, copied from other plans),
 *   regions, buffers, workgroups, shader/shard/input/output/texture indices, texture
 *   declarations, planned peaks, model/input/output names (very long, unicode, consistent or not),
 *   dtypes and shapes, requiredLimits ("toString", "__proto__", unknown limits, alignments),
 *   features, file entries and block hashes, the format header, decoder/sequence/memory fields;
 * - the JSON text (numbers written as 1e400 or -0, BOMs, duplicate keys, deep nesting, invalid
 *   UTF-8, truncation);
 * - shader text (truncation, injected WGSL and junk, workgroup sizes, entry points, swaps);
 * - shard bytes (flips, NaN/Inf floats, truncation, extension) and files (deleted, added, emptied,
 *   a foreign runtime.js).
 *
 * Every mutation is a replayable closure over JSON paths chosen when it was made: applied to a state
 * that lacks its path it does nothing, so a crasher can be minimised by dropping mutations.
 */
import { createHash } from 'node:crypto';
import type { Rng } from './mutate.js';
import type { BundleFiles, BundleSeed } from './bundle-seeds.js';

type Json = unknown;
type JsonPath = (string | number)[];

export const MANIFEST = 'manifest.json';
export const SCHEDULE = 'schedule.json';

/** The mutable state one mutant is built in. */
export interface MutantState {
  manifest: Json;
  schedule: Json;
  /** every other file; null: deleted */
  files: Map<string, Uint8Array | null>;
  /** text edits applied to the serialised JSON (schedule ones before the manifest is rehashed) */
  rawSchedule: ((text: Uint8Array) => Uint8Array)[];
  rawManifest: ((text: Uint8Array) => Uint8Array)[];
  attacker: AttackerMode;
  dict: Dictionary;
  seed: BundleSeed;
  /** whether manifest / schedule were parsed (a mutation may have changed them) */
  touched: { manifest: boolean; schedule: boolean };
}

export interface AttackerMode {
  /** 'all': every listed file rehashed; 'skip-one': one listed file left stale; 'no-blocks': block hashes left stale; 'none': nothing */
  rehash: 'all' | 'skip-one' | 'no-blocks' | 'none';
  skipIndex: number;
  /** schedule.json's shard sizes set to the shard files' sizes */
  syncShardSizes: boolean;
  /** JSON.stringify indentation */
  indent: number;
}

export interface Mutation {
  name: string;
  apply(state: MutantState): void;
}

/** A mutant: how to build it (seed + mutations) and the files it has. */
export interface BundleMutant {
  seed: string;
  mutations: Mutation[];
  attacker: AttackerMode;
  /** path -> bytes; files of the seed are the seed's own arrays (so they can be hard-linked) */
  files: Map<string, Uint8Array>;
}

// ---------------------------------------------------------------------------------------------
// JSON helpers

const clone = <T>(v: T): T => (v === undefined ? v : (JSON.parse(JSON.stringify(v)) as T));

function isObj(v: Json): v is Record<string, Json> {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function getAt(root: Json, p: JsonPath): Json {
  let v = root;
  for (const k of p) {
    if (Array.isArray(v) && typeof k === 'number') v = v[k];
    else if (isObj(v) && typeof k === 'string' && Object.hasOwn(v, k)) v = v[k];
    else return undefined;
  }
  return v;
}

/** Sets an own property (also "__proto__", as JSON.parse would create it). */
function defineKey(o: Record<string, Json>, k: string, v: Json): void {
  Object.defineProperty(o, k, { value: v, enumerable: true, writable: true, configurable: true });
}

/** Replaces the value at `p` (in root `which` of the state); false when the path is gone. */
function setAt(state: MutantState, which: 'manifest' | 'schedule', p: JsonPath, v: Json): boolean {
  if (p.length === 0) {
    state[which] = v;
    return true;
  }
  const parent = getAt(state[which], p.slice(0, -1));
  const k = p[p.length - 1]!;
  if (Array.isArray(parent) && typeof k === 'number' && k <= parent.length) parent[k] = v;
  else if (isObj(parent) && typeof k === 'string') defineKey(parent, k, v);
  else return false;
  return true;
}

function deleteAt(state: MutantState, which: 'manifest' | 'schedule', p: JsonPath): void {
  const parent = getAt(state[which], p.slice(0, -1));
  const k = p[p.length - 1]!;
  if (Array.isArray(parent) && typeof k === 'number' && k < parent.length) parent.splice(k, 1);
  else if (isObj(parent) && typeof k === 'string') delete parent[k];
}

/** A node of a JSON document; its path is built only when needed (pathOf). */
interface Node { value: Json; key: string | number | undefined; parent: Node | undefined }

function pathOf(n: Node): JsonPath {
  const p: JsonPath = [];
  for (let q: Node | undefined = n; q?.parent; q = q.parent) p.push(q.key!);
  return p.reverse();
}

function walk(root: Json, out: Node[] = [], parent?: Node, key?: string | number, depth = 0): Node[] {
  const node: Node = { value: root, key, parent };
  out.push(node);
  if (depth > 40) return out;
  if (Array.isArray(root)) for (let i = 0; i < root.length; i++) walk(root[i], out, node, i, depth + 1);
  else if (isObj(root)) for (const k of Object.keys(root)) walk(root[k], out, node, k, depth + 1);
  return out;
}

function describePath(which: string, p: JsonPath): string {
  return `${which}${p.map((k) => (typeof k === 'number' ? `[${k}]` : `.${k.length > 24 ? `${k.slice(0, 24)}…` : k}`)).join('')}`;
}

/** A short description of a value (big arrays and objects are not serialised whole). */
function show(v: Json): string {
  let s: string;
  if (Array.isArray(v) && v.length > 8) s = `[${v.length} items: ${show(v[0])}, …]`;
  else if (typeof v === 'string' && v.length > 60) s = `${JSON.stringify(v.slice(0, 40))}…(${v.length} chars)`;
  else if (isObj(v) && Object.keys(v).length > 12) s = `{${Object.keys(v).length} keys}`;
  else s = JSON.stringify(v) ?? String(v);
  return s.length > 60 ? `${s.slice(0, 57)}…(${s.length})` : s;
}

// ---------------------------------------------------------------------------------------------
// Interesting values

const BOUNDARY_NUMBERS = [
  0, 1, -1, 2, 3, 4, 255, 256, 257, 4095, 4096, 65535, 65536, 2 ** 24, 2 ** 28, 2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1, 2 ** 32, 2 ** 32 + 256,
  2 ** 53 - 1, 2 ** 53, 2 ** 53 + 2, 1e300, -1e300, 0.5, 1.5, -0.5, Number.MAX_VALUE, 5e-324, 268435456, 134217728, 1 << 30,
];
const NAN_LIKE = ['NaN', 'Infinity', '-Infinity', '1e999', '-0', '0x10', '12', '', ' 1', '1e3', 'null', 'undefined'];
const SPECIAL_KEYS = ['__proto__', 'toString', 'constructor', 'hasOwnProperty', 'valueOf', 'prototype', 'length', '__defineGetter__', '', 'x-unknown', 'then'];
const DTYPES = ['float32', 'float16', 'float64', 'bfloat16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool', 'string', 'complex64', 'FLOAT32', ''];
const OPS = ['upload', 'writeInput', 'readOutput', 'dispatch', 'copy', 'stateWrite', 'Dispatch', 'nop', ''];
const LIMIT_KEYS = [
  'toString', '__proto__', 'constructor', 'valueOf', 'hasOwnProperty', 'maxBufferSize', 'maxStorageBufferBindingSize', 'minStorageBufferOffsetAlignment',
  'minUniformBufferOffsetAlignment', 'maxComputeWorkgroupsPerDimension', 'maxStorageBuffersPerShaderStage', 'maxTextureDimension2D',
  'maxTextureArrayLayers', 'maxSampledTexturesPerShaderStage', 'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX',
  'maxComputeWorkgroupStorageSize', 'maxBindGroups', 'maxFooBar', '',
];
const LIMIT_VALUES = [0, 1, 2, 3, 4, 16, 255, 256, 1024, 65535, 65536, 2 ** 28, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 1e300, -1, 0.5];
const FEATURES = ['shader-f16', 'timestamp-query', 'float32-filterable', 'texture-compression-bc', 'subgroups', 'foo', '', 'toString', '__proto__'];

function veryLongName(rng: Rng): string {
  const unit = rng.pick(['a', 'é', '模型', '🧠', '\u202e', '\u0000', 'x/', '../', '\\', '"', '%s', '\ud800']);
  // mostly just past the 200 characters messages quote; now and then far beyond
  return unit.repeat(rng.weighted<number>([[8, 201], [5, 1000], [2, 5000], [1, 70000]]));
}

function nameValue(rng: Rng, dict: readonly string[]): string {
  return rng.weighted<() => string>([
    [3, () => veryLongName(rng)],
    [3, () => rng.pick(['模型', 'modèle', '🧠net', 'a\u0000b', '\u202egnp.exe', 'x\ny', '"quoted"', '\ud800', 'A\u0301', '\uFEFFx', ' ', 'ǅ'])],
    [2, () => rng.pick(SPECIAL_KEYS)],
    [3, () => (dict.length ? rng.pick(dict) : 'x')],
    [1, () => `${dict.length ? rng.pick(dict) : 'x'}${rng.pick(['_', ' ', '.', '/', ''])}`],
    [1, () => rng.pick(['../x', '/etc/passwd', 'weights/../manifest.json', 'C:\\x', 'shaders', 'weights', '.', '..', 'manifest.json', 'runtime.js'])],
  ])();
}

function numberValue(rng: Rng, current: Json, dict: readonly number[]): Json {
  const n = typeof current === 'number' ? current : 0;
  return rng.weighted<() => Json>([
    [5, () => rng.pick(BOUNDARY_NUMBERS)],
    [4, () => n + rng.pick([1, -1, 4, -4, 16, 256, -256, 4096])],
    [2, () => rng.pick([n * 2, n * 256, n * 65536, Math.floor(n / 2), -n, n + 0.5, n * 2 ** 32])],
    [4, () => (dict.length ? rng.pick(dict) : 0)],
    [1, () => (dict.length ? rng.pick(dict) + rng.pick([-1, 1, 256]) : 0)],
    [2, () => rng.pick(NAN_LIKE)],
    [1, () => rng.pick<Json>([null, true, false, [], {}, [n], { value: n }])],
  ])();
}

function stringValue(rng: Rng, current: Json, dict: readonly string[]): Json {
  const s = typeof current === 'string' ? current : '';
  return rng.weighted<() => Json>([
    [4, () => nameValue(rng, dict)],
    [2, () => s.slice(0, rng.int(s.length + 1))],
    [2, () => s + rng.pick(['x', '\u0000', '/..', '.wgsl', ' ', 'é'])],
    [1, () => s.toUpperCase()],
    [1, () => rng.pick<Json>([0, -1, 2 ** 32, null, true, [], {}, [s], { name: s }])],
  ])();
}

// ---------------------------------------------------------------------------------------------
// Helpers over the bundle's structure

interface Plan { path: JsonPath; value: Record<string, Json> }

function plansOf(schedule: Json): Plan[] {
  const plans: Plan[] = [];
  if (!isObj(schedule)) return plans;
  if (Array.isArray(schedule.models)) schedule.models.forEach((m, i) => { if (isObj(m)) plans.push({ path: ['models', i], value: m }); });
  if (isObj(schedule.sequence)) plans.push({ path: ['sequence'], value: schedule.sequence });
  return plans;
}

/** Every step list: models[i].init/run, sequence.init, sequence.calls[j].run. */
function stepLists(schedule: Json): JsonPath[] {
  const lists: JsonPath[] = [];
  for (const plan of plansOf(schedule)) {
    for (const key of ['init', 'run']) if (Array.isArray(plan.value[key])) lists.push([...plan.path, key]);
    if (Array.isArray(plan.value.calls)) plan.value.calls.forEach((c, j) => { if (isObj(c) && Array.isArray(c.run)) lists.push([...plan.path, 'calls', j, 'run']); });
  }
  return lists;
}

/** The plan a JSON path lies in (its buffers bound its regions). */
function planOf(schedule: Json, p: JsonPath): Record<string, Json> | undefined {
  const plan = p[0] === 'models' ? getAt(schedule, p.slice(0, 2)) : p[0] === 'sequence' ? getAt(schedule, ['sequence']) : undefined;
  return isObj(plan) ? plan : undefined;
}

function bufferSizes(plan: Record<string, Json> | undefined): number[] {
  const buffers = plan?.buffers;
  return Array.isArray(buffers) ? buffers.flatMap((b) => (isObj(b) && typeof b.size === 'number' ? [b.size] : [])) : [];
}

/** the numbers and short strings of a seed's JSON files, computed once per seed: the values other mutations draw on */
interface Dictionary { numbers: Record<'manifest' | 'schedule', number[]>; strings: Record<'manifest' | 'schedule', string[]> }
const dictionaries = new WeakMap<BundleSeed, Dictionary>();

function dictionaryOf(seed: BundleSeed): Dictionary {
  let d = dictionaries.get(seed);
  if (d) return d;
  const collect = (p: string) => {
    const numbers = new Set<number>();
    const strings = new Set<string>();
    for (const n of walk(JSON.parse(dec.decode(seed.files.get(p)!)) as Json)) {
      if (typeof n.value === 'number') numbers.add(n.value);
      else if (typeof n.value === 'string' && n.value.length < 100) strings.add(n.value);
    }
    return { numbers: [...numbers], strings: [...strings].slice(0, 400) };
  };
  const m = collect(MANIFEST);
  const s = collect(SCHEDULE);
  dictionaries.set(seed, (d = { numbers: { manifest: m.numbers, schedule: s.numbers }, strings: { manifest: m.strings, schedule: s.strings } }));
  return d;
}

function nodesWhere(root: Json, pred: (n: Node) => boolean): Node[] {
  return walk(root).filter(pred);
}

const isRegion = (v: Json): v is Record<string, Json> => isObj(v) && 'buffer' in v && 'offset' in v && 'size' in v;

// ---------------------------------------------------------------------------------------------
// Mutation makers: each picks its target in `state` and returns a replayable mutation (or undefined)

type Maker = (rng: Rng, state: MutantState) => Mutation | undefined;

function setMutation(which: 'manifest' | 'schedule', p: JsonPath, v: Json, label?: string): Mutation {
  return {
    name: `${label ? `${label}: ` : ''}${describePath(which, p)} := ${show(v)}`,
    apply: (s) => { if (p.length === 0 || getAt(s[which], p.slice(0, -1)) !== undefined) setAt(s, which, p, clone(v)); },
  };
}

/** generic: any number, string, array or object of one of the two JSON files */
const genericJson: Maker = (rng, state) => {
  const which = rng.chance(0.35) ? 'manifest' : 'schedule';
  const root = state[which];
  const nodes = walk(root);
  const node = rng.pick(nodes);
  const p = pathOf(node);
  const v = node.value;
  if (typeof v === 'number') return setMutation(which, p, numberValue(rng, v, state.dict.numbers[which]));
  if (typeof v === 'string') return setMutation(which, p, stringValue(rng, v, state.dict.strings[which]));
  if (Array.isArray(v)) return arrayMutation(rng, which, p, v);
  if (isObj(v)) return objectMutation(rng, which, p, v, nodes);
  return setMutation(which, p, rng.pick<Json>([0, '', [], {}, null]));
};

function arrayMutation(rng: Rng, which: 'manifest' | 'schedule', p: JsonPath, arr: Json[]): Mutation {
  const n = arr.length;
  const op = rng.weighted<string>([[3, 'delete'], [3, 'duplicate'], [2, 'swap'], [1, 'reverse'], [1, 'clear'], [1, 'repeat'], [1, 'retype'], [1, 'append-odd']]);
  const i = rng.int(Math.max(n, 1));
  const j = rng.int(Math.max(n, 1));
  const times = rng.pick([16, 64, 1000]);
  const odd = rng.pick<Json>([null, 0, -1, '', {}, [], 2 ** 53]);
  const retype = rng.pick<Json>([null, {}, 0, 'x', { 0: arr[0] ?? null }]);
  return {
    name: `${describePath(which, p)} ${op}${op === 'swap' ? ` ${i}<->${j}` : op === 'repeat' ? ` [${i}] x${times}` : op === 'delete' || op === 'duplicate' ? ` [${i}]` : ''}`,
    apply: (s) => {
      const a = getAt(s[which], p);
      if (!Array.isArray(a)) return;
      if (op === 'delete' && i < a.length) a.splice(i, 1);
      else if (op === 'duplicate' && i < a.length) a.splice(i, 0, clone(a[i]));
      else if (op === 'swap' && i < a.length && j < a.length) [a[i], a[j]] = [a[j], a[i]];
      else if (op === 'reverse') a.reverse();
      else if (op === 'clear') a.length = 0;
      else if (op === 'repeat' && i < a.length) a.push(...Array.from({ length: times }, () => clone(a[i])));
      else if (op === 'retype') setAt(s, which, p, clone(retype));
      else if (op === 'append-odd') a.push(clone(odd));
    },
  };
}

function objectMutation(rng: Rng, which: 'manifest' | 'schedule', p: JsonPath, obj: Record<string, Json>, nodes: Node[]): Mutation {
  const keys = Object.keys(obj);
  const op = rng.weighted<string>([[3, 'delete-key'], [3, 'add-key'], [2, 'graft'], [1, 'retype']]);
  if (op === 'delete-key' && keys.length) {
    const k = rng.pick(keys);
    return { name: `${describePath(which, [...p, k])} deleted`, apply: (s) => deleteAt(s, which, [...p, k]) };
  }
  if (op === 'graft') {
    // the value of the same key in another object of the document, or any node
    const k = keys.length ? rng.pick(keys) : 'x';
    const donors = nodes.filter((n) => isObj(n.value) && Object.hasOwn(n.value, k) && n.value !== obj);
    const donor = donors.length ? (donors[rng.int(donors.length)]!.value as Record<string, Json>)[k] : rng.pick(nodes).value;
    return setMutation(which, [...p, k], donor, 'graft');
  }
  if (op === 'retype') return setMutation(which, p, rng.pick<Json>([null, [], [obj], 0, 'x', true]));
  const k = rng.chance(0.5) ? rng.pick(SPECIAL_KEYS) : rng.pick(['extra', 'comment', 'offset', 'size', 'buffer', 'texture', 'op', 'blocks', 'shader', 'model', 'name']);
  const v = rng.pick<Json>([0, 1, 'x', null, {}, [], { size: 4 }, 2 ** 32, true]);
  return setMutation(which, [...p, k], v, 'add-key');
}

/** steps: delete, duplicate, swap, move between lists, copy from another plan, change op */
const stepMutation: Maker = (rng, state) => {
  const lists = stepLists(state.schedule);
  if (!lists.length) return undefined;
  const from = rng.pick(lists);
  const steps = getAt(state.schedule, from) as Json[];
  const to = rng.pick(lists);
  const i = rng.int(Math.max(steps.length, 1));
  const j = rng.int(Math.max(steps.length, 1));
  const op = rng.weighted<string>([[3, 'delete'], [3, 'duplicate'], [3, 'swap'], [2, 'move'], [2, 'copy'], [2, 'change-op'], [1, 'to-front'], [1, 'from-other-op']]);
  const newOp = rng.pick(OPS);
  // a step of another op from anywhere, so that its fields are plausible
  const allSteps = lists.flatMap((l) => (getAt(state.schedule, l) as Json[]).filter(isObj));
  const donor = allSteps.length ? clone(rng.pick(allSteps)) : undefined;
  const d = describePath('schedule', from);
  switch (op) {
    case 'delete': return { name: `${d}[${i}] deleted`, apply: (s) => { const a = getAt(s.schedule, from); if (Array.isArray(a) && i < a.length) a.splice(i, 1); } };
    case 'duplicate': return { name: `${d}[${i}] duplicated`, apply: (s) => { const a = getAt(s.schedule, from); if (Array.isArray(a) && i < a.length) a.splice(i + 1, 0, clone(a[i])); } };
    case 'swap': return { name: `${d}[${i}] <-> [${j}]`, apply: (s) => { const a = getAt(s.schedule, from); if (Array.isArray(a) && i < a.length && j < a.length) [a[i], a[j]] = [a[j], a[i]]; } };
    case 'to-front': return { name: `${d}[${i}] moved to the front`, apply: (s) => { const a = getAt(s.schedule, from); if (Array.isArray(a) && i < a.length) a.unshift(...a.splice(i, 1)); } };
    case 'move':
    case 'copy': {
      const at = rng.int(((getAt(state.schedule, to) as Json[]).length ?? 0) + 1);
      return {
        name: `${d}[${i}] ${op === 'move' ? 'moved' : 'copied'} to ${describePath('schedule', to)}[${at}]`,
        apply: (s) => {
          const a = getAt(s.schedule, from);
          const b = getAt(s.schedule, to);
          if (!Array.isArray(a) || !Array.isArray(b) || i >= a.length) return;
          const step = op === 'move' ? a.splice(i, 1)[0] : clone(a[i]);
          b.splice(Math.min(at, b.length), 0, step);
        },
      };
    }
    case 'change-op': return setMutation('schedule', [...from, i, 'op'], newOp, 'step op');
    default: return donor ? { name: `${d}[${i}] := a copy of another step (${show(donor.op)})`, apply: (s) => { const a = getAt(s.schedule, from); if (Array.isArray(a) && i < a.length) a[i] = clone(donor); } } : undefined;
  }
};

/** a region (buffer, offset, size) of a step, moved against its plan's buffers */
const regionMutation: Maker = (rng, state) => {
  const regions = nodesWhere(state.schedule, (n) => isRegion(n.value));
  if (!regions.length) return undefined;
  const node = rng.pick(regions);
  const p = pathOf(node);
  const r = node.value as Record<string, Json>;
  const sizes = bufferSizes(planOf(state.schedule, p));
  const buffer = typeof r.buffer === 'number' ? r.buffer : 0;
  const bufSize = sizes[buffer] ?? 0;
  const offset = typeof r.offset === 'number' ? r.offset : 0;
  const size = typeof r.size === 'number' ? r.size : 0;
  const field = rng.pick(['buffer', 'offset', 'size', 'offset+size', 'all-of-buffer']);
  if (field === 'buffer') return setMutation('schedule', [...p, 'buffer'], rng.pick([sizes.length, sizes.length + 1, rng.int(Math.max(sizes.length, 1)), -1, 2 ** 32, 2 ** 53]), 'region');
  if (field === 'offset') {
    return setMutation('schedule', [...p, 'offset'], rng.pick([0, 256, 4, bufSize - size, bufSize - size + 4, bufSize - size + 256, bufSize, bufSize + 256, offset + 256, offset + 4, 2 ** 32, 2 ** 32 + offset, 2 ** 53 - 1, 2 ** 53]), 'region');
  }
  if (field === 'size') {
    return setMutation('schedule', [...p, 'size'], rng.pick([0, 4, size + 4, size - 4, size * 2, bufSize, bufSize - offset, bufSize - offset + 4, 2 ** 31, 2 ** 32, 2 ** 32 + size, 2 ** 53 - 1]), 'region');
  }
  if (field === 'all-of-buffer') return setMutation('schedule', p, { ...r, offset: 0, size: bufSize }, 'region');
  // offset + size wrapping 2^32 or 2^53
  const big = rng.pick([2 ** 32, 2 ** 53 - 1]);
  return setMutation('schedule', p, { ...r, offset: big - 256 - (big % 256), size: rng.pick([512, size, 2 ** 32 - 256]) }, 'region');
};

/** a buffer declaration's size or role; declarations deleted or duplicated */
const bufferMutation: Maker = (rng, state) => {
  const plans = plansOf(state.schedule).filter((pl) => Array.isArray(pl.value.buffers) && (pl.value.buffers as Json[]).length);
  if (!plans.length) return undefined;
  const plan = rng.pick(plans);
  const buffers = plan.value.buffers as Json[];
  const i = rng.int(buffers.length);
  const b = buffers[i] as Record<string, Json>;
  const size = typeof b?.size === 'number' ? b.size : 0;
  const p = [...plan.path, 'buffers', i];
  return rng.weighted<() => Mutation>([
    [4, () => setMutation('schedule', [...p, 'size'], rng.pick([0, 4, size - 4, size - 256, size + 4, size * 2, 2 ** 28, 2 ** 28 + 4, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 268435456, 268435460]), 'buffer')],
    [2, () => setMutation('schedule', [...p, 'role'], rng.pick(['weights', 'activations', 'staging', 'state', 'readback', 'WEIGHTS']), 'buffer')],
    [1, () => ({ name: `${describePath('schedule', p)} duplicated`, apply: (s) => { const a = getAt(s.schedule, [...plan.path, 'buffers']); if (Array.isArray(a) && i < a.length) a.splice(i, 0, clone(a[i])); } })],
    [1, () => ({ name: `${describePath('schedule', p)} deleted`, apply: (s) => deleteAt(s, 'schedule', p) })],
    [1, () => ({ name: `${describePath('schedule', [...plan.path, 'buffers'])} x40 of 256 MiB`, apply: (s) => { const a = getAt(s.schedule, [...plan.path, 'buffers']); if (Array.isArray(a)) a.push(...Array.from({ length: 40 }, () => ({ role: 'activations', size: 2 ** 28 }))); } })],
  ])();
};

/** a dispatch's workgroup counts */
const workgroupMutation: Maker = (rng, state) => {
  const dispatches = nodesWhere(state.schedule, (n) => isObj(n.value) && Array.isArray(n.value.workgroups));
  if (!dispatches.length) return undefined;
  const node = rng.pick(dispatches);
  const p = pathOf(node);
  const wg = ((node.value as Record<string, Json>).workgroups as Json[]).slice();
  const pickCount = () => rng.pick([0, 1, 2, 255, 256, 65535, 65536, 2 ** 16 + 1, 2 ** 31, 2 ** 32, 2 ** 32 + 1, 2 ** 53 - 1, -1, 1.5]);
  const v = rng.weighted<() => Json>([
    [3, () => { const w = wg.slice(); w[rng.int(3)] = pickCount(); return w; }],
    [1, () => [65535, 65535, 65535]],
    [1, () => [65535, 65535, 1]],
    [1, () => [0, 0, 0]],
    [1, () => [1, 1]],
    [1, () => [1, 1, 1, 1]],
    [1, () => wg.map((x) => (typeof x === 'number' ? x * 2 : x))],
  ])();
  return setMutation('schedule', [...p, 'workgroups'], v, 'workgroups');
};

/**
 * The grids the compiler recorded per shader (schedule.maxWorkgroups): raised with or without the
 * dispatches they bound, lowered below a dispatch, dropped (older bundles), of the wrong length.
 */
const recordedGridMutation: Maker = (rng, state) => {
  const s = state.schedule as Record<string, Json>;
  const bounds = s.maxWorkgroups;
  if (!Array.isArray(bounds) || bounds.length === 0) return undefined;
  const i = rng.int(bounds.length);
  const p: JsonPath = ['maxWorkgroups', i];
  const current = typeof bounds[i] === 'number' ? bounds[i] : 1;
  return rng.weighted<() => Mutation>([
    [3, () => setMutation('schedule', p, rng.pick([0, current - 1, current + 1, current * 2, 65535, 65536, 65535 * 65535, 2 ** 32, 2 ** 53 - 1, -1, 1.5]), 'recorded grid')],
    [1, () => ({ name: 'recorded grids: schedule.maxWorkgroups deleted', apply: (m) => deleteAt(m, 'schedule', ['maxWorkgroups']) })],
    [1, () => ({ name: 'recorded grids: one entry dropped', apply: (m) => { const a = getAt(m.schedule, ['maxWorkgroups']); if (Array.isArray(a)) a.pop(); } })],
    [2, () => ({
      // the attacker's move: a larger grid on every dispatch of shader i, and the recorded bound to match
      name: `recorded grids: shader ${i}'s dispatches and maxWorkgroups[${i}] raised to 65535 x 2`,
      apply: (m) => {
        for (const node of nodesWhere(m.schedule, (n) => isObj(n.value) && n.value.op === 'dispatch' && n.value.shader === i)) {
          (node.value as Record<string, Json>).workgroups = [65535, 2, 1];
        }
        setAt(m, 'schedule', p, 65535 * 2);
      },
    })],
  ])();
};

/** shader, shard, input, output and texture indices */
const indexMutation: Maker = (rng, state) => {
  const s = state.schedule as Record<string, Json>;
  const shaderCount = Array.isArray(s?.shaders) ? s.shaders.length : 0;
  const shardCount = Array.isArray(s?.shards) ? s.shards.length : 0;
  const keys = ['shader', 'shard', 'input', 'output', 'texture', 'layer', 'shardOffset'];
  const nodes = nodesWhere(state.schedule, (n) => typeof n.key === 'string' && keys.includes(n.key));
  if (!nodes.length) return undefined;
  const node = rng.pick(nodes);
  const p = pathOf(node);
  const value = node.value;
  const key = node.key as string;
  const cur = typeof value === 'number' ? value : 0;
  const count = key === 'shader' ? shaderCount : key === 'shard' ? shardCount : cur + 1;
  return setMutation('schedule', p, rng.pick([count, count - 1, count + 1, cur + 1, cur - 1, 0, -1, 2 ** 32, 2 ** 53 - 1, rng.int(Math.max(count, 1))]), 'index');
};

/** texture declarations and texture regions */
const textureMutation: Maker = (rng, state) => {
  const decls = nodesWhere(state.schedule, (n) => isObj(n.value) && (n.value as Record<string, Json>).format === 'rgba32float');
  const regions = nodesWhere(state.schedule, (n) => isObj(n.value) && 'texture' in (n.value as object) && 'rows' in (n.value as object));
  const plans = plansOf(state.schedule);
  return rng.weighted<() => Mutation | undefined>([
    [3, () => {
      if (!decls.length) return undefined;
      const p = pathOf(rng.pick(decls));
      return setMutation('schedule', [...p, rng.pick(['width', 'height', 'layers'])], rng.pick([0, 1, 2, 256, 257, 8192, 8193, 16384, 65536, 2 ** 31, 2 ** 32]), 'texture');
    }],
    [3, () => {
      if (!regions.length) return undefined;
      const node = rng.pick(regions);
      const p = pathOf(node);
      const r = node.value as Record<string, Json>;
      const field = rng.pick(['y', 'rows', 'layer', 'size', 'texture']);
      const cur = typeof r[field] === 'number' ? (r[field] as number) : 0;
      return setMutation('schedule', [...p, field], rng.pick([0, 1, cur + 1, cur - 1, cur * 2, 2 ** 31, 2 ** 32, 2 ** 53 - 1]), 'texture region');
    }],
    [1, () => {
      if (!plans.length) return undefined;
      const plan = rng.pick(plans);
      const decl = { format: 'rgba32float', width: rng.pick([1, 64, 8192]), height: rng.pick([1, 64, 8192]), layers: rng.pick([1, 2, 256]) };
      return { name: `${describePath('schedule', plan.path)}.textures += ${show(decl)}`, apply: (s) => {
        const pl = getAt(s.schedule, plan.path);
        if (!isObj(pl)) return;
        if (!Array.isArray(pl.textures)) pl.textures = [];
        (pl.textures as Json[]).push(clone(decl));
      } };
    }],
    [1, () => {
      if (!decls.length) return undefined;
      const p = pathOf(rng.pick(decls));
      return { name: `${describePath('schedule', p.slice(0, -1))} cleared`, apply: (s) => { const a = getAt(s.schedule, p.slice(0, -1)); if (Array.isArray(a)) a.length = 0; } };
    }],
  ])();
};

/** planned peaks: exact, one short, none, huge */
const peakMutation: Maker = (rng, state) => {
  const nodes = nodesWhere(state.schedule, (n) => n.key === 'plannedPeakBytes');
  const field = rng.chance(0.2) ? ['plannedPeakBytes'] : nodes.length ? pathOf(rng.pick(nodes)) : ['plannedPeakBytes'];
  const cur = getAt(state.schedule, field);
  const n = typeof cur === 'number' ? cur : 0;
  if (rng.chance(0.15)) return { name: `${describePath('schedule', field)} deleted`, apply: (s) => deleteAt(s, 'schedule', field) };
  return setMutation('schedule', field, rng.pick([0, n - 1, n - 4, n + 1, n * 2, 2 ** 28, 2 ** 32, 2 ** 53 - 1, 1e300, -1]), 'peak');
};

/** names of models, consistent across manifest and schedule (and sequence/decoder), or not */
const nameMutation: Maker = (rng, state) => {
  const m = state.manifest as Record<string, Json>;
  const models = Array.isArray(m?.models) ? (m.models as Json[]) : [];
  if (!models.length) return undefined;
  const i = rng.int(models.length);
  const old = isObj(models[i]) ? (models[i] as Record<string, Json>).name : undefined;
  if (typeof old !== 'string') return undefined;
  const others = models.flatMap((x) => (isObj(x) && typeof x.name === 'string' ? [x.name] : []));
  const name = nameValue(rng, [...others, ...state.dict.strings.schedule.slice(0, 50)]);
  const where = rng.weighted<string>([[4, 'everywhere'], [1, 'manifest'], [1, 'schedule']]);
  return {
    name: `model ${show(old)} renamed ${show(name)} (${where})`,
    apply: (s) => {
      const rename = (root: Json) => {
        for (const n of walk(root)) {
          const k = n.key;
          if (n.value === old && (k === 'name' || k === 'model' || k === 'prefill' || k === 'decode' || typeof k === 'number')) {
            const path = pathOf(n);
            // names inside sequence.models are array items; tensor names are not model names
            if (typeof k === 'number' && !(path.length === 3 && path[0] === 'sequence' && path[1] === 'models')) continue;
            if (k === 'name' && !(path.length === 3 && path[0] === 'models')) continue;
            setAt(s, root === s.manifest ? 'manifest' : 'schedule', path, name);
          }
        }
      };
      if (where !== 'schedule') rename(s.manifest);
      if (where !== 'manifest') rename(s.schedule);
    },
  };
};

/** tensor signatures: shapes, dtypes, names, count */
const signatureMutation: Maker = (rng, state) => {
  const tensors = nodesWhere(state.manifest, (n) => isObj(n.value) && 'dtype' in (n.value as object) && 'shape' in (n.value as object));
  if (!tensors.length) return undefined;
  const node = rng.pick(tensors);
  const p = pathOf(node);
  const t = node.value as Record<string, Json>;
  const shape = Array.isArray(t.shape) ? (t.shape as Json[]) : [];
  const names = state.dict.strings.manifest.slice(0, 60);
  return rng.weighted<() => Mutation>([
    [3, () => {
      const s = shape.slice();
      const op = rng.int(5);
      if (op === 0 && s.length) s[rng.int(s.length)] = rng.pick([0, 1, 2, 2 ** 31, 2 ** 32, 2 ** 53 - 1, 1e300, -1]);
      else if (op === 1) s.push(rng.pick([1, 2, 0]));
      else if (op === 2) s.pop();
      else if (op === 3) return setMutation('manifest', [...p, 'shape'], Array.from({ length: rng.pick([17, 64]) }, () => 1), 'shape');
      else s.reverse();
      return setMutation('manifest', [...p, 'shape'], s, 'shape');
    }],
    [2, () => setMutation('manifest', [...p, 'dtype'], rng.pick(DTYPES), 'dtype')],
    [2, () => setMutation('manifest', [...p, 'name'], nameValue(rng, names), 'tensor name')],
    [1, () => ({ name: `${describePath('manifest', p)} duplicated`, apply: (s) => { const a = getAt(s.manifest, p.slice(0, -1)); const i = p[p.length - 1] as number; if (Array.isArray(a) && i < a.length) a.splice(i, 0, clone(a[i])); } })],
    [1, () => ({ name: `${describePath('manifest', p)} deleted`, apply: (s) => deleteAt(s, 'manifest', p) })],
    [1, () => setMutation('manifest', [...p.slice(0, -2), 'weightBytes'], rng.pick([0, -1, 2 ** 53 - 1, 2 ** 53, 1e300, 0.5]), 'weightBytes')],
  ])();
};

/** requiredLimits and requiredFeatures */
const limitsMutation: Maker = (rng, state) => {
  if (rng.chance(0.25)) {
    const f = rng.pick(FEATURES);
    if (rng.chance(0.2)) return setMutation('manifest', ['requiredFeatures'], rng.pick<Json>([[f, f], {}, 'shader-f16', [0]]), 'features');
    return { name: `requiredFeatures += ${show(f)}`, apply: (s) => { const m = s.manifest; if (isObj(m) && Array.isArray(m.requiredFeatures)) (m.requiredFeatures as Json[]).push(f); } };
  }
  const key = rng.pick(LIMIT_KEYS);
  const value = rng.chance(0.1) ? rng.pick<Json>([{}, [], 'big', null]) : rng.pick(LIMIT_VALUES);
  if (rng.chance(0.1)) return setMutation('manifest', ['requiredLimits'], rng.pick<Json>([[], null, 'maxBufferSize', []]), 'limits');
  return { name: `requiredLimits.${key || '""'} := ${show(value)}`, apply: (s) => { const m = s.manifest; if (isObj(m) && isObj(m.requiredLimits)) defineKey(m.requiredLimits, key, clone(value)); } };
};

/** file entries: duplicated, deleted, kind, path, size, block hashes */
const fileEntryMutation: Maker = (rng, state) => {
  const m = state.manifest as Record<string, Json>;
  const files = Array.isArray(m?.files) ? (m.files as Json[]) : [];
  if (!files.length) return undefined;
  const i = rng.int(files.length);
  const e = files[i] as Record<string, Json>;
  const p: JsonPath = ['files', i];
  const paths = files.flatMap((f) => (isObj(f) && typeof f.path === 'string' ? [f.path] : []));
  return rng.weighted<() => Mutation>([
    [2, () => ({ name: `manifest.files[${i}] duplicated`, apply: (s) => { const a = getAt(s.manifest, ['files']); if (Array.isArray(a) && i < a.length) a.push(clone(a[i])); } })],
    [2, () => ({ name: `manifest.files[${i}] deleted`, apply: (s) => deleteAt(s, 'manifest', p) })],
    [2, () => setMutation('manifest', [...p, 'kind'], rng.pick(['schedule', 'shader', 'weights', 'runtime', 'types', 'other']), 'file kind')],
    [3, () => setMutation('manifest', [...p, 'path'], rng.chance(0.6) ? rng.pick(paths) : rng.pick(['shaders', 'weights', '.', '..', 'weights/..', 'shaders/.', '../manifest.json', 'weights/x.bin', 'manifest.json', 'signature.json', 'a'.repeat(300), 'shaders/a b.wgsl', 'weights/0.bin\u0000', 'Weights/0.bin']), 'file path')],
    [1, () => setMutation('manifest', [...p, 'size'], rng.pick([0, 1, 2 ** 26, 2 ** 26 + 1, 2 ** 32, 2 ** 53 - 1]), 'file size')],
    [3, () => {
      const blocks = isObj(e?.blocks) ? (e.blocks as Record<string, Json>) : undefined;
      const choice = rng.int(6);
      if (choice === 0) return setMutation('manifest', [...p, 'blocks', 'size'], rng.pick([4096, 8192, 4095, 5000, 2 ** 20, 2 ** 26, 2 ** 26 + 4096, 2 ** 30, 2 ** 31, 0, 1]), 'block size');
      if (choice === 1) return { name: `manifest.files[${i}].blocks deleted`, apply: (s) => deleteAt(s, 'manifest', [...p, 'blocks']) };
      if (choice === 2) return setMutation('manifest', [...p, 'blocks'], { size: rng.pick([4096, 1 << 20]), sha256: [] }, 'blocks');
      const hashes = Array.isArray(blocks?.sha256) ? (blocks!.sha256 as Json[]) : [];
      if (choice === 3) return setMutation('manifest', [...p, 'blocks', 'sha256'], [...hashes, ...hashes, 'a'.repeat(64)], 'block hashes');
      if (choice === 4) return setMutation('manifest', [...p, 'blocks', 'sha256'], Array.from({ length: rng.pick([1000, 100000]) }, () => '0'.repeat(64)), 'block hashes');
      return setMutation('manifest', [...p, 'sha256'], rng.pick(['0'.repeat(64), 'A'.repeat(64), 'x', '']), 'sha256');
    }],
  ])();
};

/** the format header */
const headerMutation: Maker = (rng, state) => {
  const field = rng.pick(['format', 'formatVersion', 'generator']);
  const which = field === 'formatVersion' && rng.chance(0.4) ? 'schedule' : 'manifest';
  const values: Record<string, Json[]> = {
    format: ['flashmemc-bundle ', 'FLASHMEMC-BUNDLE', 'flashmemc', null, 1, ''],
    formatVersion: [0, 2, '1', 1.5, -1, null, [1], 2 ** 53],
    generator: [{ name: 'flashmemc', version: 'x'.repeat(100000) }, { name: 'other', version: '1' }, { name: 'flashmemc' }, null, 'flashmemc'],
  };
  if (rng.chance(0.1)) return { name: `${which}.${field} deleted`, apply: (s) => deleteAt(s, which, [field]) };
  return setMutation(which, [field], rng.pick(values[field]!), 'header');
};

/** memory, sequence and decoder fields */
const planFieldsMutation: Maker = (rng, state) => {
  const s = state.schedule as Record<string, Json>;
  if (!isObj(s)) return undefined;
  const modelNames = (Array.isArray(s.models) ? s.models : []).flatMap((m) => (isObj(m) && typeof m.model === 'string' ? [m.model] : []));
  const inputNames = state.dict.strings.manifest.slice(0, 60);
  return rng.weighted<() => Mutation | undefined>([
    [2, () => setMutation('schedule', ['memory'], rng.pick<Json>(['shared', 'separate', 'SHARED', null, 1]), 'memory')],
    [1, () => ({ name: 'schedule.memory deleted', apply: (st) => deleteAt(st, 'schedule', ['memory']) })],
    [1, () => ({ name: 'schedule.sequence deleted', apply: (st) => deleteAt(st, 'schedule', ['sequence']) })],
    [2, () => {
      // a sequence over the first model, with its own buffers and steps
      const m0 = Array.isArray(s.models) && isObj(s.models[0]) ? s.models[0] : undefined;
      if (!m0) return undefined;
      const calls = rng.pick([1, 2, 3]);
      const sequence = { models: Array.from({ length: calls }, () => m0.model), buffers: m0.buffers, init: m0.init, calls: Array.from({ length: calls }, () => ({ model: m0.model, run: m0.run })), plannedPeakBytes: m0.plannedPeakBytes };
      return setMutation('schedule', ['sequence'], sequence, 'sequence added');
    }],
    [2, () => {
      if (!isObj(s.sequence)) return undefined;
      const seq = s.sequence;
      const field = rng.pick(['models', 'calls', 'buffers', 'init', 'plannedPeakBytes']);
      if (field === 'models') return setMutation('schedule', ['sequence', 'models'], rng.pick<Json>([[...(seq.models as Json[] ?? []), modelNames[0] ?? 'x'], [], ['nope'], (seq.models as Json[] ?? []).slice().reverse()]), 'sequence');
      if (field === 'calls') {
        const calls = Array.isArray(seq.calls) ? (seq.calls as Json[]) : [];
        return setMutation('schedule', ['sequence', 'calls'], rng.pick<Json>([calls.slice(1), [...calls, calls[0] ?? {}], calls.slice().reverse(), []]), 'sequence');
      }
      return setMutation('schedule', ['sequence', field], rng.pick<Json>([[], 0, 2 ** 53 - 1, null]), 'sequence');
    }],
    [3, () => {
      if (!isObj(s.decoder)) {
        // a decoder declared on a bundle without one
        if (!modelNames.length) return undefined;
        const decoder = {
          prefill: rng.pick(modelNames), decode: rng.pick(modelNames), context: rng.pick([1, 8, 48, 2 ** 31]), promptLength: rng.pick([1, 8, 40]),
          vocab: rng.pick([1, 256]), inputIds: rng.pick(inputNames.length ? inputNames : ['x']), positionIds: rng.pick(inputNames.length ? inputNames : ['x']),
          attentionBias: rng.pick(inputNames.length ? inputNames : ['x']), window: 0, logits: rng.pick(inputNames.length ? inputNames : ['y']),
        };
        return setMutation('schedule', ['decoder'], decoder, 'decoder added');
      }
      const field = rng.pick(['prefill', 'decode', 'context', 'promptLength', 'vocab', 'inputIds', 'positionIds', 'attentionBias', 'localAttentionBias', 'window', 'logits']);
      const cur = s.decoder[field];
      const v = typeof cur === 'number' || ['context', 'promptLength', 'vocab', 'window'].includes(field)
        ? rng.pick([0, 1, 2, 7, 8, 39, 40, 41, 47, 48, 49, 256, 2 ** 16, 2 ** 31, 2 ** 32, 2 ** 53 - 1])
        : rng.pick([...modelNames, ...inputNames.slice(0, 20), 'nope', '']);
      return setMutation('schedule', ['decoder', field], v, 'decoder');
    }],
  ])();
};

/** state writes (the decoder's KV cache) */
const stateWriteMutation: Maker = (rng, state) => {
  const writes = nodesWhere(state.schedule, (n) => isObj(n.value) && (n.value as Record<string, Json>).op === 'stateWrite');
  if (!writes.length) return undefined;
  const node = rng.pick(writes);
  const p = pathOf(node);
  const field = rng.pick(['heads', 'rows', 'rowBytes', 'cacheRows', 'at']);
  if (field === 'at') return setMutation('schedule', [...p, 'at'], rng.pick(['start', 'position', 'end']), 'stateWrite');
  const cur = (node.value as Record<string, Json>)[field];
  const n = typeof cur === 'number' ? cur : 1;
  return setMutation('schedule', [...p, field], rng.pick([0, 1, 3, 4, n + 1, n - 1, n * 2, 2 ** 16, 2 ** 31, 2 ** 32]), 'stateWrite');
};

// --- files

function listedPaths(state: MutantState, kind?: string): string[] {
  const m = state.manifest as Record<string, Json>;
  const files = Array.isArray(m?.files) ? (m.files as Json[]) : [];
  return files.flatMap((f) => (isObj(f) && typeof f.path === 'string' && (kind === undefined || f.kind === kind) && state.files.get(f.path) ? [f.path] : []));
}

function fileEdit(path: string, name: string, edit: (bytes: Uint8Array) => Uint8Array): Mutation {
  return { name: `${path}: ${name}`, apply: (s) => { const b = s.files.get(path); if (b) s.files.set(path, edit(b)); } };
}

const enc = new TextEncoder();
const dec = new TextDecoder();

const SHADER_INJECTIONS = [
  '}', '{', 'fn', '@compute', '\u0000', '\uFFFF', '/*', '//', 'let', '@group(0) @binding(7) var<storage, read_write> zz: array<f32>;\n',
  '@group(1) @binding(0) var<storage, read_write> zz: array<f32>;\n', 'enable f16;\n', 'var<workgroup> big: array<f32, 65536>;\n',
  'const x = 1 / 0;\n', 'override k: u32;\n', '@compute @workgroup_size(1) fn main() {}\n', 'diagnostic(off, derivative_uniformity);\n',
];

/** shader text: truncated, injected, workgroup sizes, entry points, types, swapped */
const shaderMutation: Maker = (rng, state) => {
  const shaders = listedPaths(state, 'shader');
  if (!shaders.length) return undefined;
  const p = rng.pick(shaders);
  const text = dec.decode(state.files.get(p)!);
  const at = rng.int(text.length + 1);
  return rng.weighted<() => Mutation>([
    [2, () => fileEdit(p, `truncated at ${at}`, (b) => b.slice(0, Math.min(at, b.length)))],
    [3, () => { const inj = rng.pick(SHADER_INJECTIONS); return fileEdit(p, `injected ${show(inj)} at ${at}`, (b) => { const t = dec.decode(b); return enc.encode(t.slice(0, at) + inj + t.slice(at)); }); }],
    [3, () => {
      const [from, to] = rng.pick<[RegExp, string]>([
        [/@workgroup_size\([^)]*\)/g, `@workgroup_size(${rng.pick(['1024', '0', '257', '64, 64', '65536', '1, 1, 65'])})`],
        [/fn main/g, 'fn other'], [/@compute/g, '@vertex'], [/array<f32>/g, 'array<vec4<f32>>'], [/array<i32>/g, 'array<f32>'],
        [/read_write/g, 'read'], [/@binding\((\d+)\)/, '@binding(9)'], [/@group\(0\)/, '@group(3)'], [/texture_2d_array<f32>/g, 'texture_2d<f32>'],
        [/return;/, 'loop { }'], [/if \(/, 'while ('],
      ]);
      return fileEdit(p, `${from.source} -> ${to}`, (b) => enc.encode(dec.decode(b).replace(from, to)));
    }],
    [1, () => fileEdit(p, 'emptied', () => new Uint8Array(0))],
    [1, () => fileEdit(p, 'invalid UTF-8', (b) => { const c = b.slice(); c[Math.min(at, Math.max(c.length - 1, 0))] = 0xff; return c; })],
    [1, () => fileEdit(p, 'doubled', (b) => { const c = new Uint8Array(b.length * 2); c.set(b); c.set(b, b.length); return c; })],
    [1, () => { const q = rng.pick(shaders); return { name: `${p} <-> ${q} contents`, apply: (s) => { const a = s.files.get(p); const b = s.files.get(q); if (a && b) { s.files.set(p, b); s.files.set(q, a); } } }; }],
  ])();
};

/** shard bytes: flips, NaN/Inf floats, truncation, extension */
const shardMutation: Maker = (rng, state) => {
  const shards = listedPaths(state, 'weights');
  if (!shards.length) return undefined;
  const p = rng.pick(shards);
  const len = state.files.get(p)!.length;
  const at = rng.int(Math.max(len, 1));
  return rng.weighted<() => Mutation>([
    [3, () => fileEdit(p, `byte ${at} flipped`, (b) => { const c = b.slice(); if (at < c.length) c[at] = c[at]! ^ 0xff; return c; })],
    [2, () => {
      const v = rng.pick([Number.NaN, Number.POSITIVE_INFINITY, -3.4e38, 1e-45]);
      return fileEdit(p, `floats from ${at & ~3} := ${v}`, (b) => { const c = b.slice(); const f = new DataView(c.buffer); for (let o = at & ~3; o + 4 <= c.length && o < (at & ~3) + 256; o += 4) f.setFloat32(o, v, true); return c; });
    }],
    [2, () => { const n = rng.pick([0, 1, len - 1, len >> 1, 4096, 4097]); return fileEdit(p, `truncated to ${n}`, (b) => b.slice(0, Math.max(0, Math.min(n, b.length)))); }],
    [2, () => { const n = rng.pick([1, 4, 4096, 4097, 65536]); return fileEdit(p, `extended by ${n}`, (b) => { const c = new Uint8Array(b.length + n); c.set(b); return c; }); }],
    [1, () => fileEdit(p, 'zeroed', (b) => new Uint8Array(b.length))],
  ])();
};

/** whole files: deleted, added, emptied, runtime.js changed */
const fileMutation: Maker = (rng, state) => {
  const listed = listedPaths(state);
  return rng.weighted<() => Mutation | undefined>([
    [3, () => { if (!listed.length) return undefined; const p = rng.pick(listed); return { name: `${p} deleted`, apply: (s) => { if (s.files.has(p)) s.files.set(p, null); } }; }],
    [2, () => { const p = rng.pick(['extra.bin', 'shaders/evil.wgsl', 'weights/9999.bin', 'signature.json', 'runtime.mjs']); return { name: `${p} added (unlisted)`, apply: (s) => s.files.set(p, enc.encode('{"evil": true}')) }; }],
    [2, () => { if (!listed.length) return undefined; const p = rng.pick(listed); return fileEdit(p, 'emptied', () => new Uint8Array(0)); }],
    [2, () => fileEdit('runtime.js', 'a comment appended (foreign runtime)', (b) => { const c = new Uint8Array(b.length + 3); c.set(b); c.set(enc.encode('//x'), b.length); return c; })],
    [1, () => fileEdit('runtime.d.ts', 'emptied', () => new Uint8Array(0))],
  ])();
};

// --- raw JSON text

function rawEdit(rng: Rng): { name: string; edit: (bytes: Uint8Array) => Uint8Array } {
  const frac = rng.next();
  return rng.weighted<() => { name: string; edit: (bytes: Uint8Array) => Uint8Array }>([
    [4, () => {
      const token = rng.pick(['1e400', '-1e400', '-0', '1.0', '1E2', '0.5e1', '00', '1_000', '0x10', '9007199254740993', '4294967296.0000001', '1e-400', 'NaN', '+1']);
      const nth = rng.int(1000);
      return {
        name: `the number token #${nth} written as ${token}`,
        edit: (b) => {
          const t = dec.decode(b);
          const matches = [...t.matchAll(/(?<=[:[,\s])-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?(?=[,\]}\s])/g)];
          if (!matches.length) return b;
          const m = matches[nth % matches.length]!;
          return enc.encode(t.slice(0, m.index) + token + t.slice(m.index! + m[0].length));
        },
      };
    }],
    [2, () => {
      const key = rng.pick(['"op": "dispatch"', '"size": 4294967296', '"buffer": 99', '"__proto__": {"size": 1}', '"models": []', '"shard": 0', '"texture": 0', '"formatVersion": 2']);
      const nth = rng.int(1000);
      return {
        name: `duplicate key ${key} in object #${nth}`,
        edit: (b) => {
          const t = dec.decode(b);
          const opens = [...t.matchAll(/\{(?=\s*")/g)];
          if (!opens.length) return b;
          const m = opens[nth % opens.length]!;
          // after the object's last property is not easy to find; JSON.parse keeps the last of duplicates, so put it after the first one by a second insert at the end
          const end = t.indexOf('}', m.index!);
          return enc.encode(`${t.slice(0, end)}, ${key}${t.slice(end)}`);
        },
      };
    }],
    [1, () => ({ name: 'BOM prefix', edit: (b) => { const c = new Uint8Array(b.length + 3); c.set([0xef, 0xbb, 0xbf]); c.set(b, 3); return c; } })],
    [1, () => ({ name: `truncated at ${(frac * 100).toFixed(0)}%`, edit: (b) => b.slice(0, Math.floor(b.length * frac)) })],
    [1, () => ({ name: 'trailing garbage', edit: (b) => { const c = new Uint8Array(b.length + 2); c.set(b); c.set(enc.encode('{}'), b.length); return c; } })],
    [1, () => ({ name: `invalid UTF-8 at ${(frac * 100).toFixed(0)}%`, edit: (b) => { const c = b.slice(); if (c.length) c[Math.floor(c.length * frac) % c.length] = 0xc3; return c; } })],
    [1, () => {
      const depth = rng.pick([1000, 100000]);
      return { name: `a value nested ${depth} deep`, edit: (b) => { const t = dec.decode(b); const i = t.indexOf('{'); return i < 0 ? b : enc.encode(`${t.slice(0, i + 1)}"x": ${'['.repeat(depth)}${']'.repeat(depth)},${t.slice(i + 1)}`); } };
    }],
    [1, () => ({ name: 'a lone surrogate and a NUL in a string', edit: (b) => enc.encode(dec.decode(b).replace(/"name": "/, '"name": "\\ud800\\u0000')) })],
    [1, () => ({ name: 'not an object', edit: () => enc.encode(rng.pick(['[]', 'null', '1', '"manifest"', '', ' '])) })],
  ])();
}

const rawJsonMutation: Maker = (rng) => {
  const which = rng.chance(0.5) ? 'manifest' : 'schedule';
  const { name, edit } = rawEdit(rng);
  return { name: `${which === 'manifest' ? MANIFEST : SCHEDULE} text: ${name}`, apply: (s) => (which === 'manifest' ? s.rawManifest : s.rawSchedule).push(edit) };
};

const MAKERS: readonly (readonly [number, Maker])[] = [
  [14, genericJson], [8, stepMutation], [8, regionMutation], [4, bufferMutation], [4, workgroupMutation], [2, recordedGridMutation], [5, indexMutation],
  [3, textureMutation], [3, peakMutation], [3, nameMutation], [4, signatureMutation], [4, limitsMutation], [5, fileEntryMutation],
  [2, headerMutation], [4, planFieldsMutation], [2, stateWriteMutation], [4, shaderMutation], [3, shardMutation], [2, fileMutation],
  [4, rawJsonMutation],
];

// ---------------------------------------------------------------------------------------------
// Building a mutant

/** sha256 of the seeds' unchanged files, by identity: they are hashed once per process */
const hashCache = new WeakMap<Uint8Array, string>();
const blockCache = new WeakMap<Uint8Array, Map<number, string[]>>();

export function sha256Hex(bytes: Uint8Array): string {
  let h = hashCache.get(bytes);
  if (h === undefined) hashCache.set(bytes, (h = createHash('sha256').update(bytes).digest('hex')));
  return h;
}

/**
 * The state a mutant starts from. manifest.json and schedule.json are parsed when a mutation first
 * looks at them: a file no mutation touched keeps the seed's bytes (and their cached hashes).
 */
function initialState(seed: BundleSeed, attacker: AttackerMode): MutantState {
  const files = new Map<string, Uint8Array | null>();
  for (const [p, b] of seed.files) if (p !== MANIFEST && p !== SCHEDULE) files.set(p, b);
  const state = { files, rawSchedule: [], rawManifest: [], attacker, dict: dictionaryOf(seed), seed, touched: { manifest: false, schedule: false } } as unknown as MutantState;
  const docs: Record<string, Json> = {};
  for (const [key, file] of [['manifest', MANIFEST], ['schedule', SCHEDULE]] as const) {
    Object.defineProperty(state, key, {
      enumerable: true,
      get: () => {
        if (!state.touched[key]) {
          docs[key] = JSON.parse(dec.decode(seed.files.get(file)!)) as Json;
          state.touched[key] = true;
        }
        return docs[key];
      },
      set: (v: Json) => {
        state.touched[key] = true;
        docs[key] = v;
      },
    });
  }
  return state;
}

/** Block hashes of `bytes` in blocks of `size`. */
function blockHashes(bytes: Uint8Array, size: number): string[] {
  const cached = blockCache.get(bytes)?.get(size);
  if (cached) return cached.slice();
  const out: string[] = [];
  for (let o = 0; o < bytes.length; o += size) out.push(createHash('sha256').update(bytes.subarray(o, o + size)).digest('hex'));
  if (!blockCache.has(bytes)) blockCache.set(bytes, new Map());
  blockCache.get(bytes)!.set(size, out.slice());
  return out;
}

/** The attacker's finishing touch, then serialisation: the mutant's files. */
function finish(state: MutantState): Map<string, Uint8Array> {
  const { attacker, seed } = state;
  const changed = [...state.files].some(([p, b]) => b !== seed.files.get(p));
  // the attacker's shard sizes only change when a shard file's size did
  const resized = [...state.files].some(([p, b]) => b && p.startsWith('weights/') && b.length !== seed.files.get(p)?.length);
  if (resized && attacker.syncShardSizes) void state.schedule;
  const untouchedSchedule = !state.touched.schedule && state.rawSchedule.length === 0;
  const untouchedManifest = !state.touched.manifest && state.rawManifest.length === 0;
  if (untouchedSchedule && untouchedManifest && !changed) {
    const out = new Map<string, Uint8Array>();
    for (const [p, b] of state.files) if (b) out.set(p, b);
    out.set(SCHEDULE, seed.files.get(SCHEDULE)!);
    out.set(MANIFEST, seed.files.get(MANIFEST)!);
    return out;
  }
  const serialise = (v: Json) => enc.encode(JSON.stringify(v, null, attacker.indent) ?? 'null');
  const s = untouchedSchedule ? undefined : state.schedule;
  if (attacker.syncShardSizes && isObj(s) && Array.isArray(s.shards)) {
    for (const shard of s.shards) {
      if (isObj(shard) && typeof shard.path === 'string') {
        const b = state.files.get(shard.path);
        if (b) shard.size = b.length;
      }
    }
  }
  let scheduleBytes: Uint8Array = untouchedSchedule ? seed.files.get(SCHEDULE)! : serialise(state.schedule);
  for (const edit of state.rawSchedule) scheduleBytes = edit(scheduleBytes);
  const all = new Map(state.files);
  all.set(SCHEDULE, scheduleBytes);
  const m = state.manifest;
  if (attacker.rehash !== 'none' && isObj(m) && Array.isArray(m.files)) {
    m.files.forEach((entry, i) => {
      if (!isObj(entry) || typeof entry.path !== 'string') return;
      if (attacker.rehash === 'skip-one' && i === attacker.skipIndex % (m.files as Json[]).length) return;
      const b = all.get(entry.path);
      if (!b) return;
      entry.size = b.length;
      entry.sha256 = sha256Hex(b);
      const blocks = entry.blocks;
      if (attacker.rehash !== 'no-blocks' && isObj(blocks) && typeof blocks.size === 'number' && Number.isInteger(blocks.size) && blocks.size >= 1024 && blocks.size <= 2 ** 30) {
        const count = Math.ceil(b.length / blocks.size);
        // a mutation that made the hash list long on purpose keeps its length
        if (!Array.isArray(blocks.sha256) || blocks.sha256.length <= count + 2) blocks.sha256 = blockHashes(b, blocks.size);
      }
    });
  }
  let manifestBytes: Uint8Array = serialise(m);
  for (const edit of state.rawManifest) manifestBytes = edit(manifestBytes);
  all.set(MANIFEST, manifestBytes);
  const out = new Map<string, Uint8Array>();
  for (const [p, b] of all) if (b) out.set(p, b);
  return out;
}

export function randomAttacker(rng: Rng): AttackerMode {
  return {
    rehash: rng.weighted<AttackerMode['rehash']>([[86, 'all'], [6, 'skip-one'], [4, 'no-blocks'], [4, 'none']]),
    skipIndex: rng.int(1000),
    syncShardSizes: rng.chance(0.92),
    indent: rng.pick([0, 2, 2, 1]),
  };
}

function toMutant(seed: BundleSeed, state: MutantState, mutations: readonly Mutation[]): BundleMutant {
  const files = finish(state);
  // unchanged files keep the seed's arrays (identity marks them as hard-linkable)
  for (const [p, b] of files) {
    const original = seed.files.get(p);
    if (original && original !== b && original.length === b.length && Buffer.from(original.buffer, original.byteOffset, original.length).equals(b)) files.set(p, original);
  }
  return { seed: seed.name, mutations: [...mutations], attacker: state.attacker, files };
}

/** Builds a mutant of `seed` from the given mutations (in order). */
export function buildMutant(seed: BundleSeed, mutations: readonly Mutation[], attacker: AttackerMode): BundleMutant {
  const state = initialState(seed, attacker);
  for (const m of mutations) m.apply(state);
  return toMutant(seed, state, mutations);
}

/** A random mutant of `seed`: 1 to 4 mutations, each made against the state the previous ones left. */
export function mutateBundle(seed: BundleSeed, rng: Rng): BundleMutant {
  const attacker = randomAttacker(rng);
  const state = initialState(seed, attacker);
  const count = rng.weighted<number>([[5, 1], [3, 2], [2, 3], [1, 4]]);
  const mutations: Mutation[] = [];
  for (let tries = 0; mutations.length < count && tries < count * 4; tries++) {
    const m = rng.weighted(MAKERS)(rng, state);
    if (!m) continue;
    m.apply(state);
    mutations.push(m);
  }
  return toMutant(seed, state, mutations);
}

export function describeMutant(m: BundleMutant): string[] {
  const a = m.attacker;
  const attacker = a.rehash === 'all' && a.syncShardSizes ? [] : [`attacker: rehash ${a.rehash}${a.rehash === 'skip-one' ? ` #${a.skipIndex}` : ''}${a.syncShardSizes ? '' : ', shard sizes not synced'}`];
  return [...m.mutations.map((x) => x.name), ...attacker];
}

export type { BundleFiles };

/** The attacker of every saved recipe: everything rehashed, shard sizes followed, two-space JSON. */
export const FULL_ATTACKER: AttackerMode = { rehash: 'all', skipIndex: 0, syncShardSizes: true, indent: 2 };

/** A bundle made from `seed` by one hand-written edit, then rehashed as an attacker would (bundle-recipes.ts). */
export function editedBundle(seed: BundleSeed, name: string, edit: (state: MutantState) => void): BundleMutant {
  return buildMutant(seed, [{ name, apply: edit }], FULL_ATTACKER);
}
