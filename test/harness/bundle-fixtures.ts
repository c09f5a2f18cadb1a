/**
 * Tiny hand-made bundles for the bundle writer and runtime tests, with CPU references computed
 * independently of the WGSL, and helpers to write, load, and tamper with bundles on disk.
 *
 * Models:
 * - mlp:     y = relu(x · W + b), x [2,3], W [3,4], b [4]; two dispatches (matmul, bias+relu);
 *            W and b preloaded at init from one shard.
 * - mlp streamed: the same, with W and b uploaded during each run, one after the other, into the
 *            same staging region (so host writes must stay ordered with the dispatches).
 * - heavy:   one legal dispatch that runs for minutes on a software GPU (run timeouts).
 * - counter: next = a + 1 and positive = a > 0 for int64 a [5]; no weights; int64 and bool outputs.
 */
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import type { BundleContents, ShardSource } from '../../compiler/bundle/contents.js';
import { generateRuntime } from '../../compiler/bundle/runtime-gen.js';
import { shaderPath, writeBundle } from '../../compiler/bundle/write.js';
import { testDevice } from './gpu.js';
import type { ManifestModel } from '../../schemas/manifest.js';
import type { ModelSchedule, Region, Step } from '../../schemas/schedule.js';
import type * as Runtime from '../../runtime-template/runtime.js';

export type RuntimeModule = typeof Runtime;

/** A model whose steps index its own `shaders` and `shards`; assembleBundle renumbers them. */
export interface FixtureModel {
  signature: ManifestModel;
  strategy: ModelSchedule['strategy'];
  buffers: ModelSchedule['buffers'];
  init: Step[];
  run: Step[];
  shaders: string[];
  shards: Uint8Array[];
}

export interface AssembleOptions {
  requiredLimits?: Record<string, number>;
  /** shard pieces of at most this many bytes (default 40, so that shards come in several pieces) */
  pieceBytes?: number;
  /** make every shard source throw after producing this many bytes */
  throwAfterBytes?: number;
}

// ------------------------------------------------------------------------------------ data

/** deterministic values in [-1, 1) (a linear congruential generator) */
export function seededFloats(count: number, seed: number): Float32Array {
  const values = new Float32Array(count);
  let state = seed >>> 0;
  for (let i = 0; i < count; i++) {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    values[i] = state / 2 ** 31 - 1;
  }
  return values;
}

function bytesOf(...arrays: Float32Array[]): Uint8Array {
  const out = new Uint8Array(arrays.reduce((n, a) => n + a.byteLength, 0));
  let offset = 0;
  for (const a of arrays) {
    out.set(new Uint8Array(a.buffer, a.byteOffset, a.byteLength), offset);
    offset += a.byteLength;
  }
  return out;
}

function region(buffer: number, offset: number, size: number): Region {
  return { buffer, offset, size };
}

// ------------------------------------------------------------------------------------ mlp

export const MLP = { M: 2, K: 3, N: 4 } as const;
export const MLP_WEIGHTS = { W: seededFloats(MLP.K * MLP.N, 7), b: seededFloats(MLP.N, 11) };

/** CPU reference of relu(x · W + b), in float64 */
export function mlpReference(x: ArrayLike<number>, W = MLP_WEIGHTS.W, b = MLP_WEIGHTS.b): number[] {
  const { M, K, N } = MLP;
  const y: number[] = [];
  for (let row = 0; row < M; row++) {
    for (let col = 0; col < N; col++) {
      let acc = b[col]!;
      for (let k = 0; k < K; k++) acc += x[row * K + k]! * W[k * N + col]!;
      y.push(Math.max(acc, 0));
    }
  }
  return y;
}

function storage(names: string[], type: string): string {
  return names.map((name, i) => `@group(0) @binding(${i}) var<storage, read_write> ${name}: array<${type}>;`).join('\n');
}

