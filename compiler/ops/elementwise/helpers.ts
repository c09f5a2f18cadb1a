/**
 * WGSL helper functions of the elementwise kernels, emitted once per kernel that needs them, and
 * the expression type that names the helpers it calls.
 */
import { erfWgslFunction } from '../../kernel/math.js';
import type { WgslScalar } from '../../kernel/wgsl.js';

export const WGSL_HELPERS = {
  // `var` keeps these out of const-evaluation, where WGSL forbids inf and NaN results
  fm_inf: 'fn fm_inf() -> f32 {\n  var bits = 0x7f800000u;\n  return bitcast<f32>(bits);\n}',
  fm_nan: 'fn fm_nan() -> f32 {\n  var bits = 0x7fc00000u;\n  return bitcast<f32>(bits);\n}',
  fm_is_nan: 'fn fm_is_nan(x: f32) -> bool {\n  return (bitcast<u32>(x) & 0x7fffffffu) > 0x7f800000u;\n}',
  fm_max: 'fn fm_max(a: f32, b: f32) -> f32 {\n  return select(max(a, b), a + b, fm_is_nan(a) || fm_is_nan(b));\n}',
  fm_min: 'fn fm_min(a: f32, b: f32) -> f32 {\n  return select(min(a, b), a + b, fm_is_nan(a) || fm_is_nan(b));\n}',
  fm_is_inf: 'fn fm_is_inf(x: f32) -> bool {\n  return (bitcast<u32>(x) & 0x7fffffffu) == 0x7f800000u;\n}',
  // WGSL pow() is exp2(y * log2(x)): undefined for x <= 0. ONNX follows C pow.
  fm_pow: `fn fm_pow(x: f32, y: f32) -> f32 {
  if (y == 0.0 || x == 1.0) { return 1.0; }
  let ax = abs(x);
  if (ax == 0.0) { return select(0.0, fm_inf(), y < 0.0); }
  let r = exp2(y * log2(ax));
  if (x > 0.0) { return r; }
  if (fract(y) != 0.0) { return fm_nan(); }
  return select(r, -r, fract(y * 0.5) != 0.0);
}`,
  // integer power as ONNX Runtime computes it: trunc(pow(base, exp)), so negative exponents give 0 unless |base| == 1
  fm_ipow: `fn fm_ipow(base: i32, e: i32) -> i32 {
  if (e < 0) {
    if (base == 1) { return 1; }
    if (base == -1) { return select(1, -1, (e & 1) != 0); }
    return 0;
  }
  var result = 1;
  var b = base;
  var n = e;
  loop {
    if (n == 0) { break; }
    if ((n & 1) != 0) { result = result * b; }
    b = b * b;
    n = n >> 1u;
  }
  return result;
}`,
  // Splits x into a high part of 12 significant bits and the exact rest: products of two high or
  // low parts are exact in f32. Bit masking, unlike Veltkamp splitting, survives any float rewrites.
  fm_split: 'fn fm_split(x: f32) -> vec2<f32> {\n  let hi = bitcast<f32>(bitcast<u32>(x) & 0xfffff000u);\n  return vec2<f32>(hi, x - hi);\n}',
  // C fmod is exact: r = a - b * trunc(a / b) needs b * q without rounding, which fma() does not
  // guarantee (llvmpipe rounds the product), so b * q is formed as p + e (Dekker's two-product);
  // then one step corrects a quotient that a / b rounded across an integer.
  fm_fmod: `fn fm_fmod(a: f32, b: f32) -> f32 {
  let q = trunc(a / b);
  let p = b * q;
  let bs = fm_split(b);
  let qs = fm_split(q);
  let e = ((bs.x * qs.x - p) + bs.x * qs.y + bs.y * qs.x) + bs.y * qs.y;
  var r = (a - p) - e;
  if (r != 0.0 && (r < 0.0) != (a < 0.0)) { r = r + select(-abs(b), abs(b), a > 0.0); }
  if (abs(r) >= abs(b)) { r = r - select(-abs(b), abs(b), a > 0.0); }
  return r;
}`,
  // log(x + sqrt(x * x + 1)) overflows for |x| > 1e19 in f32, where asinh(x) = sign(x) * (log|x| + log 2)
  fm_asinh: 'fn fm_asinh(x: f32) -> f32 {\n  return select(asinh(x), sign(x) * (log(abs(x)) + 0.693147181), abs(x) > 1e18);\n}',
  fm_acosh: 'fn fm_acosh(x: f32) -> f32 {\n  return select(acosh(x), log(x) + 0.693147181, x > 1e18);\n}',
  // Mod with fmod=0: the remainder takes the divisor's sign (Python's %)
  fm_imod: 'fn fm_imod(a: i32, b: i32) -> i32 {\n  let r = a % b;\n  return select(r, r + b, r != 0 && ((r < 0) != (b < 0)));\n}',
  fm_erf: erfWgslFunction(),
  // pack2x16float is undefined beyond the f16 range, where Cast must give +-inf
  fm_to_f16: 'fn fm_to_f16(x: f32) -> f32 {\n  let h = unpack2x16float(pack2x16float(vec2<f32>(x, 0.0))).x;\n  return select(h, sign(x) * fm_inf(), abs(x) >= 65520.0);\n}',
  fm_to_bf16: 'fn fm_to_bf16(x: f32) -> f32 {\n  let b = bitcast<u32>(x);\n  return bitcast<f32>((b + 0x7fffu + ((b >> 16u) & 1u)) & 0xffff0000u);\n}',
} as const;

export type HelperName = keyof typeof WGSL_HELPERS;

/** helpers other helpers call */
const HELPER_DEPS: Partial<Record<HelperName, HelperName[]>> = {
  fm_pow: ['fm_inf', 'fm_nan'], fm_to_f16: ['fm_inf'], fm_max: ['fm_is_nan'], fm_min: ['fm_is_nan'], fm_erf: ['fm_is_nan'], fm_fmod: ['fm_split'],
};

export function helperSource(names: readonly HelperName[]): string {
  const ordered: HelperName[] = [];
  const visit = (n: HelperName): void => {
    if (ordered.includes(n)) return;
    for (const d of HELPER_DEPS[n] ?? []) visit(d);
    ordered.push(n);
  };
  names.forEach(visit);
  return ordered.map((n) => WGSL_HELPERS[n]).join('\n\n');
}

/** A WGSL expression plus the helper functions it calls. */
export interface Expr {
  code: string;
  helpers?: HelperName[];
}

export function zero(t: WgslScalar): string {
  return t === 'f32' ? '0.0' : '0';
}

export function boolToI32(cond: string): string {
  return `select(0, 1, ${cond})`;
}
