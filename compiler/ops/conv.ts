/**
 * Conv and ConvTranspose (1-D, 2-D and 3-D spatial, groups, dilations, strides, pads, auto_pad).
 *
 * Both lower to one register-tiled kernel: an invocation computes a block of `ocTile` output
 * channels x `pxTile` consecutive output pixels, reducing over (kernel tap, input channel) with the
 * input channel innermost. The output-channel block comes from workgroup_id.y, so every
 * invocation of a workgroup reads the same weights (uniform loads, which software rasterisers
 * such as llvmpipe turn into one scalar load) while the pixels differ per invocation.
 * 1x1 convolutions (a GEMM) take the same path with no per-tap bounds checks, and depthwise
 * convolutions use ocTile 1 so that no work is wasted on the padding of channel blocks.
 *
 * The window geometry helpers (auto_pad, ceil_mode, ...) are shared with pool.ts.
 */
import { attrInt, attrInts, attrString } from '../ir/attrs.js';
import { isFloat, numElements, type ConstTensor, type FusedActivation, type Node, type TensorType } from '../ir/types.js';
import { computeEntry, grid1D, lit, storageDecls, u, type StorageDecl } from '../codegen/wgsl.js';
import { fail, quoteName } from '../errors.js';
import { applyActivation } from './activation.js';
import type { LowerContext, LowerTensor, OpDef, ShapeContext, TargetLimits } from './op.js';

// ---------------------------------------------------------------------------------------------
// Window geometry (shared with pool.ts)
// ---------------------------------------------------------------------------------------------

export type AutoPad = 'NOTSET' | 'SAME_UPPER' | 'SAME_LOWER' | 'VALID';
const AUTO_PADS: readonly AutoPad[] = ['NOTSET', 'SAME_UPPER', 'SAME_LOWER', 'VALID'];

/** Per spatial axis: where each output window starts in the (unpadded) input and how it steps. */
export interface WindowGeometry {
  inShape: number[];
  outShape: number[];
  kernel: number[];
  strides: number[];
  dilations: number[];
  padsBegin: number[];
  padsEnd: number[];
}

/** "node "name" (Conv)" for error messages */
export function describeNode(node: Node): string {
  return `node ${quoteName(node.name)} (${node.opType})`;
}

