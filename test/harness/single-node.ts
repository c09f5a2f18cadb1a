/**
 * Runs one ONNX node through flashmemc's op layer (shape rule + lowering) on the real WebGPU
 * device and through onnxruntime-node, so op families can be tested before the full pipeline.
 */
import { buildModel, type AttrSpec } from '../../fixtures/onnx-builder.js';
import { hostTyped, prepareKernels, type Upload } from './gpu.js';
import { opFor } from '../../compiler/ops/index.js';
import { DEFAULT_LIMITS, type KernelChoices, type TargetLimits } from '../../compiler/target/limits.js';
import { type KernelSpec, type LowerTensor } from '../../compiler/kernel/types.js';
import { type LowerContext, type WeightLayout } from '../../compiler/ops/op.js';
import type { Attrs, ConstTensor, DType, Node, TensorType } from '../../compiler/ir/types.js';
import { makeConst } from '../../compiler/ir/tensor.js';
import { runOrt } from './ort.js';
import { FlashmemError } from '../../compiler/errors.js';

export interface HarnessInput {
  dtype: DType;
  shape: number[];
  data: ArrayLike<number>;
  /** pass as an initializer (compile-time constant) instead of a runtime input */
  constant?: boolean;
  /** omitted optional input */
  omitted?: boolean;
}

export interface SingleNodeCase {
  opType: string;
  opset?: number;
  attrs?: Record<string, AttrSpec>;
  inputs: HarnessInput[];
  /** output dtypes, default float32 for one output */
  outputs?: DType[];
}

export interface NodeResult {
  type: TensorType;
  data: Float32Array | Int32Array;
}

/** The fixture builder's attribute specs as IR attributes (what the frontend would produce). */
export function toIrAttrs(attrs: Record<string, AttrSpec> = {}): Attrs {
  const out: Attrs = {};
  for (const [k, v] of Object.entries(attrs)) {
    if (typeof v === 'number') out[k] = Number.isInteger(v) ? { type: 'int', value: v } : { type: 'float', value: v };
    else if (typeof v === 'string') out[k] = { type: 'string', value: v };
    else if (Array.isArray(v)) {
      if (v.length > 0 && typeof v[0] === 'string') out[k] = { type: 'strings', value: v as string[] };
      else out[k] = (v as number[]).every(Number.isInteger) ? { type: 'ints', value: v as number[] } : { type: 'floats', value: v as number[] };
    } else if ('floats' in v) out[k] = { type: 'floats', value: v.floats };
    else if ('float' in v) out[k] = { type: 'float', value: v.float };
    else out[k] = { type: 'tensor', value: makeConst(v.tensor.dtype, v.tensor.shape, Array.from(v.tensor.data as ArrayLike<number>, Number)) };
  }
  return out;
}

export interface GpuRunOptions {
  /** the layout-selection decision handed to lowering (texture: the 2.5D texture variant) */
  weightLayout?: WeightLayout;
  limits?: TargetLimits;
  /** the device profile's kernel variants (default: none, as for llvmpipe) */
  kernelChoices?: KernelChoices;
  /** receives the kernels lowering emitted (to assert which variant ran) */
  onKernels?: (kernels: readonly KernelSpec[]) => void;
}

/** Runs the node on the GPU through the op's lowering. */
export async function runNodeOnGpu(c: SingleNodeCase, options: GpuRunOptions = {}): Promise<NodeResult[]> {
  const opset = c.opset ?? 17;
  const nOut = c.outputs?.length ?? 1;
  const node: Node = {
    name: 'node', opType: c.opType, domain: '',
    inputs: c.inputs.map((inp, i) => (inp.omitted ? '' : `in${i}`)),
    outputs: Array.from({ length: nOut }, (_, i) => `out${i}`),
    attrs: toIrAttrs(c.attrs),
  };
  const def = opFor(node, opset);
  const consts: (ConstTensor | undefined)[] = c.inputs.map((inp) =>
    inp.constant && !inp.omitted ? makeConst(inp.dtype, inp.shape, inp.data) : undefined);
  const inputTypes = c.inputs.map((inp) => (inp.omitted ? undefined : { dtype: inp.dtype, shape: inp.shape }));
  const outTypes = def.inferTypes({ node, opset, inputs: inputTypes, consts });
  const inputs: (LowerTensor | undefined)[] = c.inputs.map((inp, i) =>
    inp.omitted ? undefined : { id: `in${i}`, type: inputTypes[i]!, data: consts[i] });
  const outputs: LowerTensor[] = outTypes.map((t, i) => ({ id: `out${i}`, type: t }));
  if (def.view) return [{ type: outTypes[0]!, data: hostTyped(outTypes[0]!, c.inputs[0]!.data) }];

  const kernels: KernelSpec[] = [];
  const extra: LowerTensor[] = [];
  const ctx: LowerContext = {
    node, opset, inputs, outputs, limits: options.limits ?? DEFAULT_LIMITS, weightLayout: options.weightLayout, kernelChoices: options.kernelChoices,
    kernel: (k) => kernels.push(k),
    constant: (label, t) => { const lt = { id: `const_${extra.length}_${label}`, type: { dtype: t.dtype, shape: t.shape }, data: t }; extra.push(lt); return lt; },
    textureConstant: (label, texture, texels) => {
      const lt: LowerTensor = { id: `texture_${extra.length}_${label}`, type: { dtype: 'float32', shape: [texels.length] }, data: { dtype: 'float32', shape: [texels.length], data: texels }, texture };
      extra.push(lt);
      return lt;
    },
    scratch: (label, type) => { const lt = { id: `scratch_${extra.length}_${label}`, type }; extra.push(lt); return lt; },
  };
  def.lower!(ctx);
  options.onKernels?.(kernels);

  const uploads: Upload[] = [
    ...c.inputs.flatMap((inp, i) => (inp.omitted ? [] : [{ tensor: inputs[i]!, data: inp.data }])),
    ...extra.flatMap((t) => (t.data ? [{ tensor: t, data: t.data.data as ArrayLike<number> }] : [])),
  ];
  const gpu = await prepareKernels(kernels, uploads);
  try {
    const data = await gpu.run(outputs);
    return outputs.map((o, i) => ({ type: o.type, data: data[i]! }));
  } finally {
    gpu.destroy();
  }
}

