import { describe, expect, it } from 'vitest';
import { expectMatchesOrt, maxViolation, runNodeOnOrt, type HarnessInput, type SingleNodeCase } from '../harness/single-node.js';
import { randomFloats } from '../../fixtures/onnx-builder.js';
import { prepareKernels } from '../harness/gpu.js';
import { opFor } from '../../compiler/ops/index.js';
import { DEFAULT_LIMITS, type KernelChoices, type TargetLimits } from '../../compiler/target/limits.js';
import { type KernelSpec, type LowerTensor } from '../../compiler/kernel/types.js';
import { type LowerContext } from '../../compiler/ops/op.js';
import { makeConst } from '../../compiler/ir/tensor.js';
import { numElements, type Attrs, type ConstTensor, type FusedActivation, type Node, type TensorType } from '../../compiler/ir/types.js';
import { FlashmemError } from '../../compiler/errors.js';

let seed = 1;
function floats(shape: number[], constant = false): HarnessInput {
  const n = shape.reduce((p, d) => p * d, 1);
  return { dtype: 'float32', shape, data: randomFloats(n, seed++), constant };
}

// ---------------------------------------------------------------------------------------------
// A minimal runner (after test/harness/single-node.ts) that takes custom limits and a fused
// activation, and reports the kernels it ran.
// ---------------------------------------------------------------------------------------------

interface LoweredRun {
  kernels: KernelSpec[];
  output: Float32Array;
  outputType: TensorType;
}

function toAttrs(attrs: Record<string, number> = {}): Attrs {
  return Object.fromEntries(Object.entries(attrs).map(([k, v]) =>
    [k, Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v }])) as Attrs;
}

function lowerNode(c: SingleNodeCase & { attrs?: Record<string, number> }, limits: TargetLimits, activation?: FusedActivation, kernelChoices?: KernelChoices) {
  const opset = c.opset ?? 13;
  const node: Node = { name: 'node', opType: c.opType, domain: '', inputs: c.inputs.map((inp, i) => (inp.omitted ? '' : `in${i}`)), outputs: ['out0'], attrs: toAttrs(c.attrs) };
  const def = opFor(node, opset);
  const consts = c.inputs.map((inp) => (inp.constant ? makeConst(inp.dtype, inp.shape, inp.data) : undefined));
  const types = c.inputs.map((inp) => (inp.omitted ? undefined : { dtype: inp.dtype, shape: inp.shape }));
  const [outType] = def.inferTypes({ node, opset, inputs: types, consts });
  const inputs: (LowerTensor | undefined)[] = c.inputs.map((inp, i) => (inp.omitted ? undefined : { id: `in${i}`, type: types[i]!, data: consts[i] }));
  const output: LowerTensor = { id: 'out0', type: outType! };
  const kernels: KernelSpec[] = [];
  const extra: LowerTensor[] = [];
  const ctx: LowerContext = {
    node, opset, inputs, outputs: [output], limits, activation, kernelChoices,
    kernel: (k) => kernels.push(k),
    constant: (label, t) => { const lt = { id: `const_${extra.length}_${label}`, type: { dtype: t.dtype, shape: t.shape }, data: t }; extra.push(lt); return lt; },
    scratch: (label, type) => { const lt = { id: `scratch_${extra.length}_${label}`, type }; extra.push(lt); return lt; },
  };
  def.lower!(ctx);
  return { kernels, inputs, output, extra, hostInputs: c.inputs };
}

type Lowered = ReturnType<typeof lowerNode>;

async function runLowered(l: Lowered): Promise<LoweredRun> {
  const uploads = [
    ...l.hostInputs.flatMap((inp, i) => (inp.omitted ? [] : [{ tensor: l.inputs[i]!, data: inp.data }])),
    ...l.extra.flatMap((t) => (t.data ? [{ tensor: t, data: t.data.data as ArrayLike<number> }] : [])),
  ];
  const gpu = await prepareKernels(l.kernels, uploads);
  try {
    const [output] = await gpu.run([l.output]);
    return { kernels: l.kernels, output: output as Float32Array, outputType: l.output.type };
  } finally {
    gpu.destroy();
  }
}

