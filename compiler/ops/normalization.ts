import type { OpDef } from './op.js';

export const normalizationOps: readonly OpDef[] = [];
