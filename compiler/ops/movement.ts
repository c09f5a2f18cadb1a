import type { OpDef } from './op.js';

export const movementOps: readonly OpDef[] = [];
