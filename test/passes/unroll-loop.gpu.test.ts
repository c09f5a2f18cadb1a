/**
 * `Loop` with a compile-time trip count and conditions that fold is unrolled (loop-carried values
 * threaded through the iterations, scan outputs stacked) and matches onnxruntime; a trip count
 * computed at run time is refused naming the node.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, type ModelSpec, type NodeSpec } from '../../fixtures/onnx-builder.js';
import { compileToContents } from '../../compiler/compile.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { runOrt } from '../harness/ort.js';
import { maxViolation, expectFlashmemError } from '../harness/single-node.js';
import { tempDir } from '../harness/paths.js';

const f32 = (name: string, shape: number[]) => ({ name, dtype: 'float32' as const, shape });

/** acc <- acc * 0.5 + float(i); scan s_i = 2 * acc; the condition is `condBody` of (i, cond_in) */
function loopModel(trips: number, condBody: NodeSpec, tripsFromInput = false): ModelSpec {
  return {
    opset: 17,
    inputs: [f32('x', [3]), ...(tripsFromInput ? [{ name: 'M', dtype: 'int64' as const, shape: [] }] : [])],
    outputs: [f32('acc', [3]), { name: 'scan', dtype: 'float32', shape: [null, 3] }],
    initializers: [
      ...(tripsFromInput ? [] : [{ name: 'M', dtype: 'int64' as const, shape: [], data: [trips] }]),
      { name: 'go', dtype: 'bool', shape: [], data: [1] },
      { name: 'half', dtype: 'float32', shape: [], data: [0.5] },
      { name: 'two', dtype: 'float32', shape: [], data: [2] },
      { name: 'limit', dtype: 'int64', shape: [], data: [2] },
    ],
    nodes: [{
      opType: 'Loop', inputs: ['M', 'go', 'x'], outputs: ['acc', 'scan'], name: 'steps',
      attrs: {
        body: {
          graph: {
            inputs: [{ name: 'i', dtype: 'int64', shape: [] }, { name: 'c', dtype: 'bool', shape: [] }, f32('a', [3])],
            outputs: [{ name: 'c_out', dtype: 'bool', shape: [] }, f32('a_out', [3]), f32('s', [3])],
            nodes: [
              condBody,
              { opType: 'Cast', inputs: ['i'], outputs: ['fi'], attrs: { to: 1 } },
              { opType: 'Mul', inputs: ['a', 'half'], outputs: ['ah'] },
              { opType: 'Add', inputs: ['ah', 'fi'], outputs: ['a_out'] },
              { opType: 'Mul', inputs: ['a_out', 'two'], outputs: ['s'] },
            ],
          },
        },
      },
    }],
  };
}

const x = { dtype: 'float32', shape: [3], data: [1, -2, 4] };

async function expectMatchesOrt(spec: ModelSpec): Promise<void> {
  const tmp = tempDir('unroll-loop');
  const path = join(tmp.dir, 'model.onnx');
  writeFileSync(path, buildModel(spec));
  const bundle = await compileAndOpen(path);
  try {
    const outputs = await bundle.run({ x: Float32Array.from(x.data) });
    const reference = await runOrt(buildModel(spec), { x });
    for (const name of ['acc', 'scan']) {
      expect(bundle.manifest.models[0]!.outputs.find((o) => o.name === name)!.shape).toEqual(reference[name]!.dims);
      expect(maxViolation(Array.from(outputs[name] as Float32Array), Array.from(reference[name]!.data as Float32Array)), name).toBeLessThanOrEqual(1);
    }
  } finally {
    bundle.close();
    tmp.cleanup();
  }
}

describe('Loop with compile-time trip counts', () => {
  it('four iterations of a for loop (the condition passed through) match onnxruntime', async () => {
    await expectMatchesOrt(loopModel(4, { opType: 'Identity', inputs: ['c'], outputs: ['c_out'] }));
  });

  it('a condition computed from the iteration number ends the loop early (i < 2: three iterations of ten)', async () => {
    await expectMatchesOrt(loopModel(10, { opType: 'Less', inputs: ['i', 'limit'], outputs: ['c_out'] }));
  });

  it('a trip count computed at run time is FM_UNSUPPORTED_OP naming the node', () => {
    const tmp = tempDir('unroll-loop-runtime');
    try {
      const path = join(tmp.dir, 'model.onnx');
      writeFileSync(path, buildModel(loopModel(0, { opType: 'Identity', inputs: ['c'], outputs: ['c_out'] }, true)));
      expectFlashmemError(() => compileToContents(path), 'FM_UNSUPPORTED_OP', /"steps" \(Loop\).*trip count is computed at run time/);
    } finally {
      tmp.cleanup();
    }
  });
});
