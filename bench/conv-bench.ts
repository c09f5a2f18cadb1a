/**
 * Times Conv kernels on the local WebGPU device: a naive one-output-per-invocation baseline
 * against the tiled kernels of compiler/ops/conv/ ('auto' = the tiles the compiler picks), for
 * ResNet/VGG/AlexNet-like layer shapes, and checks that all variants agree.
 *
 *   npx tsx bench/conv-bench.ts [--tiles auto,16x8,8x8] [--iters 5] [--case N] [--no-naive]
 *
 * On a shared machine prefer the process CPU time column over wall time: other processes
 * steal the software GPU's cores.
 */
import { keepAlive } from '../compiler/target/webgpu.js';
import { prepareKernels } from '../test/harness/gpu.js';
import { convOp, lowerConvWithTiles } from '../compiler/ops/conv/index.js';
import { DEFAULT_LIMITS } from '../compiler/target/limits.js';
import { type KernelSpec, type LowerTensor } from '../compiler/kernel/types.js';
import { GID, kernel } from '../compiler/kernel/builder.js';
import { type LowerContext } from '../compiler/ops/op.js';
import { makeConst } from '../compiler/ir/tensor.js';
import { numElements, type Attrs, type Node } from '../compiler/ir/types.js';
import { randomFloats } from '../fixtures/onnx-builder.js';

interface BenchCase {
  name: string;
  x: number[];
  w: number[];
  attrs: Attrs;
}

const CASES: BenchCase[] = [
  { name: 'tiny 3x3 conv 1x8x8x8 -> 8', x: [1, 8, 8, 8], w: [8, 8, 3, 3], attrs: { pads: { type: 'ints', value: [1, 1, 1, 1] } } },
  { name: 'small 3x3 conv 1x32x28x28 -> 32', x: [1, 32, 28, 28], w: [32, 32, 3, 3], attrs: { pads: { type: 'ints', value: [1, 1, 1, 1] } } },
  { name: '3x3 conv 1x64x56x56 -> 64', x: [1, 64, 56, 56], w: [64, 64, 3, 3], attrs: { pads: { type: 'ints', value: [1, 1, 1, 1] } } },
  { name: '1x1 conv 1x256x56x56 -> 64', x: [1, 256, 56, 56], w: [64, 256, 1, 1], attrs: {} },
  { name: '3x3 depthwise 1x64x56x56', x: [1, 64, 56, 56], w: [64, 1, 3, 3], attrs: { group: { type: 'int', value: 64 }, pads: { type: 'ints', value: [1, 1, 1, 1] } } },
  { name: '11x11/4 conv 1x3x224x224 -> 96', x: [1, 3, 224, 224], w: [96, 3, 11, 11], attrs: { strides: { type: 'ints', value: [4, 4] } } },
  { name: '3x3 conv 1x512x7x7 -> 512', x: [1, 512, 7, 7], w: [512, 512, 3, 3], attrs: { pads: { type: 'ints', value: [1, 1, 1, 1] } } },
  { name: '7x7/2 conv 1x3x224x224 -> 64', x: [1, 3, 224, 224], w: [64, 3, 7, 7], attrs: { pads: { type: 'ints', value: [3, 3, 3, 3] }, strides: { type: 'ints', value: [2, 2] } } },
];


/** The baseline: one output element per invocation, direct loops over (ic, kh, kw). */
function naiveConv2d(c: BenchCase, x: LowerTensor, w: LowerTensor, y: LowerTensor): KernelSpec {
  const out = y.type.shape;
  const [, C, H, W] = c.x as [number, number, number, number];
  const [M, , KH, KW] = c.w as [number, number, number, number];
  const [, , OH, OW] = out as [number, number, number, number];
  const pads = c.attrs.pads?.type === 'ints' ? c.attrs.pads.value : [0, 0];
  const strides = c.attrs.strides?.type === 'ints' ? c.attrs.strides.value : [1, 1];
  const groups = c.attrs.group?.type === 'int' ? c.attrs.group.value : 1;
  const cg = C / groups, mg = M / groups;
  const k = kernel('naive');
  k.bind('x', x, 'f32');
  k.bind('w', w, 'f32');
  k.bind('y', y, 'f32');
  const body = `
  let i = gid.x;
  if (i >= ${M * OH * OW}u) { return; }
  let m = i / ${OH * OW}u; let oh = i32((i / ${OW}u) % ${OH}u); let ow = i32(i % ${OW}u);
  let g = m / ${mg}u;
  var acc = 0.0;
  for (var ic = 0u; ic < ${cg}u; ic++) {
    for (var kh = 0i; kh < ${KH}; kh++) {
      for (var kw = 0i; kw < ${KW}; kw++) {
        let ih = oh * ${strides[0]} - ${pads[0]} + kh; let iw = ow * ${strides[1]} - ${pads[1]} + kw;
        if (ih >= 0 && ih < ${H} && iw >= 0 && iw < ${W}) {
          acc += x[((g * ${cg}u + ic) * ${H}u + u32(ih)) * ${W}u + u32(iw)] * w[((m * ${cg}u + ic) * ${KH}u + u32(kh)) * ${KW}u + u32(kw)];
        }
      }
    }
  }
  y[i] = acc;
`;
  return k.build({
    header: `${k.declarations()}\n`,
    entry: { workgroupSize: 64, params: [GID], rawBody: body },
    trailer: '',
    workgroups: [Math.ceil(numElements(out) / 64), 1, 1],
  });
}

