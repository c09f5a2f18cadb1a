/**
 * Decoders: prefill + decode steps over the KV cache held in state buffers.
 */
import type { DecoderSpec } from '../schemas/schedule.js';
import type { DecoderStepper, GenerateOptions, GenerateResult, InputValue, RunInputs, RunOutputs } from './api.js';
import { fail } from './errors.js';

type DecoderRun = (model: string, inputs: RunInputs, position?: number) => Promise<RunOutputs>;

/** Fills the cache from slot 0: prefill (right-padded to its fixed length), then one decode step per token. */
export class Stepper implements DecoderStepper {
  position = 0;
  readonly context: number;

  constructor(private readonly spec: DecoderSpec, private readonly runModel: DecoderRun) {
    this.context = spec.context;
  }

  async prefill(promptIds: ArrayLike<number | bigint>): Promise<Float32Array> {
    const ids = Array.from(promptIds, (id) => BigInt(id));
    if (ids.length === 0) fail('FM_INPUT', 'prefill() needs at least one prompt token');
    if (ids.length > this.context) fail('FM_INPUT', `the prompt has ${ids.length} tokens, the decoder's context is ${this.context}`);
    const { promptLength, vocab } = this.spec;
    const first = Math.min(ids.length, promptLength);
    // causal attention: right-padding never changes the logits of the real tokens, and decode masks the padded slots
    const padded = new BigInt64Array(promptLength);
    padded.set(ids.slice(0, first));
    const outputs = await this.runModel(this.spec.prefill, { [this.spec.inputIds]: padded });
    this.position = first;
    let logits: Float32Array = (outputs[this.spec.logits] as Float32Array).slice((first - 1) * vocab, first * vocab);
    for (const id of ids.slice(first)) logits = await this.step(id);
    return logits;
  }

  async step(tokenId: number | bigint): Promise<Float32Array> {
    const position = this.position;
    if (position === 0) fail('FM_INPUT', 'call prefill() with the prompt before step()');
    if (position >= this.context) fail('FM_INPUT', `the decoder's context of ${this.context} tokens is full`);
    const spec = this.spec;
    const inputs: Record<string, InputValue> = {
      [spec.inputIds]: BigInt64Array.of(BigInt(tokenId)),
      [spec.positionIds]: BigInt64Array.of(BigInt(position)),
      [spec.attentionBias]: cacheBias(this.context, 0, position),
    };
    // GPT-Neo local layers: the last window - 1 past positions (the token itself is the window's last)
    if (spec.localAttentionBias) inputs[spec.localAttentionBias] = cacheBias(this.context, Math.max(0, position - (spec.window - 1)), position);
    const outputs = await this.runModel(spec.decode, inputs, position);
    this.position = position + 1;
    return outputs[spec.logits] as Float32Array;
  }
}

/** 0 for cache slots [from, to), -1e9 elsewhere: an additive attention bias. */
function cacheBias(context: number, from: number, to: number): Float32Array {
  const bias = new Float32Array(context).fill(-1e9);
  bias.fill(0, from, to);
  return bias;
}

export async function generateGreedy(stepper: DecoderStepper, promptIds: ArrayLike<number | bigint>, options: GenerateOptions): Promise<GenerateResult> {
  if (!Number.isInteger(options?.maxNewTokens) || options.maxNewTokens < 1) fail('FM_INPUT', 'generate() needs options.maxNewTokens, a positive integer');
  const start = performance.now();
  let logits = await stepper.prefill(promptIds);
  const prefillMs = performance.now() - start;
  const tokens: number[] = [];
  const decodeStart = performance.now();
  const allLogits: Float32Array[] = [];
  for (;;) {
    const token = argmax(logits);
    if (options.returnLogits === true) allLogits.push(logits);
    tokens.push(token);
    options.onToken?.(token, tokens.length - 1);
    if (tokens.length >= options.maxNewTokens || options.stopTokens?.includes(token) || stepper.position >= stepper.context) break;
    logits = await stepper.step(token);
  }
  const decodeMs = performance.now() - decodeStart;
  const tokensPerSecond = tokens.length > 1 ? ((tokens.length - 1) * 1000) / decodeMs : 0;
  return {
    tokens, promptTokens: promptIds.length, prefillMs, decodeMs, tokensPerSecond,
    prefillTokensPerSecond: prefillMs > 0 ? (promptIds.length * 1000) / prefillMs : 0, decodeTokensPerSecond: tokensPerSecond,
    ...(options.returnLogits === true ? { logits: allLogits } : {}),
  };
}

function argmax(values: Float32Array): number {
  let best = 0;
  for (let i = 1; i < values.length; i++) if (values[i]! > values[best]!) best = i;
  return best;
}
