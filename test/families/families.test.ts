/**
 * The generated model families end to end: each small config compiles to a bundle whose outputs
 * match onnxruntime-node on the same inputs (rtol 1e-3), and the small decoders generate the same
 * 32 greedy tokens as onnxruntime when the full-sequence graph is re-run for every new token.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeInline } from '../../fixtures/families/builder.js';
import { CONFIGS } from '../../fixtures/families/configs.js';
import type { DecoderConfig } from '../../fixtures/families/decoder.js';
import { familyGraphs } from '../../fixtures/families/generate.js';
import { seededRandom } from '../../fixtures/onnx-builder.js';
import { typedArrayFor } from '../../compiler/cli/inputs.js';
import type { DType } from '../../compiler/ir/types.js';
import { compileAndOpen, type CompiledBundle } from '../harness/compile-run.js';
import { runOrt } from '../harness/ort.js';
import { tempDir } from '../harness/paths.js';
import { maxViolation } from '../harness/single-node.js';
import { greedyFullGraph } from '../harness/greedy.js';

interface Feed {
  dtype: DType;
  shape: number[];
  data: number[];
}

const RTOL = 1e-3;
const ATOL = 1e-3;

const tmp = tempDir('families');
afterAll(() => tmp.cleanup());

/** Writes one graph of a family config; returns the model path and its bytes. */
function writeGraph(config: string, index = 0): { path: string; bytes: Uint8Array } {
  const g = familyGraphs(CONFIGS[config]!)[index]!;
  const bytes = serializeInline(g);
  const path = join(tmp.dir, `${config}-${g.name}.onnx`);
  writeFileSync(path, bytes);
  return { path, bytes };
}

function randomFeed(dtype: DType, shape: number[], seed: number, sample: (r: () => number) => number): Feed {
  const r = seededRandom(seed);
  return { dtype, shape, data: Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => sample(r)) };
}

async function compareOutputs(bundle: CompiledBundle, bytes: Uint8Array, feeds: Record<string, Feed>): Promise<number> {
  const outputs = await bundle.run(Object.fromEntries(Object.entries(feeds).map(([k, f]) => [k, typedArrayFor(f.dtype, f.data)])));
  const ref = await runOrt(bytes, feeds);
  let worst = 0;
  for (const [name, expected] of Object.entries(ref)) {
    const actual = Array.from(outputs[name]! as ArrayLike<number>, Number);
    expect(actual.length, `${name} length`).toBe(expected.data.length);
    worst = Math.max(worst, maxViolation(actual, Array.from(expected.data as ArrayLike<number>, Number), RTOL, ATOL));
  }
  return worst;
}

describe('encoder families match onnxruntime', () => {
  it('ViT (dynamo-style Q/K scaling, decomposed LayerNorm, erf GELU)', async () => {
    const { path, bytes } = writeGraph('vit-tiny');
    const cfg = CONFIGS['vit-tiny']!;
    if (cfg.family !== 'vit') throw new Error('config');
    const bundle = await compileAndOpen(path);
    try {
      const feeds = { pixel_values: randomFeed('float32', [1, 3, cfg.image, cfg.image], 1, (r) => 2 * r() - 1) };
      expect(await compareOutputs(bundle, bytes, feeds)).toBeLessThanOrEqual(1);
    } finally {
      bundle.close();
    }
  });

  it('BERT (padding mask, post-LN, opset 13)', async () => {
    const { path, bytes } = writeGraph('bert-tiny');
    const cfg = CONFIGS['bert-tiny']!;
    if (cfg.family !== 'encoder') throw new Error('config');
    const bundle = await compileAndOpen(path);
    try {
      const T = cfg.sequence;
      const feeds = {
        input_ids: randomFeed('int64', [1, T], 2, (r) => Math.floor(r() * cfg.vocab)),
        // the last three positions are padding
        attention_mask: { dtype: 'int64' as const, shape: [1, T], data: Array.from({ length: T }, (_, i) => (i < T - 3 ? 1 : 0)) },
      };
      expect(await compareOutputs(bundle, bytes, feeds)).toBeLessThanOrEqual(1);
    } finally {
      bundle.close();
    }
  });

  it('Whisper-style audio encoder (Conv1d front end, QuickGELU)', async () => {
    const { path, bytes } = writeGraph('whisper-encoder-tiny');
    const cfg = CONFIGS['whisper-encoder-tiny']!;
    if (cfg.family !== 'encoder') throw new Error('config');
    const bundle = await compileAndOpen(path);
    try {
      const feeds = { input_features: randomFeed('float32', [1, cfg.mel, cfg.sequence], 3, (r) => 2 * r() - 1) };
      expect(await compareOutputs(bundle, bytes, feeds)).toBeLessThanOrEqual(1);
    } finally {
      bundle.close();
    }
  });
});


