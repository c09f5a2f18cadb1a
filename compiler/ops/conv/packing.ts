/**
 * The conv kernels' weight layout: W re-laid out once (at compile time when constant, by a
 * packing kernel otherwise) so that a tap's ocTile weights are one run of vec4s.
 */
import { numElements, type ConstTensor } from '../../ir/types.js';
import { grid1D, u } from '../../kernel/wgsl.js';
import { kernel } from '../../kernel/builder.js';
import type { KernelSpec, LowerTensor } from '../../kernel/types.js';
import type { LowerContext } from '../op.js';
import type { ConvPlan } from './plan.js';

/** Number of elements of the re-laid-out weights: [group][block][kd][kh][ic][kw][ocTile]. */
export function packedWeightCount(p: ConvPlan): number {
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

/** GPU version of packWeights for weights that are runtime tensors. */
function packWeightsKernel(p: ConvPlan, w: LowerTensor, packedTensor: LowerTensor): KernelSpec {
  const total = packedWeightCount(p);
  const kw = p.kVol[2];
  const rows = p.kVol[0] * p.kVol[1];
  const { inPerGroup: cg, outPerGroup: mg } = p.shapes;
  const grid = grid1D(total);
  const tap = `row * ${u(kw)} + col`;
  const source = p.mode === 'conv'
    ? `((group * ${u(mg)} + oc) * ${u(cg)} + ic) * ${u(rows * kw)} + ${tap}`
    : `((group * ${u(cg)} + ic) * ${u(mg)} + oc) * ${u(rows * kw)} + ${tap}`;
  const k = kernel(`${p.mode}_pack_weights`);
  const weights = k.bind('w', w, 'f32');
  const packed = k.bind('packed', packedTensor, 'f32');
  return k.buildGrid1D(grid, `let j = i % ${u(p.ocTile)};
  let col = (i / ${u(p.ocTile)}) % ${u(kw)};
  let ic = (i / ${u(p.ocTile * kw)}) % ${u(cg)};
  let row = (i / ${u(p.ocTile * kw * cg)}) % ${u(rows)};
  let blockIndex = i / ${u(p.ocTile * kw * cg * rows)};
  let group = blockIndex / ${u(p.blocksPerGroup)};
  let oc = (blockIndex % ${u(p.blocksPerGroup)}) * ${u(p.ocTile)} + j;
  ${packed.at('i')} = select(0.0, ${weights.at(`min(${source}, ${u(p.shapes.groups * mg * cg * rows * kw - 1)})`)}, oc < ${u(mg)});`);
}

/** Packed weights: a derived constant when W is constant, else a scratch tensor filled by a packing kernel. */
export function packedWeightsFor(ctx: LowerContext, p: ConvPlan): LowerTensor {
  const w = ctx.inputs[1]!;
  if (w.data) return ctx.constant(`${p.mode}_packed_weights`, packWeights(p, w.data));
  const packed = ctx.scratch(`${p.mode}_packed_weights`, { dtype: w.type.dtype, shape: [packedWeightCount(p)] });
  ctx.kernel(packWeightsKernel(p, w, packed));
  return packed;
}
