/**
 * Softmax and LogSoftmax (all opsets) as row reductions with a normalising epilogue.
 */
import { forEachRow, maxOf } from './reduce-family.js';
import { attrInt } from '../../ir/attrs.js';
import { makeConst } from '../../ir/tensor.js';
import { type ConstTensor, type Node } from '../../ir/types.js';
import type { OpDef } from '../op.js';
import { LOG_SUM_EXP_ALGEBRA, emitRowKernel, normalizeAxis, reductionLayout, requireFloat } from './rows.js';

// ---------------------------------------------------------------------------------------------
// Softmax / LogSoftmax
// ---------------------------------------------------------------------------------------------

/**
 * Before opset 13 the input is coerced to 2-D [prod(shape[:axis]), prod(shape[axis:])] (default
 * axis 1), so the "row" spans every axis from `axis` on; from 13 it is the single axis (default -1).
 */
function softmaxReducedAxes(node: Node, opset: number, rank: number): Set<number> {
  const legacy = opset < 13;
  const axis = normalizeAxis(node, attrInt(node, 'axis', legacy ? 1 : -1), rank, 'axis');
  if (!legacy) return new Set([axis]);
  return new Set(Array.from({ length: rank - axis }, (_, i) => axis + i));
}

function softmaxOnCpu(node: Node, opset: number, x: ConstTensor): ConstTensor {
  const layout = reductionLayout(x.shape, softmaxReducedAxes(node, opset, x.shape.length));
  const out = new Float64Array(x.data.length);
  const log = node.opType === 'LogSoftmax';
  forEachRow(layout, (offsets) => {
    const max = maxOf(offsets.map((o) => x.data[o]!));
    const sum = offsets.reduce((s, o) => s + Math.exp(x.data[o]! - max), 0);
    for (const o of offsets) out[o] = log ? x.data[o]! - max - Math.log(sum) : Math.exp(x.data[o]! - max) / sum;
  });
  return makeConst(x.dtype, x.shape, out);
}

export const softmaxOps: OpDef = {
  opTypes: ['Softmax', 'LogSoftmax'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    const x = ctx.inputs[0]!;
    requireFloat(ctx.node, x);
    softmaxReducedAxes(ctx.node, ctx.opset, x.shape.length);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  fold: (ctx, inputs) => [softmaxOnCpu(ctx.node, ctx.opset, inputs[0]!)],
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const layout = reductionLayout(x.type.shape, softmaxReducedAxes(ctx.node, ctx.opset, x.type.shape.length));
    const log = ctx.node.opType === 'LogSoftmax';
    emitRowKernel(ctx, {
      label: log ? 'log_softmax' : 'softmax',
      layout,
      inType: 'f32',
      outType: 'f32',
      algebra: LOG_SUM_EXP_ALGEBRA,
      epilogue: log
        ? { kind: 'normalize', prepare: 'let shift = a0 + log(a1);', element: 'v - shift' }
        : { kind: 'normalize', prepare: 'let inv = 1.0 / a1;', element: 'exp(v - a0) * inv' },
    });
  },
};
