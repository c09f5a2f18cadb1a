import { describe, expect, it } from 'vitest';
import { expectMatchesOrt, runNodeOnGpu, type HarnessInput } from '../harness/single-node.js';
import { randomFloats, type AttrSpec } from '../../fixtures/onnx-builder.js';
import { runOrt } from '../harness/ort.js';
import { buildModel } from '../../fixtures/onnx-builder.js';
import { findOp } from '../../compiler/ops/index.js';
import { foldBatchNormIntoConv } from '../../compiler/ops/normalization.js';
import { makeConst } from '../../compiler/ir/tensor.js';
import type { Node } from '../../compiler/ir/types.js';

function floats(shape: number[], seed: number, lo = -3, hi = 3, constant = false): HarnessInput {
  const n = shape.reduce((a, b) => a * b, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed, lo, hi), constant };
}

/** scale, bias, mean, var for `shape` (var strictly positive) */
function bnParams(shape: number[], seed: number, constant: boolean): HarnessInput[] {
  return [
    floats(shape, seed, 0.5, 2, constant),
    floats(shape, seed + 1, -1, 1, constant),
    floats(shape, seed + 2, -1, 1, constant),
    floats(shape, seed + 3, 0.1, 3, constant),
  ];
}

describe('BatchNormalization matches onnxruntime', () => {
  const cases: [string, number, number[], boolean, Record<string, AttrSpec>][] = [
    ['opset 7, constant params, 4-D', 7, [2, 3, 5, 7], true, { epsilon: 1e-3 }],
    ['opset 9, runtime params, 4-D', 9, [2, 3, 5, 7], false, {}],
    ['opset 14, constant params, 3-D', 14, [2, 4, 9], true, { epsilon: 0.01, momentum: 0.8 }],
    ['opset 15, runtime params, 2-D', 15, [3, 5], false, { training_mode: 0 }],
    ['opset 15, constant params, 5-D', 15, [1, 3, 2, 3, 4], true, {}],
  ];
  cases.forEach(([name, opset, shape, constant, attrs], i) => {
    it(name, () => expectMatchesOrt({ opType: 'BatchNormalization', opset, attrs, inputs: [floats(shape, 10 * i + 1), ...bnParams([shape[1]!], 10 * i + 2, constant)] }));
  });

  it('opset 7 spatial = 0 keeps parameters per (c, h, w)', () =>
    expectMatchesOrt({ opType: 'BatchNormalization', opset: 7, attrs: { spatial: 0 }, inputs: [floats([2, 3, 2, 4], 91), ...bnParams([3, 2, 4], 92, true)] }));

  it('mixed constant and runtime params', () =>
    expectMatchesOrt({
      opType: 'BatchNormalization', opset: 9,
      inputs: [floats([1, 4, 3, 3], 61), floats([4], 62, 0.5, 2, true), floats([4], 63), floats([4], 64, -1, 1, true), floats([4], 65, 0.1, 2)],
    }));

  it('training_mode = 1 is rejected with FM_UNSUPPORTED_OP', async () => {
    await expect(runNodeOnGpu({ opType: 'BatchNormalization', opset: 15, attrs: { training_mode: 1 }, inputs: [floats([1, 2, 3], 1), ...bnParams([2], 2, true)] }))
      .rejects.toThrow(/FM_UNSUPPORTED_OP.*training_mode/);
  });

  it('used training outputs are typed but rejected in lowering', async () => {
    const def = findOp('BatchNormalization')!;
    const node: Node = { name: 'bn', opType: 'BatchNormalization', domain: '', inputs: ['x', 's', 'b', 'm', 'v'], outputs: ['y', 'rm', 'rv'], attrs: {} };
    const p = { dtype: 'float32' as const, shape: [2] };
    const types = def.inferTypes({ node, opset: 14, inputs: [{ dtype: 'float32', shape: [1, 2, 3] }, p, p, p, p], consts: [] });
    expect(types).toEqual([{ dtype: 'float32', shape: [1, 2, 3] }, p, p]);
    await expect(runNodeOnGpu({ opType: 'BatchNormalization', opset: 9, inputs: [floats([1, 2, 3], 1), ...bnParams([2], 2, true)], outputs: ['float32', 'float32', 'float32'] }))
      .rejects.toThrow(/FM_UNSUPPORTED_OP/);
  });

  it('fold agrees with the GPU kernel', async () => {
    const x = floats([1, 3, 2, 2], 71);
    const params = bnParams([3], 72, true);
    const [gpu] = await runNodeOnGpu({ opType: 'BatchNormalization', opset: 9, inputs: [x, ...params] });
    const def = findOp('BatchNormalization')!;
    const node: Node = { name: 'bn', opType: 'BatchNormalization', domain: '', inputs: ['x', 's', 'b', 'm', 'v'], outputs: ['y'], attrs: {} };
    const consts = [x, ...params].map((t) => makeConst(t.dtype, t.shape, t.data));
    const [folded] = def.fold!({ node, opset: 9, inputs: consts, consts }, consts);
    expect(Array.from(folded!.data).every((v, i) => Math.abs(v - gpu!.data[i]!) < 1e-4)).toBe(true);
  });
});

