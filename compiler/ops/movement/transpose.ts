/**
 * Transpose (plain, or through a workgroup tile when it swaps the two inner axes),
 * DepthToSpace and SpaceToDepth, as copy plans.
 */
import { attrInt, attrInts, attrString } from '../../ir/attrs.js';
import { stridesOf } from '../../kernel/strides.js';
import { type Node, numElements, type TensorType } from '../../ir/types.js';
import { u, wgslType } from '../../kernel/wgsl.js';
import { LID, WID, kernel } from '../../kernel/builder.js';
import { fail } from '../../errors.js';
import type { OpDef, ShapeContext } from '../op.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import { assertBindable, nodeLabel, requiredInput, shapeContextOf } from '../shape.js';
import { type CopyPlan, type PlanAxis, emitPlan, gatherPlan, planOp, simplifyPlan } from './plan.js';

// ---------------------------------------------------------------------------------------------
// Transpose, DepthToSpace, SpaceToDepth

function transposePlan(inShape: readonly number[], perm: readonly number[]): CopyPlan {
  const inStrides = stridesOf(inShape);
  return gatherPlan(perm.map((p) => inShape[p]!), perm.map((p) => ({ kind: 'linear', coef: inStrides[p]! })));
}

function transposePerm(node: Node, rank: number): number[] {
  const perm = attrInts(node, 'perm') ?? Array.from({ length: rank }, (_, i) => rank - 1 - i);
  const isPermutation = perm.length === rank && [...perm].sort((a, b) => a - b).every((p, i) => p === i);
  if (!isPermutation) fail('FM_SHAPE', `${nodeLabel(node)}: perm [${perm}] is not a permutation of the ${rank} input axes`);
  return perm;
}

export function transposeSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const x = requiredInput(ctx, 0, 'data');
  const perm = transposePerm(ctx.node, x.shape.length);
  return { type: { dtype: x.dtype, shape: perm.map((p) => x.shape[p]!) }, plan: transposePlan(x.shape, perm) };
}

const TILE = 16;

/**
 * A transpose that, once simplified, swaps the two inner axes of a [batch, rows, cols] array
 * (NCHW<->NHWC, matrix transposes). Such a transpose goes through a workgroup tile so that both
 * the reads and the writes are contiguous.
 */
function swappedInnerAxes(plan: CopyPlan): { batch: number; rows: number; cols: number } | undefined {
  const axes = plan.axes;
  if (axes.length < 2 || axes.length > 3 || axes.some((a) => a.read.kind !== 'linear')) return undefined;
  const coef = (a: PlanAxis) => (a.read as { coef: number }).coef;
  const [rowAxis, colAxis] = axes.slice(-2) as [PlanAxis, PlanAxis];
  const rows = rowAxis.size;
  const cols = colAxis.size;
  if (coef(rowAxis) !== 1 || coef(colAxis) !== rows) return undefined;
  const batch = axes.length === 3 ? axes[0]!.size : 1;
  if (axes.length === 3 && coef(axes[0]!) !== rows * cols) return undefined;
  const grid = [Math.ceil(rows / TILE), Math.ceil(cols / TILE), batch];
  return grid.every((g) => g <= 65535) ? { batch, rows, cols } : undefined;
}

