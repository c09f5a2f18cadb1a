/**
 * ArgMax and ArgMin: a row reduction whose state carries the best value and its index.
 */
import { attrInt } from '../../ir/attrs.js';
import { makeConst } from '../../ir/tensor.js';
import { type ConstTensor, type Node } from '../../ir/types.js';
import { lit, wgslType, type WgslScalar } from '../../kernel/wgsl.js';
import { describeNode } from '../../ir/graph.js';
import { fail } from '../../errors.js';
import type { OpDef } from '../op.js';
import { type Algebra, emitRowKernel, normalizeAxis, reductionLayout } from './rows.js';
import { forEachRow } from './reduce-family.js';

// ---------------------------------------------------------------------------------------------
// ArgMax / ArgMin
// ---------------------------------------------------------------------------------------------

interface ArgParams {
  axis: number;
  keepdims: boolean;
  selectLast: boolean;
}

function argParams(node: Node, rank: number): ArgParams {
  return {
    axis: normalizeAxis(node, attrInt(node, 'axis', 0), rank, 'axis'),
    keepdims: attrInt(node, 'keepdims', 1) !== 0,
    selectLast: attrInt(node, 'select_last_index', 0) !== 0,
  };
}

/**
 * State: best value a0 and its index a1 (-1 before the first element). Ties keep the first index,
 * or the last with select_last_index; each invocation sees its indices in increasing order, and
 * the combine step compares indices so the tree keeps the same rule.
 */
function argAlgebra(type: WgslScalar, isMax: boolean, selectLast: boolean): Algebra {
  const better = isMax ? '>' : '<';
  const tieWins = selectLast ? 'b1 > a1' : 'b1 < a1';
  return {
    acc: [{ type, init: lit(0, type) }, { type: 'i32', init: '-1' }],
    valueType: type,
    accumulate: `if (a1 < 0 || v ${better}${selectLast ? '=' : ''} a0) { a0 = v; a1 = i32(k); }`,
    combine: `if (b1 >= 0 && (a1 < 0 || b0 ${better} a0 || (b0 == a0 && ${tieWins}))) { a0 = b0; a1 = b1; }`,
  };
}

function argOnCpu(node: Node, x: ConstTensor): ConstTensor {
  const p = argParams(node, x.shape.length);
  const isMax = node.opType === 'ArgMax';
  const out: number[] = [];
  forEachRow(reductionLayout(x.shape, new Set([p.axis])), (offsets) => {
    let best = 0;
    offsets.forEach((o, k) => {
      const v = x.data[o]!, b = x.data[offsets[best]!]!;
      const wins = isMax ? v > b : v < b;
      if (wins || (p.selectLast && v === b)) best = k;
    });
    out.push(best);
  });
  return makeConst('int64', argOutputShape(x.shape, p), out);
}

function argOutputShape(shape: readonly number[], p: ArgParams): number[] {
  return shape.flatMap((d, i) => (i === p.axis ? (p.keepdims ? [1] : []) : [d]));
}

export const argFamily: OpDef = {
  opTypes: ['ArgMax', 'ArgMin'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    const x = ctx.inputs[0]!;
    if (x.shape.length === 0) fail('FM_SHAPE', `${describeNode(ctx.node)}: the input must have rank >= 1`);
    if (x.shape[argParams(ctx.node, x.shape.length).axis] === 0) {
      fail('FM_SHAPE', `${describeNode(ctx.node)}: cannot take the ${ctx.node.opType} of an empty axis`);
    }
    return [{ dtype: 'int64', shape: argOutputShape(x.shape, argParams(ctx.node, x.shape.length)) }];
  },
  fold: (ctx, inputs) => [argOnCpu(ctx.node, inputs[0]!)],
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const type = wgslType(x.type.dtype);
    const p = argParams(ctx.node, x.type.shape.length);
    emitRowKernel(ctx, {
      label: ctx.node.opType.toLowerCase(),
      layout: reductionLayout(x.type.shape, new Set([p.axis])),
      inType: type,
      outType: 'i32',
      algebra: argAlgebra(type, ctx.node.opType === 'ArgMax', p.selectLast),
      // a1 stays -1 only for an axis of length 1 dropped from the layout: its index is 0
      epilogue: { kind: 'reduce', result: 'max(a1, 0)' },
    });
  },
};
