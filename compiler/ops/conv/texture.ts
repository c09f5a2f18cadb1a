/**
 * Conv with its weights in the 2.5D texture layout (compiler/kernel/texture-layout.ts): texture
 * row oc holds W[oc] (C/group x kernel taps values, ONNX order: input channel, then kd, kh, kw)
 * four values per texel. An invocation computes 4 output channels x 4 consecutive (flattened)
 * output pixels: per texel it loads one texel per channel and, for each of the 4 reduction
 * values the texel covers, the input under each pixel, then accumulates vec4 dot products.
 * Shape-specialised like the buffer kernels: every size, stride and pad is a literal.
 */
import { lit, u } from '../../kernel/wgsl.js';
import { TEXEL_VALUES, packTexels, texelLoad } from '../../kernel/texture-layout.js';
import { kernel, LID, WID } from '../../kernel/builder.js';
import { numElements, type ConstTensor, type FusedActivation } from '../../ir/types.js';
import type { KernelSpec, LowerTensor, TextureShape } from '../../kernel/types.js';
import { applyActivation } from '../activation.js';
import type { ConvChannels, ConvVolumes } from './geometry.js';
import { range } from './plan.js';

/** What the texture kernel needs of a Conv. */
export interface ConvTextureGeometry extends ConvChannels, ConvVolumes {}

/** output channels per invocation (texture rows read per texel) */
const CHANNEL_TILE = 4;
/** output pixels per invocation (each texel's weights are reused across them) */
const PIXEL_TILE = 4;
const WORKGROUP_SIZE = 64;

/** Reduction values per output channel: input channels of its group x kernel taps. */
export function convReduction(g: ConvTextureGeometry): number {
  return g.inPerGroup * numElements(g.kVol);
}

/** Texels of Conv W [M, C/group, k...]: row oc is W[oc] as stored (already reduction-contiguous). */
export function convTexels(g: ConvTextureGeometry, shape: TextureShape, w: ConstTensor): Float32Array {
  const reduction = convReduction(g);
  return packTexels(shape, g.outChannels, reduction, (row, r) => Number(w.data[row * reduction + r]));
}

/** How the texture kernel tiles a Conv: its grid and workgroup size. */
interface TextureTiling {
  outPix: number;
  pixelTiles: number;
  channels: number;
  blocksPerGroup: number;
  workgroupSize: number;
  workgroups: [number, number, number];
}

function textureTiling(g: ConvTextureGeometry): TextureTiling {
  const outPix = numElements(g.outVol);
  const pixelTiles = Math.ceil(outPix / PIXEL_TILE);
  const channels = Math.min(CHANNEL_TILE, g.outPerGroup);
  const blocksPerGroup = Math.ceil(g.outPerGroup / channels);
  const workgroupSize = Math.min(WORKGROUP_SIZE, Math.ceil(pixelTiles / 8) * 8);
  return { outPix, pixelTiles, channels, blocksPerGroup, workgroupSize, workgroups: [Math.ceil(pixelTiles / workgroupSize), g.groups * blocksPerGroup, g.batch] };
}

/** The texture kernel's workgroup grid (known before the weight texture exists). */
export function convTextureWorkgroups(g: ConvTextureGeometry): [number, number, number] {
  return textureTiling(g).workgroups;
}

/** The tensors the texture kernel binds: x, the weight texture w, bias b (optional), y. */
export interface ConvTextureTensors {
  x: LowerTensor;
  w: LowerTensor;
  b?: LowerTensor;
  y: LowerTensor;
}

export function convTextureKernel(label: string, g: ConvTextureGeometry, shape: TextureShape, t: ConvTextureTensors, activation: FusedActivation | undefined): KernelSpec {
  const { outPix, pixelTiles, channels, blocksPerGroup, workgroupSize, workgroups } = textureTiling(g);
  const k = kernel(label);
  k.bind('x', t.x, 'f32');
  const w = k.bindTexture('w', t.w);
  if (t.b) k.bind('b', t.b, 'f32');
  k.bind('y', t.y, 'f32');
  const body = `let tile = wid.x * ${u(workgroupSize)} + lid.x;
  if (tile >= ${u(pixelTiles)}) { return; }
  let group = wid.y / ${u(blocksPerGroup)};
  let ocInGroup = (wid.y % ${u(blocksPerGroup)}) * ${u(channels)};
  let ocBase = group * ${u(g.outPerGroup)} + ocInGroup;
  let n = wid.z;
  let xBase = (n * ${u(g.inChannels)} + group * ${u(g.inPerGroup)}) * ${u(numElements(g.inVol))};
  let pix0 = tile * ${u(PIXEL_TILE)};
  ${pixelOrigins(g, outPix).join('\n  ')}
  ${range(channels).map((c) => `let row_${c} = group * ${u(g.outPerGroup)} + min(ocInGroup + ${u(c)}, ${u(g.outPerGroup - 1)});`).join('\n  ')}
  ${range(PIXEL_TILE).map((j) => `var acc_${j} = vec4<f32>(0.0);`).join('\n  ')}
  for (var t = 0u; t < ${u(shape.width)}; t++) {
    ${range(channels).map((c) => `let wv_${c} = ${texelLoad(w.name, shape, 't', `row_${c}`)};`).join('\n    ')}
    ${range(TEXEL_VALUES).flatMap((l) => laneLoads(g, l)).join('\n    ')}
    ${range(PIXEL_TILE).map((j) => accumulate(j, channels)).join('\n    ')}
  }
  ${stores(g, outPix, channels, t.b !== undefined, activation).join('\n  ')}`;
  return k.build({
    header: `${k.declarations()}\n\n// conv (texture ${shape.width}x${shape.height}x${shape.layers}): ${channels} output channels x ${PIXEL_TILE} output pixels per invocation\n`,
    entry: { workgroupSize, params: [WID, LID], body },
    workgroups,
  });
}

