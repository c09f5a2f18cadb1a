/**
 * Cast and CastLike.
 */
import type { DType, Node, TensorType } from '../../ir/types.js';
import { isFloat } from '../../ir/types.js';
import { describeNode } from '../../ir/graph.js';
import { wgslType } from '../../kernel/wgsl.js';
import { fail, quoteName } from '../../errors.js';
import type { OpDef } from '../op.js';
import { constOf, DTYPE_BY_LEGACY_NAME, DTYPE_BY_ONNX_CODE } from './dtypes.js';
import { boolToI32, zero, type Expr } from './helpers.js';
import { emitElementwise } from './kernel.js';


function castTarget(node: Node, inputs: readonly (TensorType | undefined)[]): DType {
  if (node.opType === 'CastLike') {
    const like = inputs[1];
    if (!like) fail('FM_ONNX_INVALID', `${describeNode(node)}: missing target_type input`);
    return like.dtype;
  }
  const attr = node.attrs.to;
  let dtype: DType | undefined;
  if (attr?.type === 'int') dtype = DTYPE_BY_ONNX_CODE[attr.value];
  else if (attr?.type === 'string') dtype = DTYPE_BY_LEGACY_NAME[attr.value.toUpperCase()];
  else fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute 'to' is missing or not an int`);
  if (!dtype) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: cast to ${quoteName(String(attr.value))} is not supported ` +
      `(supported: float, double, float16, bfloat16, integer types, bool)`);
  }
  return dtype;
}

function planCast(node: Node, inputs: readonly (TensorType | undefined)[]): TensorType {
  const x = inputs[0];
  if (!x) fail('FM_ONNX_INVALID', `${describeNode(node)}: missing input`);
  const to = castTarget(node, inputs);
  if (to === 'uint64' || x.dtype === 'uint64') fail('FM_DTYPE', `${describeNode(node)}: uint64 tensors are not supported on the GPU`);
  return { dtype: to, shape: [...x.shape] };
}

/** WGSL conversion of value `x` of storage type `from` (IR dtype `fromDtype`) to dtype `to`. */
function castExpr(x: string, fromDtype: DType, to: DType): Expr {
  const from = wgslType(fromDtype);
  const asF32 = from === 'f32' ? x : `f32(${x})`;
  const asI32 = from === 'i32' ? x : `i32(${x})`;
  switch (to) {
    case 'float32': case 'float64': return { code: asF32 };
    case 'float16': return { code: `fm_to_f16(${asF32})`, helpers: ['fm_to_f16'] };
    case 'bfloat16': return { code: `fm_to_bf16(${asF32})`, helpers: ['fm_to_bf16'] };
    case 'bool': return { code: boolToI32(`${x} != ${zero(from)}`) };
    // narrow integers wrap like C casts; f32 -> i32 truncates toward zero
    case 'int8': return { code: `(${asI32} << 24u) >> 24u` };
    case 'uint8': return { code: `${asI32} & 255` };
    case 'int16': return { code: `(${asI32} << 16u) >> 16u` };
    case 'uint16': return { code: `${asI32} & 65535` };
    case 'int32': case 'int64': case 'uint32': case 'uint64': return { code: asI32 };
  }
}

export const castOp: OpDef = {
  opTypes: ['Cast', 'CastLike'],
  costClass: 'elementwise',
  inferTypes: (ctx) => [planCast(ctx.node, ctx.inputs)],
  fold(ctx, inputs) {
    const out = planCast(ctx.node, ctx.inputs);
    const x = inputs[0]!;
    // float -> integer truncates toward zero (constOf applies the wrap-around of narrow types)
    const convert = isFloat(x.dtype) && !isFloat(out.dtype) && out.dtype !== 'bool' ? Math.trunc : (v: number) => v;
    return [constOf(out.dtype, out.shape, (i) => convert(x.data[i]!))];
  },
  lower(ctx) {
    const out = planCast(ctx.node, ctx.inputs.map((t) => t?.type));
    const x = ctx.inputs[0]!;
    emitElementwise(ctx, {
      label: 'cast',
      operands: [{ tensor: x, shape: x.type.shape }],
      output: ctx.outputs[0]!,
      expr: ([v]) => castExpr(v!, x.type.dtype, out.dtype),
    });
  },
};
