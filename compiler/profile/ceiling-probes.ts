/**
 * Kernels that measure what the device itself can do, so that every kernel's figure can be read
 * as a fraction of a limit (bench:kernels): a streaming read of a large buffer (bytes/s), a
 * register-resident f32 FMA loop (FLOP/s) and, where the adapter has subgroup matrices, a
 * register-resident f16 multiply-accumulate loop (tensor-core FLOP/s). Each writes its result
 * only under a condition the data never meets, so the work cannot be optimised away.
 */
import { u } from '../kernel/wgsl.js';
import { kernel, GID, LID, WID } from '../kernel/builder.js';
import type { KernelSpec, LowerTensor } from '../kernel/types.js';

const PROBE_WORKGROUP = 256;

/** Reads `source` (vec4 f32, `vec4s` of them) once: each invocation sums `perThread` vec4s strided by the grid. */
export function readProbe(source: LowerTensor, sink: LowerTensor, vec4s: number, perThread = 16): KernelSpec {
  const threads = vec4s / perThread;
  const k = kernel('probe_read');
  k.bind('src', source, 'vec4<f32>');
  k.bind('sink', sink, 'vec4<f32>');
  const body = [
    'let i = gid.x + gid.y * ' + u(65535 * PROBE_WORKGROUP) + ';',
    'var s = vec4<f32>();',
    ...Array.from({ length: perThread }, (_, t) => `s += src[i + ${u(t * threads)}];`),
    'if (s.x == 1234.5678) { sink[0] = s; }',
  ];
  const groups = threads / PROBE_WORKGROUP;
  return k.build({ entry: { workgroupSize: PROBE_WORKGROUP, params: [GID], body: body.join('\n  ') }, workgroups: [Math.min(groups, 65535), Math.ceil(groups / 65535), 1] });
}

/** FLOPs of one fmaProbe dispatch */
export const fmaProbeFlops = (workgroups: number, iterations: number) => workgroups * PROBE_WORKGROUP * iterations * 8 * 4 * 2;

/** `iterations` trips of 32 FMAs per invocation: 8 independent vec4 chains, or 32 scalar ones. */
export function fmaProbe(params: LowerTensor, sink: LowerTensor, workgroups: number, iterations: number, scalar = false): KernelSpec {
  const k = kernel('probe_fma');
  k.bind('params', params, 'vec4<f32>');
  k.bind('sink', sink, 'vec4<f32>');
  const chains = Array.from({ length: scalar ? 32 : 8 }, (_, c) => c);
  const type = scalar ? 'f32' : 'vec4<f32>';
  const body = [
    scalar ? 'let m = params[0].x; let c = params[1].x;' : 'let m = params[0]; let c = params[1];',
    ...chains.map((i) => `var x${i} = ${type}(f32(lid.x) + ${i}.0);`),
    `for (var t = 0u; t < ${u(iterations)}; t++) {`,
    // a * b + c, which the driver fuses into one FMA (fma() itself may be lowered with stricter rounding)
    ...chains.map((i) => `  x${i} = x${i} * m + c;`),
    '}',
    `let s = ${chains.map((i) => `x${i}`).join(' + ')};`,
    scalar ? 'if (s == 1234.5678) { sink[wid.x] = vec4<f32>(s); }' : 'if (s.x == 1234.5678) { sink[wid.x] = s; }',
  ];
  return k.build({ entry: { workgroupSize: PROBE_WORKGROUP, params: [WID, LID], body: body.join('\n  ') }, workgroups: [workgroups, 1, 1] });
}

/** FLOPs of one mmaProbe dispatch: 4 chains of 16x16x16 multiply-accumulates per subgroup and trip */
export const mmaProbeFlops = (workgroups: number, subgroupsPerWorkgroup: number, iterations: number) => workgroups * subgroupsPerWorkgroup * iterations * 4 * 16 * 16 * 16 * 2;

/** f16 subgroup-matrix multiply-accumulate loop, operands in registers (workgroup_size(32, subgroups)). */
export function mmaProbe(operands: LowerTensor, sink: LowerTensor, workgroups: number, subgroups: number, iterations: number): KernelSpec {
  const k = kernel('probe_mma_f16');
  k.bind('ops', operands, 'f16');
  k.bind('sink', sink, 'f32');
  const left = 'subgroup_matrix_left<f16, 16, 16>', right = 'subgroup_matrix_right<f16, 16, 16>', result = 'subgroup_matrix_result<f32, 16, 16>';
  const chains = [0, 1, 2, 3];
  const body = [
    `let l = subgroupMatrixLoad<${left}>(&ops, 0u, false, 16u);`,
    `let r = subgroupMatrixLoad<${right}>(&ops, 256u, false, 16u);`,
    ...chains.map((c) => `var acc${c} = ${result}();`),
    `for (var t = 0u; t < ${u(iterations)}; t++) {`,
    ...chains.map((c) => `  acc${c} = subgroupMatrixMultiplyAccumulate(l, r, acc${c});`),
    '}',
    // the sink is one 16 x 16 matrix per workgroup slot; the stores are what keeps the loop alive
    ...chains.map((c) => `subgroupMatrixStore(&sink, (wid.x % 64u) * 256u, acc${c}, false, 16u);`),
  ];
  return k.build({
    extensions: ['f16', 'chromium_experimental_subgroup_matrix'],
    entry: { workgroupSize: [32, subgroups], params: [WID, LID], body: body.join('\n  ') },
    workgroups: [workgroups, 1, 1],
  });
}
