/**
 * Small scalar operands computed at run time are read by the kernel from their buffer, not
 * refused: Clip's min and max (opset 11+ inputs), from graph inputs or from other nodes, and
 * Pad's constant_value.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { compareWithOrt } from '../harness/reference.js';
import { tempDir } from '../harness/paths.js';

const f32 = (name: string, shape: number[]) => ({ name, dtype: 'float32' as const, shape });

const MODELS: Record<string, ModelSpec> = {
  'Clip with min and max graph inputs': {
    inputs: [f32('x', [2, 7]), f32('lo', []), f32('hi', [])], outputs: [f32('y', [2, 7])],
    nodes: [{ opType: 'Clip', inputs: ['x', 'lo', 'hi'], outputs: ['y'] }],
  },
  'Clip with a computed min and no max': {
    inputs: [f32('x', [3, 4]), f32('s', [])], outputs: [f32('y', [3, 4])],
    nodes: [
      { opType: 'Neg', inputs: ['s'], outputs: ['lo'] },
      { opType: 'Clip', inputs: ['x', 'lo', ''], outputs: ['y'] },
    ],
  },
  'Clip with a constant min and a runtime max (the melspectrogram pattern)': {
    inputs: [f32('x', [1, 9]), f32('m', [1])], outputs: [f32('y', [1, 9])],
    initializers: [{ name: 'lo', dtype: 'float32', shape: [], data: [-0.25] }, { name: 'axes', dtype: 'int64', shape: [1], data: [0] }],
    nodes: [
      { opType: 'Squeeze', inputs: ['m', 'axes'], outputs: ['hi'] },
      { opType: 'Clip', inputs: ['x', 'lo', 'hi'], outputs: ['y'] },
    ],
  },
  'Pad with a constant_value graph input': {
    inputs: [f32('x', [2, 3]), f32('v', [])], outputs: [f32('y', [4, 6])],
    initializers: [{ name: 'pads', dtype: 'int64', shape: [4], data: [1, 2, 1, 1] }],
    nodes: [{ opType: 'Pad', inputs: ['x', 'pads', 'v'], outputs: ['y'], attrs: { mode: 'constant' } }],
  },
};

describe('runtime scalar operands', () => {
  for (const [name, spec] of Object.entries(MODELS)) {
    it(`${name} matches onnxruntime`, async () => {
      const tmp = tempDir('runtime-scalars');
      const path = join(tmp.dir, 'model.onnx');
      writeFileSync(path, buildModel({ opset: 17, ...spec }));
      const bundle = await compileAndOpen(path);
      try {
        for (const seed of [1, 2, 3]) expect((await compareWithOrt(path, bundle, seed)).violation).toBeLessThanOrEqual(1);
      } finally {
        bundle.close();
        tmp.cleanup();
      }
    });
  }
});
