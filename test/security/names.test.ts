/**
 * Names from a model never reach generated code unescaped: model, node, tensor, input and output
 * names full of quotes, backticks, newlines, comment terminators, template-literal openers,
 * unicode and WGSL keywords compile, keep their exact names in the manifest, and appear in no
 * shader and not in runtime.js (names live only in JSON, which is written with JSON.stringify).
 * No GPU: names.gpu.test.ts runs the bundle and calls it by these names.
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { compileOffThread } from '../harness/compile-run.js';
import { tempDir } from '../harness/paths.js';
import { HOSTILE, hostileModel } from './hostile-model.js';

describe('hostile names', () => {
  it('compile with exact names; no name reaches WGSL or runtime.js', async () => {
    const tmp = tempDir('names');
    try {
      const path = join(tmp.dir, 'model.onnx');
      const dir = join(tmp.dir, 'bundle');
      writeFileSync(path, buildModel(hostileModel()));
      await compileOffThread(path, dir, { modelName: HOSTILE[1] });
      const model = JSON.parse(readFileSync(join(dir, 'manifest.json'), 'utf8')).models[0];
      expect(model.name).toBe(HOSTILE[1]);
      expect(model.inputs.map((t: { name: string }) => t.name)).toEqual([HOSTILE[0]]);
      expect(model.outputs.map((t: { name: string }) => t.name)).toEqual([HOSTILE[3], HOSTILE[4]]);

      const generated = [
        ...readdirSync(join(dir, 'shaders')).map((f) => readFileSync(join(dir, 'shaders', f), 'utf8')),
        readFileSync(join(dir, 'runtime.js'), 'utf8'),
      ];
      for (const code of generated) {
        for (const name of HOSTILE.filter((n) => n.length > 3)) expect(code.includes(name), `${JSON.stringify(name)} in generated code`).toBe(false);
      }
      // JSON files stay valid JSON and round-trip the names exactly
      const schedule = JSON.parse(readFileSync(join(dir, 'schedule.json'), 'utf8'));
      expect(schedule.models[0].model).toBe(HOSTILE[1]);
    } finally {
      tmp.cleanup();
    }
  });
});
