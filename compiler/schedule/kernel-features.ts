/**
 * What the latency model sees of a kernel: the bytes of every tensor it binds (its own memory
 * traffic, as the load plan always counted it) and, for reusable ops, the multiply-adds it does.
 * Computed from the kernel program alone, so the profiler and the planner agree on them.
 */
import type { KernelProgram, ProgramKernel } from '../lower/program.js';
import { numElements } from '../ir/types.js';

export interface KernelFeatures {
  bytes: number;
  /** 2 * multiply-adds for reusable ops (Conv, MatMul, Gemm); 0 for other classes */
  flops: number;
}

export function kernelFeatures(program: KernelProgram, kernel: ProgramKernel): KernelFeatures {
  const tensors = kernel.bindings.map((id) => program.tensors.get(id)!);
  const bytes = tensors.reduce((s, t) => s + t.bytes, 0);
  return { bytes, flops: kernel.costClass === 'reusable' ? reusableFlops(kernel, tensors.map((t) => t.type.shape)) : 0 };
}

/**
 * 2 * output elements * reduction length. Kernels bind their output last (every op lowering does).
 * Conv: the weights (binding 1, possibly re-laid out but of the same element count) hold
 * outChannels * reduction values. MatMul/Gemm: the first operand holds rows * reduction values,
 * with rows = output elements / output columns.
 */
function reusableFlops(kernel: ProgramKernel, shapes: readonly (readonly number[])[]): number {
  const out = shapes[shapes.length - 1]!;
  const outElems = numElements(out);
  if (outElems === 0 || shapes.length < 2) return 0;
  let reduction: number;
  if (kernel.opType === 'Conv' || kernel.opType === 'ConvTranspose') {
    const channels = Math.max(1, out[1] ?? 1);
    reduction = numElements(shapes[1]!) / channels;
  } else {
    const cols = Math.max(1, out[out.length - 1] ?? 1);
    reduction = numElements(shapes[0]!) / (outElems / cols);
  }
  return 2 * outElems * Math.max(1, reduction);
}
