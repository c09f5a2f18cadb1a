// Counts the GPU memory a WebGPU device hands out, identically for every system the side-by-side
// benchmark runs (flashmemc stream, flashmemc preload, ONNX Runtime Web): createBuffer and
// createTexture are wrapped on the device object and each returned object's destroy(), and live
// bytes are the sum of the sizes of created-and-not-yet-destroyed buffers and textures. Buffers a
// system drops without destroy() stay counted (WebGPU frees them only at garbage collection).
// Plain JavaScript so it runs unchanged under `node` on the GPU machine.

const MIB = 1048576;

/** Bytes per texel of the formats compute-oriented runtimes use; 4 for anything else. */
const TEXEL_BYTES = {
  r8unorm: 1, r8uint: 1, r8sint: 1, rg8unorm: 2, r16float: 2, r16uint: 2, r16sint: 2,
  rgba8unorm: 4, 'rgba8unorm-srgb': 4, bgra8unorm: 4, rgba8uint: 4, rgba8sint: 4, r32float: 4, r32uint: 4, r32sint: 4,
  rg16float: 4, rg32float: 8, rg32uint: 8, rg32sint: 8, rgba16float: 8, rgba16uint: 8, rgba16sint: 8,
  rgba32float: 16, rgba32uint: 16, rgba32sint: 16,
};

function textureBytes(desc) {
  const size = Array.isArray(desc.size) ? desc.size : [desc.size.width, desc.size.height ?? 1, desc.size.depthOrArrayLayers ?? 1];
  const [w, h = 1, d = 1] = size;
  const texel = TEXEL_BYTES[desc.format] ?? 4;
  let bytes = 0;
  for (let level = 0; level < (desc.mipLevelCount ?? 1); level++) {
    const depth = desc.dimension === '3d' ? Math.max(1, d >> level) : d;
    bytes += Math.max(1, w >> level) * Math.max(1, h >> level) * depth * texel;
  }
  return bytes * (desc.sampleCount ?? 1);
}

/**
 * Wraps `device` in place and returns the counter: `live`, `peak` (bytes), `created` (count),
 * `timeline` ([ms since the counter started, live bytes] at every change), and `mark(label)` to
 * record phases (load, runs) on the same clock.
 */
export function countGpuMemory(device) {
  const start = performance.now();
  const counter = {
    live: 0, peak: 0, created: 0, destroyed: 0, timeline: [[0, 0]], marks: [],
    now: () => performance.now() - start,
    mark(label) { counter.marks.push([+counter.now().toFixed(2), label, counter.live]); },
    /** timeline reduced to at most `points` points, keeping each bucket's maximum */
    compact(points = 600) {
      const t = counter.timeline;
      if (t.length <= points) return t.map(([ms, b]) => [+ms.toFixed(2), b]);
      const end = t[t.length - 1][0] || 1;
      const buckets = new Map();
      for (const [ms, b] of t) {
        const k = Math.min(points - 1, Math.floor((ms / end) * points));
        const cur = buckets.get(k);
        if (!cur || b > cur[1]) buckets.set(k, [ms, b]);
      }
      return [...buckets.values()].map(([ms, b]) => [+ms.toFixed(2), b]);
    },
  };
  const change = (delta) => {
    counter.live += delta;
    if (counter.live > counter.peak) counter.peak = counter.live;
    counter.timeline.push([counter.now(), counter.live]);
  };
  const track = (object, bytes) => {
    counter.created++;
    change(bytes);
    const destroy = object.destroy.bind(object);
    let done = false;
    object.destroy = () => {
      if (!done) {
        done = true;
        counter.destroyed++;
        change(-bytes);
      }
      return destroy();
    };
    return object;
  };
  const createBuffer = device.createBuffer.bind(device);
  const createTexture = device.createTexture.bind(device);
  device.createBuffer = (desc) => track(createBuffer(desc), desc.size);
  device.createTexture = (desc) => track(createTexture(desc), textureBytes(desc));
  return counter;
}

export const toMiB = (bytes) => bytes / MIB;
