import { describe, expect, it } from 'vitest';
import { pinSharedWeights } from '../../compiler/schedule/pin-shared.js';
import { jointProgram } from '../../compiler/schedule/sequence.js';
import type { KernelProgram, ProgramTensor } from '../../compiler/lower/program.js';

const KIB = 1024;

/** x -> k0(w0) -> h -> k1(w1) -> y, with weights of the given sizes */
function model(w0Bytes: number, w1Bytes: number): KernelProgram {
  const tensor = (id: string, role: ProgramTensor['role'], bytes: number): ProgramTensor => ({
    id, role, bytes, type: { dtype: 'float32', shape: [bytes / 4] },
    ...(role === 'weight' ? { data: { dtype: 'float32', shape: [bytes / 4], data: new Float32Array(bytes / 4) } } : {}),
  });
  const tensors = [tensor('x', 'input', KIB), tensor('w0', 'weight', w0Bytes), tensor('h', 'activation', KIB), tensor('w1', 'weight', w1Bytes), tensor('y', 'activation', KIB)];
  const kernel = (bindings: string[]) => ({ label: 'k', wgsl: '', bindings, workgroups: [1, 1, 1] as [number, number, number], node: 'n', opType: 'MatMul', costClass: 'reusable' as const });
  return { tensors: new Map(tensors.map((t) => [t.id, t])), kernels: [kernel(['x', 'w0', 'h']), kernel(['h', 'w1', 'y'])], inputs: ['x'], outputs: ['y'] };
}

function lifetimes(p: KernelProgram) {
  const spans = new Map<string, { first: number; last: number }>();
  p.kernels.forEach((k, i) => k.bindings.forEach((id) => {
    const s = spans.get(id);
    spans.set(id, s ? { first: s.first, last: i } : { first: i, last: i });
  }));
  return spans;
}

describe('pinning weights shared by the calls of a joint program', () => {
  const joint = jointProgram(['a', 'b', 'a', 'a'], new Map([['a', model(4 * KIB, 64 * KIB)], ['b', model(8 * KIB, 8 * KIB)]]));
  const options = (budgetBytes: number) => ({ budgetBytes, activationBytes: joint.kernels.map(() => 2 * KIB), lifetimes: lifetimes(joint), copyCost: { fixedMs: 0.01, bytesPerMs: 1e6 } });

  it('binds one copy of a weight used by several calls, the most used and smallest first, within the budget', () => {
    // room for a's small w0 (3 calls) but not also a's 64 KiB w1 next to b's weights in use
    const { program, pinned, pinnedBytes } = pinSharedWeights(joint, options(100 * KIB));
    expect([...pinned]).toEqual(['0/w0']);
    expect(pinnedBytes).toBe(4 * KIB);
    expect(program.tensors.has('2/w0')).toBe(false);
    expect(program.tensors.has('3/w0')).toBe(false);
    const callOfKernel = (i: number) => program.calls!.findIndex((c) => i >= c.firstKernel && i <= c.lastKernel);
    const w0Users = program.kernels.flatMap((k, i) => (k.bindings.includes('0/w0') ? [callOfKernel(i)] : []));
    expect(w0Users).toEqual([0, 2, 3]);
    // call 1 (model b) and the unpinned w1 keep their own copies
    expect(program.tensors.has('2/w1')).toBe(true);
  });

  it('pins nothing when the budget has no room beyond what streaming needs, and everything when it has', () => {
    expect(pinSharedWeights(joint, options(70 * KIB)).pinned.size).toBe(0);
    const roomy = pinSharedWeights(joint, options(1024 * KIB));
    expect([...roomy.pinned].sort()).toEqual(['0/w0', '0/w1']);
    expect(roomy.program.tensors.size).toBe(joint.tensors.size - 4);
  });
});