async function expectLoweredMatches(c: SingleNodeCase & { attrs?: Record<string, number> }, limits: TargetLimits, activation?: (x: number) => number, fused?: FusedActivation, kernelChoices?: KernelChoices) {
  const [run, [ref]] = await Promise.all([runLowered(lowerNode(c, limits, fused, kernelChoices)), runNodeOnOrt(c)]);
  expect(run.outputType.shape).toEqual(ref!.dims);
  const expected = activation ? ref!.data.map(activation) : ref!.data;
  expect(maxViolation(run.output, expected)).toBeLessThanOrEqual(1);
  return run;
}

function errorCode(fn: () => unknown): string | undefined {
  try {
    fn();
  } catch (e) {
    return e instanceof FlashmemError ? e.code : `not a FlashmemError: ${String(e)}`;
  }
  return undefined;
}

// ---------------------------------------------------------------------------------------------

describe('Gemm matches onnxruntime', () => {
  const [M, K, N] = [5, 7, 6];
  for (const transA of [0, 1]) {
    for (const transB of [0, 1]) {
      for (const bConst of [false, true]) {
        it(`transA=${transA} transB=${transB} B ${bConst ? 'constant' : 'runtime'} alpha/beta, C [M,N]`, () =>
          expectMatchesOrt({
            opType: 'Gemm', opset: 13, attrs: { transA, transB, alpha: { float: 0.5 }, beta: { float: 2 } },
            inputs: [floats(transA ? [K, M] : [M, K]), floats(transB ? [N, K] : [K, N], bConst), floats([M, N])],
          }));
      }
    }
  }
  for (const cShape of [[], [1], [N], [1, N], [M, 1], [M, N]]) {
    it(`C of shape [${cShape}] broadcasts (opset 9)`, () =>
      expectMatchesOrt({ opType: 'Gemm', opset: 9, attrs: { beta: { float: 0.7 } }, inputs: [floats([M, K]), floats([K, N], true), floats(cShape, true)] }));
  }
  it('opset 7 with default alpha/beta', () => expectMatchesOrt({ opType: 'Gemm', opset: 7, inputs: [floats([3, 8]), floats([8, 4]), floats([4])] }));
  it('opset 11 without C', () => expectMatchesOrt({ opType: 'Gemm', opset: 11, attrs: { transB: 1 }, inputs: [floats([3, 9]), floats([10, 9], true)] }));
  it('opset 13 without C, alpha', () => expectMatchesOrt({ opType: 'Gemm', opset: 13, attrs: { alpha: { float: -1.5 } }, inputs: [floats([4, 9]), floats([9, 3])] }));
  it('beta = 0 ignores C', () => expectMatchesOrt({ opType: 'Gemm', opset: 13, attrs: { beta: { float: 0 } }, inputs: [floats([2, 3]), floats([3, 5]), floats([5])] }));
  it('classifier head: M=1, transB, constant weights and bias (opset 9)', () =>
    expectMatchesOrt({ opType: 'Gemm', opset: 9, attrs: { transB: 1 }, inputs: [floats([1, 67]), floats([21, 67], true), floats([21], true)] }));
  it('opset 6 broadcast attribute: C [N] with broadcast=1 (onnxruntime has no Gemm-6: compared with opset 7)', async () => {
    const inputs = [floats([3, 4]), floats([4, 5]), floats([5])];
    const run = await runLowered(lowerNode({ opType: 'Gemm', opset: 6, attrs: { broadcast: 1 }, inputs }, DEFAULT_LIMITS));
    const [ref] = await runNodeOnOrt({ opType: 'Gemm', opset: 7, inputs });
    expect(run.outputType.shape).toEqual(ref!.dims);
    expect(maxViolation(run.output, ref!.data)).toBeLessThanOrEqual(1);
  });

  it('rejects inner-dimension and C mismatches with FM_SHAPE', () => {
    const node: Node = { name: 'g', opType: 'Gemm', domain: '', inputs: ['a', 'b', 'c'], outputs: ['y'], attrs: {} };
    const def = opFor(node, 13);
    const infer = (a: number[], b: number[], c: number[] | undefined, opset = 13) =>
      def.inferTypes({ node, opset, inputs: [{ dtype: 'float32', shape: a }, { dtype: 'float32', shape: b }, c && { dtype: 'float32', shape: c }], consts: [] });
    expect(errorCode(() => infer([2, 3], [4, 5], undefined))).toBe('FM_SHAPE');
    expect(errorCode(() => infer([2, 3], [3, 5], [3, 5]))).toBe('FM_SHAPE');
    expect(errorCode(() => infer([2, 3, 1], [3, 5], undefined))).toBe('FM_SHAPE');
    expect(errorCode(() => infer([2, 3], [3, 5], [5], 6))).toBe('FM_SHAPE'); // broadcast=0 before opset 7
    expect(infer([2, 3], [3, 5], [2, 1])[0]!.shape).toEqual([2, 5]);
  });
});

