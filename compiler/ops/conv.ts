import type { OpDef } from './op.js';

export const convOps: readonly OpDef[] = [];