type Variant = 'naive' | 'auto' | { ocTile: number; pxTile: number };

function lowerCase(c: BenchCase, variant: Variant) {
  const node: Node = { name: 'bench', opType: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attrs: c.attrs };
  const wData = makeConst('float32', c.w, randomFloats(numElements(c.w), 2));
  const [yType] = convOp.inferTypes({ node, opset: 13, inputs: [{ dtype: 'float32', shape: c.x }, { dtype: 'float32', shape: c.w }], consts: [undefined, wData] });
  const inputs: LowerTensor[] = [{ id: 'x', type: { dtype: 'float32', shape: c.x } }, { id: 'w', type: wData, data: wData }];
  const y: LowerTensor = { id: 'y', type: yType! };
  const kernels: KernelSpec[] = [];
  const extra: LowerTensor[] = [];
  const ctx: LowerContext = {
    node, opset: 13, inputs, outputs: [y], limits: DEFAULT_LIMITS,
    kernel: (k) => kernels.push(k),
    constant: (label, t) => { const lt = { id: `c_${label}`, type: t, data: t }; extra.push(lt); return lt; },
    scratch: (label, type) => { const lt = { id: `s_${label}`, type }; extra.push(lt); return lt; },
  };
  if (variant === 'auto') convOp.lower!(ctx);
  else if (variant !== 'naive') lowerConvWithTiles(ctx, variant);
  else {
    kernels.push(naiveConv2d(c, inputs[0]!, inputs[1]!, y));
  }
  return { kernels, tensors: [...inputs, y, ...extra], y };
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const tileArg = args[args.indexOf('--tiles') + 1];
  const tileList: Variant[] = (args.includes('--tiles') ? tileArg! : 'auto').split(',').map((s) => {
    if (s === 'auto') return 'auto';
    const [ocTile, pxTile] = s.split('x').map(Number);
    return { ocTile: ocTile!, pxTile: pxTile! };
  });
  const iters = args.includes('--iters') ? Number(args[args.indexOf('--iters') + 1]) : 5;
  const skipNaive = args.includes('--no-naive');
  const only = args.includes('--case') ? Number(args[args.indexOf('--case') + 1]) : undefined;

  for (const [ci, c] of CASES.entries()) {
    if (only !== undefined && ci !== only) continue;
    const variants: Variant[] = [...(skipNaive ? [] : ['naive' as const]), ...tileList];
    let reference: Float32Array | undefined;
    for (const variant of variants) {
      let lowered;
      try {
        lowered = lowerCase(c, variant);
      } catch (e) {
        console.log(`${c.name.padEnd(32)} ${JSON.stringify(variant)}: ${(e as Error).message}`);
        continue;
      }
      const { kernels, tensors, y } = lowered;
      const uploads = tensors.flatMap((t) => {
        const data = t.data?.data ?? (t.id === 'x' ? randomFloats(numElements(t.type.shape), 1) : undefined);
        return data ? [{ tensor: t, data }] : [];
      });
      const compileStart = performance.now();
      const gpu = await prepareKernels(kernels, uploads);
      const run = async () => {
        const enc = gpu.device.createCommandEncoder();
        gpu.dispatch(enc);
        gpu.device.queue.submit([enc.finish()]);
        await keepAlive(gpu.device.queue.onSubmittedWorkDone());
      };
      await run();
      const compileMs = performance.now() - compileStart;
      const times: number[] = [];
      const cpuTimes: number[] = [];
      for (let i = 0; i < iters; i++) {
        const t0 = performance.now();
        const c0 = process.cpuUsage();
        await run();
        const c1 = process.cpuUsage(c0);
        times.push(performance.now() - t0);
        cpuTimes.push((c1.user + c1.system) / 1000);
      }
      times.sort((a, b) => a - b);
      cpuTimes.sort((a, b) => a - b);
      const n = numElements(y.type.shape);
      const [result] = (await gpu.run([y])) as [Float32Array];
      let diff = 0;
      if (reference) for (let i = 0; i < n; i++) diff = Math.max(diff, Math.abs(result[i]! - reference[i]!));
      else reference = result;
      const macs = n * numElements(c.w.slice(1));
      const median = times[Math.floor(times.length / 2)]!;
      const label = typeof variant === 'string' ? variant : `tiled ${variant.ocTile}x${variant.pxTile}`;
      console.log(`${c.name.padEnd(32)} ${label.padEnd(12)} median ${median.toFixed(1).padStart(7)} ms  min ${times[0]!.toFixed(1).padStart(7)} ms  cpu ${cpuTimes[0]!.toFixed(1).padStart(7)} ms  ${(macs / median / 1e6).toFixed(2)} GMAC/s  compile+1st run ${compileMs.toFixed(0)} ms  maxdiff ${diff.toExponential(1)}`);
      gpu.destroy();
    }
  }
  process.exit(0);
}

await main();
