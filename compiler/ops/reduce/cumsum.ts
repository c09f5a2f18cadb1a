/**
 * CumSum: serial scans for interleaved lines, a workgroup (Hillis-Steele) scan for long contiguous ones.
 */
import { attrInt } from '../../ir/attrs.js';
import { constToInts, makeConst } from '../../ir/tensor.js';
import { type ConstTensor, type Node, numElements } from '../../ir/types.js';
import { grid1D, lit, nextPow2, rowGrid, u, wgslType, type WgslScalar } from '../../kernel/wgsl.js';
import { GID, type KernelBuilder } from '../../kernel/builder.js';
import { describeNode } from '../../ir/graph.js';
import { fail } from '../../errors.js';
import type { OpDef } from '../op.js';
import type { KernelSpec } from '../../kernel/types.js';
import { assertBindable } from '../shape.js';
import type { TargetLimits } from '../../target/limits.js';
import { normalizeAxis, product, workgroupEntry, xyKernel } from './rows.js';

// ---------------------------------------------------------------------------------------------
// CumSum
// ---------------------------------------------------------------------------------------------

interface ScanLayout {
  outer: number;
  length: number;
  /** stride of the scanned axis = number of independent lines interleaved with each other */
  inner: number;
  exclusive: boolean;
  reverse: boolean;
}

