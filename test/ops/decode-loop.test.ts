/**
 * The decode loop's kernels (compiler/ops/decode) on the device: token selection against a CPU
 * reference of the documented algorithm (greedy = first largest logit; seeded top-k / top-p /
 * temperature sampling), the control block's advance, the step inputs and the cache write; and
 * the control layout the compiler's kernels use against the runtime's copy of it.
 */
import { describe, expect, it } from 'vitest';
import { seededRandom } from '../../fixtures/onnx-builder.js';
import { cacheWriteKernel, CONTROL, CONTROL_WORDS, nextInputsKernel, selectTokenKernel } from '../../compiler/ops/decode/index.js';
import { CONTROL as RUNTIME_CONTROL, CONTROL_WORDS as RUNTIME_CONTROL_WORDS, TOKEN_READBACK_BYTES as RUNTIME_TOKEN_READBACK_BYTES } from '../../runtime-template/decode-loop.js';
import { TOKEN_READBACK_BYTES } from '../../schemas/schedule.js';
import type { KernelSpec } from '../../compiler/kernel/types.js';
import { prepareKernels } from '../harness/gpu.js';

interface Sampling { temperature?: number; topK?: number; topP?: number; seed?: number }

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);
const bitsOf = (v: number) => ((f32[0] = v), u32[0]!);

function orderKey(v: number): number {
  let b = bitsOf(v);
  if (b === 0x80000000) b = 0;
  return (b & 0x80000000) !== 0 ? ~b >>> 0 : (b | 0x80000000) >>> 0;
}

function pcg(v: number): number {
  const s = (Math.imul(v, 747796405) + 2891336453) >>> 0;
  const w = Math.imul(((s >>> ((s >>> 28) + 4)) ^ s) >>> 0, 277803737) >>> 0;
  return ((w >>> 22) ^ w) >>> 0;
}

function argmax(values: ArrayLike<number>): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}

/** The selection kernel's sampling, as select-token.ts documents it, in f64. */
function sampleReference(logits: Float32Array, options: Sampling, position: number): number {
  const V = logits.length;
  const keys = Array.from(logits, orderKey);
  const order = [...keys.keys()].sort((a, b) => keys[b]! - keys[a]! || a - b);
  const k = options.topK ?? 0;
  const kept = new Set(k > 0 && k < V ? order.slice(0, k) : order);
  const max = Math.max(...logits);
  const weight = (i: number) => Math.exp((logits[i]! - max) / (options.temperature ?? 1));
  let cut = 0;
  const p = options.topP ?? 1;
  if (p < 1) {
    const z = [...kept].reduce((s, i) => s + weight(i), 0);
    const distinct = [...new Set([...kept].map((i) => keys[i]!))].sort((a, b) => b - a);
    cut = distinct.find((t) => [...kept].filter((i) => keys[i]! >= t).reduce((s, i) => s + weight(i), 0) >= p * z)!;
  }
  const chosen = [...kept].filter((i) => keys[i]! >= cut).sort((a, b) => a - b);
  const total = chosen.reduce((s, i) => s + weight(i), 0);
  const goal = ((pcg(((options.seed ?? 0) ^ pcg(position)) >>> 0) >>> 8) / 16777216) * total;
  let acc = 0;
  for (const i of chosen) {
    acc += weight(i);
    if (goal < acc) return i;
  }
  return chosen.at(-1)!;
}

function controlWords(position: number, row: number, sample?: Sampling): Uint32Array {
  const words = new Uint32Array(CONTROL_WORDS);
  const floats = new Float32Array(words.buffer);
  words[CONTROL.position] = position;
  words[CONTROL.row] = row;
  if (sample) {
    words[CONTROL.mode] = 1;
    words[CONTROL.topK] = sample.topK ?? 0;
    floats[CONTROL.temperature] = sample.temperature ?? 1;
    floats[CONTROL.topP] = sample.topP ?? 1;
    words[CONTROL.seed] = sample.seed ?? 0;
  }
  return words;
}

/** Runs one selection: the control block after it (token, position, row). */
async function select(logits: Float32Array, vocab: number, row: number, position: number, sample?: Sampling): Promise<{ token: number; position: number; row: number }> {
  const kernel: KernelSpec = selectTokenKernel({ vocab, rows: logits.length / vocab });
  const [logitsTensor, controlTensor] = kernel.bindings;
  const run = await prepareKernels([kernel], [
    { tensor: logitsTensor!, data: logits },
    { tensor: controlTensor!, data: controlWords(position, row, sample) },
  ]);
  try {
    const [control] = await run.run([controlTensor!]);
    const words = new Uint32Array(control!.buffer);
    return { token: words[CONTROL.token]!, position: words[CONTROL.position]!, row: words[CONTROL.row]! };
  } finally {
    run.destroy();
  }
}

