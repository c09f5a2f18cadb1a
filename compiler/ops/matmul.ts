/**
 * Gemm and MatMul.
 *
 * Both lower to one register-tiled kernel: an invocation computes `rowTile` (up to 4) output rows
 * x 4 consecutive output columns, looping over the reduction dimension K. The row block comes from
 * workgroup_id, so every invocation of a workgroup reads the same A values (uniform loads, which
 * software rasterisers such as llvmpipe turn into one scalar load), while B is read as one vec4 of
 * four adjacent columns per k. There is no shared-memory staging: on llvmpipe (the target here)
 * workgroup memory is ordinary cached memory and barriers cost coroutine switches.
 *
 * Constant B (weights, shared by every batch entry) is always re-packed at compile time into
 * column panels: [ceil(N / 32), K, 32], element (k, n) at ((n / 32) * K + k) * 32 + n % 32,
 * zero-padded past N. Eight invocations (one llvmpipe SIMD row, or a quarter warp) cover one
 * panel, so that the B values they need for k = 0, 1, 2, ... form one sequential stream; a plain
 * [K, N] layout strides N*4 bytes per k and runs latency-bound (VGG fc6: 1.25 s -> 0.14 s).
 * When the weights exceed maxStorageBufferBindingSize (VGG's 25088x4096 classifier is 411 MB)
 * the panels are split into several constants ("parts"), each bound by its own kernel that
 * writes only its slice of the output columns. Runtime B is read in place ([K, N] or, for
 * Gemm transB, [N, K] with scalar loads).
 */
import { attrFloat, attrInt, attrInts, attrString } from '../ir/attrs.js';
import { isFloat, numElements, type ConstTensor, type DType, type Node, type TensorType } from '../ir/types.js';
import { hostArrayFor, normalizeValue } from '../ir/tensor.js';
import { dot, lit, u, wgslType, type WgslScalar } from '../codegen/wgsl.js';
import { fail, quoteName } from '../errors.js';
import { applyActivation } from './activation.js';
import type { LowerContext, LowerTensor, OpDef, ShapeContext, TargetLimits, TextureShape, TextureWeightCandidate } from './op.js';
import { isTextureShape, packTexels, TEXEL_VALUES, texelLoad, textureDecl, textureShapeFor } from '../codegen/texture-layout.js';
import { lazyConstant } from '../codegen/lazy-constant.js';

// ---------------------------------------------------------------------------------------------
// Geometry: both ops become "batch x [M, K] x [K, N]" with arbitrary element strides
// ---------------------------------------------------------------------------------------------

/** Element strides of one operand: A is indexed (m, k), B is indexed (k, n). */
interface OperandLayout {
  /** stride along A's m or B's k */
  rowStride: number;
  /** stride along A's k or B's n */
  colStride: number;
  /** stride per output batch dim; 0 where the operand is broadcast */
  batchStrides: number[];
}

interface MatmulGeometry {
  M: number;
  K: number;
  N: number;
  batchShape: number[];
  a: OperandLayout;
  b: OperandLayout;
  outShape: number[];
}

/** How C of Gemm broadcasts over [M, N]: element strides along m and n (0 where broadcast). */
interface BiasLayout {
  strideM: number;
  strideN: number;
}

function describeNode(node: Node): string {
  return `node ${quoteName(node.name)} (${node.opType})`;
}

function contiguousStrides(shape: readonly number[]): number[] {
  const strides = new Array<number>(shape.length);
  let s = 1;
  for (let i = shape.length - 1; i >= 0; i--) {
    strides[i] = s;
    s *= shape[i]!;
  }
  return strides;
}

function gemmTransposes(node: Node): { transA: boolean; transB: boolean } {
  return { transA: attrInt(node, 'transA', 0) !== 0, transB: attrInt(node, 'transB', 0) !== 0 };
}

function gemmGeometry(node: Node, aShape: readonly number[], bShape: readonly number[]): MatmulGeometry {
  if (aShape.length !== 2 || bShape.length !== 2) {
    fail('FM_SHAPE', `${describeNode(node)}: A and B must be 2-D, got A [${aShape}] and B [${bShape}]; use MatMul for batched products`);
  }
  const { transA, transB } = gemmTransposes(node);
  const [M, K] = transA ? [aShape[1]!, aShape[0]!] : [aShape[0]!, aShape[1]!];
  const [kB, N] = transB ? [bShape[1]!, bShape[0]!] : [bShape[0]!, bShape[1]!];
  if (K !== kB) {
    fail('FM_SHAPE', `${describeNode(node)}: inner dimensions differ: A [${aShape}] (transA=${+transA}) gives K=${K}, B [${bShape}] (transB=${+transB}) gives K=${kB}`);
  }
  return {
    M, K, N, batchShape: [],
    a: transA ? { rowStride: 1, colStride: M, batchStrides: [] } : { rowStride: K, colStride: 1, batchStrides: [] },
    b: transB ? { rowStride: 1, colStride: K, batchStrides: [] } : { rowStride: N, colStride: 1, batchStrides: [] },
    outShape: [M, N],
  };
}

