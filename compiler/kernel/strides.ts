/**
 * Strides of row-major tensors, broadcasting and axis coalescing: the index arithmetic that
 * kernels specialise into WGSL and that constant folding uses on the host.
 */

/** Row-major element strides of `shape`. */
export function stridesOf(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

/** Element strides of `shape` read as `outShape` (right-aligned, 0 on broadcast axes). */
export function broadcastStrides(shape: readonly number[], outShape: readonly number[]): number[] {
  const strides = new Array<number>(outShape.length).fill(0);
  let s = 1;
  for (let k = shape.length - 1; k >= 0; k--) {
    const axis = outShape.length - shape.length + k;
    strides[axis] = shape[k] === 1 ? 0 : s;
    s *= shape[k]!;
  }
  return strides;
}

/**
 * Merges adjacent output axes that every operand walks alike (both contiguous or both
 * broadcast) and drops size-1 axes, so kernels decompose the flat index into as few
 * coordinates as possible: [2,3,4,5] + [5] becomes [24,5] with strides [5,1] and [0,1].
 */
export function coalesceAxes(outShape: readonly number[], strides: readonly (readonly number[])[]): { shape: number[]; strides: number[][] } {
  const shape: number[] = [];
  const merged: number[][] = strides.map(() => []);
  for (let axis = 0; axis < outShape.length; axis++) {
    const d = outShape[axis]!;
    if (d === 1) continue;
    const last = shape.length - 1;
    const mergeable = last >= 0 && strides.every((s, j) => merged[j]![last] === s[axis]! * d);
    if (mergeable) {
      shape[last] = shape[last]! * d;
      strides.forEach((s, j) => { merged[j]![last] = s[axis]!; });
    } else {
      shape.push(d);
      strides.forEach((s, j) => merged[j]!.push(s[axis]!));
    }
  }
  return { shape, strides: merged };
}
