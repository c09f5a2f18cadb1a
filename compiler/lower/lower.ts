/**
 * Lowers the optimised graph to a kernel program: each node's OpDef emits shape-specialised
 * WGSL kernels; view ops (Reshape, Squeeze...) emit nothing and alias their input's storage.
 */
import { FlashmemError, fail, quoteName } from '../errors.js';
import { describeNode, valueOf } from '../ir/graph.js';
import type { ConstTensor, Graph, Node, TensorType } from '../ir/types.js';
import { numElements } from '../ir/types.js';
import { opFor } from '../ops/index.js';
import type { KernelChoices, TargetLimits } from '../target/limits.js';
import type { KernelSpec, LowerTensor, TextureShape } from '../kernel/types.js';
import type { LowerContext } from '../ops/op.js';
import type { LayoutDecisions } from '../ops/op.js';
import { textureBytes } from '../kernel/texture-layout.js';
import { checkKernelLimits, GPU_ELEMENT_BYTES } from '../kernel/limits.js';
import { gatherPlan, planKernel } from '../ops/movement/plan.js';
import { storageRoot, type KernelProgram, type ProgramTensor, type TensorRole } from './program.js';

export function lowerGraph(graph: Graph, limits: TargetLimits, layouts?: LayoutDecisions, kernelChoices?: KernelChoices, readOnlyWeights = false): KernelProgram {
  const program: KernelProgram = { tensors: new Map(), kernels: [], inputs: [...graph.inputs], outputs: [...graph.outputs] };
  const addTensor = (id: string, type: TensorType, role: TensorRole, data?: ConstTensor, aliasOf?: string, texture?: TextureShape) => {
    const bytes = texture ? textureBytes(texture) : numElements(type.shape) * GPU_ELEMENT_BYTES;
    const t: ProgramTensor = { id, type, role, data, aliasOf, bytes, ...(texture ? { texture } : {}) };
    program.tensors.set(id, t);
    return t;
  };
  for (const name of graph.inputs) addTensor(name, valueOf(graph, name).type, 'input');
  for (const [name, value] of graph.values) if (value.data) addTensor(name, value.type, 'weight', value.data);

  for (const node of graph.nodes) {
    const def = opFor(node, graph.opset);
    const inputs = node.inputs.map((name) => (name ? lowerTensor(graph, name, node, readOnlyWeights && isBufferWeight(program, name)) : undefined));
    const outputs = node.outputs.map((name) => (name ? lowerTensor(graph, name, node, false) : placeholder(node)));
    if (def.view) {
      addTensor(outputs[0]!.id, outputs[0]!.type, 'activation', undefined, inputs[0]!.id);
      continue;
    }
    for (const out of outputs) if (out.id) addTensor(out.id, out.type, 'activation');
    // a node whose outputs are all empty computes nothing: no kernel (one would bind empty tensors)
    if (outputs.every((out) => numElements(out.type.shape) === 0)) continue;
    if (!def.lower) fail('FM_UNSUPPORTED_OP', `node ${quoteName(node.name)} (${node.opType}): its value must be a compile-time constant`);
    const ctx = lowerContext(node, graph.opset, inputs, outputs, limits, program, addTensor, def.costClass, layouts?.get(node.name)?.layout, kernelChoices, readOnlyWeights);
    try {
      def.lower(ctx);
    } catch (e) {
      if (e instanceof FlashmemError) throw e;
      throw new FlashmemError('FM_ONNX_INVALID', `lowering node ${quoteName(node.name)} (${node.opType}) failed: ${(e as Error).message}`, { cause: e });
    }
  }
  return program;
}

/**
 * WebGPU forbids two writable bindings of overlapping ranges in one dispatch, and every storage
 * binding of a kernel may be writable: a kernel that binds one storage twice (a template that
 * names its operands, e.g. MatMul(x, x), or two views of one tensor) gets a copy of each repeated
 * input instead, made by a copy kernel just before it. Templates that can, bind a repeated operand
 * once (KernelBuilder.bindOnce); this is the fallback that keeps every other template legal.
 */
