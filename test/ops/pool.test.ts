import { describe, expect, it } from 'vitest';
import { expectMatchesOrt, runNodeOnGpu, type HarnessInput } from '../harness/single-node.js';
import { randomFloats, type AttrSpec } from '../../fixtures/onnx-builder.js';
import { findOp } from '../../compiler/ops/index.js';
import { makeConst } from '../../compiler/ir/tensor.js';
import type { Node } from '../../compiler/ir/types.js';

function input(shape: number[], seed: number): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed, -5, 5) };
}

type Case = [name: string, opType: string, opset: number, shape: number[], attrs: Record<string, AttrSpec>];

const WINDOW_CASES: Case[] = [
  ['MaxPool 2-D 3x3 stride 2 pads (opset 8)', 'MaxPool', 8, [1, 3, 9, 11], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
  ['MaxPool 1-D (opset 10)', 'MaxPool', 10, [2, 3, 13], { kernel_shape: [4], strides: [3] }],
  ['MaxPool 3-D asymmetric pads (opset 11)', 'MaxPool', 11, [1, 2, 5, 6, 7], { kernel_shape: [2, 3, 2], strides: [1, 2, 2], pads: [0, 1, 1, 1, 0, 1] }],
  ['MaxPool ceil_mode drops a window starting in the padding (opset 10)', 'MaxPool', 10, [1, 2, 5, 5], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1 }],
  ['AveragePool ceil_mode drops a window starting in the padding (opset 10)', 'AveragePool', 10, [1, 2, 5, 5], { kernel_shape: [2, 2], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 }],
  ['MaxPool ceil_mode odd size (opset 12)', 'MaxPool', 12, [1, 2, 7, 10], { kernel_shape: [2, 2], strides: [2, 3], ceil_mode: 1 }],
  ['MaxPool dilations (opset 12)', 'MaxPool', 12, [1, 2, 9, 8], { kernel_shape: [2, 3], dilations: [2, 2], pads: [1, 1, 1, 1] }],
  ['MaxPool SAME_UPPER (opset 11)', 'MaxPool', 11, [1, 3, 7, 8], { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'SAME_UPPER' }],
  ['MaxPool SAME_LOWER (opset 11)', 'MaxPool', 11, [1, 3, 7, 8], { kernel_shape: [3, 2], strides: [2, 2], auto_pad: 'SAME_LOWER' }],
  ['MaxPool VALID (opset 8)', 'MaxPool', 8, [1, 2, 7, 9], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'VALID' }],
  ['AveragePool 2-D pads exclude pad (opset 7)', 'AveragePool', 7, [1, 3, 9, 11], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1] }],
  ['AveragePool count_include_pad (opset 7)', 'AveragePool', 7, [1, 3, 9, 11], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 0, 1, 2], count_include_pad: 1 }],
  ['AveragePool 1-D (opset 10)', 'AveragePool', 10, [2, 3, 13], { kernel_shape: [3], strides: [2], pads: [1, 1] }],
  ['AveragePool 3-D (opset 11)', 'AveragePool', 11, [1, 2, 5, 6, 7], { kernel_shape: [2, 2, 3], strides: [2, 2, 2], pads: [1, 0, 1, 0, 1, 1] }],
  ['AveragePool ceil_mode (opset 10)', 'AveragePool', 10, [1, 2, 7, 8], { kernel_shape: [3, 3], strides: [2, 2], ceil_mode: 1 }],
  ['AveragePool ceil_mode count_include_pad (opset 11)', 'AveragePool', 11, [1, 2, 7, 8], { kernel_shape: [3, 3], strides: [2, 2], pads: [1, 1, 1, 1], ceil_mode: 1, count_include_pad: 1 }],
  ['AveragePool SAME_UPPER (opset 11)', 'AveragePool', 11, [1, 2, 7, 8], { kernel_shape: [3, 3], strides: [2, 2], auto_pad: 'SAME_UPPER' }],
  ['AveragePool SAME_LOWER count_include_pad (opset 11)', 'AveragePool', 11, [1, 2, 7, 8], { kernel_shape: [2, 3], strides: [2, 2], auto_pad: 'SAME_LOWER', count_include_pad: 1 }],
  ['AveragePool no pads (opset 9, resnet-style)', 'AveragePool', 9, [1, 4, 7, 7], { kernel_shape: [7, 7], strides: [1, 1] }],
  ['AveragePool dilations (opset 19)', 'AveragePool', 19, [1, 2, 9, 8], { kernel_shape: [2, 3], dilations: [2, 2], pads: [1, 1, 1, 1] }],
  ['AveragePool dilations count_include_pad (opset 19)', 'AveragePool', 19, [1, 2, 9, 8], { kernel_shape: [2, 3], dilations: [2, 2], pads: [1, 1, 1, 1], count_include_pad: 1 }],
];

