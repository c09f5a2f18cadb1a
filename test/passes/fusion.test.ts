/**
 * The transformer fusion passes fire on the forms exporters emit (counted in fused nodes and
 * kernels), and keep the original nodes when an intermediate value has a reader outside the
 * pattern. Runs the pass pipeline only (no GPU); numerics are checked by test/families.
 */
import { describe, expect, it } from 'vitest';
import { GraphBuilder, serializeInline, WeightStore } from '../../fixtures/families/builder.js';
import { CONFIGS } from '../../fixtures/families/configs.js';
import { familyGraphs } from '../../fixtures/families/generate.js';
import { attentionCore, gelu, layerNorm, splitHeads, type GeluStyle } from '../../fixtures/families/layers.js';
import { importOnnx } from '../../compiler/frontend/onnx.js';
import { runPipeline } from '../../compiler/passes/pipeline.js';
import { DEFAULT_LIMITS } from '../../compiler/target/limits.js';
import { FUSED_DOMAIN } from '../../compiler/ops/domains.js';
import type { Graph } from '../../compiler/ir/types.js';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { expectFlashmemError } from '../harness/single-node.js';

function optimise(g: GraphBuilder) {
  return runPipeline(importOnnx(serializeInline(g)), { limits: DEFAULT_LIMITS }).state;
}

function opCounts(graph: Graph): Record<string, number> {
  const counts: Record<string, number> = {};
  for (const n of graph.nodes) {
    const key = n.fusedActivation ? `${n.opType}+${n.fusedActivation.opType}` : n.opType;
    counts[key] = (counts[key] ?? 0) + 1;
  }
  return counts;
}

/** A one-output graph around x [2, 5, 16]; `body` builds the pattern and may add extra outputs. */
function graphOf(opset: number, body: (b: GraphBuilder, x: string) => string, extra: (b: GraphBuilder) => void = () => {}): GraphBuilder {
  const b = new GraphBuilder(new WeightStore(1), opset, 'g');
  const x = b.input('x', 'float32', [2, 5, 16]);
  b.opTo('Identity', [body(b, x)], 'y');
  b.output('y', 'float32', [2, 5, 16]);
  extra(b);
  return b;
}

describe('fuse-layernorm', () => {
  it('fuses the decomposed pattern into one kernel (fused domain below opset 17)', () => {
    const { graph, program } = optimise(graphOf(14, (b, x) => layerNorm(b, x, 16, 'ln', 'decomposed')));
    const ln = graph.nodes.filter((n) => n.opType === 'LayerNormalization');
    expect(ln).toHaveLength(1);
    expect(ln[0]!.domain).toBe(FUSED_DOMAIN);
    expect(program!.kernels.filter((k) => k.opType === 'LayerNormalization')).toHaveLength(1);
    expect(opCounts(graph).ReduceMean).toBeUndefined();
  });

  it('emits ONNX LayerNormalization from opset 17, and ReduceMean axes as an input (opset 18)', () => {
    for (const opset of [17, 18]) {
      const { graph } = optimise(graphOf(opset, (b, x) => layerNorm(b, x, 16, 'ln', 'decomposed')));
      expect(graph.nodes.map((n) => `${n.domain}:${n.opType}`).filter((s) => s.endsWith('LayerNormalization'))).toEqual([':LayerNormalization']);
    }
  });

  it('keeps the nodes when the mean is also a graph output', () => {
    const g = graphOf(14, (b, x) => layerNorm(b, x, 16, 'ln', 'decomposed'), (b) => {
      const mean = b.nodes.find((n) => n.opType === 'ReduceMean')!.outputs[0]!;
      b.opTo('Identity', [mean], 'mean');
      b.output('mean', 'float32', [2, 5, 1]);
    });
    const counts = opCounts(optimise(g).graph);
    expect(counts.LayerNormalization).toBeUndefined();
    expect(counts.ReduceMean).toBe(2);
  });
});

describe('fuse-gelu', () => {
  const forms: [GeluStyle, string, string][] = [
    ['erf', 'Gelu', 'none'], ['tanh', 'Gelu', 'tanh'], ['fast', 'Gelu', 'tanh'], ['quick', 'QuickGelu', ''],
  ];
  for (const [style, opType, approximate] of forms) {
    it(`recognises the ${style} form`, () => {
      const { graph, program } = optimise(graphOf(17, (b, x) => gelu(b, x, style)));
      expect(graph.nodes.map((n) => n.opType)).toEqual([opType, 'Identity']);
      const fused = graph.nodes.find((n) => n.opType === opType)!;
      expect(fused.domain).toBe(FUSED_DOMAIN);
      if (approximate) expect(fused.attrs.approximate).toEqual({ type: 'string', value: approximate });
      else expect(fused.attrs.alpha?.type === 'float' && Math.abs(fused.attrs.alpha.value - 1.702) < 1e-6).toBe(true);
      expect(program!.kernels.filter((k) => k.opType === opType)).toHaveLength(1);
    });
  }

  it('folds the fused GELU into the MatMul producing its input', () => {
    const { graph } = optimise(graphOf(17, (b, x) => gelu(b, b.op('MatMul', [x, b.weight('w', [16, 16], { kind: 'uniform', scale: 0.3 })]), 'erf')));
    expect(opCounts(graph)['MatMul+Gelu']).toBe(1);
  });

  it('keeps the nodes when an inner value (x^3) has another reader', () => {
    const g = graphOf(17, (b, x) => gelu(b, x, 'tanh'), (b) => {
      const cube = b.nodes.find((n) => n.opType === 'Pow')!.outputs[0]!;
      b.opTo('Identity', [cube], 'cube');
      b.output('cube', 'float32', [2, 5, 16]);
    });
    const counts = opCounts(optimise(g).graph);
    expect(counts.Gelu).toBeUndefined();
    expect(counts.Pow).toBe(1);
    // (Tanh itself still fuses into the Mul before it as an ordinary activation)
    expect(counts['Mul+Tanh']).toBe(1);
  });

  it('leaves a near-GELU that is not one (wrong constant)', () => {
    const g = graphOf(17, (b, x) => b.op('Mul', [b.op('Mul', [x, b.op('Add', [b.op('Erf', [b.op('Div', [x, b.scalar(1.5)])]), b.scalar(1)])]), b.scalar(0.5)]));
    expect(opCounts(optimise(g).graph).Erf).toBe(1);
  });
});

