/** The 'pointwise' Conv kernel (see KernelKind in plan.ts). */
import { numElements, type FusedActivation } from '../../ir/types.js';
import { u } from '../../kernel/wgsl.js';
import type { KernelSpec } from '../../kernel/types.js';
import { accumulatorLayout, range, type ConvPlan } from './plan.js';
import { buildTiledKernel, flatPixels, storeCode, weightLoads, type ConvTensors } from './tiled.js';

/** 'pointwise' kernel: a GEMM over flattened pixels, inputs read as aligned vec4. */
export function pointwiseKernel(p: ConvPlan, label: string, t: ConvTensors, activation: FusedActivation | undefined): KernelSpec {
  const hasBias = t.b !== undefined;
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
  return buildTiledKernel(p, label, t, flatPixels(p), body);
}
