/**
 * Input count and dtype checks shared by the elementwise ops.
 */
import type { DType, Node, TensorType } from '../../ir/types.js';
import { isFloat } from '../../ir/types.js';
import { describeNode } from '../../ir/graph.js';
import { fail } from '../../errors.js';

export function requireInputs<T>(node: Node, inputs: readonly (T | undefined)[], min: number, max = min): T[] {
  const present = inputs.filter((t): t is T => t !== undefined);
  if (present.length !== inputs.length || inputs.length < min || inputs.length > max) {
    const want = min === max ? `${min}` : max === Infinity ? `at least ${min}` : `${min} to ${max}`;
    fail('FM_ONNX_INVALID', `${describeNode(node)}: expects ${want} inputs, got ${present.length} of ${inputs.length}`);
  }
  return present;
}

export type DtypeClass = 'float' | 'numeric' | 'bool' | 'numeric-or-bool';

export function checkDtype(node: Node, dtype: DType, cls: DtypeClass, what = 'input'): void {
  const ok = cls === 'float' ? isFloat(dtype)
    : cls === 'numeric' ? dtype !== 'bool'
      : cls === 'bool' ? dtype === 'bool'
        : true;
  if (!ok) {
    const want = cls === 'numeric' ? 'a numeric type' : cls === 'float' ? 'a floating-point type' : 'bool';
    fail('FM_DTYPE', `${describeNode(node)}: ${what} has dtype ${dtype}, expected ${want}`);
  }
}

export function checkSameDtype(node: Node, types: readonly TensorType[]): void {
  const first = types[0]!.dtype;
  const other = types.find((t) => t.dtype !== first);
  if (other) fail('FM_ONNX_INVALID', `${describeNode(node)}: inputs must share one dtype, got ${first} and ${other.dtype}`);
}