describe('MatMul matches onnxruntime', () => {
  const cases: [string, number[], number[]][] = [
    ['1-D x 1-D', [13], [13]],
    ['1-D x 2-D', [6], [6, 9]],
    ['1-D x 3-D', [5], [2, 5, 3]],
    ['3-D x 1-D', [2, 3, 7], [7]],
    ['2-D x 2-D odd sizes', [7, 13], [13, 11]],
    ['2-D x 2-D multiples of 4', [8, 16], [16, 12]],
    ['batched, same batch', [3, 5, 6], [3, 6, 7]],
    ['batched with broadcast', [2, 1, 5, 6], [3, 6, 4]],
    ['3-D x 2-D (Linear layer, batch folds into rows)', [2, 3, 10], [10, 5]],
    ['2-D x 3-D (A broadcast)', [4, 6], [2, 6, 8]],
    ['M = 1 rows', [1, 33], [33, 17]],
  ];
  for (const [name, a, b] of cases) {
    it(`${name}: [${a}] x [${b}]`, () => expectMatchesOrt({ opType: 'MatMul', opset: 13, inputs: [floats(a), floats(b)] }));
    it(`${name}: [${a}] x [${b}], B constant`, () => expectMatchesOrt({ opType: 'MatMul', opset: 9, inputs: [floats(a), floats(b, true)] }));
  }
  it('int32 operands', () => {
    const ints = (shape: number[]) => ({ dtype: 'int32' as const, shape, data: Array.from(randomFloats(numElements(shape), seed++, -20, 20), Math.round) });
    return expectMatchesOrt({ opType: 'MatMul', opset: 13, inputs: [ints([3, 5, 7]), ints([7, 6])], outputs: ['int32'] });
  });
  it('rejects non-broadcastable batches and K mismatches with FM_SHAPE', () => {
    const node: Node = { name: 'm', opType: 'MatMul', domain: '', inputs: ['a', 'b'], outputs: ['y'], attrs: {} };
    const def = opFor(node, 13);
    const infer = (a: number[], b: number[]) => def.inferTypes({ node, opset: 13, inputs: [{ dtype: 'float32', shape: a }, { dtype: 'float32', shape: b }], consts: [] });
    expect(errorCode(() => infer([2, 3, 4], [3, 4, 5]))).toBe('FM_SHAPE');
    expect(errorCode(() => infer([3, 4], [5, 6]))).toBe('FM_SHAPE');
    expect(infer([4], [2, 4, 3])[0]!.shape).toEqual([2, 3]);
  });
});

describe('fold', () => {
  const foldCase = (opType: string, attrs: Attrs, inputs: ConstTensor[], opset = 13) => {
    const node: Node = { name: 'n', opType, domain: '', inputs: inputs.map((_, i) => `i${i}`), outputs: ['y'], attrs };
    return opFor(node, opset).fold!({ node, opset, inputs, consts: inputs }, inputs)[0]!;
  };
  it('Gemm with transA, alpha, beta and a broadcast C agrees with onnxruntime', async () => {
    const a = makeConst('float32', [3, 2], randomFloats(6, 91));
    const b = makeConst('float32', [3, 4], randomFloats(12, 92));
    const c = makeConst('float32', [4], randomFloats(4, 93));
    const folded = foldCase('Gemm', { transA: { type: 'int', value: 1 }, alpha: { type: 'float', value: 2 }, beta: { type: 'float', value: -1 } }, [a, b, c]);
    const [ref] = await runNodeOnOrt({ opType: 'Gemm', opset: 13, attrs: { transA: 1, alpha: { float: 2 }, beta: { float: -1 } }, inputs: [a, b, c].map((t) => ({ ...t, constant: false })) });
    expect(folded.shape).toEqual(ref!.dims);
    expect(maxViolation(folded.data, ref!.data, 1e-5, 1e-5)).toBeLessThanOrEqual(1);
  });
  it('MatMul of int64 shape-like operands keeps integers', () => {
    const y = foldCase('MatMul', {}, [makeConst('int64', [2], [3, 4]), makeConst('int64', [2, 2], [1, 2, 3, 4])]);
    expect(y.shape).toEqual([2]);
    expect(Array.from(y.data)).toEqual([3 * 1 + 4 * 3, 3 * 2 + 4 * 4]);
  });
});

