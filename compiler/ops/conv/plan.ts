/**
 * How a Conv / ConvTranspose is tiled: the kernel variant, the register tile (output channels x
 * output pixels per invocation) and the workgroup size, chosen from the layer's shape. See
 * bench/conv-bench.ts for the measurements behind the tile sizes.
 */
import { numElements } from '../../ir/types.js';
import { fail } from '../../errors.js';
import { toVol, type ConvShapes, type ConvVolumes, type Vec3, type WindowGeometry } from './geometry.js';

export type ConvMode = 'conv' | 'transpose';

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
export type KernelKind = 'rows' | 'pointwise' | 'gather';

/** Everything the kernel template needs; spatial axes are left-padded to 3 (D, H, W). */
export interface ConvPlan extends ConvVolumes {
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


export const range = (n: number): number[] => Array.from({ length: n }, (_, i) => i);

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

export function makePlan(mode: ConvMode, shapes: ConvShapes, tiles?: ConvTiles): ConvPlan {
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


/** Shape of the per-invocation accumulator tile: ocTile channels as `quads` vectors of `lanes`. */
export function accumulatorLayout(p: ConvPlan): { lanes: number; quads: number; vt: string; wUnit: number } {
  const lanes = Math.min(p.ocTile, 4);
  return { lanes, quads: Math.ceil(p.ocTile / lanes), vt: lanes === 1 ? 'f32' : `vec${lanes}<f32>`, wUnit: lanes === 4 ? 4 : 1 };
}