describe('foldBatchNormIntoConv', () => {
  it('Conv with folded weights equals Conv followed by BatchNormalization on onnxruntime', async () => {
    const [cout, cin, groups] = [4, 6, 2];
    const wShape = [cout, cin / groups, 3, 2];
    const wData = randomFloats(wShape.reduce((a, b) => a * b, 1), 81);
    const bData = randomFloats(cout, 82);
    const [scale, bias, mean, variance] = bnParams([cout], 83, true).map((t) => makeConst('float32', [cout], t.data));
    const epsilon = 1e-3;
    const x = { dtype: 'float32' as const, shape: [1, cin, 6, 5], data: randomFloats(180, 84) };
    const convAttrs = { group: groups, pads: [1, 0, 1, 1] };
    const reference = buildModel({
      opset: 13,
      inputs: [{ name: 'x', dtype: 'float32', shape: x.shape }],
      outputs: [{ name: 'y', dtype: 'float32' }],
      initializers: [
        { name: 'w', dtype: 'float32', shape: wShape, data: wData }, { name: 'b', dtype: 'float32', shape: [cout], data: bData },
        ...(['s', 'bb', 'm', 'v'] as const).map((name, i) => ({ name, dtype: 'float32' as const, shape: [cout], data: [scale, bias, mean, variance][i]!.data })),
      ],
      nodes: [
        { opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['c'], attrs: convAttrs },
        { opType: 'BatchNormalization', inputs: ['c', 's', 'bb', 'm', 'v'], outputs: ['y'], attrs: { epsilon } },
      ],
    });
    const folded = foldBatchNormIntoConv(makeConst('float32', wShape, wData), makeConst('float32', [cout], bData), { scale: scale!, bias: bias!, mean: mean!, var: variance!, epsilon });
    expect(folded.weight.shape).toEqual(wShape);
    expect(folded.weight.data).toBeInstanceOf(Float32Array);
    const foldedModel = buildModel({
      opset: 13,
      inputs: [{ name: 'x', dtype: 'float32', shape: x.shape }],
      outputs: [{ name: 'y', dtype: 'float32' }],
      initializers: [{ name: 'w', dtype: 'float32', shape: wShape, data: folded.weight.data }, { name: 'b', dtype: 'float32', shape: [cout], data: folded.bias.data }],
      nodes: [{ opType: 'Conv', inputs: ['x', 'w', 'b'], outputs: ['y'], attrs: convAttrs }],
    });
    const [expected, actual] = await Promise.all([runOrt(reference, { x }), runOrt(foldedModel, { x })]);
    const e = Array.from(expected.y!.data as Float32Array), a = Array.from(actual.y!.data as Float32Array);
    expect(a.length).toBe(e.length);
    const worst = Math.max(...a.map((v, i) => Math.abs(v - e[i]!) / (1e-4 + 1e-4 * Math.abs(e[i]!))));
    expect(worst).toBeLessThan(1);
  });

  it('a Conv without bias gets one', () => {
    const one = makeConst('float32', [2], [1, 1]);
    const folded = foldBatchNormIntoConv(makeConst('float32', [2, 1, 1], [2, 3]), undefined, {
      scale: makeConst('float32', [2], [2, 4]), bias: makeConst('float32', [2], [1, -1]), mean: makeConst('float32', [2], [0.5, 1]), var: one, epsilon: 0,
    });
    // independent arithmetic: s = scale / sqrt(1) -> W' = W * s, b' = (0 - mean) * s + bias
    expect(Array.from(folded.weight.data)).toEqual([4, 12]);
    expect(Array.from(folded.bias.data)).toEqual([0, -5]);
  });
});

