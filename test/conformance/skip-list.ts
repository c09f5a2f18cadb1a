/**
 * Conformance cases flashmemc does not run, each with the reason. Reviewed: every entry is a
 * feature outside what a static-shape tensor compiler for WebGPU inference offers. The suite
 * checks that each skipped case really fails to compile with the stated error code, so an
 * entry that starts working must be removed from this list.
 */
import type { ErrorCode } from '../../compiler/errors.js';

export interface Skip {
  reason: string;
  /** the error compiling the case must produce */
  code: ErrorCode;
}

const SEQUENCE: Skip = { reason: 'ONNX sequence types (Sequence* ops) are not tensors; flashmemc compiles tensor graphs', code: 'FM_UNSUPPORTED_OP' };
const STRINGS: Skip = { reason: 'string tensors (StringNormalizer) have no GPU representation', code: 'FM_DTYPE' };

export const SKIPPED: Record<string, Skip> = {
  'simple/test_sequence_model1': SEQUENCE,
  'simple/test_sequence_model2': SEQUENCE,
  'simple/test_sequence_model3': SEQUENCE,
  'simple/test_sequence_model4': SEQUENCE,
  'simple/test_sequence_model5': SEQUENCE,
  'simple/test_sequence_model6': SEQUENCE,
  'simple/test_sequence_model7': SEQUENCE,
  'simple/test_sequence_model8': SEQUENCE,
  'simple/test_strnorm_model_monday_casesensintive_lower': STRINGS,
  'simple/test_strnorm_model_monday_casesensintive_nochangecase': STRINGS,
  'simple/test_strnorm_model_monday_casesensintive_upper': STRINGS,
  'simple/test_strnorm_model_monday_empty_output': STRINGS,
  'simple/test_strnorm_model_monday_insensintive_upper_twodim': STRINGS,
  'simple/test_strnorm_model_nostopwords_nochangecase': STRINGS,
  'simple/test_gradient_of_add': { reason: 'training: the Gradient operator (ai.onnx.preview.training) is not inference', code: 'FM_UNSUPPORTED_OP' },
  'simple/test_gradient_of_add_and_mul': { reason: 'training: the Gradient operator (ai.onnx.preview.training) is not inference', code: 'FM_UNSUPPORTED_OP' },
};