export const MATMUL_WGSL = `${storage(['x', 'w', 't'], 'f32')}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${MLP.M * MLP.N}u) { return; }
  let row = i / ${MLP.N}u;
  let col = i % ${MLP.N}u;
  var acc = 0.0;
  for (var k = 0u; k < ${MLP.K}u; k++) { acc += x[row * ${MLP.K}u + k] * w[k * ${MLP.N}u + col]; }
  t[i] = acc;
}
`;

export const BIAS_RELU_WGSL = `${storage(['t', 'b', 'y'], 'f32')}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${MLP.M * MLP.N}u) { return; }
  y[i] = max(t[i] + b[i % ${MLP.N}u], 0.0);
}
`;

const X_BYTES = MLP.M * MLP.K * 4;
const W_BYTES = MLP.K * MLP.N * 4;
const B_BYTES = MLP.N * 4;
const Y_BYTES = MLP.M * MLP.N * 4;

function mlpSignature(name: string): ManifestModel {
  return {
    name,
    inputs: [{ name: 'x', dtype: 'float32', shape: [MLP.M, MLP.K] }],
    outputs: [{ name: 'y', dtype: 'float32', shape: [MLP.M, MLP.N] }],
    weightBytes: W_BYTES + B_BYTES,
  };
}

/** bytes of the mlp's GPU buffers: weights [W @0 | b @256], activations [x @0 | t @256 | y @512] */
export const MLP_BUFFER_BYTES = { weights: 256 + B_BYTES, activations: 512 + Y_BYTES, readback: Y_BYTES };

export function mlpModel(name = 'mlp'): FixtureModel {
  const [weights, activations] = [0, 1];
  const x = region(activations, 0, X_BYTES);
  const t = region(activations, 256, Y_BYTES);
  const y = region(activations, 512, Y_BYTES);
  const W = region(weights, 0, W_BYTES);
  const b = region(weights, 256, B_BYTES);
  return {
    signature: mlpSignature(name),
    strategy: 'preload',
    buffers: [{ role: 'weights', size: MLP_BUFFER_BYTES.weights }, { role: 'activations', size: MLP_BUFFER_BYTES.activations }],
    init: [
      { op: 'upload', shard: 0, shardOffset: 0, dst: W, weight: 'W' },
      { op: 'upload', shard: 0, shardOffset: W_BYTES, dst: b, weight: 'b' },
    ],
    run: [
      { op: 'writeInput', input: 0, dst: x },
      { op: 'dispatch', shader: 0, bindings: [x, W, t], workgroups: [1, 1, 1], label: 'matmul', node: 'fc' },
      { op: 'dispatch', shader: 1, bindings: [t, b, y], workgroups: [1, 1, 1], label: 'bias_relu', node: 'fc_relu' },
      { op: 'readOutput', output: 0, src: y },
    ],
    shaders: [MATMUL_WGSL, BIAS_RELU_WGSL],
    shards: [bytesOf(MLP_WEIGHTS.W, MLP_WEIGHTS.b)],
  };
}

/** bytes of the streamed mlp's GPU buffers: activations as above, one 256-byte staging region */
export const STREAMED_BUFFER_BYTES = { activations: 512 + Y_BYTES, staging: 256, readback: Y_BYTES };

export function streamedMlpModel(name = 'mlp'): FixtureModel {
  const [activations, staging] = [0, 1];
  const x = region(activations, 0, X_BYTES);
  const t = region(activations, 256, Y_BYTES);
  const y = region(activations, 512, Y_BYTES);
  return {
    signature: mlpSignature(name),
    strategy: 'stream',
    buffers: [{ role: 'activations', size: STREAMED_BUFFER_BYTES.activations }, { role: 'staging', size: STREAMED_BUFFER_BYTES.staging }],
    init: [],
    run: [
      { op: 'writeInput', input: 0, dst: x },
      { op: 'upload', shard: 0, shardOffset: 0, dst: region(staging, 0, W_BYTES), weight: 'W' },
      { op: 'dispatch', shader: 0, bindings: [x, region(staging, 0, W_BYTES), t], workgroups: [1, 1, 1], label: 'matmul', node: 'fc' },
      // b overwrites the start of W: correct only if the matmul ran before this upload
      { op: 'upload', shard: 0, shardOffset: W_BYTES, dst: region(staging, 0, B_BYTES), weight: 'b' },
      { op: 'dispatch', shader: 1, bindings: [t, region(staging, 0, B_BYTES), y], workgroups: [1, 1, 1], label: 'bias_relu', node: 'fc_relu' },
      { op: 'readOutput', output: 0, src: y },
    ],
    shaders: [MATMUL_WGSL, BIAS_RELU_WGSL],
    shards: [bytesOf(MLP_WEIGHTS.W, MLP_WEIGHTS.b)],
  };
}