export function readAutoPad(node: Node): AutoPad {
  const value = attrString(node, 'auto_pad', 'NOTSET');
  if (!(AUTO_PADS as readonly string[]).includes(value)) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: auto_pad ${quoteName(value)} is not one of ${AUTO_PADS.join(', ')}`);
  }
  return value as AutoPad;
}

/**
 * An ints attribute with one value per spatial axis (or `perAxis` values per axis, for pads),
 * defaulting to `fallback` everywhere; every value must be >= `min`.
 */
export function spatialInts(node: Node, name: string, rank: number, fallback: number, min: number, perAxis = 1): number[] {
  const values = attrInts(node, name) ?? new Array<number>(rank * perAxis).fill(fallback);
  if (values.length !== rank * perAxis) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute ${quoteName(name)} has ${values.length} values [${values}], expected ${rank * perAxis} for ${rank} spatial axes`);
  }
  const bad = values.find((v) => !Number.isInteger(v) || v < min);
  if (bad !== undefined) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: attribute ${quoteName(name)} = [${values}] contains ${bad}; every value must be an integer >= ${min}`);
  }
  return values;
}

/** Output length of a sliding window; ceil mode drops a last window that would start in the end padding. */
function slidingOutputSize(inSize: number, padBegin: number, padEnd: number, effectiveKernel: number, stride: number, ceilMode: boolean): number {
  const span = inSize + padBegin + padEnd - effectiveKernel;
  if (span < 0) return 0;
  if (!ceilMode) return Math.floor(span / stride) + 1;
  let out = Math.ceil(span / stride) + 1;
  if ((out - 1) * stride >= inSize + padBegin) out--;
  return out;
}

/**
 * The window geometry of Conv and the pooling ops: explicit pads or auto_pad (SAME_* gives
 * ceil(in / stride) outputs, the odd padding going to the end for SAME_UPPER and to the
 * beginning for SAME_LOWER).
 */
export function forwardWindow(node: Node, inShape: readonly number[], kernel: readonly number[], options: { ceilMode?: boolean; dilations?: number[] } = {}): WindowGeometry {
  const rank = inShape.length;
  const strides = spatialInts(node, 'strides', rank, 1, 1);
  const dilations = options.dilations ?? spatialInts(node, 'dilations', rank, 1, 1);
  const autoPad = readAutoPad(node);
  const pads = autoPad === 'NOTSET' ? spatialInts(node, 'pads', rank, 0, 0, 2) : new Array<number>(2 * rank).fill(0);
  const geometry: WindowGeometry = {
    inShape: [...inShape], outShape: [], kernel: [...kernel], strides, dilations,
    padsBegin: pads.slice(0, rank), padsEnd: pads.slice(rank),
  };
  for (let axis = 0; axis < rank; axis++) {
    const inSize = inShape[axis]!;
    const stride = strides[axis]!;
    const effectiveKernel = (kernel[axis]! - 1) * dilations[axis]! + 1;
    if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') {
      const out = Math.ceil(inSize / stride);
      const total = Math.max(0, (out - 1) * stride + effectiveKernel - inSize);
      const begin = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : Math.ceil(total / 2);
      geometry.padsBegin[axis] = begin;
      geometry.padsEnd[axis] = total - begin;
    }
    const out = slidingOutputSize(inSize, geometry.padsBegin[axis]!, geometry.padsEnd[axis]!, effectiveKernel, stride, options.ceilMode ?? false);
    if (out <= 0) {
      fail('FM_SHAPE', `${describeNode(node)}: spatial axis ${axis} of size ${inSize} (pads ${geometry.padsBegin[axis]}+${geometry.padsEnd[axis]}) is smaller than the kernel extent ${effectiveKernel}; no output position remains`);
    }
    geometry.outShape.push(out);
  }
  return geometry;
}

/**
 * ConvTranspose geometry. With output_shape the total padding is derived from it and split like
 * SAME_UPPER (more at the end) or, for every other auto_pad, more at the beginning; SAME_* without
 * output_shape targets in * stride outputs.
 */
function transposeWindow(node: Node, inShape: readonly number[], kernel: readonly number[]): WindowGeometry & { outputPadding: number[] } {
  const rank = inShape.length;
  const strides = spatialInts(node, 'strides', rank, 1, 1);
  const dilations = spatialInts(node, 'dilations', rank, 1, 1);
  const outputPadding = spatialInts(node, 'output_padding', rank, 0, 0);
  const autoPad = readAutoPad(node);
  const pads = autoPad === 'NOTSET' ? spatialInts(node, 'pads', rank, 0, 0, 2) : new Array<number>(2 * rank).fill(0);
  const requested = attrInts(node, 'output_shape');
  if (requested && requested.length !== rank && requested.length !== rank + 2) {
    fail('FM_ONNX_INVALID', `${describeNode(node)}: output_shape [${requested}] must have ${rank} (spatial) or ${rank + 2} values`);
  }
  const geometry = {
    inShape: [...inShape], outShape: [] as number[], kernel: [...kernel], strides, dilations, outputPadding,
    padsBegin: pads.slice(0, rank), padsEnd: pads.slice(rank),
  };
  for (let axis = 0; axis < rank; axis++) {
    const full = (inShape[axis]! - 1) * strides[axis]! + outputPadding[axis]! + (kernel[axis]! - 1) * dilations[axis]! + 1;
    if (outputPadding[axis]! >= Math.max(strides[axis]!, dilations[axis]!)) {
      fail('FM_ONNX_INVALID', `${describeNode(node)}: output_padding[${axis}] = ${outputPadding[axis]} must be smaller than max(stride, dilation) = ${Math.max(strides[axis]!, dilations[axis]!)}`);
    }
    const target = requested ? requested[requested.length - rank + axis]! : autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER' ? inShape[axis]! * strides[axis]! : undefined;
    if (target !== undefined) {
      const total = Math.max(0, full - target);
      const begin = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
      geometry.padsBegin[axis] = begin;
      geometry.padsEnd[axis] = total - begin;
    }
    const out = full - geometry.padsBegin[axis]! - geometry.padsEnd[axis]!;
    if (out <= 0) fail('FM_SHAPE', `${describeNode(node)}: spatial axis ${axis} would have ${out} outputs; reduce pads`);
    geometry.outShape.push(out);
  }
  return geometry;
}

// ---------------------------------------------------------------------------------------------
// Shape rules
// ---------------------------------------------------------------------------------------------

const MAX_SPATIAL_RANK = 3;

interface ConvShapes {
  batch: number;
  inChannels: number;
  outChannels: number;
  groups: number;
  inPerGroup: number;
  outPerGroup: number;
  geometry: WindowGeometry;
}

function requireFloat(node: Node, t: TensorType): void {
  if (!isFloat(t.dtype)) fail('FM_DTYPE', `${describeNode(node)}: input of type ${t.dtype} is not supported; ${node.opType} takes float tensors`);
}

/** Validates X, W (and B) and returns the kernel shape from W, checked against kernel_shape. */
function checkConvInputs(node: Node, x: TensorType | undefined, w: TensorType | undefined): number[] {
  if (!x || !w) fail('FM_ONNX_INVALID', `${describeNode(node)}: inputs X and W are required`);
  requireFloat(node, x);
  const rank = x.shape.length - 2;
  if (rank < 1) fail('FM_SHAPE', `${describeNode(node)}: input X has shape [${x.shape}]; expected (N, C, D1, ...) with at least one spatial axis`);
  if (rank > MAX_SPATIAL_RANK) fail('FM_UNSUPPORTED_OP', `${describeNode(node)}: ${rank}-D spatial input [${x.shape}] is not supported (at most ${MAX_SPATIAL_RANK} spatial axes)`);
  if (w.shape.length !== x.shape.length) fail('FM_SHAPE', `${describeNode(node)}: weight W has shape [${w.shape}], expected rank ${x.shape.length} like X [${x.shape}]`);
  const kernel = w.shape.slice(2);
  const declared = attrInts(node, 'kernel_shape');
  if (declared && JSON.stringify(declared) !== JSON.stringify(kernel)) {
    fail('FM_SHAPE', `${describeNode(node)}: kernel_shape [${declared}] does not match the spatial shape [${kernel}] of W`);
  }
  return kernel;
}

function readGroups(node: Node): number {
  const groups = attrInt(node, 'group', 1);
  if (!Number.isInteger(groups) || groups < 1) fail('FM_ONNX_INVALID', `${describeNode(node)}: group = ${groups} must be a positive integer`);
  return groups;
}

function checkBias(node: Node, b: TensorType | undefined, outChannels: number): void {
  if (b && (b.shape.length !== 1 || b.shape[0] !== outChannels)) {
    fail('FM_SHAPE', `${describeNode(node)}: bias B has shape [${b.shape}], expected [${outChannels}] (one value per output channel)`);
  }
}

function convShapes(ctx: Pick<ShapeContext, 'node' | 'inputs'>): ConvShapes {
  const { node } = ctx;
  const [x, w, b] = ctx.inputs;
  const kernel = checkConvInputs(node, x, w);
  const groups = readGroups(node);
  const [batch, inChannels] = x!.shape as [number, number];
  const [outChannels, inPerGroup] = w!.shape as [number, number];
  if (inPerGroup * groups !== inChannels) {
    fail('FM_SHAPE', `${describeNode(node)}: X has ${inChannels} channels but W [${w!.shape}] with group ${groups} expects ${inPerGroup * groups}`);
  }
  if (outChannels % groups !== 0) fail('FM_SHAPE', `${describeNode(node)}: ${outChannels} output channels are not divisible by group ${groups}`);
  checkBias(node, b, outChannels);
  const geometry = forwardWindow(node, x!.shape.slice(2), kernel);
  return { batch, inChannels, outChannels, groups, inPerGroup, outPerGroup: outChannels / groups, geometry };
}

function convTransposeShapes(ctx: Pick<ShapeContext, 'node' | 'inputs'>): ConvShapes {
  const { node } = ctx;
  const [x, w, b] = ctx.inputs;
  const kernel = checkConvInputs(node, x, w);
  const groups = readGroups(node);
  const [batch, inChannels] = x!.shape as [number, number];
  const [weightIn, outPerGroup] = w!.shape as [number, number];
  if (weightIn !== inChannels) fail('FM_SHAPE', `${describeNode(node)}: W [${w!.shape}] has ${weightIn} input channels, X [${x!.shape}] has ${inChannels}`);
  if (inChannels % groups !== 0) fail('FM_SHAPE', `${describeNode(node)}: ${inChannels} input channels are not divisible by group ${groups}`);
  const outChannels = outPerGroup * groups;
  checkBias(node, b, outChannels);
  const geometry = transposeWindow(node, x!.shape.slice(2), kernel);
  return { batch, inChannels, outChannels, groups, inPerGroup: inChannels / groups, outPerGroup, geometry };
}

// ---------------------------------------------------------------------------------------------
// The tiled kernel
// ---------------------------------------------------------------------------------------------

type Vec3 = [number, number, number];
type ConvMode = 'conv' | 'transpose';

/** Everything the kernel template needs; spatial axes are left-padded to 3 (D, H, W). */
interface ConvPlan {
  mode: ConvMode;
  shapes: ConvShapes;
  inVol: Vec3;
  outVol: Vec3;
  kVol: Vec3;
  strides: Vec3;
  dilations: Vec3;
  padsBegin: Vec3;
  /** output channels per invocation (1, 2, 4 or 8) */
  ocTile: number;
  /** consecutive output pixels per invocation */
  pxTile: number;
  /** ceil(outPerGroup / ocTile) channel blocks per group */
  blocksPerGroup: number;
}

const WORKGROUP_SIZE = 64;

function toVol(values: readonly number[], fill: number): Vec3 {
  const padded = [...new Array<number>(3 - values.length).fill(fill), ...values];
  return padded as Vec3;
}

/** Tile sizes: measured on llvmpipe (bench/conv-bench.ts); blocks of 8 channels x 4 pixels keep all accumulators in registers. */
export function chooseTiles(outPerGroup: number): { ocTile: number; pxTile: number } {
  if (outPerGroup >= 8) return { ocTile: 8, pxTile: 4 };
  if (outPerGroup >= 3) return { ocTile: 4, pxTile: 4 };
  return { ocTile: outPerGroup, pxTile: 8 };
}

function makePlan(mode: ConvMode, shapes: ConvShapes, tiles = chooseTiles(shapes.outPerGroup)): ConvPlan {
  const g = shapes.geometry;
  return {
    mode, shapes,
    inVol: toVol(g.inShape, 1), outVol: toVol(g.outShape, 1), kVol: toVol(g.kernel, 1),
    strides: toVol(g.strides, 1), dilations: toVol(g.dilations, 1), padsBegin: toVol(g.padsBegin, 0),
    ...tiles,
    blocksPerGroup: Math.ceil(shapes.outPerGroup / tiles.ocTile),
  };
}

/** Number of elements of the re-laid-out weights: [group][block][kd][kh][kw][ic][ocTile]. */
function packedWeightCount(p: ConvPlan): number {
  return p.shapes.groups * p.blocksPerGroup * numElements(p.kVol) * p.shapes.inPerGroup * p.ocTile;
}

/**
 * Index into the ONNX weight tensor of packed element (group, out channel within group, input
 * channel within group, flat tap). Conv W is [M, C/group, k...]; ConvTranspose W is [C, M/group, k...].
 */
function sourceWeightIndex(p: ConvPlan, group: number, oc: number, ic: number, tap: number): number {
  const taps = numElements(p.kVol);
  const { inPerGroup: cg, outPerGroup: mg } = p.shapes;
  return p.mode === 'conv'
    ? ((group * mg + oc) * cg + ic) * taps + tap
    : ((group * cg + ic) * mg + oc) * taps + tap;
}

/**
 * Packed weight layout: [group][channel block][kd][kh][kw][input channel][ocTile], channels past
 * the end of a group's last block zero. The kernel reads one contiguous ocTile vector per
 * (tap, input channel) and walks the whole block's weights in order.
 */
function packWeights(p: ConvPlan, w: ConstTensor): ConstTensor {
  const packed = new Float32Array(packedWeightCount(p));
  const taps = numElements(p.kVol);
  const { inPerGroup: cg, outPerGroup: mg, groups } = p.shapes;
  let i = 0;
  for (let group = 0; group < groups; group++) {
    for (let block = 0; block < p.blocksPerGroup; block++) {
      for (let tap = 0; tap < taps; tap++) {
        for (let ic = 0; ic < cg; ic++) {
          for (let j = 0; j < p.ocTile; j++, i++) {
            const oc = block * p.ocTile + j;
            if (oc < mg) packed[i] = w.data[sourceWeightIndex(p, group, oc, ic, tap)]!;
          }
        }
      }
    }
  }
  return { dtype: w.dtype, shape: [packed.length], data: packed };
}

/** GPU version of packWeights for weights that are runtime tensors. */
function packWeightsWgsl(p: ConvPlan): { wgsl: string; workgroups: [number, number, number] } {
  const total = packedWeightCount(p);
  const taps = numElements(p.kVol);
  const { inPerGroup: cg, outPerGroup: mg } = p.shapes;
  const grid = grid1D(total);
  const source = p.mode === 'conv'
    ? `((group * ${u(mg)} + oc) * ${u(cg)} + ic) * ${u(taps)} + tap`
    : `((group * ${u(cg)} + ic) * ${u(mg)} + oc) * ${u(taps)} + tap`;
  const body = `${grid.prologue}
  let j = i % ${u(p.ocTile)};
  let ic = (i / ${u(p.ocTile)}) % ${u(cg)};
  let tap = (i / ${u(p.ocTile * cg)}) % ${u(taps)};
  let blockIndex = i / ${u(p.ocTile * cg * taps)};
  let group = blockIndex / ${u(p.blocksPerGroup)};
  let oc = (blockIndex % ${u(p.blocksPerGroup)}) * ${u(p.ocTile)} + j;
  packed[i] = select(0.0, w[min(${source}, ${u(numElements([p.shapes.groups, mg, cg, taps]) - 1)})], oc < ${u(mg)});`;
  const wgsl = `${storageDecls([{ name: 'w', type: 'f32' }, { name: 'packed', type: 'f32' }])}\n\n${computeEntry(grid.workgroupSize, body)}\n`;
  return { wgsl, workgroups: grid.workgroups };
}

interface AxisCode {
  /** WGSL declarations of the input coordinate `c{axis}_{j}` and validity `v{axis}_{j}` of pixel j */
  lines: string[];
  /** whether any tap of this axis can fall outside the input */
  checked: boolean;
}

const AXES = ['d', 'h', 'w'] as const;

/**
 * Input coordinate along one axis for output coordinate `o{axis}_{j}` and tap `k{axis}`.
 * Conv: i = o*s - pad + k*dil. ConvTranspose (gather form): t = o + pad - k*dil must be a
 * multiple of the stride, and i = t / s.
 */
function axisCode(p: ConvPlan, axis: number): AxisCode {
  const name = AXES[axis]!;
  const s = p.strides[axis]!, d = p.dilations[axis]!, pad = p.padsBegin[axis]!;
  const inSize = p.inVol[axis]!, outSize = p.outVol[axis]!, k = p.kVol[axis]!;
  const lines: string[] = [];
  let checked = false;
  for (let j = 0; j < p.pxTile; j++) {
    const o = `o${name}_${j}`;
    const conds: string[] = [];
    if (p.mode === 'conv') {
      const lowest = -pad, highest = (outSize - 1) * s - pad + (k - 1) * d;
      lines.push(`let c${name}_${j} = ${o} * ${lit(s, 'i32')} + k${name} * ${lit(d, 'i32')} - ${lit(pad, 'i32')};`);
      if (lowest < 0) conds.push(`c${name}_${j} >= 0`);
      if (highest >= inSize) conds.push(`c${name}_${j} < ${lit(inSize, 'i32')}`);
    } else {
      const lowest = pad - (k - 1) * d, highest = outSize - 1 + pad;
      lines.push(`let t${name}_${j} = ${o} + ${lit(pad, 'i32')} - k${name} * ${lit(d, 'i32')};`);
      if (lowest < 0) conds.push(`t${name}_${j} >= 0`);
      if (s > 1) conds.push(`t${name}_${j} % ${lit(s, 'i32')} == 0`);
      if (highest >= inSize * s) conds.push(`t${name}_${j} < ${lit(inSize * s, 'i32')}`);
      lines.push(`let c${name}_${j} = ${s > 1 ? `t${name}_${j} / ${lit(s, 'i32')}` : `t${name}_${j}`};`);
    }
    if (conds.length > 0) checked = true;
    lines.push(`let v${name}_${j} = ${conds.length > 0 ? conds.join(' && ') : 'true'};`);
  }
  return { lines, checked };
}

function vecType(width: number): string {
  return width === 1 ? 'f32' : `vec${width}<f32>`;
}

/** The WGSL of the tiled Conv / ConvTranspose kernel. Bindings: x, packed weights, [bias], y. */
function convWgsl(p: ConvPlan, hasBias: boolean, activation: FusedActivation | undefined): string {
  const { inChannels, outChannels, inPerGroup: cg, outPerGroup: mg } = p.shapes;
  const [, ih, iw] = p.inVol;
  const [od, oh, ow] = p.outVol;
  const [kd, kh, kw] = p.kVol;
  const inPix = numElements(p.inVol), outPix = numElements(p.outVol);
  const T = p.ocTile, P = p.pxTile;
  const lanes = Math.min(T, 4), quads = Math.ceil(T / lanes);
  const vt = vecType(lanes);
  const px = Array.from({ length: P }, (_, j) => j);
  const quadIdx = Array.from({ length: quads }, (_, q) => q);

  const axes = [0, 1, 2].map((a) => axisCode(p, a));
  const masked = axes.some((a) => a.checked);
  const decls: StorageDecl[] = [{ name: 'x', type: 'f32' }, { name: 'w', type: 'f32' }];
  if (hasBias) decls.push({ name: 'b', type: 'f32' });
  decls.push({ name: 'y', type: 'f32' });

  const pixelCoords = px.map((j) => [
    `let p_${j} = min(pix0 + ${u(j)}, ${u(outPix - 1)});`,
    `let od_${j} = ${od > 1 ? `i32(p_${j} / ${u(oh * ow)})` : '0i'};`,
    `let oh_${j} = ${oh > 1 ? `i32((p_${j} / ${u(ow)}) % ${u(oh)})` : '0i'};`,
    `let ow_${j} = ${ow > 1 ? `i32(p_${j} % ${u(ow)})` : '0i'};`,
  ].join('\n  ')).join('\n  ');

  const loadWeights = quadIdx.map((q) => {
    const comps = Array.from({ length: lanes }, (_, c) => `w[wi + ${u(q * lanes + c)}]`);
    return `let w_${q} = ${lanes === 1 ? comps[0] : `${vt}(${comps.join(', ')})`};`;
  }).join('\n          ');
  const loadInputs = px.map((j) => `let x_${j} = x[xi + off_${j}]${masked ? ` * m_${j}` : ''};`).join('\n          ');
  const fmas = px.flatMap((j) => quadIdx.map((q) => `acc_${j}_${q} += w_${q} * x_${j};`)).join('\n          ');

  const rowLines = px.map((j) => `let vdh_${j} = vd_${j} && vh_${j};\n      let row_${j} = (cd_${j} * ${lit(ih, 'i32')} + ch_${j}) * ${lit(iw, 'i32')};`).join('\n      ');
  const tapLines = px.map((j) => [
    `let valid_${j} = vdh_${j} && vw_${j};`,
    `let off_${j} = u32(select(0, row_${j} + cw_${j}, valid_${j}));`,
    ...(masked ? [`let m_${j} = select(0.0, 1.0, valid_${j});`] : []),
  ].join('\n        ')).join('\n        ');

  const oc = (q: number, c: number) => `ocInGroup + ${u(q * lanes + c)}`;
  const stores = px.map((j) => {
    const perChannel = quadIdx.flatMap((q) => Array.from({ length: lanes }, (_, c) => {
      const channel = q * lanes + c;
      const value = `acc_${j}_${q}${lanes === 1 ? '' : `[${c}]`}${hasBias ? ` + b[ocBase + ${u(channel)}]` : ''}`;
      const store = `y[yo_${j} + ${u(channel * outPix)}] = ${applyActivation(`(${value})`, activation)};`;
      return mg % T === 0 ? store : `if (${oc(q, c)} < ${u(mg)}) { ${store} }`;
    }));
    const body = [`let yo_${j} = yBase + pix0 + ${u(j)};`, ...perChannel].join('\n    ');
    return outPix % P === 0 || j === 0 ? `{\n    ${body}\n  }` : `if (pix0 + ${u(j)} < ${u(outPix)}) {\n    ${body}\n  }`;
  }).join('\n  ');

  return `${storageDecls(decls)}

