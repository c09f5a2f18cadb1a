/**
 * Times the MatMul kernels of compiler/ops/matmul/ on the local WebGPU device: the register-tiled
 * kernel (software-rasteriser profiles) against the workgroup-tiled blocked kernel (real-GPU
 * profiles), over GEMM shapes of transformers (BERT/ViT-base) and a 4096^3 product, with B a
 * constant weight (packed panels, as compiled models have it). Prints one table row per case and
 * variant, with TFLOP/s, and checks that the variants agree.
 *
 *   npx tsx bench/gemm-bench.ts [--reps 20] [--iters 5] [--case N] [--variants tiled,blocked]
 *
 * Each timing is one submission of `reps` back-to-back dispatches, waited for with
 * onSubmittedWorkDone, divided by reps: host overhead is amortised, the kernel is what is timed.
 */
import { keepAlive } from '../compiler/target/webgpu.js';
import { prepareKernels } from '../test/harness/gpu.js';
import { opFor } from '../compiler/ops/index.js';
import { DEFAULT_LIMITS, type GemmKernel } from '../compiler/target/limits.js';
import { type KernelSpec, type LowerTensor } from '../compiler/kernel/types.js';
import { type LowerContext } from '../compiler/ops/op.js';
import { makeConst } from '../compiler/ir/tensor.js';
import { type Node } from '../compiler/ir/types.js';
import { randomFloats } from '../fixtures/onnx-builder.js';

interface GemmCase { name: string; M: number; K: number; N: number }

const CASES: GemmCase[] = [
  { name: 'BERT-base QKV/out 128x768x768', M: 128, K: 768, N: 768 },
  { name: 'BERT-base FFN up 128x768x3072', M: 128, K: 768, N: 3072 },
  { name: 'BERT-base FFN down 128x3072x768', M: 128, K: 3072, N: 768 },
  { name: 'ViT-base FFN up 197x768x3072', M: 197, K: 768, N: 3072 },
  { name: 'square 1024^3', M: 1024, K: 1024, N: 1024 },
  { name: 'square 4096^3', M: 4096, K: 4096, N: 4096 },
];

function argument(name: string, fallback: string): string {
  const i = process.argv.indexOf(`--${name}`);
  return i >= 0 ? process.argv[i + 1]! : fallback;
}

function lowerCase(c: GemmCase, gemm: GemmKernel) {
  const node: Node = { name: 'bench', opType: 'MatMul', domain: '', inputs: ['a', 'b'], outputs: ['y'], attrs: {} };
  const def = opFor(node, 13);
  const b = makeConst('float32', [c.K, c.N], randomFloats(c.K * c.N, 2));
  const inputs: LowerTensor[] = [{ id: 'a', type: { dtype: 'float32', shape: [c.M, c.K] } }, { id: 'b', type: b, data: b }];
  const y: LowerTensor = { id: 'y', type: { dtype: 'float32', shape: [c.M, c.N] } };
  const kernels: KernelSpec[] = [];
  const extra: LowerTensor[] = [];
  const ctx: LowerContext = {
    node, opset: 13, inputs, outputs: [y], limits: { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 1 << 30, maxBufferSize: 1 << 30 },
    kernelChoices: { gemv: 'split-k', gemm },
    kernel: (k) => kernels.push(k),
    constant: (label, t) => { const lt = { id: `c_${label}`, type: t, data: t }; extra.push(lt); return lt; },
    scratch: (label, type) => { const lt = { id: `s_${label}`, type }; extra.push(lt); return lt; },
  };
  def.lower!(ctx);
  const uploads = [{ tensor: inputs[0]!, data: randomFloats(c.M * c.K, 1) }, ...extra.map((t) => ({ tensor: t, data: t.data!.data as ArrayLike<number> }))];
  return { kernels, uploads, y };
}

async function timeCase(c: GemmCase, gemm: GemmKernel, reps: number, iters: number) {
  const { kernels, uploads, y } = lowerCase(c, gemm);
  const gpu = await prepareKernels(kernels, uploads);
  try {
    const submit = async () => {
      const encoder = gpu.device.createCommandEncoder();
      for (let r = 0; r < reps; r++) gpu.dispatch(encoder);
      gpu.device.queue.submit([encoder.finish()]);
      await keepAlive(gpu.device.queue.onSubmittedWorkDone());
    };
    await submit();
    const times: number[] = [];
    for (let i = 0; i < iters; i++) {
      const t0 = performance.now();
      await submit();
      times.push((performance.now() - t0) / reps);
    }
    times.sort((a, b) => a - b);
    const [output] = (await gpu.run([y])) as [Float32Array];
    return { ms: times[Math.floor(times.length / 2)]!, min: times[0]!, output, label: kernels.map((k) => k.label).join('+') };
  } finally {
    gpu.destroy();
  }
}

async function main(): Promise<void> {
  const reps = Number(argument('reps', '20'));
  const iters = Number(argument('iters', '5'));
  const only = process.argv.includes('--case') ? Number(argument('case', '0')) : undefined;
  const variants = argument('variants', 'tiled,blocked').split(',') as GemmKernel[];
  console.log(`| case | variant | median ms | min ms | TFLOP/s (median) | max abs diff vs first |`);
  console.log(`|---|---|---|---|---|---|`);
  for (const [ci, c] of CASES.entries()) {
    if (only !== undefined && ci !== only) continue;
    let reference: Float32Array | undefined;
    for (const variant of variants) {
      const r = await timeCase(c, variant, c.M * c.K * c.N > 1e10 ? Math.max(2, Math.floor(reps / 5)) : reps, iters);
      let diff = 0;
      if (reference) for (let i = 0; i < r.output.length; i++) diff = Math.max(diff, Math.abs(r.output[i]! - reference[i]!));
      else reference = r.output;
      const tflops = (2 * c.M * c.K * c.N) / (r.ms * 1e-3) / 1e12;
      console.log(`| ${c.name} | ${variant} | ${r.ms.toFixed(3)} | ${r.min.toFixed(3)} | ${tflops.toFixed(2)} | ${diff.toExponential(1)} |`);
    }
  }
  process.exit(0);
}

await main();
