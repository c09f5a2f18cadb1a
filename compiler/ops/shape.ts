import type { OpDef } from './op.js';

export const shapeOps: readonly OpDef[] = [];
