/**
 * Transformer kernels: LayerNormalization and fused scaled-dot-product attention.
 *
 * LayerNormalization is ONNX's op from opset 17; the fuse-layernorm pass also builds it (in
 * FUSED_DOMAIN for older opsets) from the ReduceMean/Sub/Pow/Sqrt/Div pattern older exporters
 * emit. One workgroup normalises one row: a mean pass, a variance pass over (x - mean)^2 (more
 * accurate than E[x^2] - mean^2), then the scaled store.
 *
 * Attention (FUSED_DOMAIN only, built by fuse-attention) computes
 *   softmax(scale * Q K^T + mask [causal / band]) V
 * in one kernel: one workgroup per (batch, query row) walks the keys in chunks with an online
 * softmax (running max and sum, accumulator rescaled per chunk), so scores never reach memory and
 * the number of keys is unbounded. Transposes around it (heads split by Reshape + Transpose) are
 * absorbed into per-operand strides: each operand input carries the permutation the Transpose
 * applied, and the output can be written permuted.
 */
import { attrFloat, attrInt, attrInts } from '../ir/attrs.js';
import { hostArrayFor } from '../ir/tensor.js';
import { stridesOf } from '../kernel/strides.js';
import { numElements, type ConstTensor, type Node, type TensorType } from '../ir/types.js';
import { dot, lit, nextPow2, rowGrid, u, unravel } from '../kernel/wgsl.js';
import { fail } from '../errors.js';
import { FUSED_DOMAIN } from './domains.js';
import { broadcastShapes } from './elementwise/index.js';
import { broadcastStrides } from '../kernel/strides.js';
import type { LowerContext, OpDef, ShapeContext } from './op.js';
import type { KernelSpec, LowerTensor } from '../kernel/types.js';
import { LID, WID, kernel, type KernelBuilder } from '../kernel/builder.js';
import { checkBindingSizes, workgroupReduce } from './pool.js';
import { nodeLabel } from './shape.js';