// ---------------------------------------------------------------------------------- heavy

const BIG_BYTES = 32 << 20;
const BIG_OFFSET = 1 << 20;
/** at most 65535 x 128 workgroups of 64 invocations over a 32 MiB binding (one workgroup per bound element: within the grid bound) */
const GRID_ROWS = 128;

/**
 * A model that passes every static check but runs for minutes on a software GPU (and far longer
 * than a second on any): 5e8 invocations, each reading 256 scattered words of a 32 MiB buffer.
 */
export function heavyModel(rows = GRID_ROWS): FixtureModel {
  const x = { buffer: 0, offset: 0, size: MLP.M * MLP.K * 4 };
  const y = { buffer: 0, offset: 256, size: 4 };
  const big = { buffer: 0, offset: BIG_OFFSET, size: BIG_BYTES };
  const shader = `@group(0) @binding(0) var<storage, read_write> x: array<f32>;
@group(0) @binding(1) var<storage, read_write> big: array<f32>;
@group(0) @binding(2) var<storage, read_write> y: array<f32>;
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) groups: vec3<u32>) {
  let n = arrayLength(&big);
  let id = gid.x + gid.y * groups.x * 64u;
  var acc = x[id % 6u];
  for (var k = 0u; k < 256u; k++) { acc += big[(id * 2654435761u + k * 40503u) % n]; }
  if (acc == 12345.678) { y[0] = acc; }
}
`;
  return {
    signature: { name: 'heavy', inputs: [{ name: 'x', dtype: 'float32', shape: [MLP.M, MLP.K] }], outputs: [{ name: 'y', dtype: 'float32', shape: [1] }], weightBytes: 0 },
    strategy: 'preload',
    buffers: [{ role: 'activations', size: BIG_OFFSET + BIG_BYTES }],
    init: [],
    run: [
      { op: 'writeInput', input: 0, dst: x },
      { op: 'dispatch', shader: 0, bindings: [x, big, y], workgroups: [65535, rows, 1], label: 'heavy', node: 'heavy' },
      { op: 'readOutput', output: 0, src: y },
    ],
    shaders: [shader],
    shards: [],
  };
}

// ---------------------------------------------------------------------------------- counter

export const COUNTER_LENGTH = 5;

export const COUNTER_WGSL = `${storage(['a', 'next', 'positive'], 'i32')}
@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
  let i = gid.x;
  if (i >= ${COUNTER_LENGTH}u) { return; }
  next[i] = a[i] + 1;
  positive[i] = select(0, 1, a[i] > 0);
}
`;

export function counterReference(a: readonly bigint[]): { next: bigint[]; positive: number[] } {
  return { next: a.map((v) => v + 1n), positive: a.map((v) => (v > 0n ? 1 : 0)) };
}

export const COUNTER_BUFFER_BYTES = { activations: 512 + 4 * COUNTER_LENGTH, readback: 2 * 4 * COUNTER_LENGTH };

