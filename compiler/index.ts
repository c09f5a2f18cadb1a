/**
 * flashmemc's programmatic API (`import { compileModel } from 'flashmemc'`): the compile drivers,
 * bundle verification and the error type, with their option and report types. The runtime that
 * loads bundles is its own entry, `flashmemc/runtime`; the bundle format's JSON Schemas are
 * `flashmemc/schemas/<name>.schema.json`.
 */
export { compileModel, type CompileOptions, type CompileProgress, type CompileReport } from './compile.js';
export { compileMultiModel, type ModelInput, type MultiCompileOptions, type MultiCompileReport } from './compile-multi.js';
export { compileDecoder, type DecoderCompileOptions } from './compile-decoder.js';
export { verifyBundleDir, type VerifyBundleOptions, type VerifyReport } from './bundle/verify.js';
export { generateRuntime, type GeneratedRuntime } from './bundle/runtime-gen.js';
export { ERROR_CODES, FlashmemError, type ErrorCode } from './errors.js';
export { FORMAT_VERSION } from '../schemas/common.js';
