/**
 * KV-cache decoding: the prefill and decode graphs of the small decoders compiled into one
 * decoder bundle (shared weights stored once, the cache in GPU state buffers between runs).
 * session.generate() must produce the same greedy tokens as onnxruntime re-running the full
 * graph for every token, preloaded and streamed under a budget, with the measured peak GPU
 * bytes within that budget.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { serializeInline } from '../../fixtures/families/builder.js';
import { CONFIGS } from '../../fixtures/families/configs.js';
import type { DecoderConfig } from '../../fixtures/families/decoder.js';
import { familyGraphs } from '../../fixtures/families/generate.js';
import { openBundle, type RuntimeSession } from '../../compiler/cli/bundle-session.js';
import { keepAlive, testDevice } from '../harness/gpu.js';
import { compileDecoderContents } from '../../compiler/compile-decoder.js';
import type { GenerateResult, DecoderStepper } from '../../runtime-template/runtime.js';
import { compileDecoderOffThread } from '../harness/compile-run.js';
import { runOrt } from '../harness/ort.js';
import { greedyFullGraph } from '../harness/greedy.js';
import { tempDir } from '../harness/paths.js';

const tmp = tempDir('decoder');
afterAll(() => tmp.cleanup());

const PROMPT = [3, 1, 4, 1, 5, 9, 2, 6];
const STEPS = 32;

interface DecoderSession extends RuntimeSession {
  generate(prompt: number[], options: { maxNewTokens: number }): Promise<GenerateResult>;
  decoder(): DecoderStepper;
}

describe.each(['gpt-neo-tiny', 'gpt2-tiny'])('decoder bundle %s', (config) => {
  const cfg = CONFIGS[config] as DecoderConfig;
  const paths: Record<string, string> = {};
  let fullBytes: Uint8Array;
  let reference: number[];

  beforeAll(async () => {
    for (const g of familyGraphs(cfg)) {
      const bytes = serializeInline(g);
      paths[g.name] = join(tmp.dir, `${config}-${g.name}.onnx`);
      writeFileSync(paths[g.name]!, bytes);
      if (g.name === 'full') fullBytes = bytes;
    }
    // onnxruntime: the full graph re-run for every new token
    reference = await greedyFullGraph(
      async (ids) => (await runOrt(fullBytes, { input_ids: { dtype: 'int64', shape: [1, cfg.sequence], data: ids } })).logits!.data as Float32Array,
      PROMPT, STEPS, cfg.sequence, cfg.vocab,
    );
  }, 120_000);

  async function open(dir: string): Promise<DecoderSession> {
    return (await openBundle(dir, { device: await testDevice() })).session as DecoderSession;
  }

  it('stores the weights the two graphs share once', async () => {
    const { contents } = await compileDecoderContents(paths.prefill!, paths.decode!);
    const shardBytes = contents.shards.reduce((s, shard) => s + shard.size, 0);
    const decodeWeights = contents.models.find((m) => m.name === 'decode')!.weightBytes;
    expect(shardBytes).toBeLessThan(decodeWeights * 1.5);
    expect(contents.schedule.decoder).toMatchObject({ prefill: 'prefill', decode: 'decode', context: cfg.context, promptLength: cfg.sequence, vocab: cfg.vocab });
    // the cache is state, not part of the models' signatures
    expect(contents.models.find((m) => m.name === 'decode')!.inputs.map((t) => t.name).sort())
      .toEqual(['attention_bias', 'input_ids', ...(cfg.window > 0 ? ['local_attention_bias'] : []), 'position_ids'].sort());
  });

  it.each(['preload', 'stream'] as const)('%s: generate() gives onnxruntime\'s 32 greedy tokens with the KV cache on the GPU', async (strategy) => {
    const dir = join(tmp.dir, `${config}-${strategy}`);
    const preloadReport = await compileDecoderOffThread(paths.prefill!, paths.decode!, join(tmp.dir, `${config}-sizes`));
    const weightBytes = Math.max(...preloadReport.models.map((m) => m.weightBytes));
    const budget = strategy === 'stream' ? Math.round(preloadReport.plannedPeakBytes * 0.75) : undefined;
    const report = await compileDecoderOffThread(paths.prefill!, paths.decode!, dir, budget === undefined ? {} : { memoryBudget: budget });
    const session = await open(dir);
    try {
      const result = await keepAlive(session.generate(PROMPT, { maxNewTokens: STEPS }));
      expect(result.tokens).toEqual(reference);
      expect(new Set(reference).size).toBeGreaterThan(3);
      expect(result.tokensPerSecond).toBeGreaterThan(0);
      const stats = session.stats();
      expect(stats.peakGpuBytes).toBe(stats.plannedPeakGpuBytes);
      if (budget !== undefined) {
        expect(stats.peakGpuBytes, 'measured peak within the budget (cache included)').toBeLessThanOrEqual(budget);
        expect(report.plannedPeakBytes).toBeLessThan(preloadReport.plannedPeakBytes);
        expect(budget).toBeLessThan(weightBytes + preloadReport.plannedPeakBytes);
      }
      // a second generation reuses the cache from slot 0 and gives the same tokens
      expect((await keepAlive(session.generate(PROMPT, { maxNewTokens: 4 }))).tokens).toEqual(reference.slice(0, 4));
    } finally {
      session.dispose();
    }
  }, 300_000);

  it('step-wise API: prompts longer than the prefill length continue with decode steps; a full context is refused', async () => {
    const dir = join(tmp.dir, `${config}-steps`);
    await compileDecoderOffThread(paths.prefill!, paths.decode!, dir);
    const session = await open(dir);
    try {
      const stepper = session.decoder();
      await expect(keepAlive(stepper.step(1))).rejects.toThrow(/call prefill\(\)/);
      const prompt = Array.from({ length: cfg.sequence + 3 }, (_, i) => (i * 7) % cfg.vocab);
      const logits = await keepAlive(stepper.prefill(prompt));
      expect(logits.length).toBe(cfg.vocab);
      expect(stepper.position).toBe(prompt.length);
      while (stepper.position < stepper.context) await keepAlive(stepper.step(1));
      await expect(keepAlive(stepper.step(1))).rejects.toSatisfy((e: unknown) => (e as { code?: string }).code === 'FM_INPUT' && /context of \d+ tokens is full/.test((e as Error).message));
      await expect(keepAlive(session.run('decode', {}))).rejects.toThrow(/use session.generate\(\) or session.decoder\(\)/);
    } finally {
      session.dispose();
    }
  }, 300_000);
});