export function counterModel(name = 'counter'): FixtureModel {
  const bytes = 4 * COUNTER_LENGTH;
  const a = region(0, 0, bytes);
  const next = region(0, 256, bytes);
  const positive = region(0, 512, bytes);
  return {
    signature: {
      name,
      inputs: [{ name: 'a', dtype: 'int64', shape: [COUNTER_LENGTH] }],
      outputs: [{ name: 'next', dtype: 'int64', shape: [COUNTER_LENGTH] }, { name: 'positive', dtype: 'bool', shape: [COUNTER_LENGTH] }],
      weightBytes: 0,
    },
    strategy: 'preload',
    buffers: [{ role: 'activations', size: COUNTER_BUFFER_BYTES.activations }],
    init: [],
    run: [
      { op: 'writeInput', input: 0, dst: a },
      { op: 'dispatch', shader: 0, bindings: [a, next, positive], workgroups: [1, 1, 1], label: 'add_compare', node: 'count' },
      // outputs read in reverse order: readback offsets must follow the steps, not the signature
      { op: 'readOutput', output: 1, src: positive },
      { op: 'readOutput', output: 0, src: next },
    ],
    shaders: [COUNTER_WGSL],
    shards: [],
  };
}

// ---------------------------------------------------------------------------------- assembly

/** Bundle contents for the given models: shaders deduplicated by content, shards renumbered. */
export function assembleBundle(models: FixtureModel[], options: AssembleOptions = {}): BundleContents {
  const shaderPaths: string[] = [];
  const shaders = new Map<string, string>();
  const shards: ShardSource[] = [];
  const schedules = models.map((model): ModelSchedule => {
    const shaderIndex = model.shaders.map((source) => {
      const path = shaderPath(source);
      if (!shaders.has(path)) shaderPaths.push(path);
      shaders.set(path, source);
      return shaderPaths.indexOf(path);
    });
    const shardIndex = model.shards.map((bytes) => {
      shards.push(shardSource(`weights/${shards.length}.bin`, bytes, options));
      return shards.length - 1;
    });
    const renumber = (step: Step): Step => {
      if (step.op === 'dispatch') return { ...step, shader: shaderIndex[step.shader]! };
      if (step.op === 'upload') return { ...step, shard: shardIndex[step.shard]! };
      return step;
    };
    return {
      model: model.signature.name,
      strategy: model.strategy,
      buffers: model.buffers,
      init: model.init.map(renumber),
      run: model.run.map(renumber),
      // what the runtime allocates: the buffers and the readback buffer of every output
      plannedPeakBytes: model.buffers.reduce((sum, buffer) => sum + buffer.size, 0) +
        model.run.reduce((sum, step) => sum + (step.op === 'readOutput' ? step.src.size : 0), 0),
    };
  });
  // as the compiler records it (compiler/schedule/build.ts ShaderTable): each shader's largest grid
  const maxWorkgroups = shaderPaths.map(() => 0);
  for (const step of schedules.flatMap((schedule) => [...schedule.init, ...schedule.run])) {
    if (step.op === 'dispatch') maxWorkgroups[step.shader] = Math.max(maxWorkgroups[step.shader]!, step.workgroups[0] * step.workgroups[1] * step.workgroups[2]);
  }
  return {
    models: models.map((model) => model.signature),
    schedule: { formatVersion: 1, shaders: shaderPaths, maxWorkgroups, shards: shards.map(({ path, size }) => ({ path, size })), models: schedules },
    shaders,
    shards,
    requiredLimits: options.requiredLimits ?? { maxStorageBuffersPerShaderStage: 3 },
    requiredFeatures: [],
  };
}

export function shardSource(path: string, bytes: Uint8Array, options: AssembleOptions = {}): ShardSource {
  const pieceBytes = options.pieceBytes ?? 40;
  return {
    path,
    size: bytes.length,
    *pieces() {
      for (let offset = 0; offset < bytes.length; offset += pieceBytes) {
        if (options.throwAfterBytes !== undefined && offset >= options.throwAfterBytes) throw new Error('shard source failed on purpose');
        yield bytes.subarray(offset, Math.min(offset + pieceBytes, bytes.length));
      }
    },
  };
}

// ------------------------------------------------------------------------------------ on disk

const tempDirs: string[] = [];