// ${p.mode} tile: ${T} output channels x ${P} output pixels per invocation
@compute @workgroup_size(${WORKGROUP_SIZE})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  let pix0 = (wid.x * ${u(WORKGROUP_SIZE)} + lid.x) * ${u(P)};
  if (pix0 >= ${u(outPix)}) { return; }
  let block = wid.y;
  let n = wid.z;
  let group = block / ${u(p.blocksPerGroup)};
  let ocInGroup = (block % ${u(p.blocksPerGroup)}) * ${u(T)};
  let ocBase = group * ${u(mg)} + ocInGroup;
  ${pixelCoords}
  let xBase = (n * ${u(inChannels)} + group * ${u(cg)}) * ${u(inPix)};
  let yBase = (n * ${u(outChannels)} + ocBase) * ${u(outPix)};
  let wBlock = block * ${u(numElements(p.kVol) * cg * T)};
  ${px.flatMap((j) => quadIdx.map((q) => `var acc_${j}_${q} = ${vt}(0.0);`)).join('\n  ')}
  for (var kd = 0i; kd < ${lit(kd, 'i32')}; kd++) {
    ${axes[0]!.lines.join('\n    ')}
    for (var kh = 0i; kh < ${lit(kh, 'i32')}; kh++) {
      ${axes[1]!.lines.join('\n      ')}
      ${rowLines}
      for (var kw = 0i; kw < ${lit(kw, 'i32')}; kw++) {
        ${axes[2]!.lines.join('\n        ')}
        ${tapLines}
        var wi = wBlock + u32((kd * ${lit(kh, 'i32')} + kh) * ${lit(kw, 'i32')} + kw) * ${u(cg * T)};
        var xi = xBase;
        for (var ic = 0u; ic < ${u(cg)}; ic++) {
          ${loadWeights}
          ${loadInputs}
          ${fmas}
          wi += ${u(T)};
          xi += ${u(inPix)};
        }
      }
    }
  }
  ${stores}
}
`;
}

function checkBindingSizes(node: Node, limits: TargetLimits, tensors: readonly { what: string; elements: number }[]): void {
  for (const t of tensors) {
    const bytes = t.elements * 4;
    if (bytes > limits.maxStorageBufferBindingSize) {
      fail('FM_LIMIT', `${describeNode(node)}: ${t.what} needs ${bytes} bytes, more than the target's maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}; reduce the batch size or input resolution`);
    }
  }
}

