/**
 * Names from a model never reach generated code unescaped: model, node, tensor, input and output
 * names full of quotes, backticks, newlines, comment terminators, template-literal openers,
 * unicode and WGSL keywords compile, run, keep their exact names in the API, and appear in no
 * shader and not in runtime.js (names live only in JSON, which is written with JSON.stringify).
 */
import { readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, randomFloats, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { compareWithOrt } from '../harness/reference.js';
import { tempDir } from '../harness/paths.js';

const HOSTILE = [
  'x"; alert(1); "',
  "y'`${process.exit(1)}`",
  'z */ fn main() { /*',
  'line1\nline2\r\n@compute',
  'fn',
  'var<storage>',
  '名前🙂',
  '\\u0000\u0001',
  '</script><script>',
];

const f32 = 'float32' as const;

function hostileModel(): ModelSpec {
  const [input, weight, hidden, output, second, nodeA, nodeB, nodeC] = HOSTILE;
  return {
    opset: 13,
    graphName: HOSTILE[2],
    inputs: [{ name: input!, dtype: f32, shape: [2, 8] }],
    outputs: [{ name: output!, dtype: f32 }, { name: second!, dtype: f32 }],
    initializers: [{ name: weight!, dtype: f32, shape: [8, 4], data: randomFloats(32, 5) }],
    nodes: [
      { name: nodeA, opType: 'MatMul', inputs: [input!, weight!], outputs: [hidden!] },
      { name: nodeB, opType: 'Relu', inputs: [hidden!], outputs: [output!] },
      { name: nodeC, opType: 'Sigmoid', inputs: [hidden!], outputs: [second!] },
    ],
  };
}

describe('hostile names', () => {
  it('compile and run with exact names; no name reaches WGSL or runtime.js', async () => {
    const tmp = tempDir('names');
    const path = join(tmp.dir, `${'model'}.onnx`);
    writeFileSync(path, buildModel(hostileModel()));
    const bundle = await compileAndOpen(path, { modelName: HOSTILE[1] });
    try {
      const model = bundle.manifest.models[0]!;
      expect(model.name).toBe(HOSTILE[1]);
      expect(model.inputs.map((t) => t.name)).toEqual([HOSTILE[0]]);
      expect(model.outputs.map((t) => t.name)).toEqual([HOSTILE[3], HOSTILE[4]]);
      expect((await compareWithOrt(path, bundle)).violation).toBeLessThanOrEqual(1);

      const generated = [
        ...readdirSync(join(bundle.dir, 'shaders')).map((f) => readFileSync(join(bundle.dir, 'shaders', f), 'utf8')),
        readFileSync(join(bundle.dir, 'runtime.js'), 'utf8'),
      ];
      for (const code of generated) {
        for (const name of HOSTILE.filter((n) => n.length > 3)) expect(code.includes(name), `${JSON.stringify(name)} in generated code`).toBe(false);
      }
      // JSON files stay valid JSON and round-trip the names exactly
      const schedule = JSON.parse(readFileSync(join(bundle.dir, 'schedule.json'), 'utf8'));
      expect(schedule.models[0].model).toBe(HOSTILE[1]);
    } finally {
      bundle.close();
      tmp.cleanup();
    }
  });
});
