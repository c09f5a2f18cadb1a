/**
 * Joint programs for multi-model bundles: the kernel programs of a declared call sequence (e.g.
 * a, b, c, b) concatenated into one program, so that one memory plan and one load plan span the
 * model boundaries: activations of different calls share arena bytes, and the next model's first
 * weights can be carried by the previous model's last kernels.
 */
import { fail, quoteName } from '../errors.js';
import type { KernelProgram, ProgramCall, ProgramTensor } from '../lower/program.js';

/** Tensor ids of call `index` in the joint program: unique per call, readable in dumps and stats. */
export function callTensorId(index: number, id: string): string {
  return `${index}/${id}`;
}

/** The joint program of `sequence` (model names, in call order) over the models' own programs. */
export function jointProgram(sequence: readonly string[], programs: ReadonlyMap<string, KernelProgram>): KernelProgram {
  if (sequence.length === 0) fail('FM_BAD_ARGUMENT', '--sequence names no model');
  const tensors = new Map<string, ProgramTensor>();
  const kernels: KernelProgram['kernels'] = [];
  const calls: ProgramCall[] = [];
  sequence.forEach((model, index) => {
    const program = programs.get(model);
    if (!program) fail('FM_BAD_ARGUMENT', `--sequence names model ${quoteName(model)}, which is not among the compiled models (${[...programs.keys()].map(quoteName).join(', ')})`);
    const rename = (id: string) => callTensorId(index, id);
    for (const t of program.tensors.values()) {
      // weights keep their data object: the shard layout stores identical bytes once
      tensors.set(rename(t.id), { ...t, id: rename(t.id), ...(t.aliasOf ? { aliasOf: rename(t.aliasOf) } : {}) });
    }
    const firstKernel = kernels.length;
    for (const k of program.kernels) kernels.push({ ...k, bindings: k.bindings.map(rename), node: `${model}:${k.node}` });
    calls.push({ model, firstKernel, lastKernel: kernels.length - 1, inputs: program.inputs.map(rename), outputs: program.outputs.map(rename) });
  });
  return {
    tensors, kernels, calls,
    inputs: calls.flatMap((c) => c.inputs),
    outputs: calls.flatMap((c) => c.outputs),
  };
}
