/** The model of the pass pipeline tests (passes.test.ts, passes.gpu.test.ts). */
import { randomFloats, type ModelSpec } from '../../fixtures/onnx-builder.js';

const f32 = 'float32' as const;

/** conv -> batchnorm -> relu, plus a dead branch and an unused initializer */
export function convBnRelu(): ModelSpec {
  return {
    opset: 13,
    inputs: [{ name: 'x', dtype: f32, shape: [1, 3, 9, 9] }],
    outputs: [{ name: 'y', dtype: f32 }],
    initializers: [
      { name: 'w', dtype: f32, shape: [4, 3, 3, 3], data: randomFloats(108, 1) },
      { name: 'b', dtype: f32, shape: [4], data: randomFloats(4, 2) },
      { name: 'scale', dtype: f32, shape: [4], data: randomFloats(4, 3, 0.5, 1.5) },
      { name: 'bias', dtype: f32, shape: [4], data: randomFloats(4, 4) },
      { name: 'mean', dtype: f32, shape: [4], data: randomFloats(4, 5) },
      { name: 'var', dtype: f32, shape: [4], data: randomFloats(4, 6, 0.5, 2) },
      { name: 'unused', dtype: f32, shape: [1000], data: randomFloats(1000, 7) },
    ],
    nodes: [
      { opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1] } },
      { opType: 'BatchNormalization', inputs: ['c', 'scale', 'bias', 'mean', 'var'], outputs: ['n'], attrs: { epsilon: 1e-3 } },
      { opType: 'Relu', inputs: ['n'], outputs: ['y'] },
      { opType: 'Sigmoid', inputs: ['x'], outputs: ['dead'] },
    ],
  };
}