function kernelLabel(p: ConvPlan): string {
  const dims = p.shapes.geometry.inShape.length;
  const k = p.shapes.geometry.kernel;
  const kind = p.mode === 'conv' ? 'conv' : 'conv_transpose';
  const depthwise = p.shapes.inPerGroup === 1 && p.shapes.outPerGroup <= 2 && p.shapes.groups > 1 ? '_dw' : '';
  return `${kind}${dims}d_${k.join('x')}${depthwise}`;
}

/** Packed weights: a derived constant when W is constant, else a scratch tensor filled by a packing kernel. */
function packedWeightsFor(ctx: LowerContext, p: ConvPlan): LowerTensor {
  const w = ctx.inputs[1]!;
  if (w.data) return ctx.constant(`${p.mode}_packed_weights`, packWeights(p, w.data));
  const packed = ctx.scratch(`${p.mode}_packed_weights`, { dtype: w.type.dtype, shape: [packedWeightCount(p)] });
  const { wgsl, workgroups } = packWeightsWgsl(p);
  ctx.kernel({ label: `${p.mode}_pack_weights`, wgsl, bindings: [w, packed], workgroups });
  return packed;
}

function lowerConvLike(ctx: LowerContext, p: ConvPlan): void {
  const { node, limits } = ctx;
  const [x, , bias] = ctx.inputs;
  const y = ctx.outputs[0]!;
  const { batch, groups } = p.shapes;
  checkBindingSizes(node, limits, [
    { what: 'input X', elements: numElements(x!.type.shape) },
    { what: 'output Y', elements: numElements(y.type.shape) },
    { what: 'packed weights', elements: packedWeightCount(p) },
  ]);
  const tiles = Math.ceil(numElements(p.outVol) / p.pxTile);
  const workgroups: [number, number, number] = [Math.ceil(tiles / WORKGROUP_SIZE), groups * p.blocksPerGroup, batch];
  if (workgroups.some((n) => n > limits.maxComputeWorkgroupsPerDimension)) {
    fail('FM_LIMIT', `${describeNode(node)}: needs workgroup grid [${workgroups}], over the per-dimension limit ${limits.maxComputeWorkgroupsPerDimension}`);
  }
  const packed = packedWeightsFor(ctx, p);
  const bindings = bias ? [x!, packed, bias, y] : [x!, packed, y];
  ctx.kernel({ label: kernelLabel(p), wgsl: convWgsl(p, bias !== undefined, ctx.activation), bindings, workgroups });
}