function requireFloat32(node: Node, t: TensorType | undefined, role: string): TensorType {
  if (!t) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: required input ${role} is missing`);
  if (t.dtype !== 'float32') fail('FM_DTYPE', `${nodeLabel(node)}: ${role} is ${t.dtype}; ${node.opType} takes float32 tensors`);
  return t;
}

// ---------------------------------------------------------------------------------------------
// LayerNormalization
// ---------------------------------------------------------------------------------------------

interface LayerNormPlan {
  rows: number;
  /** elements normalised together: prod(shape[axis:]) */
  size: number;
  normShape: number[];
  epsilon: number;
  /** element strides of Scale and B over the normalised dims (broadcast: 0) */
  scaleStrides: number[];
  biasStrides?: number[];
  /** shape of the optional Mean / InvStdDev outputs: shape[:axis] + 1s */
  statShape: number[];
}

function layerNormPlan(ctx: Pick<ShapeContext, 'node' | 'opset' | 'inputs'>): LayerNormPlan {
  const { node } = ctx;
  if (node.domain !== FUSED_DOMAIN && ctx.opset < 17) {
    fail('FM_UNSUPPORTED_OP', `${nodeLabel(node)}: LayerNormalization does not exist before opset 17 (model opset ${ctx.opset})`);
  }
  const x = requireFloat32(node, ctx.inputs[0], 'X');
  const rank = x.shape.length;
  const rawAxis = attrInt(node, 'axis', -1);
  if (rawAxis < -rank || rawAxis >= rank) fail('FM_SHAPE', `${nodeLabel(node)}: axis ${rawAxis} is out of range for X of shape [${x.shape}]`);
  const axis = rawAxis < 0 ? rawAxis + rank : rawAxis;
  if (attrInt(node, 'stash_type', 1) !== 1) {
    fail('FM_UNSUPPORTED_OP', `${nodeLabel(node)}: stash_type ${attrInt(node, 'stash_type')} is not supported (statistics are computed in float32)`);
  }
  const normShape = x.shape.slice(axis);
  const strides = (t: TensorType, role: string): number[] => {
    const out = broadcastShapes(node, [normShape, t.shape]);
    if (out.length !== normShape.length || out.some((d, i) => d !== normShape[i])) {
      fail('FM_SHAPE', `${nodeLabel(node)}: ${role} of shape [${t.shape}] does not broadcast to the normalised shape [${normShape}]`);
    }
    return broadcastStrides(t.shape, normShape);
  };
  const scale = requireFloat32(node, ctx.inputs[1], 'Scale');
  const bias = ctx.inputs[2] ? requireFloat32(node, ctx.inputs[2], 'B') : undefined;
  return {
    rows: numElements(x.shape.slice(0, axis)),
    size: numElements(normShape),
    normShape,
    epsilon: attrFloat(node, 'epsilon', 1e-5),
    scaleStrides: strides(scale, 'Scale'),
    biasStrides: bias ? strides(bias, 'B') : undefined,
    statShape: [...x.shape.slice(0, axis), ...normShape.map(() => 1)],
  };
}

function foldLayerNorm(p: LayerNormPlan, x: ConstTensor, scale: ConstTensor, bias: ConstTensor | undefined): ConstTensor[] {
  const y = hostArrayFor(x.dtype, x.data.length);
  const mean = hostArrayFor(x.dtype, p.rows);
  const inv = hostArrayFor(x.dtype, p.rows);
  const normStrides = stridesOf(p.normShape);
  const paramOffset = (j: number, strides: readonly number[]) =>
    normStrides.reduce((s, st, a) => s + (Math.floor(j / st) % p.normShape[a]!) * strides[a]!, 0);
  for (let r = 0; r < p.rows; r++) {
    const base = r * p.size;
    let m = 0;
    for (let j = 0; j < p.size; j++) m += x.data[base + j]!;
    m /= p.size;
    let v = 0;
    for (let j = 0; j < p.size; j++) v += (x.data[base + j]! - m) ** 2;
    const s = 1 / Math.sqrt(v / p.size + p.epsilon);
    mean[r] = m;
    inv[r] = s;
    for (let j = 0; j < p.size; j++) {
      const b = bias && p.biasStrides ? bias.data[paramOffset(j, p.biasStrides)]! : 0;
      y[base + j] = (x.data[base + j]! - m) * s * scale.data[paramOffset(j, p.scaleStrides)]! + b;
    }
  }
  return [
    { dtype: x.dtype, shape: [...x.shape], data: y },
    { dtype: x.dtype, shape: [...p.statShape], data: mean },
    { dtype: x.dtype, shape: [...p.statShape], data: inv },
  ];
}

/** WGSL index of a Scale/B element for normalised element `j` ('0u' when broadcast everywhere). */
function paramIndex(p: LayerNormPlan, strides: readonly number[], prefix: string): { setup: string; index: string } {
  const contiguous = stridesOf(p.normShape);
  if (strides.every((s, a) => s === contiguous[a] || p.normShape[a] === 1)) return { setup: '', index: 'j' };
  if (strides.every((s) => s === 0)) return { setup: '', index: '0u' };
  const coords = p.normShape.map((_, a) => `${prefix}${a}`);
  return { setup: unravel('j', p.normShape, prefix), index: dot(coords, strides) };
}

/** Binds `tensors` as f32 arrays under `names`, in order. */
function bindAll(k: KernelBuilder, names: readonly string[], tensors: readonly LowerTensor[]): void {
  names.forEach((name, i) => k.bind(name, tensors[i]!, 'f32'));
}

/** The header of a one-workgroup-per-row kernel: declarations, then its workgroup arrays. */
function rowKernel(k: KernelBuilder, arrays: readonly string[], size: number, body: string, workgroups: [number, number, number]): KernelSpec {
  return k.build({ header: `${k.declarations()}\n${arrays.join('\n')}\n\n`, entry: { workgroupSize: size, params: [WID, LID], body }, workgroups });
}

function layerNormKernel(p: LayerNormPlan, ctx: LowerContext, withStats: boolean, bindings: readonly LowerTensor[]): KernelSpec {
  const size = Math.max(32, Math.min(256, ctx.limits.maxComputeInvocationsPerWorkgroup, nextPow2(Math.ceil(p.size / 4))));
  const grid = rowGrid(p.rows, ctx.limits.maxComputeWorkgroupsPerDimension);
  const scale = paramIndex(p, p.scaleStrides, 's');
  const bias = p.biasStrides ? paramIndex(p, p.biasStrides, 'b') : undefined;
  const k = kernel('layer_norm');
  bindAll(k, ['x', 'scale', ...(bias ? ['bias'] : []), 'y', ...(withStats ? ['mean_out', 'inv_out'] : [])], bindings);
  const n = lit(p.size, 'f32');
  const loop = (body: string) => `for (var j = lid.x; j < ${u(p.size)}; j += ${u(size)}) {\n    ${body}\n  }`;
  const store = [scale.setup, bias?.setup ?? '', `y[base + j] = (x[base + j] - mean) * inv * scale[${scale.index}]${bias ? ` + bias[${bias.index}]` : ''};`]
    .filter((s) => s !== '').join('\n    ');
  const body = [
    `let row = ${grid.rowExpr};`,
    // uniform per workgroup, so the barriers below stay legal
    `if (row >= ${u(p.rows)}) { return; }`,
    `let base = row * ${u(p.size)};`,
    'var acc = 0.0;',
    loop('acc += x[base + j];'),
    workgroupReduce(size, (a, b) => `${a} + ${b}`),
    `let mean = partial[0] / ${n};`,
    // every invocation has read partial[0] before the variance pass overwrites it
    'workgroupBarrier();',
    'acc = 0.0;',
    loop('let d = x[base + j] - mean;\n    acc += d * d;'),
    workgroupReduce(size, (a, b) => `${a} + ${b}`),
    `let inv = inverseSqrt(partial[0] / ${n} + ${lit(p.epsilon, 'f32')});`,
    loop(store),
    ...(withStats ? ['if (lid.x == 0u) {\n    mean_out[row] = mean;\n    inv_out[row] = inv;\n  }'] : []),
  ].join('\n  ');
  // three passes over the row (mean, variance, store) and their tree reductions
  return { ...rowKernel(k, [k.workgroupArray('partial', 'f32', size)], size, body, grid.workgroups), loopTrips: 3 * Math.ceil(p.size / size) + 2 * Math.log2(size) };
}

export const layerNormOp: OpDef = {
  opTypes: ['LayerNormalization'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    const p = layerNormPlan(ctx);
    const x = ctx.inputs[0]!;
    const stat = { dtype: x.dtype, shape: [...p.statShape] };
    return [{ dtype: x.dtype, shape: [...x.shape] }, ...ctx.node.outputs.slice(1).map(() => ({ ...stat, shape: [...stat.shape] }))];
  },
  fold(ctx, inputs) {
    const all = foldLayerNorm(layerNormPlan(ctx), inputs[0]!, inputs[1]!, inputs[2]);
    return all.slice(0, Math.max(1, ctx.node.outputs.length));
  },
  lower(ctx) {
    const p = layerNormPlan({ node: ctx.node, opset: ctx.opset, inputs: ctx.inputs.map((t) => t?.type) });
    const [x, scale, bias] = ctx.inputs;
    const [y, mean, inv] = ctx.outputs;
    // Mean and InvStdDev come together or not at all: one kernel shape
    const withStats = !!(mean?.id || inv?.id);
    const stats = withStats
      ? [mean?.id ? mean : ctx.scratch('mean', { dtype: 'float32', shape: p.statShape }), inv?.id ? inv : ctx.scratch('inv_std', { dtype: 'float32', shape: p.statShape })]
      : [];
    checkBindingSizes(ctx, [x!, y!]);
    if (p.rows === 0 || p.size === 0) return;
    ctx.kernel(layerNormKernel(p, ctx, withStats, [x!, scale!, ...(bias ? [bias] : []), y!, ...stats]));
  },
};

// ---------------------------------------------------------------------------------------------
// Fused attention
// ---------------------------------------------------------------------------------------------

/**
 * Strides of one operand's logical dims [...batch, rows, cols]: Q is (query, d), Kt is (d, key)
 * as the first MatMul's B, V is (key, dv), the output (query, dv); 0 on broadcast batch dims.
 */
interface OperandStrides {
  batch: number[];
  rows: number;
  cols: number;
}

interface AttentionPlan {
  batchShape: number[];
  queries: number;
  keys: number;
  depth: number;
  valueDepth: number;
  scale: number;
  causal: boolean;
  /** local attention: a query sees at most `window` keys ending at its own position (0: unlimited) */
  window: number;
  q: OperandStrides;
  kt: OperandStrides;
  v: OperandStrides;
  /** additive mask over [...batch, query, key] */
  mask?: OperandStrides;
  out: OperandStrides;
  outShape: number[];
}

/** The permutation attribute `name`, identity when absent; validated against `rank`. */
function permAttr(node: Node, name: string, rank: number): number[] {
  const perm = attrInts(node, name) ?? Array.from({ length: rank }, (_, i) => i);
  const sorted = [...perm].sort((a, b) => a - b);
  if (perm.length !== rank || sorted.some((p, i) => p !== i)) {
    fail('FM_ONNX_INVALID', `${nodeLabel(node)}: ${name} [${perm}] is not a permutation of ${rank} axes`);
  }
  return perm;
}

/** Logical shape and strides of an input read through permutation `perm` (what a Transpose did). */
function permuted(shape: readonly number[], perm: readonly number[]): { shape: number[]; strides: number[] } {
  const strides = stridesOf(shape);
  return { shape: perm.map((p) => shape[p]!), strides: perm.map((p) => strides[p]!) };
}

/** Right-aligns an operand's batch dims to `batchShape`: stride 0 where missing or of size 1. */
function alignBatch(shape: readonly number[], strides: readonly number[], batchShape: readonly number[]): OperandStrides {
  const r = shape.length;
  const batchDims = r - 2;
  const offset = batchShape.length - batchDims;
  return {
    batch: batchShape.map((_, i) => (i < offset || shape[i - offset] === 1 ? 0 : strides[i - offset]!)),
    rows: strides[r - 2]!,
    cols: strides[r - 1]!,
  };
}

function attentionPlan(ctx: Pick<ShapeContext, 'node' | 'inputs'>): AttentionPlan {
  const { node } = ctx;
  if (node.domain !== FUSED_DOMAIN) fail('FM_UNSUPPORTED_OP', `${nodeLabel(node)}: Attention exists only as a fused kernel`);
  const inputs = [0, 1, 2].map((i) => requireFloat32(node, ctx.inputs[i], ['Q', 'Kt', 'V'][i]!));
  const [q, kt, v] = inputs.map((t, i) => permuted(t.shape, permAttr(node, ['perm_q', 'perm_kt', 'perm_v'][i]!, t.shape.length)));
  if ([q, kt, v].some((t) => t!.shape.length < 2)) fail('FM_SHAPE', `${nodeLabel(node)}: Q, Kt and V need rank >= 2`);
  const [queries, depth] = q!.shape.slice(-2) as [number, number];
  const [ktDepth, keys] = kt!.shape.slice(-2) as [number, number];
  const [vKeys, valueDepth] = v!.shape.slice(-2) as [number, number];
  if (ktDepth !== depth || vKeys !== keys) {
    fail('FM_SHAPE', `${nodeLabel(node)}: Q [${q!.shape}], Kt [${kt!.shape}] and V [${v!.shape}] do not chain as Q Kt V`);
  }
  const batchShape = broadcastShapes(node, [q!.shape.slice(0, -2), kt!.shape.slice(0, -2), v!.shape.slice(0, -2)]);
  const scoreShape = [...batchShape, queries, keys];
  let mask: OperandStrides | undefined;
  if (ctx.inputs[3]) {
    const m = requireFloat32(node, ctx.inputs[3], 'mask');
    const shape = broadcastShapes(node, [scoreShape, m.shape]);
    if (shape.length !== scoreShape.length || shape.some((d, i) => d !== scoreShape[i])) {
      fail('FM_SHAPE', `${nodeLabel(node)}: mask [${m.shape}] does not broadcast to the scores [${scoreShape}]`);
    }
    const s = broadcastStrides(m.shape, scoreShape);
    mask = { batch: s.slice(0, -2), rows: s[s.length - 2]!, cols: s[s.length - 1]! };
  }
  const logicalOut = [...batchShape, queries, valueDepth];
  const outPerm = permAttr(node, 'perm_out', logicalOut.length);
  const outShape = outPerm.map((p) => logicalOut[p]!);
  const finalStrides = stridesOf(outShape);
  const outStrides = new Array<number>(logicalOut.length);
  outPerm.forEach((p, i) => { outStrides[p] = finalStrides[i]!; });
  const causal = attrInt(node, 'causal', 0) !== 0;
  const window = attrInt(node, 'window', 0);
  if (window < 0 || (window > 0 && !causal)) fail('FM_ONNX_INVALID', `${nodeLabel(node)}: window ${window} needs causal=1 and must be >= 0`);
  return {
    batchShape, queries, keys, depth, valueDepth, causal, window, mask, outShape,
    scale: attrFloat(node, 'scale', 1),
    q: alignBatch(q!.shape, q!.strides, batchShape),
    kt: alignBatch(kt!.shape, kt!.strides, batchShape),
    v: alignBatch(v!.shape, v!.strides, batchShape),
    out: { batch: outStrides.slice(0, -2), rows: outStrides[outStrides.length - 2]!, cols: outStrides[outStrides.length - 1]! },
  };
}

/** Keys query `qi` may see: [first, end). Causal aligns the last query with the last key. */
function keyRange(p: AttentionPlan, qi: number): [number, number] {
  if (!p.causal) return [0, p.keys];
  const end = Math.min(p.keys, qi + p.keys - p.queries + 1);
  return [p.window > 0 ? Math.max(0, end - p.window) : 0, Math.max(0, end)];
}

function foldAttention(p: AttentionPlan, inputs: readonly (ConstTensor | undefined)[]): ConstTensor {
  const [q, kt, v, mask] = inputs as [ConstTensor, ConstTensor, ConstTensor, ConstTensor | undefined];
  const out = new Float32Array(numElements(p.outShape));
  const batchStrides = stridesOf(p.batchShape);
  const batches = numElements(p.batchShape);
  for (let b = 0; b < batches; b++) {
    const coords = p.batchShape.map((d, i) => Math.floor(b / batchStrides[i]!) % d);
    const base = (s: OperandStrides) => coords.reduce((acc, c, i) => acc + c * s.batch[i]!, 0);
    for (let qi = 0; qi < p.queries; qi++) {
      const [first, end] = keyRange(p, qi);
      const scores: number[] = [];
      for (let key = first; key < end; key++) {
        let s = 0;
        for (let d = 0; d < p.depth; d++) s += q.data[base(p.q) + qi * p.q.rows + d * p.q.cols]! * kt.data[base(p.kt) + d * p.kt.rows + key * p.kt.cols]!;
        s *= p.scale;
        if (mask && p.mask) s += mask.data[base(p.mask) + qi * p.mask.rows + key * p.mask.cols]!;
        scores.push(s);
      }
      const max = scores.reduce((m, s) => Math.max(m, s), -Infinity);
      const weights = scores.map((s) => Math.exp(s - max));
      const sum = weights.reduce((a, w) => a + w, 0);
      for (let dv = 0; dv < p.valueDepth; dv++) {
        let acc = 0;
        weights.forEach((w, j) => { acc += w * v.data[base(p.v) + (first + j) * p.v.rows + dv * p.v.cols]!; });
        out[base(p.out) + qi * p.out.rows + dv * p.out.cols] = acc / sum;
      }
    }
  }
  return { dtype: 'float32', shape: [...p.outShape], data: out };
}

/** Keys scored per chunk (workgroup memory) and invocations per workgroup. */
function attentionTiling(p: AttentionPlan, ctx: LowerContext): { chunk: number; size: number } {
  const chunk = Math.min(256, nextPow2(Math.max(1, p.keys)));
  const size = Math.min(64, ctx.limits.maxComputeInvocationsPerWorkgroup, Math.max(8, nextPow2(Math.max(Math.min(chunk, p.keys), p.valueDepth))));
  const bytes = 4 * (p.depth + chunk + size);
  if (bytes > ctx.limits.maxComputeWorkgroupStorageSize) {
    fail('FM_LIMIT', `${nodeLabel(ctx.node)}: head size ${p.depth} needs ${bytes} bytes of workgroup memory; the target allows ${ctx.limits.maxComputeWorkgroupStorageSize}`);
  }
  return { chunk, size };
}

const NEG_BIG = -3.4028234663852886e38;

function attentionKernel(p: AttentionPlan, ctx: LowerContext, bindings: readonly LowerTensor[]): KernelSpec {
  const { chunk, size } = attentionTiling(p, ctx);
  const rows = numElements(p.batchShape) * p.queries;
  const grid = rowGrid(rows, ctx.limits.maxComputeWorkgroupsPerDimension);
  const perThread = Math.ceil(p.valueDepth / size);
  const coords = p.batchShape.map((_, i) => `bc${i}`);
  const base = (s: OperandStrides) => dot(coords, s.batch);
  const neg = lit(NEG_BIG, 'f32');
  const offset = p.keys - p.queries;
  // key range in i32: causal rows may see no key at all when there are fewer keys than queries
  const range = p.causal
    ? [`let kEnd = clamp(i32(qi) + ${lit(offset + 1, 'i32')}, 0i, ${lit(p.keys, 'i32')});`,
      `let kStart = ${p.window > 0 ? `max(kEnd - ${lit(p.window, 'i32')}, 0i)` : '0i'};`]
    : ['let kEnd = ' + lit(p.keys, 'i32') + ';', 'let kStart = 0i;'];
  const reduce = (op: string) => `red[lid.x] = part;
    workgroupBarrier();
    for (var step = ${u(size / 2)}; step > 0u; step = step / 2u) {
      if (lid.x < step) { red[lid.x] = ${op}; }
      workgroupBarrier();
    }`;
  const maskTerm = p.mask ? ` + mask[mBase + u32(key) * ${u(p.mask.cols)}]` : '';
  const k = kernel(p.causal ? 'attention_causal' : 'attention');
  bindAll(k, ['q', 'kt', 'v', ...(p.mask ? ['mask'] : []), 'o'], bindings);
  const body = [
    `let row = ${grid.rowExpr};`,
    // row is uniform per workgroup, so every loop bound below is too and the barriers are legal
    `if (row >= ${u(rows)}) { return; }`,
    `let qi = row % ${u(p.queries)};`,
    `let batch = row / ${u(p.queries)};`,
    p.batchShape.length ? unravel('batch', p.batchShape, 'bc') : '',
    `let qBase = ${base(p.q)} + qi * ${u(p.q.rows)};`,
    `let kBase = ${base(p.kt)};`,
    `let vBase = ${base(p.v)};`,
    p.mask ? `let mBase = ${base(p.mask)} + qi * ${u(p.mask.rows)};` : '',
    `let oBase = ${base(p.out)} + qi * ${u(p.out.rows)};`,
    // the scale is applied to Q once instead of to every score
    `for (var d = lid.x; d < ${u(p.depth)}; d += ${u(size)}) { qs[d] = q[qBase + d * ${u(p.q.cols)}] * ${lit(p.scale, 'f32')}; }`,
    'workgroupBarrier();',
    ...range,
    `var m = ${neg};`,
    'var l = 0.0;',
    `var acc: array<f32, ${perThread}>;`,
    `for (var c0 = kStart; c0 < kEnd; c0 += ${lit(chunk, 'i32')}) {`,
    `  let valid = min(kEnd - c0, ${lit(chunk, 'i32')});`,
    `  var part = ${neg};`,
    `  for (var j = i32(lid.x); j < valid; j += ${lit(size, 'i32')}) {`,
    '    let key = c0 + j;',
    '    var s = 0.0;',
    `    for (var d = 0u; d < ${u(p.depth)}; d++) { s += qs[d] * kt[kBase + d * ${u(p.kt.rows)} + u32(key) * ${u(p.kt.cols)}]; }`,
    `    s = s${maskTerm};`,
    '    ps[j] = s;',
    '    part = max(part, s);',
    '  }',
    `  ${reduce('max(red[lid.x], red[lid.x + step])')}`,
    '  let mNew = max(m, red[0]);',
    // all have read red[0] before it is reused for the sum
    '  workgroupBarrier();',
    '  part = 0.0;',
    `  for (var j = i32(lid.x); j < valid; j += ${lit(size, 'i32')}) {`,
    '    let e = exp(ps[j] - mNew);',
    '    ps[j] = e;',
    '    part += e;',
    '  }',
    `  ${reduce('red[lid.x] + red[lid.x + step]')}`,
    '  let factor = exp(m - mNew);',
    '  l = l * factor + red[0];',
    '  m = mNew;',
    `  for (var t = 0u; t < ${u(perThread)}; t++) {`,
    `    let dv = lid.x + t * ${u(size)};`,
    `    if (dv < ${u(p.valueDepth)}) {`,
    '      var a = acc[t] * factor;',
    `      for (var j = 0i; j < valid; j++) { a += ps[j] * v[vBase + u32(c0 + j) * ${u(p.v.rows)} + dv * ${u(p.v.cols)}]; }`,
    '      acc[t] = a;',
    '    }',
    '  }',
    // ps and red are rewritten by the next chunk
    '  workgroupBarrier();',
    '}',
    // a row that sees no key (more queries than keys, causal) yields zeros rather than NaN
    'let invL = select(0.0, 1.0 / l, l > 0.0);',
    `for (var t = 0u; t < ${u(perThread)}; t++) {`,
    `  let dv = lid.x + t * ${u(size)};`,
    `  if (dv < ${u(p.valueDepth)}) { o[oBase + dv * ${u(p.out.cols)}] = acc[t] * invL; }`,
    '}',
  ].filter((s) => s !== '').join('\n  ');
  const arrays = [k.workgroupArray('qs', 'f32', p.depth), k.workgroupArray('ps', 'f32', chunk), k.workgroupArray('red', 'f32', size)];
  return { ...rowKernel(k, arrays, size, body, grid.workgroups), loopTrips: attentionLoopTrips(p, chunk, size, perThread) };
}

/** One invocation's loop trips: per chunk of keys, its scores (depth each), exps, two tree reductions and its value rows. */
function attentionLoopTrips(p: AttentionPlan, chunk: number, size: number, perThread: number): number {
  const perChunk = Math.ceil(chunk / size) * (p.depth + 2) + 2 * Math.log2(size) + perThread * (chunk + 1);
  return Math.ceil(p.depth / size) + Math.ceil(p.keys / chunk) * perChunk + perThread;
}

const attentionOp: OpDef = {
  opTypes: ['Attention'],
  costClass: 'hierarchical',
  inferTypes(ctx) {
    return [{ dtype: 'float32', shape: attentionPlan(ctx).outShape }];
  },
  fold: (ctx, inputs) => [foldAttention(attentionPlan(ctx), inputs)],
  lower(ctx) {
    const p = attentionPlan({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
    const [q, kt, v, mask] = ctx.inputs;
    const o = ctx.outputs[0]!;
    const bindings = [q!, kt!, v!, ...(mask ? [mask] : []), o] as LowerTensor[];
    checkBindingSizes(ctx, bindings);
    if (numElements(p.outShape) === 0) return;
    ctx.kernel(attentionKernel(p, ctx, bindings));
  },
};

/** Ops of FUSED_DOMAIN defined here (LayerNormalization serves both domains). */
export const transformerFusedOps: readonly OpDef[] = [layerNormOp, attentionOp];
