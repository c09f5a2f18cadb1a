/**
 * Multidirectional (numpy) broadcasting: the output shape, and its evaluation on the host.
 */
import type { ConstTensor, DType, Node } from '../../ir/types.js';
import { numElements } from '../../ir/types.js';
import { hostArrayFor } from '../../ir/tensor.js';
import { describeNode } from '../../ir/graph.js';
import { broadcastStrides } from '../../kernel/strides.js';
import { fail } from '../../errors.js';
import { toDtypeValue } from './dtypes.js';

/** Multidirectional (numpy) broadcast of `shapes`; FM_SHAPE naming the node when incompatible. */
export function broadcastShapes(node: Node, shapes: readonly (readonly number[])[]): number[] {
  const rank = Math.max(0, ...shapes.map((s) => s.length));
  const out = new Array<number>(rank).fill(1);
  for (const shape of shapes) {
    for (let k = 0; k < shape.length; k++) {
      const axis = rank - shape.length + k;
      const d = shape[k]!;
      if (d === out[axis] || d === 1) continue;
      if (out[axis] !== 1) {
        fail('FM_SHAPE', `${describeNode(node)}: input shapes ${shapes.map((s) => `[${s}]`).join(', ')} are not broadcastable ` +
          `(axis ${axis}: ${out[axis]} vs ${d}); reshape the inputs so each axis matches or is 1`);
      }
      out[axis] = d;
    }
  }
  return out;
}

export interface HostOperand {
  shape: readonly number[];
  data: ArrayLike<number>;
}

/** CPU evaluation of a broadcasting elementwise function (constant folding). */
export function foldBroadcast(dtype: DType, outShape: readonly number[], operands: readonly HostOperand[], fn: (values: number[]) => number): ConstTensor {
  const strides = operands.map((op) => broadcastStrides(op.shape, outShape));
  const coords = new Array<number>(outShape.length).fill(0);
  const offsets = operands.map(() => 0);
  const values = operands.map(() => 0);
  const n = numElements(outShape);
  const data = hostArrayFor(dtype, n);
  for (let i = 0; i < n; i++) {
    for (let j = 0; j < operands.length; j++) values[j] = operands[j]!.data[offsets[j]!]!;
    data[i] = toDtypeValue(dtype, fn(values));
    // odometer increment of the output coordinates, keeping every operand offset in step
    for (let axis = outShape.length - 1; axis >= 0; axis--) {
      coords[axis]!++;
      for (let j = 0; j < operands.length; j++) offsets[j]! += strides[j]![axis]!;
      if (coords[axis]! < outShape[axis]!) break;
      for (let j = 0; j < operands.length; j++) offsets[j]! -= strides[j]![axis]! * outShape[axis]!;
      coords[axis] = 0;
    }
  }
  return { dtype, shape: [...outShape], data };
}