describe('lowering details', () => {
  it('splits a too-large constant B along N into one kernel per part', async () => {
    const limits = { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 4096 };
    // B is 40x70 floats = 11200 bytes: at most 24 columns (3840 bytes) per part -> 3 parts
    const run = await expectLoweredMatches({ opType: 'Gemm', opset: 11, attrs: { transB: 1 }, inputs: [floats([3, 40]), floats([70, 40], true), floats([70], true)] }, limits);
    expect(run.kernels.length).toBe(3);
    for (const k of run.kernels) {
      for (const t of k.bindings) expect(numElements(t.type.shape) * 4).toBeLessThanOrEqual(4096);
    }
  });
  it('splits constant MatMul weights for M = 1 (gemv) too', async () => {
    const limits = { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 4096 };
    const run = await expectLoweredMatches({ opType: 'MatMul', opset: 9, inputs: [floats([1, 64]), floats([64, 37], true)] }, limits);
    expect(run.kernels.length).toBeGreaterThan(1);
  });
  it('a too-large runtime operand fails with FM_LIMIT', () => {
    const limits = { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 4096 };
    expect(errorCode(() => lowerNode({ opType: 'MatMul', inputs: [floats([3, 40]), floats([40, 70])] }, limits))).toBe('FM_LIMIT');
    expect(errorCode(() => lowerNode({ opType: 'MatMul', inputs: [floats([40, 70]), floats([70, 4], true)] }, limits))).toBe('FM_LIMIT');
  });
  it('fuses Relu into Gemm', () =>
    expectLoweredMatches(
      { opType: 'Gemm', opset: 13, attrs: { transB: 1 }, inputs: [floats([5, 9]), floats([6, 9], true), floats([6], true)] },
      DEFAULT_LIMITS, (x) => Math.max(x, 0), { opType: 'Relu', attrs: {} }));
  it('fuses Relu into batched MatMul', () =>
    expectLoweredMatches(
      { opType: 'MatMul', opset: 13, inputs: [floats([2, 3, 5]), floats([2, 5, 7])] },
      DEFAULT_LIMITS, (x) => Math.max(x, 0), { opType: 'Relu', attrs: {} }));
  it('never puts node names into WGSL', () => {
    const l = lowerNode({ opType: 'Gemm', inputs: [floats([2, 3]), floats([3, 4], true)] }, DEFAULT_LIMITS);
    for (const k of l.kernels) expect(k.wgsl).not.toContain('node');
  });
});

