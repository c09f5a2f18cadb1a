/**
 * `--input-value` freezes an input to a constant: it leaves the bundle's signature and what
 * depends on it folds, including output shapes that depend on its value (Range's limit).
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { parseInputValues } from '../../compiler/cli/compile-command.js';
import { writeNpy } from '../../compiler/cli/npy.js';
import { compileToContents } from '../../compiler/compile.js';
import { FlashmemError } from '../../compiler/errors.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { runOrt } from '../harness/ort.js';
import { maxViolation } from '../harness/single-node.js';
import { tempDir } from '../harness/paths.js';

/** y = x * float(sr) / 16000 and r = Range(0, sr / 4000, 1): Silero's `sr` pattern, with an output whose shape follows the value */
const SR_MODEL: ModelSpec = {
  opset: 17,
  inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }, { name: 'sr', dtype: 'int64', shape: [] }],
  outputs: [{ name: 'y', dtype: 'float32', shape: [2, 3] }, { name: 'r', dtype: 'int64', shape: [null] }],
  initializers: [
    { name: 'k', dtype: 'float32', shape: [], data: [16000] },
    { name: 'q', dtype: 'int64', shape: [], data: [4000] },
    { name: 'zero', dtype: 'int64', shape: [], data: [0] },
    { name: 'one', dtype: 'int64', shape: [], data: [1] },
  ],
  nodes: [
    { opType: 'Cast', inputs: ['sr'], outputs: ['srf'], attrs: { to: 1 } },
    { opType: 'Div', inputs: ['srf', 'k'], outputs: ['s'] },
    { opType: 'Mul', inputs: ['x', 's'], outputs: ['y'] },
    { opType: 'Div', inputs: ['sr', 'q'], outputs: ['n'] },
    { opType: 'Range', inputs: ['zero', 'n', 'one'], outputs: ['r'] },
  ],
};

function writeModel(dir: string): string {
  const path = join(dir, 'model.onnx');
  writeFileSync(path, buildModel(SR_MODEL));
  return path;
}

describe('--input-value', () => {
  it('a frozen input leaves the signature, folds, and the bundle matches onnxruntime fed that value', async () => {
    const tmp = tempDir('input-value');
    const path = writeModel(tmp.dir);
    const bundle = await compileAndOpen(path, { inputValues: parseInputValues(['sr=16000']) });
    try {
      const model = bundle.manifest.models[0]!;
      expect(model.inputs.map((i) => i.name)).toEqual(['x']);
      expect(model.outputs.find((o) => o.name === 'r')!.shape).toEqual([4]);
      const x = Float32Array.from([1, -2, 3, 0.5, 0.25, -4]);
      const outputs = await bundle.run({ x });
      const reference = await runOrt(buildModel(SR_MODEL), { x: { dtype: 'float32', shape: [2, 3], data: x }, sr: { dtype: 'int64', shape: [], data: [16000] } });
      expect(maxViolation(Array.from(outputs.y as Float32Array), Array.from(reference.y!.data as Float32Array))).toBeLessThanOrEqual(1);
      expect(Array.from(outputs.r as ArrayLike<number | bigint>, Number)).toEqual(Array.from(reference.r!.data as BigInt64Array, Number));
    } finally {
      bundle.close();
      tmp.cleanup();
    }
  });

  it('reads a .npy file, and refuses unknown inputs and values of the wrong count', () => {
    const tmp = tempDir('input-value-npy');
    try {
      const path = writeModel(tmp.dir);
      const npy = join(tmp.dir, 'sr.npy');
      writeFileSync(npy, writeNpy({ dtype: 'int64', shape: [], data: BigInt64Array.from([8000n]) }));
      const { contents } = compileToContents(path, { inputValues: parseInputValues([`sr=${npy}`]) });
      expect(contents.models[0]!.outputs.find((o) => o.name === 'r')!.shape).toEqual([2]);
      const code = (f: () => unknown) => {
        try {
          f();
        } catch (e) {
          return e instanceof FlashmemError ? e.code : 'other';
        }
        return 'none';
      };
      expect(code(() => compileToContents(path, { inputValues: parseInputValues(['rate=16000']) }))).toBe('FM_BAD_ARGUMENT');
      expect(code(() => compileToContents(path, { inputValues: parseInputValues(['sr=1,2']) }))).toBe('FM_BAD_ARGUMENT');
      expect(code(() => parseInputValues(['sr=sixteen']))).toBe('FM_BAD_ARGUMENT');
    } finally {
      tmp.cleanup();
    }
  });
});
