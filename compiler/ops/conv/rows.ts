/** The 'rows' Conv kernel (see KernelKind in plan.ts). */
import { numElements, type FusedActivation } from '../../ir/types.js';
import { lit, u } from '../../kernel/wgsl.js';
import type { KernelSpec } from '../../kernel/types.js';
import { accumulatorLayout, range, type ConvPlan } from './plan.js';
import { buildTiledKernel, rowPixels, storeCode, weightLoads, type ConvTensors } from './tiled.js';


/**
 * 'rows' kernel. Output columns ow0 + j read input column ow0*s - pad + (j*s + kw*dil); the
 * distinct offsets e = j*s + kw*dil are loaded once per (kernel row, input channel).
 */
export function rowsKernel(p: ConvPlan, label: string, t: ConvTensors, activation: FusedActivation | undefined): KernelSpec {
  const hasBias = t.b !== undefined;
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
  return buildTiledKernel(p, label, t, rowPixels(p), body);
}