describe('few rows x long K (gemv): K split across a workgroup', () => {
  const splitK = (run: { kernels: readonly { wgsl: string }[] }) => run.kernels.every((k) => k.wgsl.includes('workgroupBarrier'));
  const cases: [string, number[], number[]][] = [
    ['M=1, K=300 (a tail after the unrolled trips), 17 columns', [1, 300], [300, 17]],
    ['M=3, K=1031, 70 columns (a partial last panel)', [3, 1031], [1031, 70]],
    ['M=4, K=256, 32 columns', [4, 256], [256, 32]],
    ['3-D A folds into M=2 rows', [2, 1, 300], [300, 9]],
  ];
  for (const [name, a, b] of cases) {
    it(`${name}, matches onnxruntime`, async () => {
      const run = await expectLoweredMatches({ opType: 'MatMul', opset: 13, inputs: [floats(a), floats(b, true)] }, DEFAULT_LIMITS);
      expect(splitK(run)).toBe(true);
    });
  }
  it('K chunked across workgroups (an occupancy target as on a real GPU): partial sums, then their sum through the epilogue', async () => {
    const choices: KernelChoices = { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: 64 };
    const run = await expectLoweredMatches(
      { opType: 'Gemm', opset: 13, attrs: { transB: 1 }, inputs: [floats([2, 2200]), floats([45, 2200], true), floats([45], true)] },
      DEFAULT_LIMITS, (x) => Math.max(x, 0), { opType: 'Relu', attrs: {} }, choices);
    expect(run.kernels.map((k) => k.label)).toEqual(['gemm', 'gemm_sum']);
    expect(run.kernels[0]!.workgroups[1]).toBe(6);
  });
  it('K below 2048 stays one kernel per panel whatever the occupancy target (no partial sums)', async () => {
    const choices: KernelChoices = { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: 64, gemvUnroll: 16 };
    const run = await expectLoweredMatches({ opType: 'MatMul', inputs: [floats([1, 1100]), floats([1100, 45], true)] }, DEFAULT_LIMITS, undefined, undefined, choices);
    expect(run.kernels.map((k) => k.label)).toEqual(['matmul_gemv']);
    // 4 rows a trip (8 slices x 3 = 24 is the last unrolled offset), not 16
    expect(run.kernels[0]!.wgsl).not.toContain('k + 480u');
  });
  it('Gemm with transB, bias and a fused Relu', async () => {
    const run = await expectLoweredMatches(
      { opType: 'Gemm', opset: 13, attrs: { transB: 1 }, inputs: [floats([1, 400]), floats([45, 400], true), floats([45], true)] },
      DEFAULT_LIMITS, (x) => Math.max(x, 0), { opType: 'Relu', attrs: {} });
    expect(splitK(run)).toBe(true);
  });
  it('each part of a split weight gets its own split-K kernel', async () => {
    const limits = { ...DEFAULT_LIMITS, maxStorageBufferBindingSize: 300 * 4 * 12 };
    const run = await expectLoweredMatches({ opType: 'MatMul', opset: 9, inputs: [floats([1, 300]), floats([300, 37], true)] }, limits);
    expect(run.kernels.length).toBeGreaterThan(1);
    expect(splitK(run)).toBe(true);
  });
  it('short K and runtime B keep the register-tiled kernel', async () => {
    expect(splitK(await expectLoweredMatches({ opType: 'MatMul', opset: 13, inputs: [floats([1, 64]), floats([64, 40], true)] }, DEFAULT_LIMITS))).toBe(false);
    expect(splitK(await expectLoweredMatches({ opType: 'MatMul', opset: 13, inputs: [floats([1, 300]), floats([300, 40])] }, DEFAULT_LIMITS))).toBe(false);
  });
});

// ---------------------------------------------------------------------------------------------