function cumSumLayout(node: Node, shape: readonly number[], axisInput: ConstTensor | undefined): ScanLayout {
  if (!axisInput) {
    fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: the axis input must be a compile-time constant (kernels are specialised per shape)`);
  }
  if (axisInput.data.length !== 1) fail('FM_SHAPE', `${describeNode(node)}: axis must be a scalar, got shape [${axisInput.shape}]`);
  const axis = normalizeAxis(node, constToInts(axisInput)[0]!, shape.length, 'axis');
  return {
    outer: product(shape.slice(0, axis)),
    length: shape[axis]!,
    inner: product(shape.slice(axis + 1)),
    exclusive: attrInt(node, 'exclusive', 0) !== 0,
    reverse: attrInt(node, 'reverse', 0) !== 0,
  };
}

function cumSumOnCpu(node: Node, x: ConstTensor, axisInput: ConstTensor | undefined): ConstTensor {
  const s = cumSumLayout(node, x.shape, axisInput);
  const out = new Float64Array(x.data.length);
  for (let o = 0; o < s.outer; o++) {
    for (let n = 0; n < s.inner; n++) {
      let acc = 0;
      for (let j = 0; j < s.length; j++) {
        const pos = s.reverse ? s.length - 1 - j : j;
        const off = (o * s.length + pos) * s.inner + n;
        if (s.exclusive) { out[off] = acc; acc += x.data[off]!; } else { acc += x.data[off]!; out[off] = acc; }
      }
    }
  }
  return makeConst(x.dtype, x.shape, out);
}

/** WGSL offset of position `j` along line (o, n), honouring `reverse`. */
function scanOffset(s: ScanLayout, j: string): string {
  const pos = s.reverse ? `(${u(s.length - 1)} - ${j})` : j;
  return s.inner === 1 ? `lineBase + ${pos}` : `lineBase + ${pos} * ${u(s.inner)}`;
}

function lineBase(s: ScanLayout, line: string): string {
  if (s.inner === 1) return `let lineBase = ${line} * ${u(s.length)};`;
  return `let lineBase = (${line} / ${u(s.inner)}) * ${u(s.length * s.inner)} + ${line} % ${u(s.inner)};`;
}

/** One invocation per line: coalesced when lines are interleaved (inner > 1). */
function serialScanKernel(s: ScanLayout, type: WgslScalar, k: KernelBuilder): KernelSpec {
  const grid = grid1D(s.outer * s.inner, 64);
  const step = s.exclusive ? 'y[off] = acc; acc += x[off];' : 'acc += x[off]; y[off] = acc;';
  const body = `${grid.prologue}\n  ${lineBase(s, 'i')}\n  var acc: ${type} = ${lit(0, type)};\n` +
    `  for (var j = 0u; j < ${u(s.length)}; j++) {\n    let off = ${scanOffset(s, 'j')};\n    ${step}\n  }`;
  return k.build({ entry: { workgroupSize: grid.workgroupSize, params: [GID], body }, workgroups: grid.workgroups, loopTrips: s.length });
}

/**
 * One workgroup per line: chunks of `size` elements are scanned in workgroup memory
 * (Hillis-Steele) and offset by the running total of earlier chunks.
 */
function workgroupScanKernel(s: ScanLayout, type: WgslScalar, k: KernelBuilder, size: number, limits: TargetLimits): KernelSpec {
  const lines = s.outer * s.inner;
  const grid = rowGrid(lines, limits.maxComputeWorkgroupsPerDimension);
  const zero = lit(0, type);
  const result = s.exclusive ? `select(${zero}, buf[max(lid, 1u) - 1u], lid > 0u)` : 'buf[lid]';
  const body = [
    `let line = ${grid.rowExpr};`,
    `if (line >= ${u(lines)}) { return; }`,
    lineBase(s, 'line'),
    `var carry: ${type} = ${zero};`,
    `for (var c = 0u; c < ${u(s.length)}; c += ${u(size)}) {`,
    `  let j = c + lid;`,
    `  let off = ${scanOffset(s, 'min(j, ' + u(s.length - 1) + ')')};`,
    `  var v: ${type} = ${zero};`,
    `  if (j < ${u(s.length)}) { v = x[off]; }`,
    `  buf[lid] = v;`,
    `  workgroupBarrier();`,
    // `d` is uniform, so the barriers inside the loop are legal
    `  for (var d = 1u; d < ${u(size)}; d <<= 1u) {`,
    `    var t = buf[lid];`,
    `    if (lid >= d) { t += buf[lid - d]; }`,
    `    workgroupBarrier();`,
    `    buf[lid] = t;`,
    `    workgroupBarrier();`,
    `  }`,
    `  if (j < ${u(s.length)}) { y[off] = carry + ${result}; }`,
    `  carry += buf[${u(size - 1)}];`,
    // the next chunk overwrites buf: every invocation must have read it first
    `  workgroupBarrier();`,
    `}`,
  ].join('\n  ');
  return workgroupEntry(k, k.workgroupArray('buf', type, size), size, body, grid.workgroups, Math.ceil(s.length / size) * (1 + Math.log2(size)));
}

export const cumSumOp: OpDef = {
  opTypes: ['CumSum'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    const x = ctx.inputs[0]!;
    cumSumLayout(ctx.node, x.shape, ctx.consts[1]);
    return [{ dtype: x.dtype, shape: [...x.shape] }];
  },
  fold: (ctx, inputs) => [cumSumOnCpu(ctx.node, inputs[0]!, inputs[1])],
  lower(ctx) {
    const x = ctx.inputs[0]!;
    const y = ctx.outputs[0]!;
    assertBindable(ctx, [x, y]);
    if (numElements(y.type.shape) === 0) return;
    const type = wgslType(x.type.dtype);
    const s = cumSumLayout(ctx.node, x.type.shape, ctx.inputs[1]?.data);
    const lines = s.outer * s.inner;
    // long contiguous lines (the usual last-axis CumSum) are read cooperatively; interleaved
    // lines are already coalesced with one invocation each
    const cooperative = s.length >= 64 && (s.inner === 1 || lines < 1024);
    const maxSize = Math.min(ctx.limits.maxComputeInvocationsPerWorkgroup, ctx.limits.maxComputeWorkgroupSizeX, 256);
    const k = xyKernel('cumsum', x, type, y, type);
    ctx.kernel(cooperative
      ? workgroupScanKernel(s, type, k, Math.min(maxSize, nextPow2(s.length)), ctx.limits)
      : serialScanKernel(s, type, k));
  },
};
