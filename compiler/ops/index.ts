/**
 * The operator registry: every op family file contributes OpDefs; lookups go through here.
 * To add a family, write compiler/ops/<family>.ts exporting OpDef objects and list them below.
 */
import { fail, quoteName } from '../errors.js';
import type { Node } from '../ir/types.js';
import { activationOps } from './activation.js';
import { convOps } from './conv/index.js';
import { poolOps } from './pool.js';
import { normalizationOps } from './normalization.js';
import { matmulBiasOp, matmulOps, splitMatmulOp } from './matmul/index.js';
import { elementwiseOps } from './elementwise/index.js';
import { shapeOps } from './shape.js';
import { movementFusedOps, movementOps } from './movement/index.js';
import { reduceOps } from './reduce/index.js';
import { resizeOps } from './resize.js';
import { fusedActivationOps } from './activation.js';
import { layerNormOp, transformerFusedOps } from './transformer.js';
import { triluOp } from './trilu.js';
import { FUSED_DOMAIN } from './domains.js';
import type { OpDef } from './op.js';

export { FUSED_DOMAIN };

const FAMILIES: readonly OpDef[] = [
  activationOps,
  ...convOps,
  ...poolOps,
  ...normalizationOps,
  ...matmulOps,
  ...elementwiseOps,
  ...shapeOps,
  ...movementOps,
  ...reduceOps,
  ...resizeOps,
  layerNormOp,
  triluOp,
];

/** Ops of FUSED_DOMAIN: what the fusion passes in compiler/passes emit. */
const FUSED: readonly OpDef[] = [fusedActivationOps, ...transformerFusedOps, splitMatmulOp, matmulBiasOp, ...movementFusedOps];

const REGISTRY: ReadonlyMap<string, OpDef> = buildRegistry(FAMILIES);
const FUSED_REGISTRY: ReadonlyMap<string, OpDef> = buildRegistry(FUSED);

function buildRegistry(defs: readonly OpDef[]): Map<string, OpDef> {
  const map = new Map<string, OpDef>();
  for (const def of defs) {
    for (const opType of def.opTypes) {
      if (map.has(opType)) throw new Error(`op ${opType} registered twice`);
      map.set(opType, def);
    }
  }
  return map;
}

export function supportedOps(): string[] {
  return [...REGISTRY.keys()].sort();
}

export function findOp(opType: string): OpDef | undefined {
  return REGISTRY.get(opType);
}

/** The OpDef for a node of the default ONNX domain (or FUSED_DOMAIN), or FM_UNSUPPORTED_OP naming node, op and opset. */
export function opFor(node: Node, opset: number): OpDef {
  const isOnnxDomain = node.domain === '' || node.domain === 'ai.onnx';
  const def = isOnnxDomain ? REGISTRY.get(node.opType) : node.domain === FUSED_DOMAIN ? FUSED_REGISTRY.get(node.opType) : undefined;
  if (!def) {
    const domain = isOnnxDomain ? '' : ` in domain ${quoteName(node.domain)}`;
    fail(
      'FM_UNSUPPORTED_OP',
      `node ${quoteName(node.name)}: operator ${quoteName(node.opType)}${domain} (opset ${opset}) is not supported. ` +
        `Supported operators: ${supportedOps().join(', ')}`,
    );
  }
  return def;
}
