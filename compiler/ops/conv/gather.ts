/** The 'gather' ConvTranspose kernel (see KernelKind in plan.ts). */
import { numElements, type FusedActivation } from '../../ir/types.js';
import { lit, u } from '../../kernel/wgsl.js';
import type { KernelSpec } from '../../kernel/types.js';
import { accumulatorLayout, range, type ConvPlan } from './plan.js';
import { buildTiledKernel, flatPixels, storeCode, weightLoads, type ConvTensors } from './tiled.js';


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
export function gatherKernel(p: ConvPlan, label: string, t: ConvTensors, activation: FusedActivation | undefined): KernelSpec {
  const hasBias = t.b !== undefined;
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
  return buildTiledKernel(p, label, t, flatPixels(p), body);
}
