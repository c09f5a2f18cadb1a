/**
 * The example's input image: deterministic, so that a test (or anyone) can compute the reference
 * outputs for the same seed. Integer arithmetic and exact divisions only (no Math.sin and the
 * like), so every JavaScript engine produces the very same floats.
 */

/**
 * An NCHW float32 image of `shape` ([1, C, H, W]): channel 0 a horizontal gradient, channel 1 a
 * vertical one, the other channels 0, each with seeded noise added; values in [-1.25, 1.25).
 */
export function exampleImage(shape, seed) {
  const [batch, channels, height, width] = shape;
  const image = new Float32Array(batch * channels * height * width);
  const noise = seededNoise(seed);
  let i = 0;
  for (let n = 0; n < batch; n++) {
    for (let c = 0; c < channels; c++) {
      for (let y = 0; y < height; y++) {
        for (let x = 0; x < width; x++) image[i++] = gradient(c, x / Math.max(1, width - 1), y / Math.max(1, height - 1)) + 0.25 * noise();
      }
    }
  }
  return image;
}

function gradient(channel, u, v) {
  if (channel === 0) return 2 * u - 1;
  if (channel === 1) return 2 * v - 1;
  return 0;
}

/** values in [-1, 1) from a 32-bit linear congruential generator */
function seededNoise(seed) {
  let state = seed >>> 0;
  return () => {
    state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
    return state / 2 ** 31 - 1;
  };
}
