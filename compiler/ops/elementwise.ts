import type { OpDef } from './op.js';

export const elementwiseOps: readonly OpDef[] = [];
