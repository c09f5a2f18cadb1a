/**
 * Conv and ConvTranspose (1-D, 2-D and 3-D spatial, groups incl. depthwise, dilations, strides,
 * pads, auto_pad, output_padding / output_shape).
 *
 * Register-tiled kernels: an invocation computes `ocTile` output channels x `pxTile` output
 * pixels, reducing over (kernel tap, input channel). Weights are re-laid out once (at compile
 * time when constant, by a packing kernel otherwise) so that a tap's ocTile weights are one run
 * of vec4s. The channel block comes from workgroup_id.y and the batch from workgroup_id.z; the
 * pixels from workgroup_id.x and the local id. See KernelKind for the three variants and
 * bench/conv-bench.ts for the measurements behind the tile sizes.
 *
 * The window geometry helpers (auto_pad, ceil_mode, ...) are shared with pool.ts.
 */
import { attrInt, attrInts, attrString } from '../ir/attrs.js';
import { isFloat, numElements, type ConstTensor, type FusedActivation, type Node, type TensorType } from '../ir/types.js';
import { computeEntry, grid1D, lit, storageDecls, u } from '../codegen/wgsl.js';
import { fail, quoteName } from '../errors.js';
import { applyActivation } from './activation.js';
import type { LowerContext, LowerTensor, OpDef, ShapeContext, TargetLimits, TextureWeightCandidate } from './op.js';
import { convReduction, convTextureKernel, convTexels, type ConvChannels, type ConvTextureGeometry, type ConvVolumes, type Vec3 } from './conv-texture.js';
import { isTextureShape, textureShapeFor } from '../codegen/texture-layout.js';

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
      // a target beyond the full extent leaves trailing outputs that no input reaches (bias only)
      const total = Math.max(0, full - target);
      const begin = autoPad === 'SAME_UPPER' ? Math.floor(total / 2) : total - Math.floor(total / 2);
      geometry.padsBegin[axis] = begin;
      geometry.padsEnd[axis] = full - begin - target;
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

