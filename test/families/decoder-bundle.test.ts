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
import type { GenerateOptions, GenerateResult, DecoderStepper } from '../../runtime-template/runtime.js';
import { argmax } from '../harness/greedy.js';
import { editJsonAndRehash } from '../harness/bundle-fixtures.js';
import { compileDecoderOffThread } from '../harness/compile-run.js';
import { runOrt } from '../harness/ort.js';
import { greedyFullGraph } from '../harness/greedy.js';
import { tempDir } from '../harness/paths.js';

const tmp = tempDir('decoder');
afterAll(() => tmp.cleanup());

const PROMPT = [3, 1, 4, 1, 5, 9, 2, 6];
const STEPS = 32;

interface DecoderSession extends RuntimeSession {
  generate(prompt: number[], options: GenerateOptions): Promise<GenerateResult>;
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

/**
 * The GPU decode loop (schedule decoder.loop): one submission and an 8-byte token readback per
 * token, logits only when asked, seeded sampling on the GPU, prompts beyond the prefill length,
 * and bundles without a loop (older compilers) still decoding on the host.
 */
describe('decode loop (gpt-neo-tiny)', () => {
  const cfg = CONFIGS['gpt-neo-tiny'] as DecoderConfig;
  const paths: Record<string, string> = {};
  let reference: number[];
  let dir: string;
  let session: DecoderSession;

  beforeAll(async () => {
    let fullBytes: Uint8Array | undefined;
    for (const g of familyGraphs(cfg)) {
      const bytes = serializeInline(g);
      paths[g.name] = join(tmp.dir, `loop-${g.name}.onnx`);
      writeFileSync(paths[g.name]!, bytes);
      if (g.name === 'full') fullBytes = bytes;
    }
    reference = await greedyFullGraph(
      async (ids) => (await runOrt(fullBytes!, { input_ids: { dtype: 'int64', shape: [1, cfg.sequence], data: ids } })).logits!.data as Float32Array,
      PROMPT, 12, cfg.sequence, cfg.vocab,
    );
    dir = join(tmp.dir, 'loop-preload');
    await compileDecoderOffThread(paths.prefill!, paths.decode!, dir);
    session = (await openBundle(dir, { device: await testDevice() })).session as DecoderSession;
  }, 300_000);
  afterAll(() => session?.dispose());

  const counters = () => {
    const stats = session.stats() as unknown as { submissions: number; readbackBytes: number };
    return { submissions: stats.submissions, readbackBytes: stats.readbackBytes };
  };

  it('one queue submission and 8 bytes read back per token; logits only with returnLogits', async () => {
    const before = counters();
    const result = await keepAlive(session.generate(PROMPT, { maxNewTokens: 12 }));
    expect(result.tokens).toEqual(reference);
    const after = counters();
    expect(after.submissions - before.submissions, 'the prefill and one per decode step').toBe(12);
    expect(after.readbackBytes - before.readbackBytes, 'token ids only, never logits').toBe(12 * 8);
    expect(result.prefillTokensPerSecond).toBeGreaterThan(0);
    expect(result.decodeTokensPerSecond).toBe(result.tokensPerSecond);
    expect(result.logits).toBeUndefined();

    const withLogits = await keepAlive(session.generate(PROMPT, { maxNewTokens: 4, returnLogits: true }));
    expect(withLogits.tokens).toEqual(reference.slice(0, 4));
    expect(counters().readbackBytes - after.readbackBytes).toBeGreaterThan(4 * cfg.vocab * 4);
    // the host stepper's logits (the decode graph run with host-written inputs) are the same numbers
    const stepper = session.decoder();
    let logits = await keepAlive(stepper.prefill(PROMPT));
    for (const [i, token] of withLogits.tokens.entries()) {
      expect(Array.from(withLogits.logits![i]!)).toEqual(Array.from(logits));
      expect(argmax(logits, 0, cfg.vocab)).toBe(token);
      if (i < 3) logits = await keepAlive(stepper.step(token));
    }
  }, 300_000);

  it('stops at a stop token; prompts beyond the prefill length continue as decode steps', async () => {
    const stop = reference[5]!;
    const stopped = await keepAlive(session.generate(PROMPT, { maxNewTokens: 12, stopTokens: [stop] }));
    expect(stopped.tokens).toEqual(reference.slice(0, reference.indexOf(stop) + 1));
    const prompt = Array.from({ length: cfg.sequence + 3 }, (_, i) => (i * 7 + 3) % cfg.vocab);
    const stepper = session.decoder();
    let logits = await keepAlive(stepper.prefill(prompt));
    const host: number[] = [];
    const count = Math.min(6, cfg.context - prompt.length + 1);
    for (let i = 0; i < count; i++) {
      host.push(argmax(logits, 0, cfg.vocab));
      if (i < count - 1) logits = await keepAlive(stepper.step(host.at(-1)!));
    }
    expect(count).toBeGreaterThan(2);
    // asking for more than the context holds gives what it holds
    expect((await keepAlive(session.generate(prompt, { maxNewTokens: 8 }))).tokens).toEqual(host);
  }, 300_000);

  it('sampling on the GPU: the same seed gives the same tokens, top-k 1 and a tiny top-p are greedy', async () => {
    const sample = { temperature: 1.5, topK: 20, topP: 0.95, seed: 7 };
    const first = await keepAlive(session.generate(PROMPT, { maxNewTokens: 12, sample }));
    const second = await keepAlive(session.generate(PROMPT, { maxNewTokens: 12, sample }));
    expect(second.tokens).toEqual(first.tokens);
    expect(first.tokens).not.toEqual(reference);
    const other = await keepAlive(session.generate(PROMPT, { maxNewTokens: 12, sample: { ...sample, seed: 8 } }));
    expect(other.tokens).not.toEqual(first.tokens);
    expect((await keepAlive(session.generate(PROMPT, { maxNewTokens: 12, sample: { topK: 1, temperature: 3, seed: 1 } }))).tokens).toEqual(reference);
    expect((await keepAlive(session.generate(PROMPT, { maxNewTokens: 12, sample: { topP: 1e-6, seed: 2 } }))).tokens).toEqual(reference);
    for (const bad of [{ temperature: 0 }, { topK: -1 }, { topP: 1.5 }, { seed: 2 ** 32 }]) {
      await expect(session.generate(PROMPT, { maxNewTokens: 2, sample: bad })).rejects.toSatisfy((e: unknown) => (e as { code?: string }).code === 'FM_INPUT');
    }
  }, 300_000);

  it('a bundle without a decode loop (an older compiler\'s) still gives the greedy tokens, decoding on the host', async () => {
    const legacy = join(tmp.dir, 'loop-legacy');
    await compileDecoderOffThread(paths.prefill!, paths.decode!, legacy);
    await editJsonAndRehash(legacy, 'schedule.json', (schedule) => {
      delete schedule.decoder.loop;
      // an older compiler recorded no grids either (the loop's shaders, now never dispatched, stay listed)
      delete schedule.maxWorkgroups;
      schedule.plannedPeakBytes -= 256 + 4 * 16;
    });
    const old = (await openBundle(legacy, { device: await testDevice() })).session as DecoderSession;
    try {
      const before = old.stats() as unknown as { submissions: number; readbackBytes: number };
      expect((await keepAlive(old.generate(PROMPT, { maxNewTokens: 12 }))).tokens).toEqual(reference);
      const after = old.stats() as unknown as { submissions: number; readbackBytes: number };
      expect(after.readbackBytes - before.readbackBytes, 'the host loop reads every logit back').toBeGreaterThanOrEqual(11 * cfg.vocab * 4);
      await expect(old.generate(PROMPT, { maxNewTokens: 2, sample: { seed: 1 } })).rejects.toThrow(/recompile/);
    } finally {
      old.dispose();
    }
  }, 300_000);
});
