/** Compares a compiled bundle with onnxruntime-node on the same inputs. */
import { readFileSync } from 'node:fs';
import { runOrt } from './ort.js';
import type { CompiledBundle } from './compile-run.js';
import { randomInputs } from '../../compiler/cli/inputs.js';
import { maxViolation } from './single-node.js';

export interface Agreement {
  /** worst |a-e| / (atol + rtol |e|) over all outputs; <= 1 passes */
  violation: number;
  maxAbsError: number;
  maxRelError: number;
  runMs: number;
}

export async function compareWithOrt(modelPath: string, bundle: CompiledBundle, seed = 1, rtol = 1e-3, atol = 1e-3): Promise<Agreement> {
  const model = bundle.manifest.models[0]!;
  const inputs = randomInputs(model, seed);
  const start = performance.now();
  const outputs = await bundle.run(inputs);
  const runMs = performance.now() - start;
  const feeds = Object.fromEntries(model.inputs.map((sig) => [sig.name, { dtype: sig.dtype, shape: sig.shape, data: Array.from(inputs[sig.name]! as ArrayLike<number | bigint>, Number) }]));
  const ref = await runOrt(readFileSync(modelPath), feeds);
  let violation = 0, maxAbsError = 0, maxRelError = 0;
  for (const sig of model.outputs) {
    const actual = Array.from(outputs[sig.name]! as ArrayLike<number | bigint>, Number);
    const expected = Array.from(ref[sig.name]!.data as ArrayLike<number | bigint>, Number);
    violation = Math.max(violation, maxViolation(actual, expected, rtol, atol));
    for (let i = 0; i < expected.length; i++) {
      const abs = Math.abs(actual[i]! - expected[i]!);
      maxAbsError = Math.max(maxAbsError, abs);
      if (expected[i] !== 0) maxRelError = Math.max(maxRelError, abs / Math.abs(expected[i]!));
    }
  }
  return { violation, maxAbsError, maxRelError, runMs };
}