/** A fresh folder under the OS temp folder (outside the repository, as an app's bundle would be). */
export async function tempDir(): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'flashmem-bundle-test-'));
  tempDirs.push(dir);
  return dir;
}

export async function removeTempDirs(): Promise<void> {
  await Promise.all(tempDirs.splice(0).map((dir) => rm(dir, { recursive: true, force: true })));
}

/** Writes the contents as a bundle into a fresh temp folder and returns the bundle folder. */
export async function writeFixtureBundle(contents: BundleContents): Promise<string> {
  const dir = join(await tempDir(), 'bundle');
  await writeBundle(dir, contents);
  return dir;
}

/** Imports a bundle's own runtime.js, as an app would. */
export async function importRuntime(bundleDir: string): Promise<RuntimeModule> {
  return (await import(pathToFileURL(join(bundleDir, 'runtime.js')).href)) as RuntimeModule;
}

export function sha256Hex(bytes: Uint8Array | string): string {
  return createHash('sha256').update(bytes).digest('hex');
}

interface ManifestJson {
  files: { path: string; size: number; sha256: string }[];
  [key: string]: unknown;
}

export async function readJson<T = Record<string, unknown>>(bundleDir: string, path: string): Promise<T> {
  return JSON.parse(await readFile(join(bundleDir, path), 'utf8')) as T;
}

/** Edits manifest.json; it lists no hash of itself, so nothing else changes. */
export async function editManifest(bundleDir: string, edit: (manifest: ManifestJson) => void): Promise<void> {
  const manifest = await readJson<ManifestJson>(bundleDir, 'manifest.json');
  edit(manifest);
  await writeFile(join(bundleDir, 'manifest.json'), JSON.stringify(manifest, null, 2));
}

/** Replaces a file of the bundle and records its new size and sha256 in the manifest, as a consistent (but wrong) bundle would. */
export async function replaceAndRehash(bundleDir: string, path: string, bytes: Uint8Array): Promise<void> {
  await writeFile(join(bundleDir, path), bytes);
  await editManifest(bundleDir, (manifest) => {
    const entry = manifest.files.find((file) => file.path === path)!;
    entry.size = bytes.length;
    entry.sha256 = sha256Hex(bytes);
  });
}

/** Edits a JSON file of the bundle and rehashes it (see replaceAndRehash). */
export async function editJsonAndRehash(bundleDir: string, path: string, edit: (json: any) => void): Promise<void> {
  const json = await readJson(bundleDir, path);
  edit(json);
  await replaceAndRehash(bundleDir, path, Buffer.from(JSON.stringify(json, null, 2)));
}

/** Overwrites a file of the bundle without touching the manifest (tampering). */
export async function tamperFile(bundleDir: string, path: string, change: (bytes: Buffer) => Buffer): Promise<void> {
  const file = join(bundleDir, path);
  await writeFile(file, change(await readFile(file)));
}

export function flipByte(bytes: Buffer, index = 0): Buffer {
  const copy = Buffer.from(bytes);
  copy[index] = copy[index]! ^ 0xff;
  return copy;
}

// ------------------------------------------------------------------------------------ device

/**
 * The worker's test device (harness/gpu.ts), for the tests that pass options.device.
 *
 * The runtime is generated first: dawn-node (webgpu 0.6.2) aborts or hangs the process when the
 * JavaScript thread blocks for about half a second or more while a device is alive, and
 * generation type-checks synchronously for seconds. Tests that let the runtime create its own
 * device write a bundle (which generates) before loading it.
 */
export function sharedDevice(): Promise<GPUDevice> {
  generateRuntime();
  return testDevice();
}

/** Expects a promise to reject with a FlashmemRuntimeError of the code, whose message matches. */
export async function rejectionOf(promise: Promise<unknown>): Promise<{ code: string; message: string; name: string }> {
  try {
    await promise;
  } catch (error) {
    return error as { code: string; message: string; name: string };
  }
  throw new Error('expected a rejection, the promise resolved');
}
