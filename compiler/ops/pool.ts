import type { OpDef } from './op.js';

export const poolOps: readonly OpDef[] = [];
