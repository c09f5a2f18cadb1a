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

export function storeExpr(p: KernelPlan, acc: string, ctx: LowerContext): string {
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
  const store = `{ let m = m0 + ${u(i)}; let n = ${u(part.n0)} + n0 + ${u(j)}; y[yBase + m * ${u(g.N)} + n] = ${storeExpr(p, `acc${i}[${j}]`, ctx)}; }`;
  return conditions.length === 0 ? store : `if (${conditions.join(' && ')}) ${store}`;
}

export type BOperand = 'scalar' | 'vec4' | 'texture';

/**
 * Binds a matmul kernel's operands in binding order: a, b, [c], y (`bindings` holds C only where
 * the epilogue reads it). B is an array of scalars or of vec4 column tiles, or a weight texture.
 */
export function bindOperands(k: KernelBuilder, bindings: readonly LowerTensor[], type: WgslScalar, b: BOperand, aVec4 = false): void {
  const vec4 = `vec4<${type}>` as ElementType;
  k.bind('a', bindings[0]!, aVec4 ? vec4 : type);
  if (b === 'texture') k.bindTexture('b', bindings[1]!);
  else k.bind('b', bindings[1]!, b === 'vec4' ? vec4 : type);
  if (bindings.length === 4) k.bind('c', bindings[2]!, type);
  k.bind('y', bindings[bindings.length - 1]!, type);
}
