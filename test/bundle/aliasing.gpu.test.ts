/**
 * Kernels whose operands share storage (Mul(x, x), MatMul(x, x), an operand and a view of it)
 * compile into bundles the runtime accepts and that match onnxruntime; and a bundle the runtime
 * would refuse is never written (FM_BUNDLE_SELF_CHECK).
 */
import { existsSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { compileToContents } from '../../compiler/compile.js';
import { writeBundle } from '../../compiler/bundle/write.js';
import { generateRuntime } from '../../compiler/bundle/runtime-gen.js';
import { FlashmemError } from '../../compiler/errors.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { compareWithOrt } from '../harness/reference.js';
import { tempDir } from '../harness/paths.js';

const f32 = (name: string, shape: number[]) => ({ name, dtype: 'float32' as const, shape });

const MODELS: Record<string, ModelSpec> = {
  'Mul(x, x)': { inputs: [f32('x', [2, 8])], outputs: [f32('y', [2, 8])], nodes: [{ opType: 'Mul', inputs: ['x', 'x'], outputs: ['y'] }] },
  'Sub(x, x) then Add': {
    inputs: [f32('x', [3, 5])], outputs: [f32('y', [3, 5])],
    nodes: [{ opType: 'Sub', inputs: ['x', 'x'], outputs: ['z'] }, { opType: 'Add', inputs: ['z', 'x'], outputs: ['y'] }],
  },
  'MatMul(x, x)': { inputs: [f32('x', [4, 4])], outputs: [f32('y', [4, 4])], nodes: [{ opType: 'MatMul', inputs: ['x', 'x'], outputs: ['y'] }] },
  'Add(x, a view of x)': {
    inputs: [f32('x', [1, 16])], outputs: [f32('y', [1, 16])],
    initializers: [{ name: 'shape', dtype: 'int64', shape: [1], data: [16] }],
    nodes: [
      { opType: 'Reshape', inputs: ['x', 'shape'], outputs: ['v'] },
      { opType: 'Add', inputs: ['x', 'v'], outputs: ['y'] },
    ],
  },
  'Concat(x, x)': {
    inputs: [f32('x', [2, 3])], outputs: [f32('y', [4, 3])],
    nodes: [{ opType: 'Concat', inputs: ['x', 'x'], outputs: ['y'], attrs: { axis: 0 } }],
  },
};

describe('operands sharing storage', () => {
  for (const [name, spec] of Object.entries(MODELS)) {
    it(`${name} compiles, passes the runtime's checks and matches onnxruntime`, async () => {
      const tmp = tempDir('aliasing');
      const path = join(tmp.dir, 'model.onnx');
      writeFileSync(path, buildModel({ opset: 17, ...spec }));
      const bundle = await compileAndOpen(path);
      try {
        expect((await compareWithOrt(path, bundle)).violation).toBeLessThanOrEqual(1);
      } finally {
        bundle.close();
        tmp.cleanup();
      }
    });
  }

  it('a bundle the runtime refuses is not written: FM_BUNDLE_SELF_CHECK', async () => {
    const tmp = tempDir('self-check');
    const path = join(tmp.dir, 'model.onnx');
    writeFileSync(path, buildModel({ opset: 17, ...MODELS['Sub(x, x) then Add']! }));
    const { contents } = compileToContents(path);
    // what the compiler emitted before operands were bound once: one range bound twice
    const dispatch = contents.schedule.models[0]!.run.find((s) => s.op === 'dispatch')!;
    if (dispatch.op !== 'dispatch') throw new Error('no dispatch');
    dispatch.bindings = [dispatch.bindings[0]!, ...dispatch.bindings];
    const out = join(tmp.dir, 'bundle');
    const error = await writeBundle(out, contents, { runtime: generateRuntime(), selfCheck: true }).catch((e: unknown) => e);
    try {
      expect(error).toBeInstanceOf(FlashmemError);
      expect((error as FlashmemError).code).toBe('FM_BUNDLE_SELF_CHECK');
      expect((error as Error).message).toMatch(/overlap/);
      expect(existsSync(out)).toBe(false);
    } finally {
      tmp.cleanup();
    }
  });
});
