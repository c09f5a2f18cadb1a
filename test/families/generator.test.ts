/**
 * The model-family generator: real-architecture parameter counts, weights shared by name across
 * a decoder's graphs, and external data that reads back to the same values as inline weights.
 * No GPU: graphs are built and imported only.
 */
import { statSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { serializeInline, weightBytes } from '../../fixtures/families/builder.js';
import { CONFIGS } from '../../fixtures/families/configs.js';
import { familyGraphs, generate, resolveConfig } from '../../fixtures/families/generate.js';
import { importOnnx, importOnnxFile } from '../../compiler/frontend/onnx.js';
import { tempDir } from '../harness/paths.js';

const tmp = tempDir('generator');
afterAll(() => tmp.cleanup());

describe('model-family generator', () => {
  it('GPT-Neo 125M and 1.3B configs have the published parameter counts', () => {
    // weights are generated lazily: building the graphs allocates none of them
    expect(weightBytes(familyGraphs(CONFIGS['gpt-neo-125m']!, ['full'])) / 4).toBe(125_198_592);
    expect(weightBytes(familyGraphs(CONFIGS['gpt-neo-1.3b']!, ['decode'])) / 4).toBe(1_315_575_808);
  });

  it('full, prefill and decode graphs use the same weights under the same names', () => {
    const [full, prefill, decode] = familyGraphs(CONFIGS['gpt-neo-tiny']!);
    expect(new Set(prefill!.weights)).toEqual(new Set(full!.weights));
    expect(new Set(decode!.weights)).toEqual(new Set(full!.weights));
    const values = (g: typeof full) => importOnnx(serializeInline(g!)).values;
    const [a, b] = [values(full), values(decode)];
    for (const name of full!.weights) expect(Array.from(b.get(name)!.data!.data), name).toEqual(Array.from(a.get(name)!.data!.data));
  });

  it('writes one external-data file that every graph references, with the inline values', () => {
    const { files, weightBytes: bytes } = generate('gpt2-tiny', tmp.dir, ['seed=3'], { external: true });
    expect(files.map((f) => f.split('/').pop())).toEqual(['full.onnx', 'prefill.onnx', 'decode.onnx']);
    const data = statSync(join(tmp.dir, 'gpt2-tiny', 'gpt2-tiny.weights.bin')).size;
    expect(data).toBeGreaterThanOrEqual(bytes);
    expect(data).toBeLessThan(bytes + 64 * 64);
    const inline = importOnnx(serializeInline(familyGraphs(resolveConfig('gpt2-tiny', ['seed=3']))[2]!));
    const external = importOnnxFile(files[2]!, {});
    let compared = 0;
    for (const [name, v] of inline.values) {
      if (!v.data || !name.startsWith('transformer.')) continue;
      expect(Array.from(external.values.get(name)!.data!.data), name).toEqual(Array.from(v.data.data));
      compared++;
    }
    expect(compared).toBeGreaterThan(20);
  });

  it('rejects unknown configs and overrides', () => {
    expect(() => resolveConfig('gpt-neo-7b')).toThrow(/unknown config/);
    expect(() => resolveConfig('gpt-neo-tiny', ['depth=3'])).toThrow(/bad override/);
    expect(resolveConfig('gpt-neo-tiny', ['layers=3'])).toMatchObject({ layers: 3, family: 'decoder' });
  });
});
