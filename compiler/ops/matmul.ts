// OWNERSHIP NOTE (from the lead, 01:08): this file has been REASSIGNED to a new engineer to
// parallelise the work. If you were originally given this file, do not edit it: finish your other
// files and mention it in your report. The new owner removes this note when done.
import type { OpDef } from './op.js';

export const matmulOps: readonly OpDef[] = [];
