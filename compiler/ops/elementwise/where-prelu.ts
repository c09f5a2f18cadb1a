/**
 * Where and PRelu.
 */
import type { ConstTensor, Node, TensorType } from '../../ir/types.js';
import { describeNode } from '../../ir/graph.js';
import type { LowerTensor } from '../../kernel/types.js';
import { wgslType } from '../../kernel/wgsl.js';
import { fail } from '../../errors.js';
import type { OpDef } from '../op.js';
import { broadcastShapes, foldBroadcast } from './broadcast.js';
import { zero } from './helpers.js';
import { emitElementwise } from './kernel.js';
import { checkDtype, checkSameDtype, requireInputs } from './validate.js';


function planWhere(node: Node, inputs: readonly (TensorType | undefined)[]): TensorType {
  const [c, x, y] = requireInputs(node, inputs, 3);
  checkDtype(node, c!.dtype, 'bool', 'condition');
  checkSameDtype(node, [x!, y!]);
  return { dtype: x!.dtype, shape: broadcastShapes(node, [c!.shape, x!.shape, y!.shape]) };
}

export const whereOp: OpDef = {
  opTypes: ['Where'],
  costClass: 'elementwise',
  fusesActivation: true,
  inferTypes: (ctx) => [planWhere(ctx.node, ctx.inputs)],
  fold(ctx, inputs) {
    const out = planWhere(ctx.node, ctx.inputs);
    const operands = (inputs as ConstTensor[]).map((t) => ({ shape: t.shape, data: t.data }));
    return [foldBroadcast(out.dtype, out.shape, operands, ([c, x, y]) => (c !== 0 ? x! : y!))];
  },
  lower(ctx) {
    planWhere(ctx.node, ctx.inputs.map((t) => t?.type));
    const operands = (ctx.inputs as LowerTensor[]).map((t) => ({ tensor: t, shape: t.type.shape }));
    emitElementwise(ctx, {
      label: 'where', operands, output: ctx.outputs[0]!,
      expr: ([c, x, y]) => ({ code: `select(${y}, ${x}, ${c} != 0)` }),
      activation: ctx.activation,
    });
  },
};

// ---------------------------------------------------------------------------------------------
// PRelu
// ---------------------------------------------------------------------------------------------

/**
 * The shape the slope broadcasts as. From opset 7 it broadcasts unidirectionally (numpy) to X.
 * Before, a slope of X's channel count applied per channel (axis 1), as in the PyTorch exports
 * of that era, so a [C] slope on [N, C, ...] is read as [C, 1, ...].
 */
function preluSlopeShape(node: Node, opset: number, x: readonly number[], slope: readonly number[]): number[] {
  const perChannel = opset < 7 && slope.length === 1 && slope[0] !== 1 && x.length >= 2 && slope[0] === x[1];
  const shape = perChannel ? [slope[0]!, ...new Array<number>(x.length - 2).fill(1)] : [...slope];
  const out = broadcastShapes(node, [x, shape]);
  if (out.length !== x.length || out.some((d, k) => d !== x[k])) {
    fail('FM_SHAPE', `${describeNode(node)}: slope [${slope}] must broadcast to X [${x}] (unidirectional); reshape the slope`);
  }
  return shape;
}

function planPrelu(node: Node, opset: number, inputs: readonly (TensorType | undefined)[]): { out: TensorType; slopeShape: number[] } {
  const [x, slope] = requireInputs(node, inputs, 2);
  checkSameDtype(node, [x!, slope!]);
  checkDtype(node, x!.dtype, 'numeric');
  return { out: { dtype: x!.dtype, shape: [...x!.shape] }, slopeShape: preluSlopeShape(node, opset, x!.shape, slope!.shape) };
}

export const preluOp: OpDef = {
  opTypes: ['PRelu'],
  costClass: 'elementwise',
  fusesActivation: true,
  inferTypes: (ctx) => [planPrelu(ctx.node, ctx.opset, ctx.inputs).out],
  fold(ctx, inputs) {
    const { out, slopeShape } = planPrelu(ctx.node, ctx.opset, ctx.inputs);
    const [x, s] = inputs as ConstTensor[];
    const operands = [{ shape: x!.shape, data: x!.data }, { shape: slopeShape, data: s!.data }];
    return [foldBroadcast(out.dtype, out.shape, operands, ([v, k]) => (v! < 0 ? v! * k! : v!))];
  },
  lower(ctx) {
    const { slopeShape } = planPrelu(ctx.node, ctx.opset, ctx.inputs.map((t) => t?.type));
    const [x, s] = ctx.inputs as LowerTensor[];
    const t = wgslType(x!.type.dtype);
    emitElementwise(ctx, {
      label: 'prelu',
      operands: [{ tensor: x!, shape: x!.type.shape }, { tensor: s!, shape: slopeShape }],
      output: ctx.outputs[0]!,
      expr: ([v, k]) => ({ code: `select(${v}, ${v} * ${k}, ${v} < ${zero(t)})` }),
      activation: ctx.activation,
    });
  },
};
