/** LayerNormalization (opset 17) and Trilu (opset 14) against onnxruntime, one node at a time. */
import { describe, expect, it } from 'vitest';
import { expectFlashmemError, expectMatchesOrt, runNodeOnGpu, type HarnessInput } from '../harness/single-node.js';
import { randomFloats } from '../../fixtures/onnx-builder.js';
import { findOp } from '../../compiler/ops/index.js';
import type { Node } from '../../compiler/ir/types.js';

function floats(shape: number[], seed: number, constant = false, lo = -3, hi = 3): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed, lo, hi), constant };
}

describe('LayerNormalization matches onnxruntime', () => {
  it('last axis, constant scale and bias', () =>
    expectMatchesOrt({ opType: 'LayerNormalization', opset: 17, inputs: [floats([2, 5, 48], 1), floats([48], 2, true), floats([48], 3, true)] }));
  it('axis 1 over two dims, runtime scale, no bias, epsilon', () =>
    expectMatchesOrt({ opType: 'LayerNormalization', opset: 17, attrs: { axis: 1, epsilon: 1e-3 }, inputs: [floats([3, 4, 20], 4), floats([4, 20], 5)] }));
  it('scale broadcast over the normalised dims', () =>
    expectMatchesOrt({ opType: 'LayerNormalization', opset: 18, attrs: { axis: -2 }, inputs: [floats([2, 6, 8], 6), floats([1, 8], 7, true), floats([8], 8, true)] }));
  it('long rows (more than one element per invocation)', () =>
    expectMatchesOrt({ opType: 'LayerNormalization', opset: 17, inputs: [floats([3, 1500], 9, false, 10, 12), floats([1500], 10, true), floats([1500], 11, true)] }));
  it('Mean and InvStdDev outputs', () =>
    expectMatchesOrt({ opType: 'LayerNormalization', opset: 17, inputs: [floats([4, 33], 12), floats([33], 13, true)], outputs: ['float32', 'float32', 'float32'] }));
  it('does not exist before opset 17', () => {
    const node: Node = { name: 'ln', opType: 'LayerNormalization', domain: '', inputs: ['x', 's'], outputs: ['y'], attrs: {} };
    const t = { dtype: 'float32' as const, shape: [2, 4] };
    expectFlashmemError(() => findOp('LayerNormalization')!.inferTypes({ node, opset: 16, inputs: [t, { dtype: 'float32', shape: [4] }], consts: [] }), 'FM_UNSUPPORTED_OP', /opset 17/);
  });
  it('rejects a scale that does not fit the normalised shape', async () => {
    await expect(runNodeOnGpu({ opType: 'LayerNormalization', opset: 17, inputs: [floats([2, 8], 1), floats([3], 2, true)] })).rejects.toThrow(/FM_SHAPE/);
  });
});

describe('Trilu matches onnxruntime', () => {
  const cases: [string, number[], number, number | undefined][] = [
    ['upper, square', [5, 5], 1, undefined],
    ['lower, square', [5, 5], 0, undefined],
    ['upper, k = 2, wide', [3, 4, 7], 1, 2],
    ['lower, k = -1, tall', [2, 7, 3], 0, -1],
    ['lower, k beyond the matrix', [4, 6], 0, 9],
    ['upper, k far negative', [4, 6], 1, -8],
  ];
  cases.forEach(([name, shape, upper, k], i) => {
    it(name, () => expectMatchesOrt({
      opType: 'Trilu', opset: 14, attrs: { upper },
      inputs: [floats(shape, 20 + i), ...(k === undefined ? [] : [{ dtype: 'int64' as const, shape: [], data: [k], constant: true }])],
    }));
  });
  it('int64 input', () => expectMatchesOrt({
    opType: 'Trilu', opset: 14, attrs: { upper: 0 }, outputs: ['int64'],
    inputs: [{ dtype: 'int64', shape: [3, 3], data: [1, 2, 3, 4, 5, 6, 7, 8, 9] }],
  }));
  it('k must be a compile-time constant', async () => {
    await expect(runNodeOnGpu({ opType: 'Trilu', opset: 14, inputs: [floats([3, 3], 1), { dtype: 'int64', shape: [], data: [1] }] })).rejects.toThrow(/FM_SHAPE.*constant/);
  });
});