/** q, k, v [1, 5, 16] -> heads 2 x 8 with the given scaling and masks */
function attentionGraph(opts: { causal?: boolean; scaling?: 'none' | 'div' | 'split'; extraReader?: 'scores' | 'probs' }): GraphBuilder {
  const b = new GraphBuilder(new WeightStore(1), 17, 'attn');
  const [q, k, v] = ['q', 'k', 'v'].map((n) => b.input(n, 'float32', [1, 5, 16]));
  const qh = splitHeads(b, q!, 2, 8);
  const kt = splitHeads(b, k!, 2, 8, true);
  const vh = splitHeads(b, v!, 2, 8);
  const tril = new Uint8Array(25).map((_, i) => (i % 5 <= Math.floor(i / 5) ? 1 : 0));
  const mask = opts.causal ? b.constant('bool', [1, 1, 5, 5], tril, 'causal') : undefined;
  const out = attentionCore(b, qh, kt, vh, { headDim: 8, scaling: opts.scaling ?? 'div', whereMask: mask });
  b.opTo('Identity', [out], 'y');
  b.output('y', 'float32', [1, 2, 5, 8]);
  if (opts.extraReader) {
    const op = opts.extraReader === 'scores' ? 'MatMul' : 'Softmax';
    const value = b.nodes.find((n) => n.opType === op)!.outputs[0]!;
    b.opTo('Identity', [value], 'extra');
    b.output('extra', 'float32', [1, 2, 5, 5]);
  }
  return b;
}

describe('fuse-attention', () => {
  it('fuses MatMul / Div / Where(causal) / Softmax / MatMul and the head transposes into one kernel', () => {
    const { graph, program } = optimise(attentionGraph({ causal: true }));
    const attn = graph.nodes.filter((n) => n.opType === 'Attention');
    expect(attn).toHaveLength(1);
    expect(attn[0]!.attrs.causal).toEqual({ type: 'int', value: 1 });
    expect(attn[0]!.attrs.scale?.type === 'float' && Math.abs(attn[0]!.attrs.scale.value - 1 / Math.sqrt(8)) < 1e-7).toBe(true);
    expect(opCounts(graph).Transpose).toBeUndefined();
    expect(program!.kernels.map((k) => k.opType)).toEqual(['Attention']);
  });

  it('folds dynamo-style sqrt(scale) on Q and Kt into the scale', () => {
    const { graph } = optimise(attentionGraph({ scaling: 'split' }));
    const attn = graph.nodes.find((n) => n.opType === 'Attention')!;
    expect(attn.attrs.causal).toEqual({ type: 'int', value: 0 });
    expect(attn.attrs.scale?.type === 'float' && Math.abs(attn.attrs.scale.value - 1 / Math.sqrt(8)) < 1e-6).toBe(true);
    expect(opCounts(graph).Mul).toBeUndefined();
  });

  for (const extraReader of ['scores', 'probs'] as const) {
    it(`does not fuse when the ${extraReader} are read elsewhere`, () => {
      const counts = opCounts(optimise(attentionGraph({ causal: true, extraReader })).graph);
      expect(counts.Attention).toBeUndefined();
      expect(counts.Softmax).toBe(1);
    });
  }

  it('fires once per layer in every generated family', () => {
    for (const name of ['gpt-neo-tiny', 'gpt2-tiny', 'vit-tiny', 'bert-tiny', 'whisper-encoder-tiny']) {
      const cfg = CONFIGS[name]!;
      for (const g of familyGraphs(cfg)) {
        const counts = opCounts(optimise(g).graph);
        expect(counts.Attention, `${name}/${g.name}`).toBe(cfg.layers);
        expect(counts.Softmax, `${name}/${g.name}`).toBeUndefined();
        expect(counts.ReduceMean, `${name}/${g.name}`).toBeUndefined();
        expect(counts.Erf ?? counts.Tanh ?? counts.Sigmoid, `${name}/${g.name}`).toBeUndefined();
      }
    }
  });

  it('GPT-Neo local layers become a windowed causal kernel', () => {
    const cfg = CONFIGS['gpt-neo-tiny']!;
    const { graph } = optimise(familyGraphs(cfg, ['full'])[0]!);
    const windows = graph.nodes.filter((n) => n.opType === 'Attention').map((n) => n.attrs.window);
    expect(windows).toEqual([undefined, { type: 'int', value: 8 }]);
  });
});

describe('fused domain', () => {
  it('is refused in model files', () => {
    const model = buildModel({
      inputs: [{ name: 'x', dtype: 'float32', shape: [2] }], outputs: [{ name: 'y', dtype: 'float32' }],
      nodes: [{ opType: 'Gelu', domain: FUSED_DOMAIN, inputs: ['x'], outputs: ['y'] }],
      extraOpsets: [{ domain: FUSED_DOMAIN, version: 1 }],
    });
    expectFlashmemError(() => importOnnx(model), 'FM_UNSUPPORTED_OP', /reserved/);
  });
});
