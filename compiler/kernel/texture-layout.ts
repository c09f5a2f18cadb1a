/**
 * The 2.5D texture layout of weights (FlashMem): an rgba32float texture_2d_array whose texels hold
 * 4 consecutive values of the reduction dimension, which runs contiguously along x; one texture
 * row per output (Conv output channel, MatMul/Gemm output column). Rows beyond the height limit
 * spill into further array layers: row r lives at (y = r % height, layer = r / height). Rows are
 * zero-padded to whole texels, so the kernels' vec4 dot products need no tail handling on the
 * weight side. Shards store exactly these texels, so the runtime uploads them with
 * queue.writeTexture straight from shard bytes (no layout transformation at load).
 */
import { textureLimits, type TargetLimits } from '../target/limits.js';
import { type TextureShape } from './types.js';
import { u } from './wgsl.js';

/** values per texel (rgba) */
export const TEXEL_VALUES = 4;
/** bytes per rgba32float texel */
export const TEXEL_BYTES = 16;
export const TEXTURE_FORMAT = 'rgba32float';

/** Texture geometry for `rows` rows of `reduction` values, or the reason it does not fit the target. */
export function textureShapeFor(rows: number, reduction: number, limits: TargetLimits): TextureShape | { unfit: string } {
  const { maxTextureDimension2D: maxDim, maxTextureArrayLayers: maxLayers } = textureLimits(limits);
  const width = Math.ceil(reduction / TEXEL_VALUES);
  if (rows === 0 || width === 0) return { unfit: 'empty weight' };
  if (width > maxDim) return { unfit: `${width} texels per row exceed maxTextureDimension2D ${maxDim}` };
  const height = Math.min(rows, maxDim);
  const layers = Math.ceil(rows / height);
  if (layers > maxLayers) return { unfit: `${layers} array layers exceed maxTextureArrayLayers ${maxLayers}` };
  return { width, height, layers };
}

export function isTextureShape(s: TextureShape | { unfit: string }): s is TextureShape {
  return !('unfit' in s);
}

export function textureBytes(shape: TextureShape): number {
  return shape.width * shape.height * shape.layers * TEXEL_BYTES;
}

/** Bytes of one texture row: shard pieces of a texture weight are cut at multiples of this. */
export function textureRowBytes(shape: TextureShape): number {
  return shape.width * TEXEL_BYTES;
}

/**
 * The texels of a weight: value (row, r) at ((layer * height + y) * width) * 4 + r, rows past
 * `rows` (in the last layer) and values past `reduction` zero.
 */
export function packTexels(shape: TextureShape, rows: number, reduction: number, valueAt: (row: number, r: number) => number): Float32Array {
  const rowValues = shape.width * TEXEL_VALUES;
  const out = new Float32Array(shape.layers * shape.height * rowValues);
  for (let row = 0; row < rows; row++) {
    const base = row * rowValues;
    for (let r = 0; r < reduction; r++) out[base + r] = valueAt(row, r);
  }
  return out;
}

/** WGSL loading texel `texel` (u32 expression) of row `row` (u32 expression) from texture `name`. */
export function texelLoad(name: string, shape: TextureShape, texel: string, row: string): string {
  if (shape.layers === 1) return `textureLoad(${name}, vec2<u32>(${texel}, ${row}), 0u, 0u)`;
  return `textureLoad(${name}, vec2<u32>(${texel}, (${row}) % ${u(shape.height)}), (${row}) / ${u(shape.height)}, 0u)`;
}

/** Declaration of a weight texture binding (rgba32float reads as unfilterable f32; textureLoad needs no sampler). */
export function textureDecl(binding: number, name: string): string {
  return `@group(0) @binding(${binding}) var ${name}: texture_2d_array<f32>;`;
}
