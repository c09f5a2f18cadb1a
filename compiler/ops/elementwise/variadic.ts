/**
 * Variadic Sum / Mean / Max / Min.
 */
import type { ConstTensor, Node, TensorType } from '../../ir/types.js';
import { describeNode } from '../../ir/graph.js';
import type { LowerTensor } from '../../kernel/types.js';
import { lit, wgslType, type WgslScalar } from '../../kernel/wgsl.js';
import { fail } from '../../errors.js';
import type { OpDef } from '../op.js';
import { broadcastShapes, foldBroadcast } from './broadcast.js';
import type { Expr } from './helpers.js';
import { emitElementwise } from './kernel.js';
import { checkDtype, checkSameDtype, requireInputs } from './validate.js';


/** ONNX Runtime's Max/Min propagate NaN; WGSL max/min may return the other operand. */
function nanPropagating(fn: 'max' | 'min') {
  return (a: string, b: string, t: WgslScalar): Expr => (t === 'i32'
    ? { code: `${fn}(${a}, ${b})` }
    : { code: `fm_${fn}(${a}, ${b})`, helpers: [`fm_${fn}`] });
}

const VARIADIC: Readonly<Record<string, { combine(a: string, b: string, t: WgslScalar): Expr; js(a: number, b: number): number }>> = {
  Sum: { combine: (a, b) => ({ code: `${a} + ${b}` }), js: (a, b) => a + b },
  Mean: { combine: (a, b) => ({ code: `${a} + ${b}` }), js: (a, b) => a + b },
  Max: { combine: nanPropagating('max'), js: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.max(a, b)) },
  Min: { combine: nanPropagating('min'), js: (a, b) => (Number.isNaN(a) || Number.isNaN(b) ? NaN : Math.min(a, b)) },
};

/** Shapes must be equal before opset 8; broadcasting them anyway accepts every valid model. */
function planVariadic(node: Node, inputs: readonly (TensorType | undefined)[]): TensorType {
  const present = requireInputs(node, inputs, 1, Infinity);
  checkSameDtype(node, present);
  checkDtype(node, present[0]!.dtype, 'numeric');
  return { dtype: present[0]!.dtype, shape: broadcastShapes(node, present.map((t) => t.shape)) };
}

export const variadicOp: OpDef = {
  opTypes: Object.keys(VARIADIC),
  costClass: 'elementwise',
  fusesActivation: true,
  inferTypes: (ctx) => [planVariadic(ctx.node, ctx.inputs)],
  fold(ctx, inputs) {
    const out = planVariadic(ctx.node, ctx.inputs);
    const impl = VARIADIC[ctx.node.opType]!;
    const operands = (inputs as ConstTensor[]).map((t) => ({ shape: t.shape, data: t.data }));
    const mean = ctx.node.opType === 'Mean';
    return [foldBroadcast(out.dtype, out.shape, operands, (vals) => {
      const r = vals.reduce((acc, v) => impl.js(acc, v));
      return mean ? r / vals.length : r;
    })];
  },
  lower(ctx) {
    const out = ctx.outputs[0]!;
    planVariadic(ctx.node, ctx.inputs.map((t) => t?.type));
    const impl = VARIADIC[ctx.node.opType]!;
    const inputs = ctx.inputs as LowerTensor[];
    const t = wgslType(out.type.dtype);
    // one binding stays for the output; beyond that, chain kernels through scratch tensors,
    // each folding its inputs into the previous partial result
    const perKernel = Math.min(8, ctx.limits.maxStorageBuffersPerShaderStage) - 1;
    if (perKernel < 2) fail('FM_LIMIT', `${describeNode(ctx.node)}: the target allows too few storage buffers per kernel`);
    let partial: LowerTensor | undefined;
    let next = 0;
    while (next < inputs.length) {
      const room = partial ? perKernel - 1 : perKernel;
      const chunk = inputs.slice(next, next + room);
      next += chunk.length;
      const last = next >= inputs.length;
      const target = last ? out : ctx.scratch(`${ctx.node.opType.toLowerCase()}_partial`, { ...out.type });
      const operands = [...(partial ? [partial] : []), ...chunk].map((tensor) => ({ tensor, shape: tensor.type.shape }));
      emitElementwise(ctx, {
        label: ctx.node.opType.toLowerCase(),
        operands,
        output: target,
        expr: (values) => {
          const combined = values.slice(1).reduce<Expr>((acc, v) => {
            const step = impl.combine(acc.code, v, t);
            return { code: step.code, helpers: [...(acc.helpers ?? []), ...(step.helpers ?? [])] };
          }, { code: values[0]! });
          if (!(last && ctx.node.opType === 'Mean')) return combined;
          return { ...combined, code: `(${combined.code}) / ${lit(inputs.length, t)}` };
        },
        activation: last ? ctx.activation : undefined,
      });
      partial = target;
    }
  },
};
