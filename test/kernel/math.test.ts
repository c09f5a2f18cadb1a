import { describe, expect, it } from 'vitest';
import { erfApproximationHost, erfHost, erfWgslExpression, erfWgslFunction, geluErfWgsl, geluHost, geluTanhWgsl } from '../../compiler/kernel/math.js';

// reference values: Python math.erf (correctly rounded double-precision erf)
const ERF: readonly [number, number][] = [
  [0, 0], [0.1, 0.1124629160182849], [0.5, 0.5204998778130465], [-0.7, -0.6778011938374184], [1, 0.8427007929497149],
  [1.5, 0.9661051464753108], [2, 0.9953222650189527], [3, 0.9999779095030014], [4, 0.9999999845827421], [7, 1],
];
// x * Phi(x), and 0.5 x (1 + tanh(sqrt(2/pi) (x + 0.044715 x^3)))
const GELU: readonly [number, number, number][] = [
  [-3, -0.00404969409489031, -0.0036373920817729943], [-1, -0.15865525393145707, -0.15880800939172324],
  [0.5, 0.34573123063700656, 0.34571400982514394], [1, 0.8413447460685429, 0.8411919906082768], [2, 1.9544997361036416, 1.954597694087775],
];

function maxError(f32: boolean): number {
  let worst = 0;
  const n = 100000;
  for (let i = 0; i <= n; i++) {
    const x = -6 + (12 * i) / n;
    const at = f32 ? Math.fround(x) : x;
    worst = Math.max(worst, Math.abs(erfApproximationHost(x, f32) - erfHost(at)));
  }
  return worst;
}

describe('kernel/math', () => {
  it('erfHost matches reference values to double precision', () => {
    for (const [x, want] of ERF) {
      expect(erfHost(x)).toBeCloseTo(want, 14);
      expect(erfHost(-x)).toBeCloseTo(-want, 14);
    }
    expect(erfHost(NaN)).toBeNaN();
    expect(erfHost(Infinity)).toBe(1);
  });

  it('geluHost: erf and tanh forms match reference values', () => {
    for (const [x, exact, tanh] of GELU) {
      expect(geluHost(x, 'none')).toBeCloseTo(exact, 14);
      expect(geluHost(x, 'tanh')).toBeCloseTo(tanh, 14);
    }
  });

  it('the GPU erf approximation stays within its error bound over [-6, 6]', () => {
    // measured: 5.4e-8 in double, 1.1e-7 with every operation rounded to f32
    expect(maxError(false)).toBeLessThan(6e-8);
    expect(maxError(true)).toBeLessThan(1.2e-7);
    expect(erfApproximationHost(10)).toBe(1);
    expect(erfApproximationHost(-10)).toBe(-1);
    expect(erfApproximationHost(NaN)).toBeNaN();
  });

  it('renders one approximation as a WGSL function and as an expression', () => {
    const fn = erfWgslFunction();
    expect(fn.startsWith('fn fm_erf(x: f32) -> f32 {')).toBe(true);
    const expr = erfWgslExpression('(v)');
    for (const c of ['f32(1.12837911)', 'f32(-0.0000190952505)', 'f32(3.92000008)', 'f32(0.899999976)']) {
      expect(fn).toContain(c);
      expect(expr).toContain(c);
    }
    expect(geluErfWgsl('v', (a) => `fm_erf(${a})`)).toBe('0.5 * v * (1.0 + fm_erf(v * f32(0.707106769)))');
    expect(geluTanhWgsl('v')).toBe('0.5 * v * (1.0 + tanh(clamp(f32(0.797884583) * (v + f32(0.0447149985) * v * v * v), -10.0, 10.0)))');
  });
});
