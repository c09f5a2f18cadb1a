/**
 * Greedy generation with a full-sequence decoder graph re-run for every new token (right-padded to
 * its fixed length T; causal attention keeps the padding out): the reference the decoder tests
 * compare flashmemc's tokens with.
 */

export function argmax(data: ArrayLike<number>, offset: number, length: number): number {
  let best = 0;
  for (let i = 1; i < length; i++) if (data[offset + i]! > data[offset + best]!) best = i;
  return best;
}

/** `steps` tokens after `prompt`; `run` maps T right-padded ids to logits [1, T, vocab]. */
export async function greedyFullGraph(
  run: (ids: number[]) => Promise<ArrayLike<number>>, prompt: readonly number[], steps: number, sequence: number, vocab: number,
): Promise<number[]> {
  const tokens = [...prompt];
  for (let s = 0; s < steps; s++) {
    const ids = [...tokens, ...new Array<number>(sequence - tokens.length).fill(0)];
    const logits = await run(ids);
    tokens.push(argmax(logits, (tokens.length - 1) * vocab, vocab));
  }
  return tokens.slice(prompt.length);
}
