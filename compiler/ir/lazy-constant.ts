/**
 * Derived constants computed on demand. Lowering re-lays out weights (MatMul column panels, table
 * row ranges...); holding every re-laid-out copy next to the imported weights would double the
 * compiler's memory on large models (5 GB of fp32 weights for GPT-Neo 1.3B). A lazy constant
 * recomputes its values each time `data` is read: the bundle writer reads each weight once to hash
 * it and once per shard piece (compiler/schedule/weights.ts keeps the last one), so at most one
 * re-laid-out weight is alive at a time.
 *
 * Read `data` once into a local: every read recomputes.
 */
import type { ConstTensor, DType, HostData } from '../ir/types.js';

const LAZY = Symbol('lazy constant');

export function lazyConstant(dtype: DType, shape: readonly number[], compute: () => HostData): ConstTensor {
  return {
    dtype,
    shape: [...shape],
    get data() {
      return compute();
    },
    [LAZY]: true,
  } as ConstTensor;
}

export function isLazyConstant(t: ConstTensor): boolean {
  return (t as ConstTensor & { [LAZY]?: boolean })[LAZY] === true;
}
