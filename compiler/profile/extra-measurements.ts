/**
 * Modules that register extra profile measurements (compiler/profile/measurements.ts), imported
 * for their side effect by the profile runner. Add one import line per measurement module, e.g.
 *   import './layout-cost.js';   // fills profile.layoutCost (texture vs buffer weights)
 */
import './layout-cost-measurement.js';
import './copies-measurement.js';
