/**
 * What every Gemm/MatMul kernel variant shares: the kernel plan (rows per invocation, workgroup
 * size), the binding of its operands, and the store of each accumulated output element through
 * Gemm's alpha/beta/C epilogue and a fused activation.
 */
import { describeNode } from '../../ir/graph.js';
import { dot, lit, u, type WgslScalar } from '../../kernel/wgsl.js';
import type { KernelBuilder } from '../../kernel/builder.js';
import type { ElementType } from '../../kernel/tensor.js';
import type { LowerTensor } from '../../kernel/types.js';
import { fail } from '../../errors.js';
import { applyActivation } from '../activation.js';
import type { LowerContext } from '../op.js';
import { usesBias, type Epilogue, type MatmulGeometry } from './geometry.js';
import type { BPart } from './packing.js';

export interface KernelPlan {
  g: MatmulGeometry;
  type: WgslScalar;
  part: BPart;
  epi: Epilogue;
  /** output rows per invocation */
  rowTile: number;
  /** invocations per workgroup, all along n */
  workgroupSize: number;
}

/** Rows per invocation: 4 amortises each B vec4 over 4 rows; fewer when M is smaller (no wasted FMAs). */
export function chooseRowTile(M: number): number {
  return M >= 4 ? 4 : M;
}

export function chooseWorkgroupSize(columnTiles: number): number {
  let size = 1;
  while (size < 64 && size < columnTiles) size *= 2;
  return size;
}

/**
 * The stored value of accumulator `acc`; `at` is the output element's index (the residual's too).
 * Needs `m` and `n` in scope where the epilogue reads C.
 */
export function storeExpr(p: KernelPlan, acc: string, ctx: LowerContext, at: string): string {
  const value = epilogueExpr(p, acc, ctx);
  return p.epi.residual ? `${value} + r[${at}]` : value;
}

function epilogueExpr(p: KernelPlan, acc: string, ctx: LowerContext): string {
  const { type, epi } = p;
  const scaled = (value: string, factor: number) =>
    factor === 1 ? value : type === 'f32' ? `${lit(factor, 'f32')} * ${value}` : `i32(${lit(factor, 'f32')} * f32(${value}))`;
  let v = scaled(acc, epi.alpha);
  if (usesBias(epi)) {
    v = `${v} + ${scaled(`c[${dot(['m', 'n'], [epi.bias.strideM, epi.bias.strideN])}]`, epi.beta)}`;
  }
  if (!ctx.activation) return v;
  if (type !== 'f32') fail('FM_UNSUPPORTED_OP', `${describeNode(ctx.node)}: an activation cannot be fused into an integer ${ctx.node.opType}`);
  return applyActivation(`(${v})`, ctx.activation);
}

export function storeStatement(p: KernelPlan, ctx: LowerContext, i: number, j: number): string {
  const { g, part } = p;
  const conditions = [
    ...(g.M % p.rowTile === 0 ? [] : [`m0 + ${u(i)} < ${u(g.M)}`]),
    ...(part.width % 4 === 0 || j === 0 ? [] : [`n0 + ${u(j)} < ${u(part.width)}`]),
  ];
  const store = `{ let m = m0 + ${u(i)}; let n = ${u(part.n0)} + n0 + ${u(j)}; let at = yBase + m * ${u(g.N)} + n; y[at] = ${storeExpr(p, `acc${i}[${j}]`, ctx, 'at')}; }`;
  return conditions.length === 0 ? store : `if (${conditions.join(' && ')}) ${store}`;
}

export type BOperand = 'scalar' | 'vec4' | 'texture';

/**
 * A matmul kernel's bindings are [a, b, c?, r?, y]: C only where the epilogue reads it, R only
 * with a fused residual. These are the epilogue's operands of such a list.
 */
export function epilogueOperands(epi: Epilogue, bindings: readonly LowerTensor[]): { c?: LowerTensor; r?: LowerTensor } {
  let next = 2;
  const c = usesBias(epi) ? bindings[next++] : undefined;
  const r = epi.residual ? bindings[next++] : undefined;
  return { c, r };
}

/** The binding list [a, b, c?, r?, y] of a matmul kernel (see epilogueOperands). */
export function operandList(a: LowerTensor, b: LowerTensor, epi: Epilogue, c: LowerTensor | undefined, r: LowerTensor | undefined, y: LowerTensor): LowerTensor[] {
  return [a, b, ...(c && usesBias(epi) ? [c] : []), ...(r && epi.residual ? [r] : []), y];
}

/** Binds the epilogue's C and R (where present) under the names storeExpr reads. */
export function bindEpilogue(k: KernelBuilder, type: WgslScalar, operands: { c?: LowerTensor; r?: LowerTensor }): void {
  if (operands.c) k.bind('c', operands.c, type);
  if (operands.r) k.bind('r', operands.r, type);
}

/**
 * Binds a matmul kernel's operands in binding order: a, b, [c], [r], y (see operandList). B is an
 * array of scalars or of vec4 column tiles, or a weight texture.
 */
export function bindOperands(k: KernelBuilder, bindings: readonly LowerTensor[], type: WgslScalar, b: BOperand, aVec4: boolean, epi: Epilogue): void {
  const vec4 = `vec4<${type}>` as ElementType;
  k.bind('a', bindings[0]!, aVec4 ? vec4 : type);
  if (b === 'texture') k.bindTexture('b', bindings[1]!);
  else k.bind('b', bindings[1]!, b === 'vec4' ? vec4 : type);
  bindEpilogue(k, type, epilogueOperands(epi, bindings));
  k.bind('y', bindings[bindings.length - 1]!, type);
}
