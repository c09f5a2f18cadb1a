/**
 * Kernel micro-benchmarks (`npm run bench:kernels`): the device's ceilings (streaming read
 * bandwidth, f32 FMA rate, f16 subgroup-matrix rate where the adapter has it), then the MatMul
 * kernel variants of compiler/ops/matmul over transformer and CNN shapes (GEMM TFLOP/s), the gemv
 * variants over decoder weights (GB/s of weights read) and the f16 subgroup-matrix GEMM, each
 * beside its fraction of the ceiling. Every variant's output is checked: against the first
 * variant of its case, and at 32 sampled elements against a float64 CPU product.
 *
 *   npx tsx bench/kernels.ts [--reps 20] [--iters 5] [--only ceilings,gemm,gemv,sgmat] [--match <case regex>] [--quick] [--no-toggles]
 *
 * On NVIDIA (Vulkan) the Dawn toggles of ../shared/KERNELS.md are passed unless --no-toggles, so
 * shader-f16 and subgroup matrices are there. A timing is one submission of `reps` dispatch
 * sequences; with timestamp-query the GPU time of that pass is divided by reps, otherwise the
 * host time of the submission. Results of H200 runs: bench/results/h200/kernels.md.
 */
import { createNodeDevice, keepAlive } from '../compiler/target/webgpu.js';
import { opFor } from '../compiler/ops/index.js';
import { DEFAULT_LIMITS, type KernelChoices } from '../compiler/target/limits.js';
import type { KernelSpec, LowerTensor } from '../compiler/kernel/types.js';
import type { LowerContext } from '../compiler/ops/op.js';
import { makeConst } from '../compiler/ir/tensor.js';
import { numElements, type Node, type TensorType } from '../compiler/ir/types.js';
import { randomFloats } from '../fixtures/onnx-builder.js';
import { fmaProbe, fmaProbeFlops, mmaProbe, mmaProbeFlops, readProbe } from '../compiler/profile/ceiling-probes.js';
import { subgroupMatrixFits, subgroupMatrixGemm, type SubgroupMatrixShape } from '../compiler/ops/matmul/subgroup-matrix.js';

const argv = process.argv.slice(2);
const argument = (name: string, fallback: string) => {
  const i = argv.indexOf(`--${name}`);
  return i >= 0 ? argv[i + 1]! : fallback;
};
const REPS = Number(argument('reps', '20'));
const ITERS = Number(argument('iters', '5'));
const ONLY_LIST = argument('only', '').split(',').filter((x) => x !== '');
const wants = (section: string) => ONLY_LIST.length === 0 || ONLY_LIST.includes(section);
const MATCH = new RegExp(argument('match', '.'));
const QUICK = argv.includes('--quick');
const NV_TOGGLES = ['allow_unsafe_apis', 'vulkan_enable_f16_on_nvidia'];

// ------------------------------------------------------------------------------- device, runner

const gpu = await createNodeDevice({
  dawnToggles: argv.includes('--no-toggles') ? [] : NV_TOGGLES,
  optionalFeatures: ['timestamp-query', 'shader-f16', 'subgroups', 'chromium-experimental-subgroup-matrix'],
});
const device = gpu.device;
const hasTimestamps = device.features.has('timestamp-query');

const elementBytes = (t: TensorType) => (t.dtype === 'float16' ? 2 : 4);
const bufferBytes = (t: TensorType) => Math.max(16, Math.ceil((numElements(t.shape) * elementBytes(t)) / 16) * 16);

interface Prepared {
  encode(pass: GPUComputePassEncoder): void;
  read(t: LowerTensor): Promise<ArrayBuffer>;
  destroy(): void;
}

