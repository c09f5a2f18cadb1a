/**
 * Layout selection (FlashMem's 2.5D layouts): per Conv / MatMul / Gemm weight, a storage-buffer
 * layout or a texture layout (rgba32float texture_2d_array, see compiler/kernel/texture-layout.ts).
 * The device profile prices both: layoutCost.<conv|matmul>.textureOverBuffer is the measured
 * texture latency over the buffer latency of that op class on the device (< 1: texture wins).
 * Lowering then emits the kernel variant for the chosen layout, and the shards hold the weight in
 * that final layout.
 *
 * Streaming: texture weights are always resident (preloaded); the load plan streams buffer weights
 * only. So `auto` keeps every weight in buffers under the stream strategy (the budget needs them
 * streamable); forcing `texture` there pins the texture weights resident within the budget.
 */
import { quoteName } from '../errors.js';
import type { Graph, Node } from '../ir/types.js';
import { opFor } from '../ops/index.js';
import { textureLimits, type KernelChoices, type TargetLimits } from '../target/limits.js';
import type { LayoutDecision, LayoutDecisions, TextureWeightCandidate } from '../ops/op.js';
import { isTextureShape, textureShapeFor } from '../kernel/texture-layout.js';

/** auto: the profile's costs decide; buffer / texture force a layout (for tests and benchmarks). */
export type WeightLayoutMode = 'auto' | 'buffer' | 'texture';
export const WEIGHT_LAYOUT_MODES: readonly WeightLayoutMode[] = ['auto', 'buffer', 'texture'];

/** The device profile's layout costs (schemas/profile.ts layoutCost): texture latency / buffer latency. */
export interface LayoutCosts {
  conv?: { textureOverBuffer: number };
  matmul?: { textureOverBuffer: number };
}

export interface LayoutOptions {
  mode: WeightLayoutMode;
  costs?: LayoutCosts;
  limits: TargetLimits;
  strategy?: 'preload' | 'stream';
  /** the device profile's kernel variants (a workgroup-tiled buffer kernel keeps the buffer layout) */
  kernelChoices?: KernelChoices;
}

export type { LayoutDecision, LayoutDecisions };

export function selectWeightLayouts(graph: Graph, options: LayoutOptions): LayoutDecisions {
  const decisions: LayoutDecisions = new Map();
  for (const node of graph.nodes) {
    const candidate = candidateOf(graph, node);
    if (candidate) decisions.set(node.name, decide(candidate, options));
  }
  return decisions;
}

function candidateOf(graph: Graph, node: Node): TextureWeightCandidate | undefined {
  const def = opFor(node, graph.opset);
  if (!def.textureWeight) return undefined;
  const value = (name: string) => (name ? graph.values.get(name) : undefined);
  return def.textureWeight({
    node, opset: graph.opset,
    inputs: node.inputs.map((name) => value(name)?.type),
    consts: node.inputs.map((name) => value(name)?.data),
  });
}

function decide(candidate: TextureWeightCandidate, options: LayoutOptions): LayoutDecision {
  const buffer = (reason: string): LayoutDecision => ({ layout: 'buffer', costKind: candidate.costKind, reason });
  const wanted = wantsTexture(candidate, options);
  if (!wanted.texture) return buffer(wanted.reason);
  if (textureLimits(options.limits).maxSampledTexturesPerShaderStage < 1) return buffer('the target allows no sampled texture per shader stage');
  const shape = textureShapeFor(candidate.rows, candidate.reduction, options.limits);
  if (!isTextureShape(shape)) return buffer(`texture does not fit the target: ${shape.unfit}`);
  return { layout: 'texture', costKind: candidate.costKind, texture: shape, reason: wanted.reason };
}

function wantsTexture(candidate: TextureWeightCandidate, options: LayoutOptions): { texture: boolean; reason: string } {
  if (options.mode === 'buffer') return { texture: false, reason: 'forced by --weight-layout buffer' };
  if (options.mode === 'texture') return { texture: true, reason: 'forced by --weight-layout texture' };
  if (options.strategy === 'stream') return { texture: false, reason: 'stream strategy: buffer weights stay streamable' };
  if (options.kernelChoices && candidate.bufferKernelIsTiled?.(options.kernelChoices)) {
    return { texture: false, reason: 'the device profile\'s workgroup-tiled buffer kernel (blocked GEMM / split-K gemv) is faster than the texture kernel' };
  }
  const ratio = options.costs?.[candidate.costKind]?.textureOverBuffer;
  if (ratio === undefined) return { texture: false, reason: `no ${candidate.costKind} layout cost in the device profile` };
  const verdict = ratio < 1 ? 'texture is faster' : 'buffer is faster';
  return { texture: ratio < 1, reason: `profile: ${candidate.costKind} texture/buffer latency ${ratio.toFixed(3)} (${verdict})` };
}

export function dumpLayouts(decisions: LayoutDecisions): string {
  const lines = [`weight layouts: ${[...decisions.values()].filter((d) => d.layout === 'texture').length} texture, ` +
    `${[...decisions.values()].filter((d) => d.layout === 'buffer').length} buffer`];
  for (const [node, d] of decisions) {
    const geometry = d.texture ? ` ${d.texture.width}x${d.texture.height}x${d.texture.layers} texels` : '';
    lines.push(`node ${quoteName(node)} (${d.costKind}): ${d.layout}${geometry} - ${d.reason}`);
  }
  return `${lines.join('\n')}\n`;
}
