/**
 * fold-channel-affine: per-channel Mul/Add (Caffe's Scale layer) and BatchNormalization fold into
 * the Conv before them, and chains of them merge into one BatchNormalization; the folded bundles
 * match onnxruntime.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, randomFloats, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { importOnnx } from '../../compiler/frontend/onnx.js';
import { runPipeline } from '../../compiler/passes/pipeline.js';
import { DEFAULT_LIMITS } from '../../compiler/target/limits.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { compareWithOrt } from '../harness/reference.js';
import { tempDir } from '../harness/paths.js';

const f32 = 'float32' as const;
const C = 6;
const param = (name: string, shape: number[], seed: number, lo = -1, hi = 1) => ({ name, dtype: f32, shape, data: randomFloats(shape.reduce((a, b) => a * b, 1), seed, lo, hi) });

/** Conv -> Mul -> Add -> Relu, then BatchNormalization -> Mul -> Add -> Relu -> Conv (DenseNet's Caffe export) */
function caffeBlock(scaleShape: number[]): ModelSpec {
  return {
    opset: 13,
    inputs: [{ name: 'x', dtype: f32, shape: [1, 3, 8, 8] }],
    outputs: [{ name: 'y', dtype: f32 }],
    initializers: [
      param('w1', [C, 3, 3, 3], 1), param('b1', [C], 2), param('s1', scaleShape, 3), param('t1', scaleShape, 4),
      param('bn_scale', [C], 5), param('bn_bias', [C], 6), param('bn_mean', [C], 7), param('bn_var', [C], 8, 0.5, 2),
      param('s2', scaleShape, 9), param('t2', scaleShape, 10), param('w2', [4, C, 3, 3], 11),
    ],
    nodes: [
      { opType: 'Conv', inputs: ['x', 'w1', 'b1'], outputs: ['c1'], attrs: { pads: [1, 1, 1, 1] } },
      { opType: 'Mul', inputs: ['c1', 's1'], outputs: ['m1'] },
      { opType: 'Add', inputs: ['t1', 'm1'], outputs: ['a1'] },
      { opType: 'Relu', inputs: ['a1'], outputs: ['r1'] },
      { opType: 'BatchNormalization', inputs: ['r1', 'bn_scale', 'bn_bias', 'bn_mean', 'bn_var'], outputs: ['n2'], attrs: { epsilon: 1e-3 } },
      { opType: 'Mul', inputs: ['n2', 's2'], outputs: ['m2'] },
      { opType: 'Add', inputs: ['m2', 't2'], outputs: ['a2'] },
      { opType: 'Relu', inputs: ['a2'], outputs: ['r2'] },
      { opType: 'Conv', inputs: ['r2', 'w2'], outputs: ['y'], attrs: { pads: [1, 1, 1, 1] } },
    ],
  };
}

const opTypes = (spec: ModelSpec) => runPipeline(importOnnx(buildModel(spec)), { limits: DEFAULT_LIMITS }).state.graph.nodes
  .map((n) => `${n.opType}${n.fusedActivation ? `+${n.fusedActivation.opType}` : ''}`);

describe('fold-channel-affine', () => {
  for (const shape of [[C, 1, 1], [1, C, 1, 1]]) {
    it(`folds Scale into the Conv and merges BatchNormalization + Scale (scale shape [${shape}]), matching onnxruntime`, async () => {
      const spec = caffeBlock(shape);
      expect(opTypes(spec)).toEqual(['Conv+Relu', 'BatchNormalization+Relu', 'Conv']);
      const tmp = tempDir('affine');
      const path = join(tmp.dir, 'model.onnx');
      writeFileSync(path, buildModel(spec));
      const bundle = await compileAndOpen(path, {});
      try {
        expect((await compareWithOrt(path, bundle)).violation).toBeLessThanOrEqual(1);
      } finally {
        bundle.close();
        tmp.cleanup();
      }
    }, 300_000);
  }
  it('leaves a Mul whose constant varies along a spatial axis', () => {
    const spec = caffeBlock([C, 1, 1]);
    spec.initializers![2] = param('s1', [C, 1, 8], 3);
    expect(opTypes(spec)).toContain('Mul');
  });
});
