/**
 * Reductions and the ops built on them: Softmax / LogSoftmax, the Reduce* family, ArgMax /
 * ArgMin and CumSum. All of them see the input as "rows": each output element (or each softmax
 * row) combines the elements of a set of reduced axes. Two kernel shapes cover every case:
 *  - one workgroup per row, partial results combined by a tree reduction in workgroup memory:
 *    for long rows (1000 classes, 50257-entry vocabularies) and rows contiguous in memory;
 *  - one invocation per row with a serial loop: for many short rows, and for strided rows where
 *    neighbouring invocations then read neighbouring addresses (reductions over non-last axes
 *    need no transpose).
 */
import type { OpDef } from '../op.js';
import { softmaxOps } from './softmax.js';
import { reduceFamily } from './reduce-family.js';
import { argFamily } from './arg.js';
import { cumSumOp } from './cumsum.js';

export const reduceOps: readonly OpDef[] = [softmaxOps, reduceFamily, argFamily, cumSumOp];