/** Buffers for every tensor the kernels bind (uploads written), pipelines and bind groups. */
async function prepare(kernels: readonly KernelSpec[], uploads: ReadonlyMap<string, ArrayBufferView>): Promise<Prepared> {
  const buffers = new Map<string, GPUBuffer>();
  const bufferFor = (t: LowerTensor) => {
    let b = buffers.get(t.id);
    if (!b) {
      b = device.createBuffer({ size: bufferBytes(t.type), usage: GPUBufferUsage.STORAGE | GPUBufferUsage.COPY_SRC | GPUBufferUsage.COPY_DST });
      buffers.set(t.id, b);
      const data = uploads.get(t.id);
      if (data) device.queue.writeBuffer(b, 0, data.buffer, data.byteOffset, data.byteLength);
    }
    return b;
  };
  device.pushErrorScope('validation');
  const steps = kernels.map((k) => {
    const pipeline = device.createComputePipeline({ layout: 'auto', compute: { module: device.createShaderModule({ code: k.wgsl }), entryPoint: 'main' } });
    const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: k.bindings.map((t, i) => ({ binding: i, resource: { buffer: bufferFor(t) } })) });
    return { pipeline, bindGroup, workgroups: k.workgroups };
  });
  const error = await keepAlive(device.popErrorScope());
  if (error) throw new Error(`${kernels.map((k) => k.label).join('+')}: ${error.message}\n${kernels.map((k) => k.wgsl).join('\n----\n')}`);
  return {
    encode(pass) {
      for (const s of steps) {
        pass.setPipeline(s.pipeline);
        pass.setBindGroup(0, s.bindGroup);
        pass.dispatchWorkgroups(...s.workgroups);
      }
    },
    async read(t) {
      const size = bufferBytes(t.type);
      const rb = device.createBuffer({ size, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
      const enc = device.createCommandEncoder();
      enc.copyBufferToBuffer(bufferFor(t), 0, rb, 0, size);
      device.queue.submit([enc.finish()]);
      await keepAlive(rb.mapAsync(GPUMapMode.READ));
      const out = rb.getMappedRange().slice(0);
      rb.destroy();
      return out;
    },
    destroy() {
      for (const b of buffers.values()) b.destroy();
    },
  };
}

/** Median and minimum ms of one repetition of `encode` (reps per submission, iters submissions after a warm-up). */
async function timeMs(p: Prepared, reps: number): Promise<{ median: number; min: number }> {
  const querySet = hasTimestamps ? device.createQuerySet({ type: 'timestamp', count: 2 }) : undefined;
  const resolve = querySet && device.createBuffer({ size: 16, usage: GPUBufferUsage.QUERY_RESOLVE | GPUBufferUsage.COPY_SRC });
  const readBack = querySet && device.createBuffer({ size: 16, usage: GPUBufferUsage.MAP_READ | GPUBufferUsage.COPY_DST });
  const once = async (): Promise<number> => {
    const encoder = device.createCommandEncoder();
    const pass = encoder.beginComputePass(querySet ? { timestampWrites: { querySet, beginningOfPassWriteIndex: 0, endOfPassWriteIndex: 1 } } : {});
    for (let r = 0; r < reps; r++) p.encode(pass);
    pass.end();
    if (querySet) {
      encoder.resolveQuerySet(querySet, 0, 2, resolve!, 0);
      encoder.copyBufferToBuffer(resolve!, 0, readBack!, 0, 16);
    }
    const t0 = performance.now();
    device.queue.submit([encoder.finish()]);
    await keepAlive(device.queue.onSubmittedWorkDone());
    const host = performance.now() - t0;
    if (!querySet) return host / reps;
    await keepAlive(readBack!.mapAsync(GPUMapMode.READ));
    const [begin, end] = new BigUint64Array(readBack!.getMappedRange().slice(0));
    readBack!.unmap();
    return Number(end! - begin!) / 1e6 / reps;
  };
  await once();
  const times: number[] = [];
  for (let i = 0; i < ITERS; i++) times.push(await once());
  querySet?.destroy();
  resolve?.destroy();
  readBack?.destroy();
  times.sort((a, b) => a - b);
  return { median: times[Math.floor(times.length / 2)]!, min: times[0]! };
}

/** reps so that one submission holds about `targetMs` of work, from one timed repetition */
async function repsFor(p: Prepared, targetMs = 20): Promise<number> {
  const { median } = await timeMs(p, 1);
  return Math.max(2, Math.min(REPS * 10, Math.round(targetMs / Math.max(median, 1e-3))));
}

const row = (cells: readonly (string | number)[]) => console.log(`| ${cells.join(' | ')} |`);

// ------------------------------------------------------------------------------------- ceilings

interface Ceilings { readGBs: number; fmaTflops: number; mmaTflops?: number }

async function measureCeilings(): Promise<Ceilings> {
  console.log('\n## Ceilings\n');
  row(['probe', 'median ms', 'rate']);
  row(['---', '---', '---']);
  const vec4s = (QUICK ? 4 : 16) << 20;
  const src: LowerTensor = { id: 'src', type: { dtype: 'float32', shape: [vec4s * 4] } };
  const sink: LowerTensor = { id: 'sink', type: { dtype: 'float32', shape: [1 << 16] } };
  const read = await prepare([readProbe(src, sink, vec4s)], new Map());
  const tr = await timeMs(read, await repsFor(read));
  read.destroy();
  const readGBs = (vec4s * 16) / (tr.median * 1e-3) / 1e9;
  row([`read ${(vec4s * 16) >> 20} MiB (vec4 f32)`, tr.median.toFixed(3), `${readGBs.toFixed(0)} GB/s`]);

  const params: LowerTensor = { id: 'params', type: { dtype: 'float32', shape: [8] } };
  const fmaWorkgroups = 4096, fmaIters = 4096;
  let fmaTflops = 0;
  for (const scalar of [false, true]) {
    const fma = await prepare([fmaProbe(params, sink, fmaWorkgroups, fmaIters, scalar)], new Map([['params', Float32Array.of(0.999, 0.999, 0.999, 0.999, 1e-3, 1e-3, 1e-3, 1e-3)]]));
    const tf = await timeMs(fma, Math.max(2, Math.floor(REPS / 4)));
    fma.destroy();
    const tflops = fmaProbeFlops(fmaWorkgroups, fmaIters) / (tf.median * 1e-3) / 1e12;
    fmaTflops = Math.max(fmaTflops, tflops);
    row([`f32 FMA loop (${scalar ? '32 scalar' : '8 vec4'} chains)`, tf.median.toFixed(3), `${tflops.toFixed(1)} TFLOP/s`]);
  }

  let mmaTflops: number | undefined;
  if (hasSubgroupMatrix()) {
    const ops: LowerTensor = { id: 'ops', type: { dtype: 'float16', shape: [512] } };
    const mmaSink: LowerTensor = { id: 'mma_sink', type: { dtype: 'float32', shape: [64 * 256] } };
    const wgs = 4096, sgs = 4, iters = 2048;
    const mma = await prepare([mmaProbe(ops, mmaSink, wgs, sgs, iters)], new Map([['ops', new Uint16Array(512)]]));
    const tm = await timeMs(mma, Math.max(2, Math.floor(REPS / 4)));
    mma.destroy();
    mmaTflops = mmaProbeFlops(wgs, sgs, iters) / (tm.median * 1e-3) / 1e12;
    row(['f16 subgroup-matrix MMA loop (f32 result)', tm.median.toFixed(3), `${mmaTflops.toFixed(0)} TFLOP/s`]);
  }
  return { readGBs, fmaTflops, mmaTflops };
}

function hasSubgroupMatrix(): boolean {
  if (!device.features.has('chromium-experimental-subgroup-matrix') || !device.features.has('shader-f16')) return false;
  const configs = (gpu.adapter.info as unknown as { subgroupMatrixConfigs?: { componentType: string; resultComponentType: string; M: number; N: number; K: number }[] }).subgroupMatrixConfigs ?? [];
  return configs.some((c) => c.componentType === 'f16' && c.resultComponentType === 'f32' && c.M === 16 && c.N === 16 && c.K === 16);
}

// ------------------------------------------------------------------------------- MatMul lowering

interface Product { name: string; M: number; K: number; N: number }

/** The kernels compiler/ops/matmul emits for A [M, K] x constant B [K, N] under `choices`, and their uploads. */
function lowerMatMul(c: Product, choices: KernelChoices, readOnlyWeights = false) {
  const node: Node = { name: 'bench', opType: 'MatMul', domain: '', inputs: ['a', 'b'], outputs: ['y'], attrs: {} };
  const b = makeConst('float32', [c.K, c.N], randomFloats(c.K * c.N, 2));
  const a: LowerTensor = { id: 'a', type: { dtype: 'float32', shape: [c.M, c.K] } };
  const y: LowerTensor = { id: 'y', type: { dtype: 'float32', shape: [c.M, c.N] } };
  const kernels: KernelSpec[] = [];
  const uploads = new Map<string, ArrayBufferView>([['a', randomFloats(c.M * c.K, 1)]]);
  const ctx: LowerContext = {
    node, opset: 13, inputs: [a, { id: 'b', type: b, data: b }], outputs: [y],
    limits: { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: device.limits.maxStorageBufferBindingSize, maxBufferSize: device.limits.maxBufferSize },
    kernelChoices: choices,
    kernel: (k) => kernels.push(k),
    constant: (label, t) => {
      uploads.set(`c_${label}`, Float32Array.from(t.data as ArrayLike<number>));
      // a model's weights bind read-only where they sit in their own buffer (a preload bundle)
      return { id: `c_${label}`, type: t, data: t, ...(readOnlyWeights ? { readOnly: true } : {}) };
    },
    scratch: (label, type) => ({ id: `s_${label}`, type }),
  };
  opFor(node, 13).lower!(ctx);
  return { kernels, uploads, y, bData: b.data as Float32Array };
}

/** Largest relative error at 32 sampled outputs against a float64 product. */
function sampledError(c: Product, aData: Float32Array, bAt: (k: number, n: number) => number, y: Float32Array): number {
  let worst = 0;
  for (let s = 0; s < 32; s++) {
    const m = (s * 7919) % c.M, n = (s * 104729) % c.N;
    let ref = 0, mag = 0;
    for (let k = 0; k < c.K; k++) {
      const p = aData[m * c.K + k]! * bAt(k, n);
      ref += p;
      mag += Math.abs(p);
    }
    worst = Math.max(worst, Math.abs(y[m * c.N + n]! - ref) / Math.max(mag, 1e-30));
  }
  return worst;
}

interface Variant { name: string; choices: KernelChoices; readOnlyWeights?: boolean }

async function benchProducts(title: string, cases: readonly Product[], variants: readonly Variant[], rate: (c: Product, ms: number) => string, ceilingFraction: (c: Product, ms: number) => number): Promise<void> {
  console.log(`\n## ${title}\n`);
  row(['case', 'variant', 'kernels', 'median ms', 'min ms', 'rate', 'of ceiling', 'max rel. err (32 samples)', 'max abs diff vs first']);
  row(['---', '---', '---', '---', '---', '---', '---', '---', '---']);
  for (const c of cases) {
    let first: Float32Array | undefined;
    for (const v of variants) {
      const lowered = lowerMatMul(c, v.choices, v.readOnlyWeights);
      const p = await prepare(lowered.kernels, lowered.uploads);
      const t = await timeMs(p, await repsFor(p));
      const y = new Float32Array(await p.read(lowered.y)).subarray(0, c.M * c.N);
      p.destroy();
      let diff = 0;
      if (first) for (let i = 0; i < y.length; i++) diff = Math.max(diff, Math.abs(y[i]! - first[i]!));
      else first = y.slice();
      const err = sampledError(c, lowered.uploads.get('a') as Float32Array, (k, n) => lowered.bData[k * c.N + n]!, y);
      row([c.name, v.name, lowered.kernels.map((k) => k.label).join('+'), t.median.toFixed(4), t.min.toFixed(4), rate(c, t.median),
        `${(ceilingFraction(c, t.median) * 100).toFixed(0)}%`, err.toExponential(1), diff.toExponential(1)]);
    }
  }
}

const GEMM_CASES: Product[] = [
  { name: 'BERT/GPT-Neo QKV, out 128x768x768', M: 128, K: 768, N: 768 },
  { name: 'BERT FFN up 128x768x3072', M: 128, K: 768, N: 3072 },
  { name: 'BERT FFN down 128x3072x768', M: 128, K: 3072, N: 768 },
  { name: 'ViT FFN up 197x768x3072', M: 197, K: 768, N: 3072 },
  { name: 'ResNet-50 3x3 conv as GEMM 196x2304x256', M: 196, K: 2304, N: 256 },
  { name: 'ResNet-50 1x1 conv 3136x64x256', M: 3136, K: 64, N: 256 },
  { name: 'VGG-19 3x3 conv as GEMM 3136x2304x256', M: 3136, K: 2304, N: 256 },
  { name: 'square 1024^3', M: 1024, K: 1024, N: 1024 },
  { name: 'square 2048^3', M: 2048, K: 2048, N: 2048 },
  { name: 'square 4096^3', M: 4096, K: 4096, N: 4096 },
];

const GEMV_CASES: Product[] = [
  { name: 'GPT-Neo QKV/out 1x768x768', M: 1, K: 768, N: 768 },
  { name: 'GPT-Neo FFN up 1x768x3072', M: 1, K: 768, N: 3072 },
  { name: 'GPT-Neo FFN down 1x3072x768', M: 1, K: 3072, N: 768 },
  { name: 'GPT-Neo LM head 1x768x50257', M: 1, K: 768, N: 50257 },
  { name: 'square 1x4096x4096', M: 1, K: 4096, N: 4096 },
];

const GPU_OCCUPANCY = 1024;
const GEMM_VARIANTS: Variant[] = [
  { name: 'tiled (registers only)', choices: { gemv: 'tiled', gemm: 'tiled' } },
  { name: 'blocked, default (shape picks block and K chunks)', choices: { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: GPU_OCCUPANCY } },
  { name: 'blocked, default, B bound read-only', choices: { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: GPU_OCCUPANCY }, readOnlyWeights: true },
  ...([[1, 1, 16], [2, 2, 16], [2, 2, 8], [2, 2, 32], [2, 1, 16], [1, 2, 16]] as const).map(([rm, rn, bk]) => ({
    name: `blocked ${rm * 64}x${rn * 64}, K step ${bk}, no K chunks`,
    choices: { gemv: 'split-k', gemm: 'blocked', gemmBlock: { rm, rn, bk } } satisfies KernelChoices,
  })),
];
const GEMV_VARIANTS: Variant[] = [
  { name: 'tiled (registers only)', choices: { gemv: 'tiled', gemm: 'tiled' } },
  { name: 'split-K in one workgroup per panel', choices: { gemv: 'split-k', gemm: 'blocked' } },
  { name: 'split-K, 4 rows a trip, K chunks for 1024 workgroups', choices: { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: GPU_OCCUPANCY, gemvUnroll: 4 } },
  { name: 'split-K, 16 rows a trip, K chunks for 1024 workgroups (default)', choices: { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: GPU_OCCUPANCY, gemvUnroll: 16 } },
  { name: 'split-K, 16 rows a trip, K chunks for 1024 workgroups, B read-only', choices: { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: GPU_OCCUPANCY, gemvUnroll: 16 }, readOnlyWeights: true },
  { name: 'split-K, 4 rows a trip, K chunks for 1024 workgroups, B read-only', choices: { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: GPU_OCCUPANCY, gemvUnroll: 4 }, readOnlyWeights: true },
  ...([[8, 1024], [16, 512], [16, 2048], [32, 1024]] as const).map(([unroll, occupancy]) => ({
    name: `split-K, ${unroll} rows a trip, K chunks for ${occupancy} workgroups`,
    choices: { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: occupancy, gemvUnroll: unroll } satisfies KernelChoices,
  })),
];

// ------------------------------------------------------------------------------ subgroup matrices

/** f32 -> IEEE half bits (round to nearest even; the inputs here are small normals). */
function toHalfBits(x: number): number {
  const f = new Float32Array([x]);
  const bits = new Uint32Array(f.buffer)[0]!;
  const sign = (bits >>> 16) & 0x8000;
  const exp = ((bits >>> 23) & 0xff) - 127 + 15;
  let mant = bits & 0x7fffff;
  if (exp <= 0) return sign;
  if (exp >= 31) return sign | 0x7c00;
  const round = mant & 0x1fff;
  mant >>>= 13;
  let h = sign | (exp << 10) | mant;
  if (round > 0x1000 || (round === 0x1000 && (mant & 1))) h++;
  return h;
}

function halfToNumber(h: number): number {
  const exp = (h >>> 10) & 0x1f, mant = h & 0x3ff, sign = h & 0x8000 ? -1 : 1;
  if (exp === 0) return sign * mant * 2 ** -24;
  return sign * (1 + mant / 1024) * 2 ** (exp - 15);
}

// one subgroup per workgroup: subgroup-matrix loads and stores need workgroup-uniform offsets
const SGMAT_SHAPES: { name: string; shape: SubgroupMatrixShape }[] = [
  { name: 'direct, 2x2 tiles (32x32 blocks)', shape: { feed: 'direct', tm: 2, tn: 2, bk: 16 } },
  { name: 'direct, 2x4 tiles (32x64)', shape: { feed: 'direct', tm: 2, tn: 4, bk: 16 } },
  { name: 'direct, 4x2 tiles (64x32)', shape: { feed: 'direct', tm: 4, tn: 2, bk: 16 } },
  { name: 'direct, 4x4 tiles (64x64)', shape: { feed: 'direct', tm: 4, tn: 4, bk: 16 } },
  { name: 'staged K 32, 4x4 tiles (64x64)', shape: { feed: 'staged', tm: 4, tn: 4, bk: 32 } },
  { name: 'staged K 32, 2x4 tiles (32x64)', shape: { feed: 'staged', tm: 2, tn: 4, bk: 32 } },
  { name: 'staged K 32, 2x2 subgroups of 2x4 tiles (64x128)', shape: { feed: 'staged', tm: 2, tn: 4, bk: 32, wm: 2, wn: 2 } },
  { name: 'staged K 32, 2x4 subgroups of 4x2 tiles (128x128)', shape: { feed: 'staged', tm: 4, tn: 2, bk: 32, wm: 2, wn: 4 } },
  { name: 'staged K 64, 2x4 subgroups of 4x2 tiles (128x128)', shape: { feed: 'staged', tm: 4, tn: 2, bk: 64, wm: 2, wn: 4 } },
  { name: 'staged K 32, 4x2 subgroups of 2x4 tiles (128x128)', shape: { feed: 'staged', tm: 2, tn: 4, bk: 32, wm: 4, wn: 2 } },
  { name: 'direct, 2x2 subgroups of 4x4 tiles (128x128)', shape: { feed: 'direct', tm: 4, tn: 4, bk: 16, wm: 2, wn: 2 } },
];

async function benchSubgroupMatrix(ceilings: Ceilings): Promise<void> {
  console.log('\n## f16 GEMM on subgroup matrices (f32 accumulation)\n');
  if (!hasSubgroupMatrix()) {
    console.log('skipped: the adapter has no chromium-experimental-subgroup-matrix with an f16 16x16x16 / f32-result config (on NVIDIA pass the Dawn toggles; see ../shared/KERNELS.md)');
    return;
  }
  row(['case', 'variant', 'median ms', 'min ms', 'TFLOP/s', 'of MMA-loop ceiling', 'max rel. err (32 samples, vs f64 on the f16 inputs)']);
  row(['---', '---', '---', '---', '---', '---', '---']);
  const cases: Product[] = [
    { name: 'BERT FFN up 128x768x3072', M: 128, K: 768, N: 3072 },
    { name: 'square 1024^3', M: 1024, K: 1024, N: 1024 },
    { name: 'square 2048^3', M: 2048, K: 2048, N: 2048 },
    { name: 'square 4096^3', M: 4096, K: 4096, N: 4096 },
  ];
  for (const c of cases.filter((x) => MATCH.test(x.name))) {
    const aHalf = Uint16Array.from(randomFloats(c.M * c.K, 1), toHalfBits);
    const bHalf = Uint16Array.from(randomFloats(c.K * c.N, 2), toHalfBits);
    const aValues = Float32Array.from(aHalf, halfToNumber);
    const a: LowerTensor = { id: 'a', type: { dtype: 'float16', shape: [c.M, c.K] } };
    const b: LowerTensor = { id: 'b', type: { dtype: 'float16', shape: [c.K, c.N] } };
    const y: LowerTensor = { id: 'y', type: { dtype: 'float32', shape: [c.M, c.N] } };
    for (const v of SGMAT_SHAPES) {
      if (!subgroupMatrixFits(c.M, c.K, c.N, v.shape)) continue;
      let p: Prepared;
      try {
        p = await prepare([subgroupMatrixGemm('gemm_sgmat_f16', c.M, c.K, c.N, v.shape, a, b, y)], new Map([['a', aHalf], ['b', bHalf]]));
      } catch (e) {
        row([c.name, v.name, 'failed', String(e).split('\n')[0]!.slice(0, 160), '', '', '']);
        continue;
      }
      const t = await timeMs(p, await repsFor(p));
      const out = new Float32Array(await p.read(y));
      p.destroy();
      const err = sampledError(c, aValues, (k, n) => halfToNumber(bHalf[k * c.N + n]!), out);
      const tflops = (2 * c.M * c.K * c.N) / (t.median * 1e-3) / 1e12;
      row([c.name, v.name, t.median.toFixed(4), t.min.toFixed(4), tflops.toFixed(1), ceilings.mmaTflops ? `${((tflops / ceilings.mmaTflops) * 100).toFixed(0)}%` : '-', err.toExponential(1)]);
    }
  }
}

// ------------------------------------------------------------------------------------------ main

async function main(): Promise<void> {
  const info = gpu.adapter.info as unknown as Record<string, unknown>;
  console.log(`# Kernel micro-benchmarks\n\nAdapter: ${String(info.description ?? info.device ?? '?')} (${gpu.backend}); features: ${[...device.features].sort().join(', ')}; timing: ${hasTimestamps ? 'timestamp queries' : 'host'}`);
  const configs = (info.subgroupMatrixConfigs ?? []) as { componentType: string; resultComponentType: string; M: number; N: number; K: number }[];
  if (configs.length) console.log(`subgroup matrix configs: ${configs.map((c) => `${c.componentType}->${c.resultComponentType} ${c.M}x${c.N}x${c.K}`).join(', ')}`);
  const ceilings = wants('ceilings') ? await measureCeilings() : { readGBs: NaN, fmaTflops: NaN };
  const gemmCases = (QUICK ? GEMM_CASES.filter((c) => c.M * c.K * c.N <= 1 << 30) : GEMM_CASES).filter((c) => MATCH.test(c.name));
  if (wants('gemm')) {
    await benchProducts('f32 GEMM (constant B, packed panels)', gemmCases, GEMM_VARIANTS,
      (c, ms) => `${((2 * c.M * c.K * c.N) / (ms * 1e-3) / 1e12).toFixed(2)} TFLOP/s`,
      (c, ms) => (2 * c.M * c.K * c.N) / (ms * 1e-3) / 1e12 / ceilings.fmaTflops);
  }
  if (wants('gemv')) {
    await benchProducts('f32 gemv (M = 1; rate = weight bytes read per second)', GEMV_CASES.filter((c) => MATCH.test(c.name)), GEMV_VARIANTS,
      (c, ms) => `${((c.K * c.N * 4) / (ms * 1e-3) / 1e9).toFixed(0)} GB/s`,
      (c, ms) => (c.K * c.N * 4) / (ms * 1e-3) / 1e9 / ceilings.readGBs);
  }
  if (wants('sgmat')) await benchSubgroupMatrix(ceilings);
  process.exit(0);
}

await main();
