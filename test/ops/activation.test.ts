import { describe, it } from 'vitest';
import { expectMatchesOrt } from '../harness/single-node.js';
import { randomFloats } from '../../fixtures/onnx-builder.js';

const x = { dtype: 'float32' as const, shape: [2, 3, 5, 7], data: randomFloats(210, 1, -30, 30) };

describe('activation ops match onnxruntime', () => {
  for (const [opType, attrs] of [
    ['Relu', {}], ['LeakyRelu', { alpha: 0.2 }], ['Elu', { alpha: 0.7 }], ['Selu', {}], ['Sigmoid', {}],
    ['HardSigmoid', { alpha: 0.3, beta: 0.4 }], ['HardSwish', {}], ['Tanh', {}], ['Softplus', {}], ['Softsign', {}],
  ] as const) {
    it(opType, () => expectMatchesOrt({ opType, attrs, inputs: [x] }));
  }
  it('Clip with constant min/max inputs (opset 13)', () =>
    expectMatchesOrt({
      opType: 'Clip', opset: 13,
      inputs: [x, { dtype: 'float32', shape: [], data: [-2], constant: true }, { dtype: 'float32', shape: [], data: [6], constant: true }],
    }));
  it('Clip with only max (opset 13)', () =>
    expectMatchesOrt({
      opType: 'Clip', opset: 13,
      inputs: [x, { dtype: 'float32', shape: [], data: [], omitted: true }, { dtype: 'float32', shape: [], data: [6], constant: true }],
    }));
  it('Clip with attributes (opset 6)', () => expectMatchesOrt({ opType: 'Clip', opset: 6, attrs: { min: { float: -1 }, max: { float: 1 } }, inputs: [x] }));
});
