/**
 * Registers the layout micro-benchmark (layout-cost.ts) as a profile measurement: `flashmemc
 * profile` then fills profile.layoutCost, which `--weight-layout auto` compiles with.
 */
import { registerProfileMeasurement } from './measurements.js';
import { layoutCases, layoutCostOf, timeLayouts } from './layout-cost.js';

registerProfileMeasurement({
  name: 'layout-cost',
  async run(ctx) {
    const timings = await timeLayouts(ctx.device, ctx.limits, layoutCases(ctx.quick), (record) => ctx.timeUs(record), (line) => ctx.log(line));
    return { layoutCost: layoutCostOf(timings) };
  },
});
