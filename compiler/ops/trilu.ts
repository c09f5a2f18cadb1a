/**
 * Trilu (opset 14): keeps the upper (upper=1) or lower triangle of the last two axes of its input,
 * shifted by the diagonal offset k, and zeroes the rest. Exporters emit it for causal masks
 * (torch.triu/tril); such masks are usually constant and folded, the kernel covers runtime inputs.
 */
import { attrInt } from '../ir/attrs.js';
import { hostArrayFor } from '../ir/tensor.js';
import { numElements, type ConstTensor, type TensorType } from '../ir/types.js';
import { grid1D, lit, u, wgslType } from '../kernel/wgsl.js';
import { kernel } from '../kernel/builder.js';
import { fail } from '../errors.js';
import type { OpDef, ShapeContext } from './op.js';
import { describeNode } from '../ir/graph.js';
import { assertBindable, optionalConstValues, requiredInput, shapeContextOf } from './shape.js';

interface TriluPlan {
  type: TensorType;
  upper: boolean;
  /** diagonal offset: upper keeps col - row >= k, lower keeps col - row <= k */
  k: number;
  rows: number;
  cols: number;
}

function triluPlan(ctx: ShapeContext): TriluPlan {
  if (ctx.opset < 14) fail('FM_UNSUPPORTED_OP', `${describeNode(ctx.node)}: Trilu does not exist before opset 14 (model opset ${ctx.opset})`);
  const x = requiredInput(ctx, 0, 'input');
  if (x.shape.length < 2) fail('FM_SHAPE', `${describeNode(ctx.node)}: input of shape [${x.shape}] needs rank >= 2`);
  const kValues = optionalConstValues(ctx, 1, 'k');
  if (kValues && kValues.length !== 1) fail('FM_SHAPE', `${describeNode(ctx.node)}: k must be a scalar, it has ${kValues.length} elements`);
  const upper = attrInt(ctx.node, 'upper', 1);
  if (upper !== 0 && upper !== 1) fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: upper must be 0 or 1, got ${upper}`);
  return {
    type: { dtype: x.dtype, shape: [...x.shape] },
    upper: upper === 1,
    k: kValues?.[0] ?? 0,
    rows: x.shape[x.shape.length - 2]!,
    cols: x.shape[x.shape.length - 1]!,
  };
}

function keeps(p: TriluPlan, row: number, col: number): boolean {
  return p.upper ? col - row >= p.k : col - row <= p.k;
}

function foldTrilu(p: TriluPlan, x: ConstTensor): ConstTensor {
  const out = hostArrayFor(x.dtype, x.data.length);
  for (let i = 0; i < out.length; i++) {
    const col = i % p.cols;
    const row = Math.floor(i / p.cols) % p.rows;
    out[i] = keeps(p, row, col) ? x.data[i]! : 0;
  }
  return { dtype: x.dtype, shape: [...x.shape], data: out };
}

export const triluOp: OpDef = {
  opTypes: ['Trilu'],
  costClass: 'elementwise',
  inferTypes: (ctx) => [triluPlan(ctx).type],
  fold: (ctx, inputs) => [foldTrilu(triluPlan(ctx), inputs[0]!)],
  lower(ctx) {
    const p = triluPlan(shapeContextOf(ctx));
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    const total = numElements(p.type.shape);
    if (total === 0) return;
    assertBindable(ctx, [x, y]);
    const t = wgslType(p.type.dtype);
    // col - row compared in i32: k may be negative or exceed either dimension
    const diff = `i32(i % ${u(p.cols)}) - i32((i / ${u(p.cols)}) % ${u(p.rows)})`;
    const cond = p.upper ? `${diff} >= ${lit(p.k, 'i32')}` : `${diff} <= ${lit(p.k, 'i32')}`;
    const zero = t === 'f32' ? '0.0' : '0';
    const k = kernel(p.upper ? 'triu' : 'tril');
    const xv = k.bind('x', x, t);
    const yv = k.bind('y', y, t);
    ctx.kernel(k.buildGrid1D(grid1D(total), `${yv.at('i')} = select(${zero}, ${xv.at('i')}, ${cond});`));
  },
};