/** y[b][r][c] = x[b][c][r] through a TILE x TILE workgroup tile. */
function tiledTransposeKernel(x: LowerTensor, y: LowerTensor, batch: number, rows: number, cols: number): KernelSpec {
  const type = wgslType(y.type.dtype);
  const matrix = rows * cols;
  const body = [
    `let r0 = wg.x * ${u(TILE)};`,
    `let c0 = wg.y * ${u(TILE)};`,
    `let base = wg.z * ${u(matrix)};`,
    '// read: consecutive lanes take consecutive rows r of input row c',
    `if (r0 + l.x < ${u(rows)} && c0 + l.y < ${u(cols)}) { tile[l.y][l.x] = x[base + (c0 + l.y) * ${u(rows)} + r0 + l.x]; }`,
    'workgroupBarrier();',
    '// write: consecutive lanes take consecutive columns c of output row r',
    `if (r0 + l.y < ${u(rows)} && c0 + l.x < ${u(cols)}) { y[base + (r0 + l.y) * ${u(cols)} + c0 + l.x] = tile[l.x][l.y]; }`,
  ].join('\n  ');
  const k = kernel('transpose_tiled');
  k.bind('x', x, type);
  k.bind('y', y, type);
  // the +1 column keeps the column-wise tile reads off a single shared-memory bank
  const tile = k.workgroupArray('tile', `array<${type}, ${TILE + 1}>`, TILE);
  return k.build({
    header: `${k.declarations()}\n\n${tile}\n\n`,
    entry: { workgroupSize: [TILE, TILE], params: [{ ...WID, name: 'wg' }, { ...LID, name: 'l' }], body },
    workgroups: [Math.ceil(rows / TILE), Math.ceil(cols / TILE), batch],
  });
}

export const transposeOp: OpDef = {
  ...planOp(['Transpose'], () => 'transpose', transposeSpec),
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    const plan = simplifyPlan(transposeSpec(shapeContextOf(ctx)).plan);
    const tiled = swappedInnerAxes(plan);
    if (!tiled || numElements(y.type.shape) === 0) {
      emitPlan(ctx, 'transpose', plan, x, y);
      return;
    }
    assertBindable(ctx, [x, y]);
    ctx.kernel(tiledTransposeKernel(x, y, tiled.batch, tiled.rows, tiled.cols));
  },
};

function blockSize(node: Node): number {
  const b = attrInt(node, 'blocksize');
  if (b === undefined || !Number.isInteger(b) || b < 1) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: attribute "blocksize" must be a positive integer, got ${b}`);
  return b;
}

function nchw(ctx: ShapeContext): [TensorType, number, number, number, number] {
  const x = requiredInput(ctx, 0, 'input');
  if (x.shape.length !== 4) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: input must be 4-D [N, C, H, W], got [${x.shape}]`);
  const [n, c, h, w] = x.shape as [number, number, number, number];
  return [x, n, c, h, w];
}

/** DepthToSpace is a transpose of a 6-D view of the input; the output is a 4-D view of the result. */
export function depthToSpaceSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const [x, n, c, h, w] = nchw(ctx);
  const b = blockSize(ctx.node);
  // the mode attribute appeared in opset 11; before it the layout was always DCR
  const mode = ctx.opset >= 11 ? attrString(ctx.node, 'mode', 'DCR') : 'DCR';
  if (mode !== 'DCR' && mode !== 'CRD') fail('FM_UNSUPPORTED_OP', `${nodeLabel(ctx.node)}: mode ${JSON.stringify(mode)} is not supported (DCR or CRD)`);
  if (c % (b * b) !== 0) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: channels (${c}) must be divisible by blocksize² (${b * b})`);
  const cOut = c / (b * b);
  const plan = mode === 'DCR'
    ? transposePlan([n, b, b, cOut, h, w], [0, 3, 4, 1, 5, 2])
    : transposePlan([n, cOut, b, b, h, w], [0, 1, 4, 2, 5, 3]);
  return { type: { dtype: x.dtype, shape: [n, cOut, h * b, w * b] }, plan };
}

export function spaceToDepthSpec(ctx: ShapeContext): { type: TensorType; plan: CopyPlan } {
  const [x, n, c, h, w] = nchw(ctx);
  const b = blockSize(ctx.node);
  if (h % b !== 0 || w % b !== 0) fail('FM_SHAPE', `${nodeLabel(ctx.node)}: height (${h}) and width (${w}) must be divisible by blocksize (${b})`);
  const plan = transposePlan([n, c, h / b, b, w / b, b], [0, 3, 5, 1, 2, 4]);
  return { type: { dtype: x.dtype, shape: [n, c * b * b, h / b, w / b] }, plan };
}
