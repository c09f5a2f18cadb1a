/** The fit-to-budget driver (compiler/schedule/fit-budget.ts) that planStreaming and multi-model compiles share. */
import { describe, expect, it } from 'vitest';
import { fitToBudget } from '../../compiler/schedule/fit-budget.js';

/** A planner whose real peak overshoots the budget it planned for by `overshoot` bytes (less for variant 'tight'). */
const overshooting = (overshoot: number, calls: [number, string][]) => async (budget: number, variant: string) => {
  calls.push([budget, variant]);
  return { result: `${variant}@${budget}`, peak: budget + (variant === 'tight' ? 0 : overshoot) };
};

describe('fitToBudget', () => {
  it('plans again against a smaller budget until the peak fits', async () => {
    const calls: [number, string][] = [];
    const fitted = await fitToBudget({
      budgetBytes: 100, variants: ['loose'], retries: 4, plan: overshooting(10, calls), shrink: (b, miss) => b - (miss.peak - 100),
    });
    expect(fitted).toEqual({ fitted: 'loose@90' });
    expect(calls).toEqual([[100, 'loose'], [90, 'loose']]);
  });

  it('gives a variant up after its retries, tries the next from startBytes, and returns the last miss when none fits', async () => {
    const calls: [number, string][] = [];
    const never = await fitToBudget({
      budgetBytes: 100, startBytes: 95, variants: ['a', 'b'], retries: 1, plan: overshooting(50, calls), shrink: (b) => b - 1,
    });
    expect(calls).toEqual([[95, 'a'], [94, 'a'], [95, 'b'], [94, 'b']]);
    expect(never).toEqual({ missed: { result: 'b@94', peak: 144 } });
    const tight = await fitToBudget({
      budgetBytes: 100, variants: ['loose', 'tight'], retries: 3, plan: overshooting(50, []), shrink: () => undefined,
    });
    expect(tight).toEqual({ fitted: 'tight@100' });
  });
});
