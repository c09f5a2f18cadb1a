/**
 * Load-plan solve time (glpk.js ILP in rolling windows) on synthetic graphs of growing size.
 *   npx tsx bench/load-plan.ts
 */
import { solveLoadPlan, type LoadProblem } from '../compiler/schedule/load-plan.js';

const MIB = 1048576;

function problem(kernels: number, weights: number): LoadProblem {
  return {
    steps: Array.from({ length: kernels }, (_, k) => ({ capacityBytes: (k % 3 === 0 ? 2 : 0.25) * MIB, activationBytes: MIB })),
    weights: Array.from({ length: weights }, (_, i) => {
      const first = 1 + Math.floor((i * (kernels - 2)) / weights);
      return { id: `w${i}`, bytes: MIB * (1 + (i % 4)), firstUse: first, lastUse: Math.min(kernels - 1, first + (i % 3)) };
    }),
    budgetBytes: 64 * MIB, overheadBytes: MIB, chunkBytes: 256 * 1024, maxDistance: 6, uploadBytesPerMs: 4 * MIB,
  };
}

const rows = ['| kernels | weights | status | windows | greedy windows | preloaded | solve s |', '|---|---|---|---|---|---|---|'];
for (const [k, w] of [[100, 40], [300, 120], [1000, 400]] as const) {
  const plan = await solveLoadPlan(problem(k, w));
  rows.push(`| ${k} | ${w} | ${plan.stats.status} | ${plan.stats.windows} | ${plan.stats.greedyWindows} | ${plan.weights.filter((x) => x.preload).length} | ${(plan.stats.solveMs / 1000).toFixed(2)} |`);
}
console.log(rows.join('\n'));