// ---------------------------------------------------------------------------------------------
// OpDefs
// ---------------------------------------------------------------------------------------------

function outputType(x: TensorType, s: ConvShapes): TensorType {
  return { dtype: x.dtype, shape: [s.batch, s.outChannels, ...s.geometry.outShape] };
}

export const convOp: OpDef = {
  opTypes: ['Conv'],
  costClass: 'reusable',
  fusesActivation: true,
  inferTypes: (ctx) => [outputType(ctx.inputs[0]!, convShapes(ctx))],
  lower(ctx) {
    const shapes = convShapes({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
    lowerConvLike(ctx, makePlan('conv', shapes));
  },
};

export const convTransposeOp: OpDef = {
  opTypes: ['ConvTranspose'],
  costClass: 'reusable',
  fusesActivation: true,
  inferTypes: (ctx) => [outputType(ctx.inputs[0]!, convTransposeShapes(ctx))],
  lower(ctx) {
    const shapes = convTransposeShapes({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
    lowerConvLike(ctx, makePlan('transpose', shapes));
  },
};

export const convOps: readonly OpDef[] = [convOp, convTransposeOp];

/** For benchmarks and tests: the Conv kernel with explicit tile sizes. */
export function lowerConvWithTiles(ctx: LowerContext, tiles: { ocTile: number; pxTile: number }): void {
  const shapes = convShapes({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
  lowerConvLike(ctx, makePlan('conv', shapes, tiles));
}
