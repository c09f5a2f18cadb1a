/**
 * The fit-to-budget driver: a planner counts live bytes, but what is allocated also pays for
 * fragmentation and sharing, so a plan can overshoot the budget it was made for. The driver plans,
 * measures the real peak, and plans again against a smaller budget until the peak fits; then
 * it tries the next, more conservative variant of the planner (if any) from the start again.
 * Used by planStreaming (the arena against the budget) and compileMultiContents (the models' shared buffers).
 */
export interface FitAttempt<T> {
  result: T;
  /** bytes the result really allocates */
  peak: number;
}

export interface FitProblem<T, V> {
  /** the budget the peak must fit */
  budgetBytes: number;
  /** the budget each variant first plans for (default budgetBytes) */
  startBytes?: number;
  /** planner variants, tried in order, each from startBytes */
  variants: readonly V[];
  /** misses re-planned per variant before it is given up */
  retries: number;
  plan(budget: number, variant: V): Promise<FitAttempt<T>>;
  /** the next budget to plan for after a miss (attempt counts from 0), or undefined to give the variant up */
  shrink(budget: number, miss: FitAttempt<T>, attempt: number): number | undefined;
}

/** The first result whose peak fits, or the last miss when none does. */
export async function fitToBudget<T, V>(problem: FitProblem<T, V>): Promise<{ fitted: T } | { missed: FitAttempt<T> }> {
  let missed: FitAttempt<T> | undefined;
  for (const variant of problem.variants) {
    let budget: number | undefined = problem.startBytes ?? problem.budgetBytes;
    for (let attempt = 0; budget !== undefined; attempt++) {
      const tried = await problem.plan(budget, variant);
      if (tried.peak <= problem.budgetBytes) return { fitted: tried.result };
      missed = tried;
      budget = attempt === problem.retries ? undefined : problem.shrink(budget, tried, attempt);
    }
  }
  if (!missed) throw new Error('internal: fitToBudget needs at least one variant');
  return { missed };
}