describe('the workgroup-tiled (blocked) GEMM of real-GPU profiles matches onnxruntime', () => {
  const BLOCKED: KernelChoices = { gemv: 'split-k', gemm: 'blocked' };
  const blocked = (run: { kernels: readonly KernelSpec[] }) => run.kernels.length > 0 && run.kernels.every((k) => k.wgsl.includes('var<workgroup> As') || k.label.endsWith('_sum'));
  const cases: [string, SingleNodeCase & { attrs?: Record<string, number> }][] = [
    ['whole blocks, runtime B', { opType: 'MatMul', inputs: [floats([64, 32]), floats([32, 128])] }],
    ['ragged M, K and N, constant B (packed panels)', { opType: 'MatMul', inputs: [floats([70, 37]), floats([37, 101], true)] }],
    ['ragged, runtime B of odd width (scalar loads)', { opType: 'MatMul', inputs: [floats([65, 19]), floats([19, 66])] }],
    ['batched and broadcast', { opType: 'MatMul', inputs: [floats([2, 3, 65, 33]), floats([3, 33, 70])] }],
    ['Gemm transA, transB, alpha, beta and C', { opType: 'Gemm', attrs: { transA: 1, transB: 1, alpha: 0.5, beta: 1.5 }, inputs: [floats([40, 96]), floats([72, 40], true), floats([96, 72])] }],
  ];
  for (const [name, c] of cases) {
    it(name, async () => {
      expect(blocked(await expectLoweredMatches(c, DEFAULT_LIMITS, undefined, undefined, BLOCKED))).toBe(true);
    });
  }

  it('fuses an activation into its stores', async () => {
    const run = await expectLoweredMatches({ opType: 'MatMul', inputs: [floats([64, 24]), floats([24, 64], true)] }, DEFAULT_LIMITS, (x) => Math.max(0, x), { opType: 'Relu', attrs: {} }, BLOCKED);
    expect(blocked(run)).toBe(true);
  });

  const BIG: KernelChoices = { ...BLOCKED, gemmBlock: { rm: 2, rn: 2, bk: 16 } };
  for (const [name, c] of [
    ['128 x 128 blocks, ragged, constant B, A read as vec4', { opType: 'MatMul', inputs: [floats([150, 36]), floats([36, 200], true)] }],
    ['128 x 128 blocks, Gemm transA (A read as scalars), C', { opType: 'Gemm', attrs: { transA: 1 }, inputs: [floats([33, 130]), floats([33, 129]), floats([130, 129])] }],
    ['128 x 128 blocks, batched', { opType: 'MatMul', inputs: [floats([2, 129, 20]), floats([2, 20, 131])] }],
  ] as [string, SingleNodeCase & { attrs?: Record<string, number> }][]) {
    it(name, async () => {
      const run = await expectLoweredMatches(c, DEFAULT_LIMITS, undefined, undefined, BIG);
      expect(blocked(run)).toBe(true);
      expect(run.kernels[0]!.workgroupBytes).toBe(2 * 128 * 16 * 4);
    });
  }
  it('a 128 x 64 block with K step 32, and a 64 x 128 block with K step 8 is refused (invocations with nothing to stage)', async () => {
    const run = await expectLoweredMatches({ opType: 'MatMul', inputs: [floats([130, 70]), floats([70, 66], true)] }, DEFAULT_LIMITS, undefined, undefined, { ...BLOCKED, gemmBlock: { rm: 2, rn: 1, bk: 32 } });
    expect(run.kernels[0]!.workgroupBytes).toBe((128 + 64) * 32 * 4);
    expect(() => lowerNode({ opType: 'MatMul', inputs: [floats([130, 70]), floats([70, 130])] }, DEFAULT_LIMITS, undefined, { ...BLOCKED, gemmBlock: { rm: 1, rn: 2, bk: 8 } })).toThrow(/K step 8/);
  });
  it('the gemv of a real-GPU profile: 16 rows per trip and K chunks across workgroups', async () => {
    const run = await expectLoweredMatches({ opType: 'MatMul', inputs: [floats([1, 2500]), floats([2500, 40], true)] }, DEFAULT_LIMITS, undefined, undefined, { ...BLOCKED, occupancyWorkgroups: 8, gemvUnroll: 16 });
    expect(run.kernels.map((k) => k.label)).toEqual(['matmul_gemv', 'matmul_gemv_sum']);
    expect(run.kernels[0]!.wgsl).toContain('k + 480u');
  });

  it('splits K across workgroups when the blocks are too few (partial sums, then C and the activation)', async () => {
    const choices: KernelChoices = { ...BLOCKED, occupancyWorkgroups: 16 };
    const run = await expectLoweredMatches(
      { opType: 'Gemm', attrs: { transB: 1, alpha: 0.5, beta: 2.5 }, inputs: [floats([70, 400]), floats([66, 400], true), floats([66], true)] },
      DEFAULT_LIMITS, (x) => Math.max(0, x), { opType: 'Relu', attrs: {} }, choices);
    expect(run.kernels.map((k) => k.label)).toEqual(['gemm', 'gemm_sum']);
    expect(run.kernels[0]!.workgroups[2]).toBe(3);
    expect(blocked(run)).toBe(true);
  });

  it('keeps the register-tiled kernel below one block, and on software rasterisers', async () => {
    expect(blocked(await expectLoweredMatches({ opType: 'MatMul', inputs: [floats([63, 16]), floats([16, 64])] }, DEFAULT_LIMITS, undefined, undefined, BLOCKED))).toBe(false);
    expect(blocked(await expectLoweredMatches({ opType: 'MatMul', inputs: [floats([64, 16]), floats([16, 64])] }, DEFAULT_LIMITS, undefined, undefined, { gemv: 'tiled', gemm: 'tiled' }))).toBe(false);
  });
});