const AXES = ['d', 'h', 'w'] as const;

/** Per pixel j of the tile: the input coordinate of its window origin along each axis (o*s - pad). */
function pixelOrigins(g: ConvTextureGeometry, outPix: number): string[] {
  const [, oh, ow] = g.outVol;
  return range(PIXEL_TILE).flatMap((j) => [
    `let p_${j} = min(pix0 + ${u(j)}, ${u(outPix - 1)});`,
    `let o0_${j} = i32(p_${j} / ${u(oh * ow)}) * ${lit(g.strides[0], 'i32')} - ${lit(g.padsBegin[0], 'i32')};`,
    `let o1_${j} = i32((p_${j} / ${u(ow)}) % ${u(oh)}) * ${lit(g.strides[1], 'i32')} - ${lit(g.padsBegin[1], 'i32')};`,
    `let o2_${j} = i32(p_${j} % ${u(ow)}) * ${lit(g.strides[2], 'i32')} - ${lit(g.padsBegin[2], 'i32')};`,
  ]);
}

/** Whether the input coordinate along an axis can leave [0, size): only then is it checked. */
function axisChecks(g: ConvTextureGeometry, axis: number, coord: string): string[] {
  const pad = g.padsBegin[axis]!, size = g.inVol[axis]!;
  const last = (g.outVol[axis]! - 1) * g.strides[axis]! - pad + (g.kVol[axis]! - 1) * g.dilations[axis]!;
  return [...(pad > 0 ? [`${coord} >= 0`] : []), ...(last >= size ? [`${coord} < ${lit(size, 'i32')}`] : [])];
}

/**
 * Reduction value l of texel t: r = 4t + l decodes to (input channel, kd, kh, kw); x_{j}_{l} is
 * the input under pixel j there, 0 where the window leaves the input or r runs past the row.
 */
function laneLoads(g: ConvTextureGeometry, l: number): string[] {
  const taps = numElements(g.kVol);
  const [, kh, kw] = g.kVol;
  const reduction = convReduction(g);
  const [, ih, iw] = g.inVol;
  const lines = [
    `let r_${l} = t * ${u(TEXEL_VALUES)} + ${u(l)};`,
    taps === 1 ? `let ic_${l} = r_${l};` : `let ic_${l} = r_${l} / ${u(taps)};`,
    `let c_${l} = xBase + min(ic_${l}, ${u(g.inPerGroup - 1)}) * ${u(numElements(g.inVol))};`,
  ];
  if (taps > 1) {
    lines.push(
      `let tap_${l} = r_${l} % ${u(taps)};`,
      `let k0_${l} = i32(tap_${l} / ${u(kh * kw)}) * ${lit(g.dilations[0], 'i32')};`,
      `let k1_${l} = i32((tap_${l} / ${u(kw)}) % ${u(kh)}) * ${lit(g.dilations[1], 'i32')};`,
      `let k2_${l} = i32(tap_${l} % ${u(kw)}) * ${lit(g.dilations[2], 'i32')};`,
    );
  }
  for (const j of range(PIXEL_TILE)) {
    const coord = (axis: number) => (taps > 1 ? `o${axis}_${j} + k${axis}_${l}` : `o${axis}_${j}`);
    lines.push(...range(3).map((axis) => `let ${AXES[axis]}_${j}_${l} = ${coord(axis)};`));
    const checks = [
      ...range(3).flatMap((axis) => axisChecks(g, axis, `${AXES[axis]}_${j}_${l}`)),
      ...(reduction % TEXEL_VALUES !== 0 ? [`r_${l} < ${u(reduction)}`] : []),
    ];
    const offset = `(d_${j}_${l} * ${lit(ih, 'i32')} + h_${j}_${l}) * ${lit(iw, 'i32')} + w_${j}_${l}`;
    if (checks.length === 0) {
      lines.push(`let x_${j}_${l} = x[c_${l} + u32(${offset})];`);
    } else {
      lines.push(
        `let ok_${j}_${l} = ${checks.join(' && ')};`,
        `let x_${j}_${l} = select(0.0, x[c_${l} + u32(select(0i, ${offset}, ok_${j}_${l}))], ok_${j}_${l});`,
      );
    }
  }
  return lines;
}

function accumulate(j: number, channels: number): string {
  const xv = `vec4<f32>(${range(TEXEL_VALUES).map((l) => `x_${j}_${l}`).join(', ')})`;
  const dots = range(CHANNEL_TILE).map((c) => (c < channels ? `dot(wv_${c}, xv_${j})` : '0.0'));
  return `let xv_${j} = ${xv};\n    acc_${j} += vec4<f32>(${dots.join(', ')});`;
}

function stores(g: ConvTextureGeometry, outPix: number, channels: number, hasBias: boolean, activation: FusedActivation | undefined): string[] {
  return range(channels).map((c) => {
    const bias = hasBias ? ` + b[ocBase + ${u(c)}]` : '';
    const pixelStores = range(PIXEL_TILE).map((j) => {
      const store = `y[plane + ${u(j)}] = ${applyActivation(`(acc_${j}[${c}]${bias})`, activation)};`;
      return outPix % PIXEL_TILE === 0 ? store : `if (pix0 + ${u(j)} < ${u(outPix)}) { ${store} }`;
    });
    const body = [`let plane = (n * ${u(g.outChannels)} + ocBase + ${u(c)}) * ${u(outPix)} + pix0;`, ...pixelStores].join('\n    ');
    return g.outPerGroup % channels === 0 ? `{\n    ${body}\n  }` : `if (ocInGroup + ${u(c)} < ${u(g.outPerGroup)}) {\n    ${body}\n  }`;
  });
}
