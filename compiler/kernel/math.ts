/**
 * Math written once for the GPU and for the host: erf and GELU. Kernels render the WGSL forms;
 * constant folding and the fusion passes evaluate the host forms.
 *
 * erf is one approximation everywhere on the GPU (the Erf op, ONNX Gelu and the fused GELU):
 * |x| <= 0.9: erf(x) = x * P(x^2) with P of degree 5; 0.9 < |x| < 3.92: erf(|x|) = 1 - exp(Q(|x|))
 * with Q of degree 7 fitted to log(erfc) with weight sqrt(erfc), which bounds the absolute error of
 * erf; erf rounds to 1 in f32 beyond 3.92. Measured against erfHost over 1e5 points of [-6, 6]:
 * max abs error 5.4e-8 evaluated in double, 1.1e-7 with every operation rounded to f32
 * (Abramowitz & Stegun 7.1.26, used by the fused GELU before: 1.4e-7 and 4.6e-7).
 */
import { lit } from './wgsl.js';

/** erf coefficients: weighted least-squares fits on Chebyshev nodes in double precision. */
const ERF_SPLIT = 0.9;
const ERF_SMALL = [1.12837911, -0.376125544, 0.112824090, -0.0267874096, 0.00502329879, -0.000614414224];
const ERF_LARGE = [0.0000986216037, -1.12916672, -0.634009957, -0.107600234, 0.0247144569, -0.00403104397, 0.000408460444, -0.0000190952505];
/** erf(x) rounds to 1 in f32 beyond this */
const ERF_SATURATION = 3.92;

const SQRT_PI = Math.sqrt(Math.PI);
const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;

// ---------------------------------------------------------------------------------------------
// host

/** erf in double precision (constant folding): Taylor series below 2, erfc's continued fraction above. */
export function erfHost(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  let r: number;
  if (a < 2) {
    let sum = 0;
    let term = a;
    for (let n = 0; n < 60; n++) {
      sum += term / (2 * n + 1);
      term *= (-a * a) / (n + 1);
    }
    r = (2 / SQRT_PI) * sum;
  } else if (a < 6) {
    let f = a;
    for (let k = 300; k >= 1; k--) f = a + k / 2 / f;
    r = 1 - Math.exp(-a * a) / SQRT_PI / f;
  } else {
    r = 1;
  }
  return x < 0 ? -r : r;
}

/** GELU's form: exact (erf), or the tanh approximation (which FastGelu-style exports compute). */
export type GeluApproximation = 'none' | 'tanh';

/** GELU in double precision: x * Phi(x) through erfHost, or the tanh approximation. */
export function geluHost(x: number, approximate: GeluApproximation): number {
  if (approximate === 'none') return 0.5 * x * (1 + erfHost(x * Math.SQRT1_2));
  return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)));
}

/**
 * The GPU's erf approximation evaluated on the host (tests, error bounds): in double precision, or
 * with every operation rounded to f32 as the kernel computes it (`f32`).
 */
export function erfApproximationHost(x: number, f32 = false): number {
  const r = f32 ? Math.fround : (v: number) => v;
  const poly = (c: readonly number[], t: number) => c.slice(0, -1).reduceRight((acc, k) => r(acc * t + r(k)), r(c.at(-1)!));
  const v = r(x);
  if (Number.isNaN(v)) return v;
  const a = Math.abs(v);
  if (a <= r(ERF_SPLIT)) return r(v * poly(ERF_SMALL, r(v * v)));
  const t = Math.min(a, r(ERF_SATURATION));
  const e = a >= r(ERF_SATURATION) ? 1 : r(1 - r(Math.exp(poly(ERF_LARGE, t))));
  return e * Math.sign(v);
}

// ---------------------------------------------------------------------------------------------
// WGSL

function horner(coefficients: readonly number[], x: string): string {
  return coefficients.slice(0, -1).reduceRight((acc, c) => `fma(${acc}, ${x}, ${lit(c, 'f32')})`, lit(coefficients.at(-1)!, 'f32'));
}

/** `fn fm_erf(x: f32) -> f32` (calls fm_is_nan, which the kernel must also declare): erf(NaN) is NaN. */
export function erfWgslFunction(): string {
  const saturation = lit(ERF_SATURATION, 'f32');
  return `fn fm_erf(x: f32) -> f32 {
  if (fm_is_nan(x)) { return x; }
  let a = abs(x);
  if (a <= ${lit(ERF_SPLIT, 'f32')}) {
    let s = x * x;
    return x * ${horner(ERF_SMALL, 's')};
  }
  let t = min(a, ${saturation});
  let r = 1.0 - exp(${horner(ERF_LARGE, 't')});
  return select(r, 1.0, a >= ${saturation}) * sign(x);
}`;
}

/**
 * The same erf as one WGSL expression of `x` (which it repeats; pass a parenthesised operand),
 * for kernels that paste expressions and declare no helpers (fused producers). Both branches are
 * evaluated and selected; NaN is not preserved (the GELU's factor x restores it).
 */
export function erfWgslExpression(x: string): string {
  const saturation = lit(ERF_SATURATION, 'f32');
  const a = `abs(${x})`;
  const small = `${x} * ${horner(ERF_SMALL, `(${x} * ${x})`)}`;
  const large = `select(1.0 - exp(${horner(ERF_LARGE, `min(${a}, ${saturation})`)}), 1.0, ${a} >= ${saturation}) * sign(${x})`;
  return `select(${large}, ${small}, ${a} <= ${lit(ERF_SPLIT, 'f32')})`;
}

/** GELU with erf, as a WGSL expression of `x` given the WGSL erf of an argument. */
export function geluErfWgsl(x: string, erf: (arg: string) => string): string {
  return `0.5 * ${x} * (1.0 + ${erf(`${x} * ${lit(Math.SQRT1_2, 'f32')}`)})`;
}

/** GELU's tanh approximation as a WGSL expression of `x`. */
export function geluTanhWgsl(x: string): string {
  const inner = `${lit(SQRT_2_OVER_PI, 'f32')} * (${x} + ${lit(GELU_CUBIC, 'f32')} * ${x} * ${x} * ${x})`;
  // tanh() of large |x| is NaN on some drivers (exp overflow): tanh(+-10) is +-1 in f32
  return `0.5 * ${x} * (1.0 + tanh(clamp(${inner}, -10.0, 10.0)))`;
}