describe.each(['gpt-neo-tiny', 'gpt2-tiny'])('decoder %s', (config) => {
  const cfg = CONFIGS[config] as DecoderConfig;
  let full: { path: string; bytes: Uint8Array };
  let bundle: CompiledBundle;
  beforeAll(async () => {
    full = writeGraph(config, 0);
    bundle = await compileAndOpen(full.path);
  });
  afterAll(() => bundle?.close());

  it('full-sequence logits match onnxruntime', async () => {
    const feeds = { input_ids: randomFeed('int64', [1, cfg.sequence], 4, (r) => Math.floor(r() * cfg.vocab)) };
    expect(await compareOutputs(bundle, full.bytes, feeds)).toBeLessThanOrEqual(1);
  });

  it('prefill and decode graphs match onnxruntime', async () => {
    const headDim = cfg.hidden / cfg.heads;
    const prefill = writeGraph(config, 1);
    const p = await compileAndOpen(prefill.path);
    try {
      const feeds = { input_ids: randomFeed('int64', [1, cfg.sequence], 5, (r) => Math.floor(r() * cfg.vocab)) };
      expect(await compareOutputs(p, prefill.bytes, feeds)).toBeLessThanOrEqual(1);
    } finally {
      p.close();
    }
    const decode = writeGraph(config, 2);
    const d = await compileAndOpen(decode.path);
    try {
      const filled = 5;
      const bias = (window: number): Feed => ({
        dtype: 'float32', shape: [1, 1, 1, cfg.context],
        data: Array.from({ length: cfg.context }, (_, s) => (s < filled && (window === 0 || filled - s < window) ? 0 : -1e9)),
      });
      const feeds: Record<string, Feed> = {
        input_ids: { dtype: 'int64', shape: [1, 1], data: [17] },
        position_ids: { dtype: 'int64', shape: [1, 1], data: [filled] },
        attention_bias: bias(0),
        ...(cfg.window > 0 ? { local_attention_bias: bias(cfg.window) } : {}),
      };
      for (let l = 0; l < cfg.layers; l++) {
        for (const kind of ['key', 'value']) feeds[`past_${kind}.${l}`] = randomFeed('float32', [1, cfg.heads, cfg.context, headDim], 10 + l, (r) => 2 * r() - 1);
      }
      expect(await compareOutputs(d, decode.bytes, feeds)).toBeLessThanOrEqual(1);
    } finally {
      d.close();
    }
  });

  it('greedy generation of 32 tokens equals onnxruntime (full graph re-run per token)', async () => {
    const T = cfg.sequence;
    const prompt = [3, 1, 4, 1, 5, 9, 2, 6];
    const steps = 32;
    expect(T, 'the full graph must hold the prompt and the generated tokens').toBeGreaterThanOrEqual(prompt.length + steps - 1);
    const generate = (run: (ids: number[]) => Promise<ArrayLike<number>>) => greedyFullGraph(run, prompt, steps, T, cfg.vocab);
    const ours = await generate(async (ids) => (await bundle.run({ input_ids: typedArrayFor('int64', ids) })).logits as Float32Array);
    const reference = await generate(async (ids) => (await runOrt(full.bytes, { input_ids: { dtype: 'int64', shape: [1, T], data: ids } })).logits!.data as Float32Array);
    expect(ours).toEqual(reference);
    // a degenerate model repeating one token would make the comparison meaningless
    expect(new Set(reference).size).toBeGreaterThan(3);
  });
});
