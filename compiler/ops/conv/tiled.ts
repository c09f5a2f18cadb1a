/**
 * What the three tiled conv kernels share: weight and accumulator code, the output stores
 * (bias, fused activation, vec4 where aligned), the prologue (tile, channel block, group, base
 * offsets) and the kernel shell with its bindings.
 */
import { numElements, type FusedActivation } from '../../ir/types.js';
import { u } from '../../kernel/wgsl.js';
import { kernel, LID, WID } from '../../kernel/builder.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import { applyActivation } from '../activation.js';
import { accumulatorLayout, range, type ConvPlan } from './plan.js';

/** `let w_{q}` loads of the ocTile weights at packed (vec4 or scalar) index `wi + offset`. */
export function weightLoads(p: ConvPlan, offset: number, suffix = ''): string[] {
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
export interface TilePixels {
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
export function storesVec4(p: ConvPlan, pixels: TilePixels): boolean {
  return p.pxTile % 4 === 0 && pixels.extent % 4 === 0 && numElements(p.outVol) % 4 === 0;
}

/**
 * Stores every accumulator plus bias, through the fused activation. The bias of each channel is
 * loaded once (storage loads are not merged across the stores in between), and outputs go out as
 * vec4 where aligned: on software rasterisers each storage access is a loop over the SIMD lanes.
 */
export function storeCode(p: ConvPlan, hasBias: boolean, activation: FusedActivation | undefined, pixels: TilePixels): string {
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

export function rowPixels(p: ConvPlan): TilePixels {
  return { first: `(od * ${u(p.outVol[1])} + oh) * ${u(p.outVol[2])} + ow0`, offset: 'ow0', extent: p.outVol[2] };
}

export function flatPixels(p: ConvPlan): TilePixels {
  return { first: 'pix0', offset: 'pix0', extent: numElements(p.outVol) };
}

/** The tensors a tiled conv kernel binds, in binding order: x, packed w, bias b (optional), y. */
export interface ConvTensors {
  x: LowerTensor;
  w: LowerTensor;
  b?: LowerTensor;
  y: LowerTensor;
}

/**
 * A tiled kernel: binds x (vec4 for 'pointwise'), the packed weights (vec4 when a channel tile is
 * whole vec4s), the bias and y (vec4 when the stores of `pixels` are), then the shared prologue,
 * the accumulators and the variant's `body`.
 */
export function buildTiledKernel(p: ConvPlan, label: string, t: ConvTensors, pixels: TilePixels, body: string): KernelSpec {
  const k = kernel(label);
  k.bind('x', t.x, p.kind === 'pointwise' ? 'vec4<f32>' : 'f32');
  k.bind('w', t.w, accumulatorLayout(p).wUnit === 4 ? 'vec4<f32>' : 'f32');
  if (t.b) k.bind('b', t.b, 'f32');
  k.bind('y', t.y, storesVec4(p, pixels) ? 'vec4<f32>' : 'f32');
  return k.build({
    header: `${k.declarations()}\n\n// ${p.mode} (${p.kind}): ${p.ocTile} output channels x ${p.pxTile} output pixels per invocation\n`,
    entry: { workgroupSize: p.workgroupSize, params: [WID, LID], body: `${prologue(p)}\n  ${accumulatorDecls(p)}\n  ${body}` },
    workgroups: [Math.ceil(p.pixelTiles / p.workgroupSize), p.shapes.groups * p.blocksPerGroup, p.shapes.batch],
  });
}
