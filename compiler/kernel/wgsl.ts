/**
 * Small WGSL building blocks shared by every kernel template. Kernels are specialised per shape:
 * sizes and strides appear as literals, never as uniforms.
 */
import { fail } from '../errors.js';
import { DType, isFloat } from '../ir/types.js';

export type WgslScalar = 'f32' | 'i32';

/** GPU storage type of an IR dtype: floats compute in f32, integers and bools in i32. */
export function wgslType(dtype: DType): WgslScalar {
  if (isFloat(dtype)) return 'f32';
  if (dtype === 'uint64') fail('FM_DTYPE', 'uint64 tensors are not supported on the GPU');
  return 'i32';
}

const F32_MAX = 3.4028234663852886e38;
/** the exact decimal value of the largest finite f32: any rounding up would not be representable */
const F32_MAX_DECIMAL = '340282346638528859811704183484516925440.0';

/** A WGSL literal of the given scalar type. */
export function lit(value: number, type: WgslScalar): string {
  if (type === 'i32') {
    if (!Number.isFinite(value)) return value > 0 ? '2147483647' : '-2147483647';
    const v = Math.max(-2147483647, Math.min(2147483647, Math.trunc(value)));
    return `${v}`;
  }
  // WGSL const-expressions may not evaluate to inf/NaN: infinities become the largest finite f32
  // (identical for min/max/clamp/comparisons), and NaN must not reach a literal at all.
  if (Number.isNaN(value)) fail('FM_UNSUPPORTED_OP', 'a NaN constant cannot be specialised into a kernel');
  const f = Math.fround(value);
  if (Math.abs(f) >= F32_MAX) return `f32(${f < 0 ? '-' : ''}${F32_MAX_DECIMAL})`;
  const s = Object.is(f, -0) ? '-0.0' : f.toPrecision(9);
  const withPoint = /[.eE]/.test(s) ? s : `${s}.0`;
  return `f32(${withPoint})`;
}

/** A u32 literal for sizes and strides. */
export function u(value: number): string {
  if (!Number.isInteger(value) || value < 0 || value > 0xffffffff) fail('FM_LIMIT', `index constant ${value} does not fit u32`);
  return `${value}u`;
}

export interface Grid1D {
  workgroups: [number, number, number];
  /** WGSL statement block computing `let i: u32` and returning early when out of range */
  prologue: string;
  workgroupSize: number;
}

/**
 * A 1-D grid of `total` invocations folded into x/y so that no dimension exceeds the
 * 65535-workgroup limit. Use with `@builtin(global_invocation_id) gid: vec3<u32>`.
 */
export function grid1D(total: number, workgroupSize = 256, maxPerDim = 65535): Grid1D {
  const groups = Math.max(1, Math.ceil(total / workgroupSize));
  const x = Math.min(groups, maxPerDim);
  const y = Math.ceil(groups / x);
  if (y > maxPerDim) fail('FM_LIMIT', `kernel needs ${groups} workgroups, more than ${maxPerDim}x${maxPerDim}`);
  const prologue = y === 1
    ? `let i = gid.x;\n  if (i >= ${u(total)}) { return; }`
    : `let i = gid.x + gid.y * ${u(x * workgroupSize)};\n  if (i >= ${u(total)}) { return; }`;
  return { workgroups: [x, y, 1], prologue, workgroupSize };
}

/** The smallest power of two >= n (workgroup sizes for tree reductions). */
export function nextPow2(n: number): number {
  let p = 1;
  while (p < n) p *= 2;
  return p;
}

/**
 * One workgroup per row for `rows` rows, folded into x/y under the per-dimension limit; rowExpr
 * is the row's WGSL expression, from `@builtin(workgroup_id) wid`.
 */
export function rowGrid(rows: number, maxPerDim: number): { workgroups: [number, number, number]; rowExpr: string } {
  const x = Math.max(1, Math.min(rows, maxPerDim));
  const y = Math.ceil(rows / x);
  if (y > maxPerDim) fail('FM_LIMIT', `kernel needs ${rows} workgroups, more than ${maxPerDim}x${maxPerDim}`);
  return { workgroups: [x, Math.max(1, y), 1], rowExpr: y > 1 ? `wid.x + wid.y * ${u(x)}` : 'wid.x' };
}

/** WGSL statements decomposing flat index `flat` into per-axis coordinates `${prefix}0..` */
export function unravel(flat: string, shape: readonly number[], prefix: string): string {
  if (shape.length === 0) return '';
  const lines: string[] = [`var ${prefix}rem = ${flat};`];
  let stride = shape.reduce((a, b) => a * b, 1);
  for (let axis = 0; axis < shape.length; axis++) {
    stride /= shape[axis]!;
    if (axis === shape.length - 1) {
      lines.push(`let ${prefix}${axis} = ${prefix}rem;`);
    } else {
      lines.push(`let ${prefix}${axis} = ${prefix}rem / ${u(stride)};`);
      lines.push(`${prefix}rem = ${prefix}rem % ${u(stride)};`);
    }
  }
  return lines.join('\n  ');
}

/** Sum of coord_i * stride_i as a WGSL u32 expression (terms with stride 0 or dim 1 dropped). */
export function dot(coords: readonly string[], strides: readonly number[]): string {
  const terms = coords.flatMap((c, i) => (strides[i] === 0 ? [] : strides[i] === 1 ? [c] : [`${c} * ${u(strides[i]!)}`]));
  return terms.length === 0 ? '0u' : terms.join(' + ');
}
