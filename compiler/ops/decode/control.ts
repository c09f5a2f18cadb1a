/**
 * The decode loop's control block: u32 words in the first loop buffer (schedule decoder.loop),
 * shared by the kernels of this folder and the runtime (runtime-template/decode-loop.ts keeps an
 * identical table; test/ops/decode-loop.test.ts checks that they agree). It is what makes a
 * decode step position-independent: the step's kernels read the position and the fed token here,
 * and token selection writes the next ones, so the same commands serve every token.
 */
export const CONTROL = {
  /** cache slot of `token`: where the next decode step writes its keys and values */
  position: 0,
  /** the token the next decode step feeds */
  token: 1,
  /** the logits row the next selection reads (the host sets it for the prefill; selection resets it to 0) */
  row: 2,
  /** 0 greedy, 1 sampling (temperature, topK, topP, seed below) */
  mode: 3,
  /** sampling: keep the topK most likely tokens (0: all) */
  topK: 4,
  /** sampling: f32 bits of the temperature (> 0) */
  temperature: 5,
  /** sampling: f32 bits of top-p (nucleus) mass; >= 1 keeps every token */
  topP: 6,
  /** sampling: the seed of the counter-based random numbers */
  seed: 7,
} as const;

/** words of the control block; the buffer is one binding-alignment unit */
export const CONTROL_WORDS = 16;
export const CONTROL_BYTES = 256;

/** WGSL constants naming the control words, for the kernels' headers */
export function controlConstants(): string {
  return Object.entries(CONTROL).map(([name, word]) => `const C_${name.replace(/[A-Z]/g, (c) => `_${c}`).toUpperCase()}: u32 = ${word}u;`).join('\n');
}
