/**
 * `If` whose condition folds to a constant is inlined: the selected branch's nodes replace it,
 * its own names prefixed, its outer-scope references resolved (a nested If inside a branch reads
 * a value the enclosing branch defines). Checked against onnxruntime for both branches. A
 * condition computed at run time runs both branches and selects on the GPU where they agree in
 * shape; otherwise it is refused naming the node.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { compileToContents } from '../../compiler/compile.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { runOrt } from '../harness/ort.js';
import { maxViolation, expectFlashmemError } from '../harness/single-node.js';
import { tempDir } from '../harness/paths.js';
import type { CompileOptions } from '../../compiler/compile.js';

const f32 = (name: string, shape: number[]) => ({ name, dtype: 'float32' as const, shape });
const scalarBool = (name: string, v: boolean) => ({ name, dtype: 'bool' as const, shape: [], data: [v ? 1 : 0] });

/** Silero VAD's shape: the sample rate selects a branch; the then branch nests another If over a value it defines */
const SR_IF: ModelSpec = {
  opset: 17,
  inputs: [f32('x', [2, 3]), { name: 'sr', dtype: 'int64', shape: [] }],
  outputs: [f32('y', [2, 3])],
  initializers: [{ name: 'rate', dtype: 'int64', shape: [], data: [16000] }, { name: 'one', dtype: 'float32', shape: [], data: [1] }],
  nodes: [
    { opType: 'Equal', inputs: ['sr', 'rate'], outputs: ['is16k'] },
    {
      opType: 'If', inputs: ['is16k'], outputs: ['y'], name: 'by_rate',
      attrs: {
        then_branch: {
          graph: {
            outputs: [f32('t_out', [2, 3])],
            initializers: [{ name: 'w', dtype: 'float32', shape: [3], data: [0.5, -2, 3] }, scalarBool('flag', false)],
            nodes: [
              { opType: 'Mul', inputs: ['x', 'w'], outputs: ['t'] },
              {
                opType: 'If', inputs: ['flag'], outputs: ['t_out'], name: 'inner',
                attrs: {
                  then_branch: { graph: { outputs: [f32('r', [2, 3])], nodes: [{ opType: 'Relu', inputs: ['t'], outputs: ['r'] }] } },
                  else_branch: { graph: { outputs: [f32('n', [2, 3])], nodes: [{ opType: 'Neg', inputs: ['t'], outputs: ['n'] }] } },
                },
              },
            ],
          },
        },
        // the same local name as the then branch's: renaming keeps them apart
        else_branch: { graph: { outputs: [f32('t', [2, 3])], nodes: [{ opType: 'Add', inputs: ['x', 'one'], outputs: ['t'] }] } },
      },
    },
  ],
};

async function expectMatchesOrt(spec: ModelSpec, options: CompileOptions, feeds: Record<string, { dtype: string; shape: number[]; data: ArrayLike<number> }>): Promise<void> {
  const tmp = tempDir('inline-if');
  const path = join(tmp.dir, 'model.onnx');
  writeFileSync(path, buildModel(spec));
  const bundle = await compileAndOpen(path, options);
  try {
    const inputs = Object.fromEntries(bundle.manifest.models[0]!.inputs.map((i) => [i.name, Float32Array.from(feeds[i.name]!.data)]));
    const outputs = await bundle.run(inputs);
    const reference = await runOrt(buildModel(spec), feeds);
    expect(maxViolation(Array.from(outputs.y as Float32Array), Array.from(reference.y!.data as Float32Array))).toBeLessThanOrEqual(1);
  } finally {
    bundle.close();
    tmp.cleanup();
  }
}

const x = { dtype: 'float32', shape: [2, 3], data: [1, -2, 3, -0.5, 0.25, 4] };

describe('If with a constant condition', () => {
  for (const sr of [16000, 8000]) {
    it(`sr frozen to ${sr} inlines its branch (nested If included) and matches onnxruntime`, async () => {
      await expectMatchesOrt(SR_IF, { inputValues: { sr: { values: [sr] } } }, { x, sr: { dtype: 'int64', shape: [], data: [sr] } });
    });
  }

  it('a condition from a Constant node folds without freezing anything', async () => {
    const spec: ModelSpec = {
      ...SR_IF,
      inputs: [f32('x', [2, 3])],
      nodes: [{ opType: 'Constant', inputs: [], outputs: ['is16k'], attrs: { value: { tensor: { dtype: 'bool', shape: [], data: [1] } } } }, SR_IF.nodes[1]!],
    };
    await expectMatchesOrt(spec, {}, { x });
  });

  it('branches of different shapes under a run-time condition are FM_UNSUPPORTED_OP naming the node and --input-value', () => {
    const tmp = tempDir('inline-if-runtime');
    try {
      const path = join(tmp.dir, 'model.onnx');
      const ifNode = SR_IF.nodes[1]!;
      const reshaped: ModelSpec = {
        ...SR_IF,
        outputs: [{ name: 'y', dtype: 'float32', shape: null as never }],
        initializers: [...SR_IF.initializers!, { name: 'flat', dtype: 'int64', shape: [1], data: [6] }],
        nodes: [SR_IF.nodes[0]!, {
          ...ifNode,
          attrs: { ...ifNode.attrs, else_branch: { graph: { outputs: [f32('t', [6])], nodes: [{ opType: 'Reshape', inputs: ['x', 'flat'], outputs: ['t'] }] } } },
        }],
      };
      writeFileSync(path, buildModel(reshaped));
      expectFlashmemError(() => compileToContents(path), 'FM_UNSUPPORTED_OP', /"by_rate" \(If\).*run time.*\[2,3\].*\[6\].*--input-value/);
    } finally {
      tmp.cleanup();
    }
  });
});

describe('If with a condition computed at run time', () => {
  it('runs both branches and selects on the GPU: one bundle matches onnxruntime for either value of sr', async () => {
    const tmp = tempDir('select-if');
    const path = join(tmp.dir, 'model.onnx');
    writeFileSync(path, buildModel(SR_IF));
    const bundle = await compileAndOpen(path);
    try {
      expect(bundle.manifest.models[0]!.inputs.map((i) => i.name)).toEqual(['x', 'sr']);
      for (const sr of [16000, 8000]) {
        const outputs = await bundle.run({ x: Float32Array.from(x.data), sr: BigInt64Array.from([BigInt(sr)]) });
        const reference = await runOrt(buildModel(SR_IF), { x, sr: { dtype: 'int64', shape: [], data: [sr] } });
        expect(maxViolation(Array.from(outputs.y as Float32Array), Array.from(reference.y!.data as Float32Array)), `sr = ${sr}`).toBeLessThanOrEqual(1);
      }
    } finally {
      bundle.close();
      tmp.cleanup();
    }
  });
});
