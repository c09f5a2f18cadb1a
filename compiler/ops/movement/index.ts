/**
 * Data-movement ops: every output element is one input element (or a pad value).
 *
 * Most of them (Transpose, Slice, Split, Pad, Tile, Expand, Concat, DepthToSpace, SpaceToDepth)
 * are described by a CopyPlan: per-axis rules mapping an iteration coordinate to a source offset
 * and a destination offset. The WGSL kernel and the CPU fold are both generated from the plan,
 * so they cannot disagree, and one simplifier (dropping unit axes, merging axes that stay
 * adjacent) serves every op. Gather and GatherElements read their source offset from an index
 * tensor and have kernels of their own.
 */
import { attrString } from '../../ir/attrs.js';
import type { OpDef } from '../op.js';
import { transposeOp, depthToSpaceSpec, spaceToDepthSpec } from './transpose.js';
import { sliceSpec, splitOp, padSpec, padRuntimeValue, tileSpec, expandSpec, concatOp } from './window.js';
import { gatherOp, splitGatherOp, gatherElementsOp } from './gather.js';
import { emitPlan, planOp } from './plan.js';
import { shapeContextOf } from '../shape.js';

const padLabel = (node: Parameters<Parameters<typeof planOp>[1]>[0]) => `pad_${attrString(node, 'mode', 'constant')}`;

/** Pad: a plan op whose constant_value may be computed at run time (its kernel reads it then). */
const padOp: OpDef = {
  ...planOp(['Pad'], padLabel, padSpec),
  lower(ctx) {
    const shape = shapeContextOf(ctx);
    const p = padSpec(shape);
    emitPlan(ctx, padLabel(ctx.node), p.plan, ctx.inputs[0]!, ctx.outputs[0]!, padRuntimeValue(shape) ? ctx.inputs[2] : undefined);
  },
};

/** Ops of FUSED_DOMAIN defined here. */
export const movementFusedOps: readonly OpDef[] = [splitGatherOp];

export const movementOps: readonly OpDef[] = [
  concatOp,
  transposeOp,
  planOp(['Slice'], () => 'slice', sliceSpec),
  splitOp,
  padOp,
  gatherOp,
  gatherElementsOp,
  planOp(['Tile'], () => 'tile', tileSpec),
  planOp(['Expand'], () => 'expand', expandSpec),
  planOp(['DepthToSpace'], () => 'depth_to_space', depthToSpaceSpec),
  planOp(['SpaceToDepth'], () => 'space_to_depth', spaceToDepthSpec),
];