describe('InstanceNormalization matches onnxruntime', () => {
  const cases: [string, number, number[], Record<string, AttrSpec>][] = [
    ['opset 6, 4-D, small planes', 6, [2, 3, 4, 5], { epsilon: 1e-3 }],
    ['3-D', 6, [2, 4, 7], {}],
    ['large planes (many elements per invocation)', 6, [1, 3, 33, 35], {}],
    ['5-D', 6, [1, 2, 3, 4, 5], { epsilon: 0.1 }],
  ];
  cases.forEach(([name, opset, shape, attrs], i) => {
    it(name, () => expectMatchesOrt({
      opType: 'InstanceNormalization', opset, attrs,
      inputs: [floats(shape, 20 * i + 1, -2, 4), floats([shape[1]!], 20 * i + 2, 0.5, 2, true), floats([shape[1]!], 20 * i + 3)],
    }));
  });
  it('runtime scale and bias', () => expectMatchesOrt({
    opType: 'InstanceNormalization', opset: 6, inputs: [floats([2, 3, 6, 6], 31), floats([3], 32), floats([3], 33)],
  }));
});

describe('LRN matches onnxruntime', () => {
  const cases: [string, number[], Record<string, AttrSpec>][] = [
    ['alexnet-style size 5', [1, 7, 4, 5], { size: 5, alpha: 1e-4, beta: 0.75, bias: { float: 1 } }],
    ['size 3, strong alpha', [2, 6, 3, 3], { size: 3, alpha: 0.5, beta: 0.6, bias: { float: 2 } }],
    ['size 1, defaults', [1, 3, 5, 5], { size: 1 }],
    ['size larger than C', [1, 3, 2, 6], { size: 7, alpha: 0.3, beta: 1.2, bias: 1.5 }],
  ];
  cases.forEach(([name, shape, attrs], i) => {
    it(name, () => expectMatchesOrt({ opType: 'LRN', opset: 9, attrs, inputs: [floats(shape, 40 + i)] }));
  });
  // onnxruntime rejects even sizes; ONNX defines them with an asymmetric window (one more channel after c)
  it('even size 4 matches the ONNX formula (JS reference)', async () => {
    const [n, c, inner] = [2, 6, 3];
    const x = floats([n, c, inner], 51);
    const [alpha, beta, bias, size] = [0.5, 0.6, 2, 4];
    const [gpu] = await runNodeOnGpu({ opType: 'LRN', opset: 13, attrs: { size, alpha, beta, bias: { float: bias } }, inputs: [x] });
    const expected = Array.from(x.data, (v, i) => {
      const ch = Math.floor(i / inner) % c;
      let squares = 0;
      for (let k = Math.max(0, ch - 1); k <= Math.min(c - 1, ch + 2); k++) squares += x.data[i + (k - ch) * inner]! ** 2;
      return v / (bias + (alpha / size) * squares) ** beta;
    });
    expect(Array.from(gpu!.data).every((v, i) => Math.abs(v - expected[i]!) <= 1e-4 * (1 + Math.abs(expected[i]!)))).toBe(true);
  });
  it('a missing size names the node', async () => {
    await expect(runNodeOnGpu({ opType: 'LRN', opset: 9, inputs: [floats([1, 2, 2, 2], 1)] })).rejects.toThrow(/FM_ONNX_INVALID.*"node".*size/);
  });
});