/** numpy matmul: 1-D operands get a 1 prepended (A) or appended (B) that is dropped from the result. */
function matmulGeometry(node: Node, aShape: readonly number[], bShape: readonly number[]): MatmulGeometry {
  if (aShape.length === 0 || bShape.length === 0) {
    fail('FM_SHAPE', `${describeNode(node)}: operands must have rank >= 1, got A [${aShape}] and B [${bShape}]`);
  }
  const a2 = aShape.length === 1 ? [1, aShape[0]!] : [...aShape];
  const b2 = bShape.length === 1 ? [bShape[0]!, 1] : [...bShape];
  const M = a2[a2.length - 2]!, K = a2[a2.length - 1]!;
  const kB = b2[b2.length - 2]!, N = b2[b2.length - 1]!;
  if (K !== kB) fail('FM_SHAPE', `${describeNode(node)}: inner dimensions differ: A [${aShape}] has K=${K}, B [${bShape}] has K=${kB}`);
  const aBatch = a2.slice(0, -2), bBatch = b2.slice(0, -2);
  const rank = Math.max(aBatch.length, bBatch.length);
  const batchShape: number[] = [];
  for (let i = 0; i < rank; i++) {
    const da = aBatch[i - (rank - aBatch.length)] ?? 1;
    const db = bBatch[i - (rank - bBatch.length)] ?? 1;
    if (da !== db && da !== 1 && db !== 1) {
      fail('FM_SHAPE', `${describeNode(node)}: batch dimensions of A [${aShape}] and B [${bShape}] are not broadcastable`);
    }
    batchShape.push(da === 1 ? db : da);
  }
  const outShape = [...batchShape, ...(aShape.length === 1 ? [] : [M]), ...(bShape.length === 1 ? [] : [N])];
  return {
    M, K, N, batchShape, outShape,
    a: { rowStride: K, colStride: 1, batchStrides: broadcastBatchStrides(aBatch, batchShape, M * K) },
    b: { rowStride: N, colStride: 1, batchStrides: broadcastBatchStrides(bBatch, batchShape, K * N) },
  };
}

/** Strides of an operand's batch dims (right-aligned to the output's), 0 where it broadcasts. */
function broadcastBatchStrides(batch: readonly number[], outBatch: readonly number[], matrixSize: number): number[] {
  const own = contiguousStrides(batch).map((s) => s * matrixSize);
  const offset = outBatch.length - batch.length;
  return outBatch.map((_, i) => (i < offset || batch[i - offset] === 1 ? 0 : own[i - offset]!));
}

function geometryOf(node: Node, aShape: readonly number[], bShape: readonly number[]): MatmulGeometry {
  return node.opType === 'Gemm' ? gemmGeometry(node, aShape, bShape) : matmulGeometry(node, aShape, bShape);
}

/**
 * When B is shared by every batch entry and A's matrices are contiguous in batch order (a
 * Linear layer on [batch, seq, K]), the batch dims fold into M: one bigger GEMM, better tiles.
 */
function foldBatchIntoRows(g: MatmulGeometry): MatmulGeometry {
  if (g.batchShape.length === 0 || g.b.batchStrides.some((s) => s !== 0)) return g;
  if (g.a.rowStride !== g.K || g.a.colStride !== 1) return g;
  const expected = contiguousStrides(g.batchShape).map((s) => s * g.M * g.K);
  if (g.batchShape.some((d, i) => d !== 1 && g.a.batchStrides[i] !== expected[i])) return g;
  return { ...g, M: g.M * numElements(g.batchShape), batchShape: [], a: { ...g.a, batchStrides: [] }, b: { ...g.b, batchStrides: [] } };
}

function gemmBiasLayout(node: Node, opset: number, cShape: readonly number[], M: number, N: number): BiasLayout {
  const where = `${describeNode(node)}: C of shape [${cShape}] does not broadcast to the output [${M}, ${N}]`;
  if (cShape.length > 2) fail('FM_SHAPE', `${where} (rank > 2)`);
  const legacyNoBroadcast = opset < 7 && attrInt(node, 'broadcast', 0) === 0;
  if (legacyNoBroadcast && !(cShape.length === 2 && cShape[0] === M && cShape[1] === N)) {
    fail('FM_SHAPE', `${where}: before opset 7 C must be exactly [M, N] unless the attribute "broadcast" is 1`);
  }
  const c2 = [...new Array<number>(2 - cShape.length).fill(1), ...cShape];
  const [cm, cn] = [c2[0]!, c2[1]!];
  if ((cm !== 1 && cm !== M) || (cn !== 1 && cn !== N)) fail('FM_SHAPE', where);
  return { strideM: cm === 1 ? 0 : cn, strideN: cn === 1 ? 0 : 1 };
}

function inferTypes(ctx: ShapeContext): TensorType[] {
  const [a, b] = [ctx.inputs[0], ctx.inputs[1]];
  if (!a || !b) fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: inputs A and B are required`);
  if (a.dtype !== b.dtype) {
    fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: A is ${a.dtype} but B is ${b.dtype}; both must have the same element type`);
  }
  const g = geometryOf(ctx.node, a.shape, b.shape);
  const c = ctx.node.opType === 'Gemm' ? ctx.inputs[2] : undefined;
  if (c) gemmBiasLayout(ctx.node, ctx.opset, c.shape, g.M, g.N);
  return [{ dtype: a.dtype, shape: g.outShape }];
}