interface ConvShapes extends ConvChannels {
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

type ConvMode = 'conv' | 'transpose';

/**
 * Kernel variants:
 * - 'rows' (Conv): an invocation owns pxTile consecutive outputs of one output row, so for each
 *   (kernel row, input channel) the inputs under all kernel columns are loaded once and reused
 *   across the unrolled kernel columns (a 3x3 stride-1 tile of 8 needs 10 loads, not 24).
 * - 'pointwise' (1x1, stride 1, unpadded Conv, pixel count divisible by 4): a GEMM over
 *   flattened pixels whose inputs are read as aligned vec4.
 * - 'gather' (ConvTranspose): flattened output pixels, each tap's input found by inverting the
 *   forward convolution (a tap contributes only where (o + pad - k*dil) is a multiple of the stride).
 */
type KernelKind = 'rows' | 'pointwise' | 'gather';

/** Everything the kernel template needs; spatial axes are left-padded to 3 (D, H, W). */
interface ConvPlan extends ConvVolumes {
  mode: ConvMode;
  kind: KernelKind;
  shapes: ConvShapes;
  /** output channels per invocation: 1, 2, or a multiple of 4 (then weights load as vec4) */
  ocTile: number;
  /** output pixels per invocation (consecutive in the row for 'rows', in the flattened image otherwise) */
  pxTile: number;
  /** ceil(outPerGroup / ocTile) channel blocks per group */
  blocksPerGroup: number;
  /** pixel tiles per (image, channel block): the x extent of the grid */
  pixelTiles: number;
  /** invocations per workgroup (a multiple of 8, the SIMD width of software rasterisers) */
  workgroupSize: number;
}

export interface ConvTiles {
  ocTile: number;
  pxTile: number;
}

function toVol(values: readonly number[], fill: number): Vec3 {
  const padded = [...new Array<number>(3 - values.length).fill(fill), ...values];
  return padded as Vec3;
}

const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

/**
 * Multiply-accumulates of one conv (per batch) from which the larger tiles pay off. Measured on
 * Mesa llvmpipe (bench/conv-bench.ts, bench/conv-compile-bench.ts): there every storage load is
 * a loop over the SIMD lanes while an FMA is one vector instruction, so bigger tiles run faster
 * (16 channels x 8 pixels: ~15% less time than 8 x 8 on a ResNet 3x3 layer), but their many
 * accumulators make the driver's JIT compile at the first dispatch twice as slow (~200 ms vs
 * ~100 ms per kernel), which only a heavy layer earns back. ResNet-50 cold first run: 3.0 s
 * with 8 x 8 everywhere vs 5.6 s with 16 x 8 everywhere; steady state 0.8 vs 0.7 s CPU.
 */
const HEAVY_LAYER_MACS = 256 * 1024 * 1024;

/**
 * Channel tile: the largest candidate that wastes at most 1/8 of a group's channels on padding,
 * else 4; depthwise-like groups (1 or 2 channels per group) use exactly that many.
 */
function chooseOcTile(kind: KernelKind, outPerGroup: number, heavy: boolean): number {
  if (outPerGroup <= 2) return outPerGroup;
  for (const ocTile of kind === 'rows' && heavy ? [16, 8] : [8]) {
    const padding = Math.ceil(outPerGroup / ocTile) * ocTile - outPerGroup;
    if (padding * 8 <= outPerGroup) return ocTile;
  }
  return 4;
}

/** Row tile: 4..8 outputs (fewer only for narrower rows), the one leaving the fewest idle columns. */
function chooseRowTile(rowLength: number): number {
  let best = Math.min(8, rowLength), bestIdle = Infinity;
  for (let tile = Math.min(8, rowLength); tile >= Math.min(4, rowLength); tile--) {
    const idle = Math.ceil(rowLength / tile) * tile - rowLength;
    if (idle < bestIdle) { best = tile; bestIdle = idle; }
  }
  return best;
}

function choosePixelTile(kind: KernelKind, outVol: Vec3, heavy: boolean): number {
  if (kind === 'rows') return chooseRowTile(outVol[2]);
  return kind === 'pointwise' && heavy ? 16 : 8;
}

/**
 * Workgroup size: software rasterisers run a workgroup in chunks of 8 lanes and still execute
 * chunks whose lanes all returned early, so the size is the multiple of 8 (<= 64) that leaves
 * the fewest idle invocations over the whole grid (ties go to the larger size).
 */
function chooseWorkgroupSize(tiles: number): number {
  let best = 64, bestIdle = Infinity;
  for (const size of [64, 32, 16, 8]) {
    const idle = Math.ceil(tiles / size) * size - tiles;
    if (idle < bestIdle) { best = size; bestIdle = idle; }
  }
  return best;
}

function kernelKind(mode: ConvMode, g: WindowGeometry): KernelKind {
  if (mode === 'transpose') return 'gather';
  const unitWindow = [...g.kernel, ...g.strides].every((v) => v === 1) && [...g.padsBegin, ...g.padsEnd].every((v) => v === 0);
  return unitWindow && numElements(g.inShape) % 4 === 0 ? 'pointwise' : 'rows';
}

function makePlan(mode: ConvMode, shapes: ConvShapes, tiles?: ConvTiles): ConvPlan {
  const g = shapes.geometry;
  const kind = kernelKind(mode, g);
  const outVol = toVol(g.outShape, 1);
  const macs = shapes.outChannels * numElements(outVol) * shapes.inPerGroup * numElements(g.kernel);
  const heavy = macs >= HEAVY_LAYER_MACS;
  const ocTile = tiles?.ocTile ?? chooseOcTile(kind, shapes.outPerGroup, heavy);
  const pxTile = tiles?.pxTile ?? choosePixelTile(kind, outVol, heavy);
  if (kind === 'pointwise' && pxTile % 4 !== 0) fail('FM_UNSUPPORTED_OP', `pointwise conv tiles need a multiple of 4 pixels, got ${pxTile}`);
  const pixelTiles = kind === 'rows' ? outVol[0] * outVol[1] * Math.ceil(outVol[2] / pxTile) : Math.ceil(numElements(outVol) / pxTile);
  return {
    mode, kind, shapes, outVol,
    inVol: toVol(g.inShape, 1), kVol: toVol(g.kernel, 1),
    strides: toVol(g.strides, 1), dilations: toVol(g.dilations, 1), padsBegin: toVol(g.padsBegin, 0),
    ocTile, pxTile,
    blocksPerGroup: Math.ceil(shapes.outPerGroup / ocTile),
    pixelTiles,
    workgroupSize: chooseWorkgroupSize(pixelTiles),
  };
}

/** Number of elements of the re-laid-out weights: [group][block][kd][kh][ic][kw][ocTile]. */
function packedWeightCount(p: ConvPlan): number {
  return p.shapes.groups * p.blocksPerGroup * numElements(p.kVol) * p.shapes.inPerGroup * p.ocTile;
}

/**
 * Index into the ONNX weight tensor of (group, out channel within group, input channel within
 * group, flat tap). Conv W is [M, C/group, k...]; ConvTranspose W is [C, M/group, k...].
 */
function sourceWeightIndex(p: ConvPlan, group: number, oc: number, ic: number, tap: number): number {
  const taps = numElements(p.kVol);
  const { inPerGroup: cg, outPerGroup: mg } = p.shapes;
  return p.mode === 'conv'
    ? ((group * mg + oc) * cg + ic) * taps + tap
    : ((group * cg + ic) * mg + oc) * taps + tap;
}

/**
 * Packed weight layout: [group][channel block][kd][kh][input channel][kw][ocTile], channels past
 * the end of a group's last block zero. The kernels read the ocTile weights of one tap as
 * ocTile/4 vec4 loads and walk a block's weights in order: (kernel row, input channel, kernel column).
 */
function packWeights(p: ConvPlan, w: ConstTensor): ConstTensor {
  const packed = new Float32Array(packedWeightCount(p));
  const kw = p.kVol[2];
  const rows = p.kVol[0] * p.kVol[1];
  const { inPerGroup: cg, outPerGroup: mg, groups } = p.shapes;
  let i = 0;
  for (let group = 0; group < groups; group++) {
    for (let block = 0; block < p.blocksPerGroup; block++) {
      for (let row = 0; row < rows; row++) {
        for (let ic = 0; ic < cg; ic++) {
          for (let col = 0; col < kw; col++) {
            for (let j = 0; j < p.ocTile; j++, i++) {
              const oc = block * p.ocTile + j;
              if (oc < mg) packed[i] = w.data[sourceWeightIndex(p, group, oc, ic, row * kw + col)]!;
            }
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
  const kw = p.kVol[2];
  const rows = p.kVol[0] * p.kVol[1];
  const { inPerGroup: cg, outPerGroup: mg } = p.shapes;
  const grid = grid1D(total);
  const tap = `row * ${u(kw)} + col`;
  const source = p.mode === 'conv'
    ? `((group * ${u(mg)} + oc) * ${u(cg)} + ic) * ${u(rows * kw)} + ${tap}`
    : `((group * ${u(cg)} + ic) * ${u(mg)} + oc) * ${u(rows * kw)} + ${tap}`;
  const body = `${grid.prologue}
  let j = i % ${u(p.ocTile)};
  let col = (i / ${u(p.ocTile)}) % ${u(kw)};
  let ic = (i / ${u(p.ocTile * kw)}) % ${u(cg)};
  let row = (i / ${u(p.ocTile * kw * cg)}) % ${u(rows)};
  let blockIndex = i / ${u(p.ocTile * kw * cg * rows)};
  let group = blockIndex / ${u(p.blocksPerGroup)};
  let oc = (blockIndex % ${u(p.blocksPerGroup)}) * ${u(p.ocTile)} + j;
  packed[i] = select(0.0, w[min(${source}, ${u(p.shapes.groups * mg * cg * rows * kw - 1)})], oc < ${u(mg)});`;
  const wgsl = `${storageDecls([{ name: 'w', type: 'f32' }, { name: 'packed', type: 'f32' }])}\n\n${computeEntry(grid.workgroupSize, body)}\n`;
  return { wgsl, workgroups: grid.workgroups };
}

/** Binding declarations like storageDecls, but a binding may be an array of vec4<f32>. */
function convBindings(decls: readonly { name: string; vec4: boolean }[]): string {
  return decls
    .map((d, i) => `@group(0) @binding(${i}) var<storage, read_write> ${d.name}: array<${d.vec4 ? 'vec4<f32>' : 'f32'}>;`)
    .join('\n');
}

/** Shape of the per-invocation accumulator tile: ocTile channels as `quads` vectors of `lanes`. */
function accumulatorLayout(p: ConvPlan): { lanes: number; quads: number; vt: string; wUnit: number } {
  const lanes = Math.min(p.ocTile, 4);
  return { lanes, quads: Math.ceil(p.ocTile / lanes), vt: lanes === 1 ? 'f32' : `vec${lanes}<f32>`, wUnit: lanes === 4 ? 4 : 1 };
}

/** `let w_{q}` loads of the ocTile weights at packed (vec4 or scalar) index `wi + offset`. */
function weightLoads(p: ConvPlan, offset: number, suffix = ''): string[] {
  const { lanes, quads } = accumulatorLayout(p);
  return range(quads).map((q) => {
    if (lanes === 4) return `let w${suffix}_${q} = w[wi + ${u(offset + q)}];`;
    const comps = range(lanes).map((c) => `w[wi + ${u(offset + c)}]`);
    return `let w${suffix}_${q} = ${lanes === 1 ? comps[0] : `vec${lanes}<f32>(${comps.join(', ')})`};`;
  });
}

function accumulatorDecls(p: ConvPlan): string {
  const { quads, vt } = accumulatorLayout(p);
  return range(p.pxTile).flatMap((j) => range(quads).map((q) => `var acc_${j}_${q} = ${vt}(0.0);`)).join('\n  ');
}

/** Where a tile's pixels go: consecutive flat output pixels `first + j`, valid while `offset + j < extent`. */
interface TilePixels {
  /** WGSL u32 expression: flat output pixel (within one channel plane) of tile pixel 0 */
  first: string;
  /** WGSL variable counting pixels along the tiled extent (ow0 or pix0) */
  offset: string;
  extent: number;
}

/**
 * Whether a tile's outputs can be stored as aligned vec4s: a tile covers whole groups of 4
 * pixels starting at a multiple of 4 in every channel plane.
 */
function storesVec4(p: ConvPlan, pixels: TilePixels): boolean {
  return p.pxTile % 4 === 0 && pixels.extent % 4 === 0 && numElements(p.outVol) % 4 === 0;
}

/**
 * Stores every accumulator plus bias, through the fused activation. The bias of each channel is
 * loaded once (storage loads are not merged across the stores in between), and outputs go out as
 * vec4 where aligned: on software rasterisers each storage access is a loop over the SIMD lanes.
 */
function storeCode(p: ConvPlan, hasBias: boolean, activation: FusedActivation | undefined, pixels: TilePixels): string {
  const { lanes } = accumulatorLayout(p);
  const mg = p.shapes.outPerGroup, P = p.pxTile;
  const outPix = numElements(p.outVol);
  const lastChannel = p.shapes.outChannels - 1;
  const vec4Stores = storesVec4(p, pixels);
  const value = (j: number, channel: number) => {
    const q = Math.floor(channel / lanes), c = channel % lanes;
    const acc = `acc_${j}_${q}${lanes === 1 ? '' : `[${c}]`}`;
    return applyActivation(`(${acc}${hasBias ? ` + bias_${channel}` : ''})`, activation);
  };
  const chunkGuard = (first: number) => (first === 0 || pixels.extent % P === 0 ? undefined : `${pixels.offset} + ${u(first)} < ${u(pixels.extent)}`);
  const guarded = (cond: string | undefined, stmt: string) => (cond ? `if (${cond}) { ${stmt} }` : stmt);

  const lines: string[] = [];
  if (hasBias) {
    for (const channel of range(p.ocTile)) {
      const index = mg % p.ocTile === 0 ? `ocBase + ${u(channel)}` : `min(ocBase + ${u(channel)}, ${u(lastChannel)})`;
      lines.push(`let bias_${channel} = b[${index}];`);
    }
  }
  for (const channel of range(p.ocTile)) {
    const stores = vec4Stores
      ? range(P / 4).map((v) => guarded(chunkGuard(4 * v),
        `y[plane_${channel} + ${u(v)}] = vec4<f32>(${range(4).map((k) => value(4 * v + k, channel)).join(', ')});`))
      : range(P).map((j) => guarded(chunkGuard(j), `y[plane_${channel} + ${u(j)}] = ${value(j, channel)};`));
    const plane = `let plane_${channel} = (yBase + ${u(channel * outPix)} + ${pixels.first})${vec4Stores ? ' / 4u' : ''};`;
    const body = [plane, ...stores].join('\n    ');
    lines.push(mg % p.ocTile === 0 ? `{\n    ${body}\n  }` : `if (ocInGroup + ${u(channel)} < ${u(mg)}) {\n    ${body}\n  }`);
  }
  return lines.join('\n  ');
}

/** Shared prologue: tile index, early exit, channel block and group, base offsets. */
function prologue(p: ConvPlan): string {
  const { inChannels, outChannels, inPerGroup: cg, outPerGroup: mg } = p.shapes;
  const { wUnit } = accumulatorLayout(p);
  return `let tile = wid.x * ${u(p.workgroupSize)} + lid.x;
  if (tile >= ${u(p.pixelTiles)}) { return; }
  let block = wid.y;
  let n = wid.z;
  let group = block / ${u(p.blocksPerGroup)};
  let ocInGroup = (block % ${u(p.blocksPerGroup)}) * ${u(p.ocTile)};
  let ocBase = group * ${u(mg)} + ocInGroup;
  let xBase = (n * ${u(inChannels)} + group * ${u(cg)}) * ${u(numElements(p.inVol))};
  let yBase = (n * ${u(outChannels)} + ocBase) * ${u(numElements(p.outVol))};
  let wBlock = block * ${u((numElements(p.kVol) * cg * p.ocTile) / wUnit)};`;
}

function kernelShell(p: ConvPlan, bindings: { name: string; vec4: boolean }[], body: string): string {
  return `${convBindings(bindings)}

// ${p.mode} (${p.kind}): ${p.ocTile} output channels x ${p.pxTile} output pixels per invocation
@compute @workgroup_size(${p.workgroupSize})
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {
  ${prologue(p)}
  ${accumulatorDecls(p)}
  ${body}
}
`;
}

function rowPixels(p: ConvPlan): TilePixels {
  return { first: `(od * ${u(p.outVol[1])} + oh) * ${u(p.outVol[2])} + ow0`, offset: 'ow0', extent: p.outVol[2] };
}

function flatPixels(p: ConvPlan): TilePixels {
  return { first: 'pix0', offset: 'pix0', extent: numElements(p.outVol) };
}

function bindingList(p: ConvPlan, hasBias: boolean): { name: string; vec4: boolean }[] {
  const list = [{ name: 'x', vec4: p.kind === 'pointwise' }, { name: 'w', vec4: accumulatorLayout(p).wUnit === 4 }];
  if (hasBias) list.push({ name: 'b', vec4: false });
  list.push({ name: 'y', vec4: storesVec4(p, p.kind === 'rows' ? rowPixels(p) : flatPixels(p)) });
  return list;
}

/**
 * 'rows' kernel. Output columns ow0 + j read input column ow0*s - pad + (j*s + kw*dil); the
 * distinct offsets e = j*s + kw*dil are loaded once per (kernel row, input channel).
 */
function rowsWgsl(p: ConvPlan, hasBias: boolean, activation: FusedActivation | undefined): string {
  const [, ih, iw] = p.inVol;
  const [od, oh, ow] = p.outVol;
  const [kd, kh, kw] = p.kVol;
  const [sd, sh, sw] = p.strides;
  const [dd, dh, dw] = p.dilations;
  const [pd, ph, pw] = p.padsBegin;
  const cg = p.shapes.inPerGroup, P = p.pxTile, inPix = numElements(p.inVol);
  const { quads, wUnit } = accumulatorLayout(p);
  const offsets = [...new Set(range(P).flatMap((j) => range(kw).map((c) => j * sw + c * dw)))].sort((a, b) => a - b);
  const tilesPerRow = Math.ceil(ow / P);
  const rowCheck = (axisPad: number, out: number, s: number, k: number, d: number, size: number, c: string) => {
    const conds = [];
    if (axisPad > 0) conds.push(`${c} >= 0`);
    if ((out - 1) * s - axisPad + (k - 1) * d >= size) conds.push(`${c} < ${lit(size, 'i32')}`);
    return conds.length > 0 ? conds.join(' && ') : 'true';
  };
  // Input column of offset e is c0 + e with c0 = ow0*s - pad; which bounds can fail is known
  // from the first and the last tile of a row.
  const masked = new Set<number>();
  const columns = offsets.map((e) => {
    const conds = [];
    if (e - pw < 0) conds.push(`col_${e} >= 0`);
    if ((tilesPerRow - 1) * P * sw - pw + e >= iw) conds.push(`col_${e} < ${lit(iw, 'i32')}`);
    const lines = [`let col_${e} = c0 + ${lit(e, 'i32')};`];
    if (conds.length > 0) {
      masked.add(e);
      lines.push(`let colOk_${e} = ${conds.join(' && ')};`);
      lines.push(`let colOff_${e} = u32(select(0, col_${e}, colOk_${e}));`, `let m_${e} = select(0.0, 1.0, colOk_${e});`);
    } else {
      lines.push(`let colOff_${e} = u32(col_${e});`);
    }
    return lines.join('\n  ');
  }).join('\n  ');
  const inputLoads = offsets.map((e) => `let x_${e} = x[xi + colOff_${e}]${masked.has(e) ? ` * m_${e}` : ''};`);
  const taps = range(kw).flatMap((c) => [
    ...weightLoads(p, (c * p.ocTile) / wUnit, `${c}`),
    ...range(P).flatMap((j) => range(quads).map((q) => `acc_${j}_${q} += w${c}_${q} * x_${j * sw + c * dw};`)),
  ]);

  const body = `let owb = tile % ${u(tilesPerRow)};
  let rowIndex = tile / ${u(tilesPerRow)};
  let oh = rowIndex % ${u(oh)};
  let od = rowIndex / ${u(oh)};
  let ow0 = owb * ${u(P)};
  let c0 = i32(ow0) * ${lit(sw, 'i32')} - ${lit(pw, 'i32')};
  ${columns}
  for (var kd = 0i; kd < ${lit(kd, 'i32')}; kd++) {
    let id = i32(od) * ${lit(sd, 'i32')} + kd * ${lit(dd, 'i32')} - ${lit(pd, 'i32')};
    for (var kh = 0i; kh < ${lit(kh, 'i32')}; kh++) {
      let ih = i32(oh) * ${lit(sh, 'i32')} + kh * ${lit(dh, 'i32')} - ${lit(ph, 'i32')};
      if (${rowCheck(pd, od, sd, kd, dd, p.inVol[0], 'id')} && ${rowCheck(ph, oh, sh, kh, dh, ih, 'ih')}) {
        var xi = xBase + u32(id * ${lit(ih, 'i32')} + ih) * ${u(iw)};
        var wi = wBlock + u32(kd * ${lit(kh, 'i32')} + kh) * ${u((cg * kw * p.ocTile) / wUnit)};
        for (var ic = 0u; ic < ${u(cg)}; ic++) {
          ${inputLoads.join('\n          ')}
          ${taps.join('\n          ')}
          xi += ${u(inPix)};
          wi += ${u((kw * p.ocTile) / wUnit)};
        }
      }
    }
  }
  ${storeCode(p, hasBias, activation, rowPixels(p))}`;
  return kernelShell(p, bindingList(p, hasBias), body);
}

/** 'pointwise' kernel: a GEMM over flattened pixels, inputs read as aligned vec4. */
function pointwiseWgsl(p: ConvPlan, hasBias: boolean, activation: FusedActivation | undefined): string {
  const P = p.pxTile, cg = p.shapes.inPerGroup;
  const { quads, wUnit } = accumulatorLayout(p);
  const loads = [
    ...weightLoads(p, 0),
    ...range(P / 4).map((v) => `let xv_${v} = x[xi + ${u(v)}];`),
    ...range(P).flatMap((j) => range(quads).map((q) => `acc_${j}_${q} += w_${q} * xv_${j >> 2}[${j & 3}];`)),
  ];
  const body = `let pix0 = tile * ${u(P)};
  // pixels past the end read the next channel (or a clamped index) and are never stored
  var xi = (xBase + pix0) / 4u;
  var wi = wBlock;
  for (var ic = 0u; ic < ${u(cg)}; ic++) {
    ${loads.join('\n    ')}
    xi += ${u(numElements(p.inVol) / 4)};
    wi += ${u(p.ocTile / wUnit)};
  }
  ${storeCode(p, hasBias, activation, flatPixels(p))}`;
  return kernelShell(p, bindingList(p, hasBias), body);
}

const AXES = ['d', 'h', 'w'] as const;

/**
 * ConvTranspose input coordinate along one axis for output coordinate `o{axis}_{j}` and tap
 * `k{axis}`: t = o + pad - k*dil must be a non-negative multiple of the stride below in*s, and
 * i = t / s. Checks that can never fail are left out.
 */
function transposeAxisCode(p: ConvPlan, axis: number): { lines: string[]; checked: boolean } {
  const name = AXES[axis]!;
  const s = p.strides[axis]!, d = p.dilations[axis]!, pad = p.padsBegin[axis]!;
  const inSize = p.inVol[axis]!, outSize = p.outVol[axis]!, k = p.kVol[axis]!;
  const lines: string[] = [];
  let checked = false;
  for (let j = 0; j < p.pxTile; j++) {
    const conds: string[] = [];
    lines.push(`let t${name}_${j} = o${name}_${j} + ${lit(pad, 'i32')} - k${name} * ${lit(d, 'i32')};`);
    if (pad - (k - 1) * d < 0) conds.push(`t${name}_${j} >= 0`);
    if (s > 1) conds.push(`t${name}_${j} % ${lit(s, 'i32')} == 0`);
    if (outSize - 1 + pad >= inSize * s) conds.push(`t${name}_${j} < ${lit(inSize * s, 'i32')}`);
    lines.push(`let c${name}_${j} = ${s > 1 ? `t${name}_${j} / ${lit(s, 'i32')}` : `t${name}_${j}`};`);
    if (conds.length > 0) checked = true;
    lines.push(`let v${name}_${j} = ${conds.length > 0 ? conds.join(' && ') : 'true'};`);
  }
  return { lines, checked };
}

/** 'gather' kernel (ConvTranspose) over flattened output pixels. */
function gatherWgsl(p: ConvPlan, hasBias: boolean, activation: FusedActivation | undefined): string {
  const cg = p.shapes.inPerGroup, P = p.pxTile;
  const [, ih, iw] = p.inVol;
  const [od, oh, ow] = p.outVol;
  const [kd, kh, kw] = p.kVol;
  const inPix = numElements(p.inVol), outPix = numElements(p.outVol);
  const { quads, wUnit } = accumulatorLayout(p);
  const axes = [0, 1, 2].map((a) => transposeAxisCode(p, a));
  const masked = axes.some((a) => a.checked);
  const pixelCoords = range(P).map((j) => [
    `let p_${j} = min(pix0 + ${u(j)}, ${u(outPix - 1)});`,
    `let od_${j} = ${od > 1 ? `i32(p_${j} / ${u(oh * ow)})` : '0i'};`,
    `let oh_${j} = ${oh > 1 ? `i32((p_${j} / ${u(ow)}) % ${u(oh)})` : '0i'};`,
    `let ow_${j} = ${ow > 1 ? `i32(p_${j} % ${u(ow)})` : '0i'};`,
  ].join('\n  ')).join('\n  ');
  const rowLines = range(P).map((j) => `let vdh_${j} = vd_${j} && vh_${j};\n      let row_${j} = (cd_${j} * ${lit(ih, 'i32')} + ch_${j}) * ${lit(iw, 'i32')};`).join('\n      ');
  const tapLines = range(P).map((j) => [
    `let valid_${j} = vdh_${j} && vw_${j};`,
    `let off_${j} = u32(select(0, row_${j} + cw_${j}, valid_${j}));`,
    ...(masked ? [`let m_${j} = select(0.0, 1.0, valid_${j});`] : []),
  ].join('\n        ')).join('\n        ');
  const loads = [
    ...weightLoads(p, 0),
    ...range(P).map((j) => `let x_${j} = x[xi + off_${j}]${masked ? ` * m_${j}` : ''};`),
    ...range(P).flatMap((j) => range(quads).map((q) => `acc_${j}_${q} += w_${q} * x_${j};`)),
  ];
  const body = `let pix0 = tile * ${u(P)};
  ${pixelCoords}
  for (var kd = 0i; kd < ${lit(kd, 'i32')}; kd++) {
    ${axes[0]!.lines.join('\n    ')}
    for (var kh = 0i; kh < ${lit(kh, 'i32')}; kh++) {
      ${axes[1]!.lines.join('\n      ')}
      ${rowLines}
      for (var kw = 0i; kw < ${lit(kw, 'i32')}; kw++) {
        ${axes[2]!.lines.join('\n        ')}
        ${tapLines}
        var wi = wBlock + (u32(kd * ${lit(kh, 'i32')} + kh) * ${u(cg * kw)} + u32(kw)) * ${u(p.ocTile / wUnit)};
        var xi = xBase;
        for (var ic = 0u; ic < ${u(cg)}; ic++) {
          ${loads.join('\n          ')}
          wi += ${u((kw * p.ocTile) / wUnit)};
          xi += ${u(inPix)};
        }
      }
    }
  }
  ${storeCode(p, hasBias, activation, flatPixels(p))}`;
  return kernelShell(p, bindingList(p, hasBias), body);
}

function convWgsl(p: ConvPlan, hasBias: boolean, activation: FusedActivation | undefined): string {
  switch (p.kind) {
    case 'rows': return rowsWgsl(p, hasBias, activation);
    case 'pointwise': return pointwiseWgsl(p, hasBias, activation);
    case 'gather': return gatherWgsl(p, hasBias, activation);
  }
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
  const workgroups: [number, number, number] = [Math.ceil(p.pixelTiles / p.workgroupSize), groups * p.blocksPerGroup, batch];
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

// ---------------------------------------------------------------------------------------------
// Texture layout (compiler/ops/conv-texture.ts): Conv with a constant float W only
// ---------------------------------------------------------------------------------------------

function textureGeometry(shapes: ConvShapes): ConvTextureGeometry {
  const g = shapes.geometry;
  return {
    batch: shapes.batch, inChannels: shapes.inChannels, outChannels: shapes.outChannels, groups: shapes.groups,
    inPerGroup: shapes.inPerGroup, outPerGroup: shapes.outPerGroup,
    inVol: toVol(g.inShape, 1), outVol: toVol(g.outShape, 1), kVol: toVol(g.kernel, 1),
    strides: toVol(g.strides, 1), dilations: toVol(g.dilations, 1), padsBegin: toVol(g.padsBegin, 0),
  };
}

function convTextureCandidate(ctx: ShapeContext): TextureWeightCandidate | undefined {
  const [x, w] = ctx.inputs;
  if (!x || !w || !ctx.consts[1] || !isFloat(w.dtype)) return undefined;
  const shapes = convShapes(ctx);
  return { costKind: 'conv', rows: shapes.outChannels, reduction: convReduction(textureGeometry(shapes)) };
}

/** The texture variant; false when this node's weight cannot be a texture after all (then buffers). */
function lowerConvTexture(ctx: LowerContext, shapes: ConvShapes): boolean {
  const [x, w, bias] = ctx.inputs;
  if (!w?.data || !ctx.textureConstant) return false;
  const g = textureGeometry(shapes);
  const shape = textureShapeFor(shapes.outChannels, convReduction(g), ctx.limits);
  if (!isTextureShape(shape)) return false;
  const y = ctx.outputs[0]!;
  checkBindingSizes(ctx.node, ctx.limits, [
    { what: 'input X', elements: numElements(x!.type.shape) },
    { what: 'output Y', elements: numElements(y.type.shape) },
  ]);
  const { wgsl, workgroups } = convTextureKernel(g, shape, bias !== undefined, ctx.activation);
  if (workgroups.some((n) => n > ctx.limits.maxComputeWorkgroupsPerDimension)) return false;
  const texture = ctx.textureConstant('conv_weight_texels', shape, convTexels(g, shape, w.data));
  const dims = shapes.geometry.inShape.length;
  ctx.kernel({ label: `conv${dims}d_${shapes.geometry.kernel.join('x')}_tex`, wgsl, workgroups, bindings: bias ? [x!, texture, bias, y] : [x!, texture, y] });
  return true;
}

export const convOp: OpDef = {
  opTypes: ['Conv'],
  costClass: 'reusable',
  fusesActivation: true,
  inferTypes: (ctx) => [outputType(ctx.inputs[0]!, convShapes(ctx))],
  textureWeight: convTextureCandidate,
  lower(ctx) {
    const shapes = convShapes({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
    if (ctx.weightLayout === 'texture' && lowerConvTexture(ctx, shapes)) return;
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
export function lowerConvWithTiles(ctx: LowerContext, tiles: ConvTiles): void {
  const shapes = convShapes({ node: ctx.node, inputs: ctx.inputs.map((t) => t?.type) });
  lowerConvLike(ctx, makePlan('conv', shapes, tiles));
}
