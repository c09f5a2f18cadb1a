/** Checks a bundle against an ONNX test data set folder (the conformance and op-fixture layout). */
import { join } from 'node:path';
import { expect } from 'vitest';
import { readTensorFile } from '../../compiler/frontend/onnx.js';
import { typedArrayFor } from '../../compiler/cli/inputs.js';
import type { CompiledBundle } from './compile-run.js';
import { maxViolation } from './single-node.js';

/**
 * Runs a compiled single-model bundle on an ONNX test data set folder (input_<i>.pb) and checks
 * each output_<i>.pb: the shape, then the values within rtol = atol = 1e-3. `label` names an
 * output in the value assertion's message.
 */
export async function expectDataSetMatches(bundle: CompiledBundle, dir: string, label: (index: number, name: string) => string): Promise<void> {
  const model = bundle.manifest.models[0]!;
  const inputs = Object.fromEntries(model.inputs.map((sig, i) => [sig.name, typedArrayFor(sig.dtype, readTensorFile(join(dir, `input_${i}.pb`)).data)]));
  const outputs = await bundle.run(inputs);
  model.outputs.forEach((sig, i) => {
    const expected = readTensorFile(join(dir, `output_${i}.pb`));
    expect(sig.shape, `output ${i} shape`).toEqual(expected.shape);
    const actual = Array.from(outputs[sig.name]! as ArrayLike<number | bigint>, Number);
    expect(maxViolation(actual, Array.from(expected.data), 1e-3, 1e-3), label(i, sig.name)).toBeLessThanOrEqual(1);
  });
}