// ---------------------------------------------------------------------------------------------
// Gemm scalars (alpha, beta) and CPU evaluation
// ---------------------------------------------------------------------------------------------

interface Epilogue {
  alpha: number;
  beta: number;
  bias?: BiasLayout;
}

/** beta = 0 drops C entirely (and its binding: unused bindings vanish from an 'auto' layout) */
function usesBias(epi: Epilogue): epi is Epilogue & { bias: BiasLayout } {
  return !!epi.bias && epi.beta !== 0;
}

function epilogueOf(node: Node, opset: number, cShape: readonly number[] | undefined, g: MatmulGeometry): Epilogue {
  if (node.opType !== 'Gemm') return { alpha: 1, beta: 1 };
  const alpha = attrFloat(node, 'alpha', 1);
  const beta = attrFloat(node, 'beta', 1);
  return { alpha, beta, bias: cShape ? gemmBiasLayout(node, opset, cShape, g.M, g.N) : undefined };
}

function fold(ctx: ShapeContext, inputs: readonly (ConstTensor | undefined)[]): ConstTensor[] {
  const [a, b, c] = [inputs[0]!, inputs[1]!, ctx.node.opType === 'Gemm' ? inputs[2] : undefined];
  const g = geometryOf(ctx.node, a.shape, b.shape);
  const epi = epilogueOf(ctx.node, ctx.opset, c?.shape, g);
  const { M, K, N } = g;
  const batchCount = numElements(g.batchShape);
  const batchStrides = contiguousStrides(g.batchShape);
  const out = hostArrayFor(a.dtype, batchCount * M * N);
  for (let batch = 0; batch < batchCount; batch++) {
    const coords = g.batchShape.map((d, i) => Math.floor(batch / batchStrides[i]!) % d);
    const aBase = coords.reduce((s, x, i) => s + x * g.a.batchStrides[i]!, 0);
    const bBase = coords.reduce((s, x, i) => s + x * g.b.batchStrides[i]!, 0);
    for (let m = 0; m < M; m++) {
      for (let n = 0; n < N; n++) {
        let acc = 0;
        for (let k = 0; k < K; k++) {
          acc += a.data[aBase + m * g.a.rowStride + k * g.a.colStride]! * b.data[bBase + k * g.b.rowStride + n * g.b.colStride]!;
        }
        let v = epi.alpha * acc;
        if (c && epi.bias) v += epi.beta * c.data[m * epi.bias.strideM + n * epi.bias.strideN]!;
        out[(batch * M + m) * N + n] = normalizeValue(a.dtype, v);
      }
    }
  }
  return [{ dtype: a.dtype, shape: g.outShape, data: out }];
}

// ---------------------------------------------------------------------------------------------
// Preparing B: parts of at most maxStorageBufferBindingSize bytes, vec4-loadable where possible
// ---------------------------------------------------------------------------------------------

/** One binding of B covering output columns [n0, n0 + width). */
interface BPart {
  tensor: LowerTensor;
  layout: OperandLayout;
  n0: number;
  width: number;
  /** rows of this part can be read as vec4<T> at (k * rowStride + n) / 4 */
  vec4: boolean;
  /**
   * Set for packed constants: B stored as [panels, K, panel] (see packPanels); layout.rowStride
   * is then `panel`, and column n lives in panel n / panel.
   */
  panel?: number;
}

const BYTES_PER_ELEMENT = 4;
/**
 * Columns per panel of packed weights: 8 invocations x 4 columns, one SIMD row of llvmpipe
 * (AVX2) or a quarter warp, so that what they read for consecutive k is one sequential stream
 * (a [K, N] layout strides by N*4 bytes per k, which defeats hardware prefetching).
 */
const PANEL_COLUMNS = 32;

function bindingBytes(t: TensorType): number {
  return numElements(t.shape) * BYTES_PER_ELEMENT;
}

function vec4Loadable(layout: OperandLayout, width: number, elementCount: number): boolean {
  return layout.colStride === 1 && layout.rowStride % 4 === 0 && width % 4 === 0 && elementCount % 4 === 0 &&
    layout.batchStrides.every((s) => s % 4 === 0);
}

/** Output columns [n0, n1) whose packed weights are separate constants. */
type ColumnRange = readonly [number, number];

function prepareB(ctx: LowerContext, g: MatmulGeometry, ranges: readonly ColumnRange[]): BPart[] {
  const b = ctx.inputs[1]!;
  const limit = ctx.limits.maxStorageBufferBindingSize;
  const sharedByBatch = g.b.batchStrides.every((s) => s === 0);
  if (b.data && sharedByBatch) return packConstantB(ctx, g, b.data, limit, ranges);
  if (bindingBytes(b.type) > limit) {
    fail('FM_LIMIT', `${describeNode(ctx.node)}: B [${b.type.shape}] needs ${bindingBytes(b.type)} bytes, more than the target's maxStorageBufferBindingSize ${limit}; ` +
      'only constant weights can be split across bindings; reduce the batch size or target a device with a larger limit');
  }
  return [{ tensor: b, layout: g.b, n0: 0, width: g.N, vec4: vec4Loadable(g.b, g.N, numElements(b.type.shape)) }];
}

