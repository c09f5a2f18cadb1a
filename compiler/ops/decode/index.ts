/**
 * The decode loop's kernels (not ONNX ops): what a decoder bundle runs around its decode graph so
 * that a token costs one submission and a 4-byte readback (compiler/schedule/decode-loop.ts).
 */
export { CONTROL, CONTROL_BYTES, CONTROL_WORDS } from './control.js';
export { nextInputsKernel, type NextInputsPlan } from './next-inputs.js';
export { cacheWriteKernel, type CacheWritePlan } from './cache-write.js';
export { selectTokenKernel, type SelectTokenPlan } from './select-token.js';