/** Runs the same node on onnxruntime-node; returns outputs as plain number arrays with dims. */
export async function runNodeOnOrt(c: SingleNodeCase): Promise<{ dims: number[]; data: number[] }[]> {
  const nOut = c.outputs?.length ?? 1;
  const outDtypes = c.outputs ?? ['float32'];
  const model = buildModel({
    opset: c.opset ?? 17,
    inputs: c.inputs.flatMap((inp, i) => (inp.constant || inp.omitted ? [] : [{ name: `in${i}`, dtype: inp.dtype, shape: inp.shape }])),
    outputs: Array.from({ length: nOut }, (_, i) => ({ name: `out${i}`, dtype: outDtypes[i]! })),
    initializers: c.inputs.flatMap((inp, i) => (inp.constant && !inp.omitted ? [{ name: `in${i}`, dtype: inp.dtype, shape: inp.shape, data: inp.data }] : [])),
    nodes: [{ opType: c.opType, inputs: c.inputs.map((inp, i) => (inp.omitted ? '' : `in${i}`)), outputs: Array.from({ length: nOut }, (_, i) => `out${i}`), attrs: c.attrs }],
  });
  const feeds = Object.fromEntries(c.inputs.flatMap((inp, i) => (inp.constant || inp.omitted ? [] : [[`in${i}`, inp]])));
  const out = await runOrt(model, feeds);
  return Array.from({ length: nOut }, (_, i) => {
    const t = out[`out${i}`]!;
    return { dims: t.dims, data: Array.from(t.data as ArrayLike<number | bigint>, Number) };
  });
}

/** max |a-b| / (atol + rtol*|b|) style check; returns the worst violation ratio (<= 1 passes). */
export function maxViolation(actual: ArrayLike<number>, expected: ArrayLike<number>, rtol = 1e-3, atol = 1e-3): number {
  if (actual.length !== expected.length) return Infinity;
  let worst = 0;
  for (let i = 0; i < expected.length; i++) {
    const a = actual[i]!, e = expected[i]!;
    if (Number.isNaN(e) && Number.isNaN(a)) continue;
    if (e === a) continue;
    const v = Math.abs(a - e) / (atol + rtol * Math.abs(e));
    if (!(v <= worst)) worst = Number.isNaN(v) ? Infinity : v;
  }
  return worst;
}

/** Asserts the GPU result of `c` matches onnxruntime-node within tolerance, shape included. */
export async function expectMatchesOrt(c: SingleNodeCase, rtol = 1e-3, atol = 1e-3, gpuOptions: GpuRunOptions = {}): Promise<void> {
  const [gpu, ref] = await Promise.all([runNodeOnGpu(c, gpuOptions), runNodeOnOrt(c)]);
  for (let i = 0; i < ref.length; i++) {
    const g = gpu[i]!, r = ref[i]!;
    if (JSON.stringify(g.type.shape) !== JSON.stringify(r.dims)) {
      throw new Error(`${c.opType} output ${i}: shape [${g.type.shape}] != onnxruntime [${r.dims}]`);
    }
    const v = maxViolation(g.data, r.data, rtol, atol);
    if (v > 1) {
      throw new Error(`${c.opType} output ${i}: mismatch (violation ${v.toFixed(2)}x tolerance)\n gpu: ${Array.from(g.data.slice(0, 8))}\n ref: ${r.data.slice(0, 8)}`);
    }
  }
}

/** Asserts fn throws a FlashmemError with `code` (and a message matching `pattern`). */
export function expectFlashmemError(fn: () => unknown, code: string, pattern?: RegExp): void {
  let error: unknown;
  try {
    fn();
  } catch (e) {
    error = e;
  }
  if (!(error instanceof FlashmemError)) throw new Error(`expected a FlashmemError ${code}, got ${String(error)}`);
  if (error.code !== code) throw new Error(`expected ${code}, got ${error.code}: ${error.message}`);
  if (pattern && !pattern.test(error.message)) throw new Error(`message ${JSON.stringify(error.message)} does not match ${pattern}`);
}