describe('MaxPool / AveragePool match onnxruntime', () => {
  WINDOW_CASES.forEach(([name, opType, opset, shape, attrs], i) => {
    it(name, () => expectMatchesOrt({ opType, opset, attrs, inputs: [input(shape, i + 1)] }));
  });

  it('MaxPool on int8 (opset 12) runs in i32', () => {
    const data = Array.from(randomFloats(2 * 3 * 5 * 6, 21, -128, 127), Math.trunc);
    return expectMatchesOrt({ opType: 'MaxPool', opset: 12, attrs: { kernel_shape: [2, 3], strides: [2, 2], pads: [1, 1, 0, 1] }, inputs: [{ dtype: 'int8', shape: [2, 3, 5, 6], data }], outputs: ['int8'] });
  });

  it('MaxPool with an unused Indices output is typed int64', () => {
    const def = findOp('MaxPool')!;
    const node: Node = { name: 'p', opType: 'MaxPool', domain: '', inputs: ['x'], outputs: ['y', 'idx'], attrs: { kernel_shape: { type: 'ints', value: [2, 2] } } };
    const types = def.inferTypes({ node, opset: 12, inputs: [{ dtype: 'float32', shape: [1, 1, 4, 4] }], consts: [undefined] });
    expect(types[1]).toEqual({ dtype: 'int64', shape: [1, 1, 3, 3] });
  });

  it('MaxPool with a used Indices output fails in lowering with FM_UNSUPPORTED_OP', async () => {
    await expect(runNodeOnGpu({ opType: 'MaxPool', opset: 12, attrs: { kernel_shape: [2, 2] }, inputs: [input([1, 1, 4, 4], 3)], outputs: ['float32', 'int64'] }))
      .rejects.toThrow(/FM_UNSUPPORTED_OP.*Indices/);
  });

  it('AveragePool dilations before opset 19 are rejected', async () => {
    await expect(runNodeOnGpu({ opType: 'AveragePool', opset: 11, attrs: { kernel_shape: [2, 2], dilations: [2, 2] }, inputs: [input([1, 1, 6, 6], 3)] }))
      .rejects.toThrow(/FM_ONNX_INVALID.*dilations/);
  });

  it('a missing kernel_shape names the node', async () => {
    await expect(runNodeOnGpu({ opType: 'MaxPool', opset: 12, inputs: [input([1, 1, 6, 6], 3)] })).rejects.toThrow(/FM_ONNX_INVALID.*"node".*kernel_shape/);
  });
});

describe('GlobalAveragePool / GlobalMaxPool match onnxruntime', () => {
  for (const opType of ['GlobalAveragePool', 'GlobalMaxPool']) {
    it(`${opType} small planes (serial kernel)`, () => expectMatchesOrt({ opType, opset: 9, inputs: [input([2, 5, 3, 5], 11)] }));
    it(`${opType} large planes (workgroup reduction)`, () => expectMatchesOrt({ opType, opset: 9, inputs: [input([1, 6, 37, 41], 12)] }));
    it(`${opType} 1-D and 3-D`, async () => {
      await expectMatchesOrt({ opType, opset: 11, inputs: [input([2, 3, 300], 13)] });
      await expectMatchesOrt({ opType, opset: 11, inputs: [input([1, 3, 4, 5, 6], 14)] });
    });
  }

  it('GlobalAveragePool folds constants on the host', () => {
    const def = findOp('GlobalAveragePool')!;
    const x = makeConst('float32', [1, 2, 2, 2], [1, 2, 3, 4, 5, 6, 7, 9]);
    const node: Node = { name: 'g', opType: 'GlobalAveragePool', domain: '', inputs: ['x'], outputs: ['y'], attrs: {} };
    const [y] = def.fold!({ node, opset: 11, inputs: [x], consts: [x] }, [x]);
    expect(y!.shape).toEqual([1, 2, 1, 1]);
    expect(Array.from(y!.data)).toEqual([2.5, 6.75]);
  });
});
