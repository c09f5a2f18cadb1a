/**
 * Elementwise op families: binary arithmetic, comparison and logic with numpy broadcasting (and
 * the legacy opset < 7 `broadcast`/`axis` form), Where, PRelu, variadic Sum/Mean/Max/Min, unary
 * math and predicates, and Cast.
 *
 * One kernel template serves all of them (emitElementwise): each invocation computes 4 adjacent
 * output elements (vec4 loads/stores) or 1 where the shapes do not allow it; operand indices are
 * specialised per shape: operands of the output's shape read `x[i]` with no index arithmetic,
 * one-element operands read `x[0]` or become a literal when constant, broadcast operands use
 * literal strides (0 on broadcast axes) over the output axes merged where all operands agree.
 *
 * Integer semantics follow ONNX Runtime: every integer and bool dtype computes in i32 on the GPU
 * (int64 is held as i32), Div truncates toward zero, Mod follows the divisor's sign unless fmod=1.
 */
import type { OpDef } from '../op.js';
import { binaryFamily, BINARY_ARITHMETIC, BINARY_PREDICATES } from './binary.js';
import { whereOp, preluOp } from './where-prelu.js';
import { variadicOp } from './variadic.js';
import { unaryFamily, UNARY_MATH, UNARY_PREDICATES } from './unary.js';
import { castOp } from './cast.js';

export { broadcastShapes } from './broadcast.js';
export { toDtypeValue } from './dtypes.js';

export const elementwiseOps: readonly OpDef[] = [
  binaryFamily(BINARY_ARITHMETIC, true),
  binaryFamily(BINARY_PREDICATES, false),
  whereOp,
  preluOp,
  variadicOp,
  unaryFamily(UNARY_MATH, true),
  unaryFamily(UNARY_PREDICATES, false),
  castOp,
];
