import type { OpDef } from './op.js';

export const matmulOps: readonly OpDef[] = [];