function randomLogits(count: number, seed: number, ties = false): Float32Array {
  const rnd = seededRandom(seed);
  return Float32Array.from({ length: count }, () => (ties ? Math.floor(rnd() * 6) : rnd() * 6 - 3));
}

describe('decode loop control block', () => {
  it('the compiler\'s kernels and the runtime agree on its layout and the token readback size', () => {
    expect(RUNTIME_CONTROL).toEqual(CONTROL);
    expect(RUNTIME_CONTROL_WORDS).toBe(CONTROL_WORDS);
    expect(RUNTIME_TOKEN_READBACK_BYTES).toBe(TOKEN_READBACK_BYTES);
  });
});

describe('token selection kernel', () => {
  it.each([[100, 1], [257, 3], [1000, 2]])('greedy: the first largest logit of the row (vocab %i, %i rows), then position + 1 and row 0', async (vocab, rows) => {
    for (const ties of [false, true]) {
      const logits = randomLogits(vocab * rows, vocab + rows + (ties ? 1 : 0), ties);
      const row = rows - 1;
      const result = await select(logits, vocab, row, 7);
      expect(result).toEqual({ token: argmax(logits.subarray(row * vocab, (row + 1) * vocab)), position: 8, row: 0 });
    }
  }, 60_000);

  it('top-k = 1 is the greedy token, ties included', async () => {
    for (const seed of [1, 2, 3]) {
      const logits = randomLogits(300, seed, true);
      expect((await select(logits, 300, 0, seed, { topK: 1, seed, temperature: 2 })).token).toBe(argmax(logits));
    }
  }, 60_000);

  const cases: [string, Sampling][] = [
    ['temperature only', { temperature: 1 }],
    ['top-k 5', { topK: 5, temperature: 1.5 }],
    ['top-p 0.6', { topP: 0.6, temperature: 0.8 }],
    ['top-k 40 then top-p 0.9', { topK: 40, topP: 0.9 }],
    ['top-k with ties at the k-th logit', { topK: 30 }],
  ];
  it.each(cases)('sampling (%s) draws the token the reference algorithm draws, the same for the same seed', async (name, options) => {
    const ties = name.includes('ties');
    const logits = randomLogits(500, 11, ties);
    const drawn: number[] = [];
    for (const [seed, position] of [[1, 3], [2, 3], [3, 9], [123456789, 40]] as const) {
      const token = (await select(logits, 500, 0, position, { ...options, seed })).token;
      expect(token, `seed ${seed} position ${position}`).toBe(sampleReference(logits, { ...options, seed }, position));
      drawn.push(token);
    }
    const again = (await select(logits, 500, 0, 3, { ...options, seed: 1 })).token;
    expect(again).toBe(drawn[0]);
    if (!name.startsWith('top-p') && !name.includes('top-k 5')) expect(new Set(drawn).size, 'different seeds draw different tokens').toBeGreaterThan(1);
  }, 120_000);
});

describe('step input and cache write kernels', () => {
  it('write input_ids, position_ids and the (local) attention biases from the control block', async () => {
    const context = 40;
    const window = 8;
    const kernel = nextInputsKernel({ context, window });
    const [control, ids, positions, bias, local] = kernel.bindings;
    const words = controlWords(20, 0);
    words[CONTROL.token] = 4321;
    const run = await prepareKernels([kernel], [{ tensor: control!, data: words }]);
    try {
      const [gotIds, gotPositions, gotBias, gotLocal] = await run.run([ids!, positions!, bias!, local!]);
      expect(Array.from(gotIds!)).toEqual([4321]);
      expect(Array.from(gotPositions!)).toEqual([20]);
      expect(Array.from(gotBias!)).toEqual(Array.from({ length: context }, (_, i) => (i < 20 ? 0 : -1e9)));
      expect(Array.from(gotLocal!)).toEqual(Array.from({ length: context }, (_, i) => (i < 20 && i >= 20 - (window - 1) ? 0 : -1e9)));
    } finally {
      run.destroy();
    }
  });

  it('copies each head\'s new rows to the position\'s cache rows, and nothing when they would not fit', async () => {
    const plan = { heads: 3, rows: 1, rowWords: 4, cacheRows: 6 };
    const kernel = cacheWriteKernel(plan);
    const [present, cache, control] = kernel.bindings;
    const rows = Float32Array.from({ length: 12 }, (_, i) => i + 1);
    for (const position of [2, 6]) {
      const run = await prepareKernels([kernel], [{ tensor: present!, data: rows }, { tensor: control!, data: controlWords(position, 0) }, { tensor: cache!, data: new Float32Array(72) }]);
      try {
        const [got] = await run.run([cache!]);
        const expected = new Float32Array(72);
        if (position + plan.rows <= plan.cacheRows) for (let h = 0; h < 3; h++) expected.set(rows.subarray(h * 4, h * 4 + 4), (h * 6 + position) * 4);
        expect(Array.from(got!)).toEqual(Array.from(expected));
      } finally {
        run.destroy();
      }
    }
  });
});