/**
 * Re-lays out constant B in panels (see packPanels), one constant per column range (the
 * split-large-weights pass's column_splits; all of N otherwise), each range split again into
 * parts that are small enough to be bound on their own. The panels are computed lazily (when
 * the bundle's shards are written), so the compiler never holds them next to the imported B.
 */
function packConstantB(ctx: LowerContext, g: MatmulGeometry, data: ConstTensor, limit: number, ranges: readonly ColumnRange[]): BPart[] {
  const { K } = g;
  const limitPanel = Math.floor(limit / (K * BYTES_PER_ELEMENT * 4)) * 4;
  if (limitPanel === 0) {
    fail('FM_LIMIT', `${describeNode(ctx.node)}: even 4 columns of B (K=${K}) exceed the target's maxStorageBufferBindingSize ${limit}`);
  }
  const parts: BPart[] = [];
  for (const [r0, r1] of ranges) {
    // no wider than the range (rounded to the vec4 tile): a narrow range is not padded to 32 columns
    const panel = Math.min(PANEL_COLUMNS, Math.ceil((r1 - r0) / 4) * 4, limitPanel);
    const panelsPerPart = Math.floor(limit / (K * panel * BYTES_PER_ELEMENT));
    const panelCount = Math.ceil((r1 - r0) / panel);
    const partCount = Math.ceil(panelCount / panelsPerPart);
    // equal-sized parts keep the kernels alike
    const width = Math.ceil(panelCount / partCount) * panel;
    for (let n0 = r0; n0 < r1; n0 += width) {
      const cols = Math.min(width, r1 - n0);
      const label = ranges.length > 1 ? `weights_panels_cols${n0}` : partCount === 1 ? 'weights_panels' : `weights_panels_part${parts.length}`;
      const shape = [Math.ceil(cols / panel), K, panel];
      const tensor = ctx.constant(label, lazyConstant(data.dtype, shape, () => packPanels(data, g.b, K, n0, cols, panel).data));
      parts.push({ tensor, layout: { rowStride: panel, colStride: 1, batchStrides: g.batchShape.map(() => 0) }, n0, width: cols, vec4: true, panel });
    }
  }
  return parts;
}

/**
 * Columns [n0, n0 + cols) of B as [ceil(cols / panel), K, panel]: element (k, n) at
 * ((n / panel) * K + k) * panel + n % panel; zero past cols.
 */
function packPanels(b: ConstTensor, layout: OperandLayout, K: number, n0: number, cols: number, panel: number): ConstTensor {
  const panels = Math.ceil(cols / panel);
  const out = hostArrayFor(b.dtype, panels * K * panel);
  // read once: b may itself be a lazy constant
  const src = b.data;
  for (let p = 0; p < panels; p++) {
    const c0 = p * panel, count = Math.min(panel, cols - c0);
    const panelBase = p * K * panel;
    // read B sequentially whichever of k or n is its contiguous axis
    if (layout.colStride === 1) {
      for (let k = 0; k < K; k++) {
        const from = k * layout.rowStride + n0 + c0;
        out.set(src.subarray(from, from + count), panelBase + k * panel);
      }
    } else {
      for (let n = 0; n < count; n++) {
        const base = (n0 + c0 + n) * layout.colStride;
        for (let k = 0; k < K; k++) out[panelBase + k * panel + n] = src[base + k * layout.rowStride]!;
      }
    }
  }
  return { dtype: b.dtype, shape: [panels, K, panel], data: out };
}

// ---------------------------------------------------------------------------------------------
// The kernel
// ---------------------------------------------------------------------------------------------