function withDistinctStorage(
  spec: KernelSpec, node: Node, program: KernelProgram,
  scratch: (label: string, type: TensorType) => LowerTensor, emit: (copy: KernelSpec) => void,
): KernelSpec {
  const seen = new Set<string>();
  const outputs = new Set(node.outputs);
  let bindings: LowerTensor[] | undefined;
  spec.bindings.forEach((b, i) => {
    if (b.texture || !program.tensors.has(b.id)) return;
    const root = storageRoot(program, b.id).id;
    // two read-only storage bindings of one range are legal (WebGPU forbids aliasing writable ones)
    if (!seen.has(root) || b.readOnly) {
      seen.add(root);
      return;
    }
    // only inputs are copied: a kernel writing one storage through two bindings is a template bug
    if (outputs.has(b.id) || program.tensors.get(b.id)!.role === 'scratch') {
      throw new Error(`kernel ${spec.label} binds the storage of ${b.id} twice, and writes it`);
    }
    const copy = scratch('distinct', b.type);
    emit(planKernel('copy_distinct', gatherPlan([numElements(b.type.shape)], [{ kind: 'linear', coef: 1 }]), b, copy));
    bindings ??= [...spec.bindings];
    bindings[i] = copy;
  });
  return bindings ? { ...spec, bindings } : spec;
}

/**
 * A tensor whose storage is a buffer weight (itself or through views): with readOnlyWeights every
 * binding of the weights buffer is read-only, so no dispatch mixes read-only and writable
 * bindings of it (WebGPU's usage-scope rule).
 */
function isBufferWeight(program: KernelProgram, id: string): boolean {
  if (!program.tensors.has(id)) return false;
  const root = storageRoot(program, id);
  return root.role === 'weight' && !root.texture;
}

function lowerTensor(graph: Graph, name: string, node: Node, readOnly: boolean): LowerTensor {
  const v = valueOf(graph, name, node);
  return { id: name, type: v.type, data: v.data, ...(readOnly ? { readOnly: true } : {}) };
}

/** An omitted optional output: ops must not bind it. */
function placeholder(node: Node): LowerTensor {
  return { id: '', type: { dtype: 'float32', shape: [0] }, data: undefined, toString: () => `omitted output of ${node.name}` } as LowerTensor;
}

function lowerContext(
  node: Node, opset: number, inputs: (LowerTensor | undefined)[], outputs: LowerTensor[], limits: TargetLimits,
  program: KernelProgram,
  addTensor: (id: string, type: TensorType, role: TensorRole, data?: ConstTensor, aliasOf?: string, texture?: TextureShape) => ProgramTensor,
  costClass: KernelProgram['kernels'][number]['costClass'], weightLayout: LowerContext['weightLayout'], kernelChoices: KernelChoices | undefined,
  readOnlyWeights: boolean,
): LowerContext {
  let derived = 0;
  const freshId = (kind: string, label: string) => {
    let id: string;
    do id = `${node.name}::${kind}${derived++}:${label}`;
    while (program.tensors.has(id));
    return id;
  };
  const ctx: LowerContext = {
    node, opset, inputs, outputs, limits, activation: node.fusedActivation, weightLayout, kernelChoices,
    kernel(built: KernelSpec) {
      const spec = withDistinctStorage(built, node, program, (label, type) => ctx.scratch(label, type), (copy) => ctx.kernel(copy));
      for (const b of spec.bindings) {
        if (!b.id || !program.tensors.has(b.id)) throw new Error(`kernel ${spec.label} binds an unknown tensor`);
        // WebGPU has no empty storage bindings; refused here, the runtime would refuse the bundle
        if (program.tensors.get(b.id)!.bytes === 0) {
          fail('FM_SHAPE', `${describeNode(node)}: kernel ${spec.label} would bind the zero-size tensor ${quoteName(b.id)}; flashmemc runs no kernel on empty tensors`);
        }
      }
      checkKernelLimits(describeNode(node), spec, limits);
      program.kernels.push({
        label: spec.label, wgsl: spec.wgsl, workgroupSize: spec.workgroupSize, workgroupBytes: spec.workgroupBytes, source: spec.source,
        bindings: spec.bindings.map((b) => b.id), readOnly: spec.readOnly, workgroups: spec.workgroups,
        node: node.name, opType: node.opType, costClass,
      });
    },
    constant(label, tensor) {
      const t = addTensor(freshId('const', label), { dtype: tensor.dtype, shape: [...tensor.shape] }, 'weight', tensor);
      return { id: t.id, type: t.type, data: tensor, ...(readOnlyWeights ? { readOnly: true } : {}) };
    },
    textureConstant(label, shape, texels) {
      const data: ConstTensor = { dtype: 'float32', shape: [texels.length], data: texels };
      const t = addTensor(freshId('texture', label), { dtype: 'float32', shape: [texels.length] }, 'weight', data, undefined, shape);
      return { id: t.id, type: t.type, data, texture: shape };
    },
    scratch(label, type) {
      const t = addTensor(freshId('scratch', label), type, 'scratch');
      return { id: t.id, type: t.type };
    },
  };
  return ctx;
}