interface KernelPlan {
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
function chooseRowTile(M: number): number {
  return M >= 4 ? 4 : M;
}

function chooseWorkgroupSize(columnTiles: number): number {
  let size = 1;
  while (size < 64 && size < columnTiles) size *= 2;
  return size;
}

function declarations(type: WgslScalar, bVec4: boolean, hasBias: boolean): string {
  const decls = [
    ['a', `array<${type}>`],
    ['b', bVec4 ? `array<vec4<${type}>>` : `array<${type}>`],
    ...(hasBias ? [['c', `array<${type}>`]] : []),
    ['y', `array<${type}>`],
  ];
  // same form as codegen/wgsl.ts storageDecls (every binding read_write), plus vec4 element types
  return decls.map(([name, t], i) => `@group(0) @binding(${i}) var<storage, read_write> ${name}: ${t};`).join('\n');
}

/** WGSL expression loading B's four columns n0..n0+3 (of this part) at row k. */
function loadBRow(p: KernelPlan): string {
  const { part, type } = p;
  const rowStride = part.layout.rowStride;
  if (part.vec4) return `b[bRow + k * ${u(rowStride / 4)}]`;
  const lanes = [0, 1, 2, 3].map((j) => {
    // columns past the part's width read its last column (in bounds) and are never stored
    const col = part.width % 4 === 0 ? `(n0 + ${u(j)})` : `min(n0 + ${u(j)}, ${u(part.width - 1)})`;
    return `b[bBase + k * ${u(rowStride)} + ${col} * ${u(part.layout.colStride)}]`;
  });
  return `vec4<${type}>(${lanes.join(', ')})`;
}

/** vec4 index of this invocation's four B columns at k = 0 */
function vec4RowStart(p: KernelPlan, bBase: string): string {
  const { part, g } = p;
  const batchPart = bBase === '0u' ? '' : `(${bBase}) / 4u + `;
  if (!part.panel) return `${batchPart}nt`;
  const tilesPerPanel = part.panel / 4;
  return `${batchPart}(nt / ${u(tilesPerPanel)}) * ${u(g.K * tilesPerPanel)} + nt % ${u(tilesPerPanel)}`;
}

function storeExpr(p: KernelPlan, acc: string, ctx: LowerContext): string {
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

function kernelSource(p: KernelPlan, ctx: LowerContext): string {
  const { g, part, type, rowTile } = p;
  const { M, K, N } = g;
  const rows = Array.from({ length: rowTile }, (_, i) => i);
  const batchCoords = g.batchShape.map((_, i) => `bc${i}`);
  const batchStrides = contiguousStrides(g.batchShape);
  const batchLines = g.batchShape.map((d, i) => `let bc${i} = (wid.z / ${u(batchStrides[i]!)}) % ${u(d)};`);
  const bBase = dot(batchCoords, part.layout.batchStrides);
  const body = [
    'let nt = wid.x * ' + u(p.workgroupSize) + ' + lid.x;',
    'let n0 = nt * 4u;',
    `if (n0 >= ${u(part.width)}) { return; }`,
    `let m0 = wid.y * ${u(rowTile)};`,
    ...batchLines,
    `let aBase = ${dot(batchCoords, g.a.batchStrides)};`,
    part.vec4 ? `let bRow = ${vec4RowStart(p, bBase)};` : `let bBase = ${bBase};`,
    `let yBase = wid.z * ${u(M * N)};`,
    // rows past M read row M-1 (in bounds) and are never stored
    ...rows.map((i) => `let ar${i} = aBase + ${M % rowTile === 0 ? `(m0 + ${u(i)})` : `min(m0 + ${u(i)}, ${u(M - 1)})`} * ${u(g.a.rowStride)};`),
    ...rows.map((i) => `var acc${i} = vec4<${type}>();`),
    `for (var k = 0u; k < ${u(K)}; k++) {`,
    `  let bv = ${loadBRow(p)};`,
    ...rows.map((i) => `  acc${i} += a[ar${i} + k * ${u(g.a.colStride)}] * bv;`),
    '}',
    ...rows.flatMap((i) => [0, 1, 2, 3].map((j) => storeStatement(p, ctx, i, j))),
  ];
  return `${declarations(type, part.vec4, usesBias(p.epi))}

@compute @workgroup_size(${p.workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${body.join('\n  ')}
}
`;
}

// ---------------------------------------------------------------------------------------------
// Few rows, long K (gemv): K split across a workgroup, partial sums reduced in workgroup memory
// ---------------------------------------------------------------------------------------------

/**
 * The register-tiled kernel gives each invocation the whole K loop, so with M <= 4 a kernel runs
 * only N / 4 invocations, each K dependent loads long: latency-bound on a real GPU, and just as
 * slow for a 352-column slice of a split weight as for all 4096 columns (VGG fc6 on the H100:
 * ~10 ms per slice). Here one workgroup owns one panel of packed B; its invocations split K into
 * `slices` interleaved rows (the panel's rows are contiguous, so a warp reads consecutive rows
 * in one stream) and add their partial sums in workgroup memory.
 */
const SPLIT_K_MIN_K = 256;
const SPLIT_K_INVOCATIONS = 256;

function splitKApplies(g: MatmulGeometry, part: BPart): boolean {
  return g.M <= 4 && g.K >= SPLIT_K_MIN_K && part.panel !== undefined && numElements(g.batchShape) === 1;
}

interface SplitKPlan extends KernelPlan {
  /** vec4 column tiles per panel (invocations along n) */
  tiles: number;
  /** invocations along k: a power of two, for the reduction tree */
  slices: number;
}

function splitKPlan(g: MatmulGeometry, type: WgslScalar, part: BPart, epi: Epilogue): SplitKPlan {
  const tiles = part.panel! / 4;
  let slices = 1;
  while (slices * 2 * tiles <= SPLIT_K_INVOCATIONS) slices *= 2;
  return { g, type, part, epi, rowTile: g.M, workgroupSize: tiles * slices, tiles, slices };
}

function splitKSource(p: SplitKPlan, ctx: LowerContext): string {
  const { g, type, tiles, slices } = p;
  const { M, K } = g;
  const rows = Array.from({ length: M }, (_, i) => i);
  const step = u(slices);
  const aAt = (i: number, k: string) => `a[${u(i * g.a.rowStride)} + (${k}) * ${u(g.a.colStride)}]`;
  const bAt = (k: string) => `b[bPanel + (${k}) * ${u(tiles)}]`;
  // four rows per trip keep four loads in flight per invocation
  const unrolled = [0, 1, 2, 3].map((r) => (r === 0 ? 'k' : `k + ${u(r * slices)}`));
  const body = [
    `let tile = lid.x % ${u(tiles)};`,
    `let kslice = lid.x / ${u(tiles)};`,
    `let bPanel = wid.x * ${u(K * tiles)} + tile;`,
    ...rows.map((i) => `var acc${i} = vec4<${type}>();`),
    'var k = kslice;',
    `for (; k + ${u(3 * slices)} < ${u(K)}; k += ${u(4 * slices)}) {`,
    ...unrolled.map((kk, r) => `  let b${r} = ${bAt(kk)};`),
    ...rows.map((i) => `  acc${i} += ${unrolled.map((kk, r) => `${aAt(i, kk)} * b${r}`).join(' + ')};`),
    '}',
    `for (; k < ${u(K)}; k += ${step}) {`,
    `  let bv = ${bAt('k')};`,
    ...rows.map((i) => `  acc${i} += ${aAt(i, 'k')} * bv;`),
    '}',
    ...rows.map((i) => `partial[${u(i * p.workgroupSize)} + lid.x] = acc${i};`),
    `for (var width = ${u(slices / 2)}; width > 0u; width /= 2u) {`,
    '  workgroupBarrier();',
    '  if (kslice < width) {',
    ...rows.map((i) => `    partial[${u(i * p.workgroupSize)} + lid.x] += partial[${u(i * p.workgroupSize)} + lid.x + width * ${u(tiles)}];`),
    '  }',
    '}',
    'workgroupBarrier();',
    `let n0 = wid.x * ${u(tiles * 4)} + tile * 4u;`,
    `if (kslice != 0u || n0 >= ${u(p.part.width)}) { return; }`,
    'let m0 = 0u;',
    'let yBase = 0u;',
    ...rows.map((i) => `acc${i} = partial[${u(i * p.workgroupSize)} + lid.x];`),
    ...rows.flatMap((i) => [0, 1, 2, 3].map((j) => storeStatement(p, ctx, i, j))),
  ];
  return `${declarations(type, true, usesBias(p.epi))}
var<workgroup> partial: array<vec4<${type}>, ${M * p.workgroupSize}>;

@compute @workgroup_size(${p.workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${body.join('\n  ')}
}
`;
}

function storeStatement(p: KernelPlan, ctx: LowerContext, i: number, j: number): string {
  const { g, part } = p;
  const conditions = [
    ...(g.M % p.rowTile === 0 ? [] : [`m0 + ${u(i)} < ${u(g.M)}`]),
    ...(part.width % 4 === 0 || j === 0 ? [] : [`n0 + ${u(j)} < ${u(part.width)}`]),
  ];
  const store = `{ let m = m0 + ${u(i)}; let n = ${u(part.n0)} + n0 + ${u(j)}; y[yBase + m * ${u(g.N)} + n] = ${storeExpr(p, `acc${i}[${j}]`, ctx)}; }`;
  return conditions.length === 0 ? store : `if (${conditions.join(' && ')}) ${store}`;
}

function checkBindingSizes(ctx: LowerContext, tensors: readonly (LowerTensor | undefined)[]): void {
  const limit = ctx.limits.maxStorageBufferBindingSize;
  for (const t of tensors) {
    if (t && bindingBytes(t.type) > limit) {
      fail('FM_LIMIT', `${describeNode(ctx.node)}: a [${t.type.shape}] operand needs ${bindingBytes(t.type)} bytes, more than the target's maxStorageBufferBindingSize ${limit}; ` +
        'reduce the batch size or target a device with a larger limit');
    }
  }
}

function checkGrid(ctx: LowerContext, workgroups: [number, number, number], limits: TargetLimits): void {
  if (workgroups.some((w) => w > limits.maxComputeWorkgroupsPerDimension)) {
    fail('FM_LIMIT', `${describeNode(ctx.node)}: needs workgroup grid [${workgroups}], over the per-dimension limit ${limits.maxComputeWorkgroupsPerDimension}`);
  }
}

// ---------------------------------------------------------------------------------------------
// Texture layout: constant float B shared by every batch entry, as texture rows n of K values
// ---------------------------------------------------------------------------------------------

function textureCandidate(ctx: ShapeContext): TextureWeightCandidate | undefined {
  const [a, b] = ctx.inputs;
  if (!a || !b || !ctx.consts[1] || !isFloat(b.dtype) || !isFloat(a.dtype)) return undefined;
  const g = foldBatchIntoRows(geometryOf(ctx.node, a.shape, b.shape));
  if (g.b.batchStrides.some((s) => s !== 0)) return undefined;
  return { costKind: 'matmul', rows: g.N, reduction: g.K };
}

/** Texture row n holds B's column n (element (k, n) at k * rowStride + n * colStride), K values. */
function texelsOfB(g: MatmulGeometry, shape: TextureShape, b: ConstTensor): Float32Array {
  return packTexels(shape, g.N, g.K, (n, k) => Number(b.data[k * g.b.rowStride + n * g.b.colStride]));
}

/** A's rows can be read as vec4 along k: contiguous k, K a multiple of 4, every row start aligned. */
function aVec4Loadable(g: MatmulGeometry): boolean {
  return g.a.colStride === 1 && g.K % 4 === 0 && g.a.rowStride % 4 === 0 && g.a.batchStrides.every((s) => s % 4 === 0);
}

/**
 * The texture kernel: like kernelSource (rowTile rows x 4 columns per invocation), but per texel t
 * it loads 4 k-values of each of the 4 columns (one texel per column) and of each A row, and
 * accumulates vec4 dot products. Values of A past K are masked (the texels there are zero).
 */
function textureKernelSource(p: KernelPlan, shape: TextureShape, ctx: LowerContext): string {
  const { g, rowTile } = p;
  const { M, K, N } = g;
  const rows = Array.from({ length: rowTile }, (_, i) => i);
  const cols = [0, 1, 2, 3];
  const aVec4 = aVec4Loadable(g);
  const batchCoords = g.batchShape.map((_, i) => `bc${i}`);
  const batchStrides = contiguousStrides(g.batchShape);
  const aLoad = (i: number): string => {
    if (aVec4) return `a[(ar${i}) / 4u + t]`;
    const lanes = [0, 1, 2, 3].map((l) => {
      const k = K % TEXEL_VALUES === 0 ? `(k0 + ${u(l)})` : `min(k0 + ${u(l)}, ${u(K - 1)})`;
      const load = `a[ar${i} + ${k} * ${u(g.a.colStride)}]`;
      return K % TEXEL_VALUES === 0 ? load : `select(0.0, ${load}, k0 + ${u(l)} < ${u(K)})`;
    });
    return `vec4<f32>(${lanes.join(', ')})`;
  };
  const body = [
    `let nt = wid.x * ${u(p.workgroupSize)} + lid.x;`,
    'let n0 = nt * 4u;',
    `if (n0 >= ${u(N)}) { return; }`,
    `let m0 = wid.y * ${u(rowTile)};`,
    ...g.batchShape.map((d, i) => `let bc${i} = (wid.z / ${u(batchStrides[i]!)}) % ${u(d)};`),
    `let aBase = ${dot(batchCoords, g.a.batchStrides)};`,
    `let yBase = wid.z * ${u(M * N)};`,
    ...rows.map((i) => `let ar${i} = aBase + ${M % rowTile === 0 ? `(m0 + ${u(i)})` : `min(m0 + ${u(i)}, ${u(M - 1)})`} * ${u(g.a.rowStride)};`),
    // columns past N read row N-1 (in bounds) and are never stored
    ...cols.map((j) => `let col${j} = ${N % 4 === 0 ? `n0 + ${u(j)}` : `min(n0 + ${u(j)}, ${u(N - 1)})`};`),
    ...rows.map((i) => `var acc${i} = vec4<f32>();`),
    `for (var t = 0u; t < ${u(shape.width)}; t++) {`,
    ...(aVec4 ? [] : ['  let k0 = t * 4u;']),
    ...cols.map((j) => `  let wv${j} = ${texelLoad('b', shape, 't', `col${j}`)};`),
    ...rows.flatMap((i) => [`  let av${i} = ${aLoad(i)};`, `  acc${i} += vec4<f32>(${cols.map((j) => `dot(av${i}, wv${j})`).join(', ')});`]),
    '}',
    ...rows.flatMap((i) => [0, 1, 2, 3].map((j) => storeStatement(p, ctx, i, j))),
  ];
  const decls = [
    `@group(0) @binding(0) var<storage, read_write> a: array<${aVec4 ? 'vec4<f32>' : 'f32'}>;`,
    textureDecl(1, 'b'),
    ...(usesBias(p.epi) ? ['@group(0) @binding(2) var<storage, read_write> c: array<f32>;'] : []),
    `@group(0) @binding(${usesBias(p.epi) ? 3 : 2}) var<storage, read_write> y: array<f32>;`,
  ];
  return `${decls.join('\n')}

// ${ctx.node.opType.toLowerCase()} (texture ${shape.width}x${shape.height}x${shape.layers}): ${rowTile} rows x 4 columns per invocation
@compute @workgroup_size(${p.workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${body.join('\n  ')}
}
`;
}

/** Lowers with B as a texture; false when it cannot be one after all (then the buffer kernel runs). */
function lowerTexture(ctx: LowerContext, g: MatmulGeometry, epi: Epilogue): boolean {
  const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
  const c = ctx.node.opType === 'Gemm' ? ctx.inputs[2] : undefined;
  if (!b.data || !ctx.textureConstant || !isFloat(a.type.dtype) || g.b.batchStrides.some((s) => s !== 0)) return false;
  const shape = textureShapeFor(g.N, g.K, ctx.limits);
  if (!isTextureShape(shape)) return false;
  const columnTiles = Math.ceil(g.N / 4);
  const rowTile = chooseRowTile(g.M);
  // the texture path never splits B: it is one part covering every column
  const part: BPart = { tensor: b, layout: g.b, n0: 0, width: g.N, vec4: false };
  const plan: KernelPlan = { g, type: 'f32', part, epi, rowTile, workgroupSize: chooseWorkgroupSize(columnTiles) };
  const workgroups: [number, number, number] = [Math.ceil(columnTiles / plan.workgroupSize), Math.ceil(g.M / rowTile), numElements(g.batchShape)];
  if (workgroups.some((w) => w > ctx.limits.maxComputeWorkgroupsPerDimension)) return false;
  const wgsl = textureKernelSource(plan, shape, ctx);
  const texture = ctx.textureConstant('weights_texels', shape, texelsOfB(g, shape, b.data));
  const label = `${ctx.node.opType.toLowerCase()}${g.M === 1 ? '_gemv' : ''}_tex`;
  ctx.kernel({ label, wgsl, workgroups, bindings: [a, texture, ...(c && usesBias(epi) ? [c] : []), ctx.outputs[0]!] });
  return true;
}

function lower(ctx: LowerContext, columnSplits: readonly number[] = []): void {
  const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
  const c = ctx.node.opType === 'Gemm' ? ctx.inputs[2] : undefined;
  const y = ctx.outputs[0]!;
  const g = foldBatchIntoRows(geometryOf(ctx.node, a.type.shape, b.type.shape));
  const epi = epilogueOf(ctx.node, ctx.opset, c?.type.shape, g);
  checkBindingSizes(ctx, [a, c, y]);
  if (columnSplits.length === 0 && ctx.weightLayout === 'texture' && lowerTexture(ctx, g, epi)) return;
  const type = wgslType(a.type.dtype);
  const rowTile = chooseRowTile(g.M);
  const label = `${ctx.node.opType.toLowerCase()}${g.M === 1 ? '_gemv' : ''}`;
  const bounds = [0, ...columnSplits, g.N];
  const ranges = bounds.slice(1).map((n1, i) => [bounds[i]!, n1] as const);
  for (const part of prepareB(ctx, g, ranges)) {
    const bindings = [a, part.tensor, ...(c && usesBias(epi) ? [c] : []), y];
    if (ctx.gemvKernel !== 'tiled' && splitKApplies(g, part)) {
      const plan = splitKPlan(g, type, part, epi);
      ctx.kernel({ label, wgsl: splitKSource(plan, ctx), workgroups: [Math.ceil(part.width / part.panel!), 1, 1], bindings });
      continue;
    }
    const columnTiles = Math.ceil(part.width / 4);
    const plan: KernelPlan = { g, type, part, epi, rowTile, workgroupSize: chooseWorkgroupSize(columnTiles) };
    const workgroups: [number, number, number] = [
      Math.ceil(columnTiles / plan.workgroupSize), Math.ceil(g.M / rowTile), numElements(g.batchShape),
    ];
    checkGrid(ctx, workgroups, ctx.limits);
    ctx.kernel({
      label, wgsl: kernelSource(plan, ctx), workgroups,
      bindings,
    });
  }
}

/** MatMul/Gemm element types: floats compute in f32; integers in i32 (wrapping past 2^31, like the rest of the GPU path). */
const INTEGER_DTYPES: ReadonlySet<DType> = new Set(['int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64']);

function checkDtype(ctx: ShapeContext): void {
  const dtype = ctx.inputs[0]?.dtype;
  if (dtype && !isFloat(dtype) && !INTEGER_DTYPES.has(dtype)) {
    fail('FM_DTYPE', `${describeNode(ctx.node)}: element type ${dtype} is not supported; cast the operands to float32 or int32`);
  }
}

function matmulDef(opType: 'Gemm' | 'MatMul'): OpDef {
  return {
    opTypes: [opType],
    costClass: 'reusable',
    fusesActivation: true,
    inferTypes(ctx) {
      checkDtype(ctx);
      return inferTypes(ctx);
    },
    textureWeight: textureCandidate,
    fold,
    lower,
  };
}

export const matmulOps: readonly OpDef[] = [matmulDef('Gemm'), matmulDef('MatMul')];

// ---------------------------------------------------------------------------------------------
// SplitMatMul (FUSED_DOMAIN, built by the split-large-weights pass)
// ---------------------------------------------------------------------------------------------

/**
 * The MatMul or Gemm a SplitMatMul node stands for: attribute `op`, with that op's own attributes
 * and inputs (A, constant B[, C]).
 */
function originalNode(node: Node): Node {
  const op = attrString(node, 'op', '');
  if (op !== 'MatMul' && op !== 'Gemm') fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute "op" must be MatMul or Gemm, got ${quoteName(op)}`);
  return { ...node, opType: op, domain: '' };
}

/**
 * Column boundaries of a SplitMatMul: ascending, strictly inside (0, N). Each range of output
 * columns gets its own packed weight constant and kernels, which write their columns of the one
 * output in place (no Concat).
 */
function columnSplits(node: Node, n: number): number[] {
  const splits = attrInts(node, 'column_splits', []);
  if (splits.some((s, i) => !Number.isInteger(s) || s <= (i === 0 ? 0 : splits[i - 1]!) || s >= n)) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: column_splits [${splits}] must ascend strictly inside (0, ${n})`);
  }
  return splits;
}

export const splitMatmulOp: OpDef = {
  opTypes: ['SplitMatMul'],
  costClass: 'reusable',
  fusesActivation: true,
  inferTypes(ctx) {
    const original = { ...ctx, node: originalNode(ctx.node) };
    checkDtype(original);
    if (!ctx.consts[1]) fail('FM_ONNX_INVALID', `${describeNode(ctx.node)}: B must be a constant`);
    const types = inferTypes(original);
    columnSplits(ctx.node, types[0]!.shape[types[0]!.shape.length - 1] ?? 1);
    return types;
  },
  lower(ctx) {
    const node = originalNode(ctx.node);
    const [a, b] = [ctx.inputs[0]!, ctx.inputs[1]!];
    const g = geometryOf(node, a.type.shape, b.type.shape);
    lower({ ...ctx, node }, columnSplits(ctx.node, g.N));
  },
};
