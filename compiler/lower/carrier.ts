/**
 * Kernel rewriting for streaming (FlashMem's carrier kernels): a kernel that carries weight
 * loads gets, in the same dispatch, a copy of its assigned chunks from the staging ring into
 * their destination. Every invocation of the dispatch runs the same branch-free strided copy
 * loop before its own work (no thread takes a different role, so there is no divergence); the
 * copy is memory traffic the kernel's own compute hides, up to the kernel's load capacity.
 *
 * The carrier is built from the kernel's parts (KernelSource), never by reading its WGSL: the
 * original entry point becomes the helper function `fm_compute`, and a new entry point with the
 * same workgroup size runs the copy, then calls it. The ring and destination bindings are declared
 * as every kernel binding is (kernel/tensor.ts storageDeclaration), after the kernel's own.
 */
import { fail } from '../errors.js';
import { renderKernel } from '../kernel/builder.js';
import { storageDeclaration } from '../kernel/tensor.js';
import type { EntryParam, KernelSource, ShaderCode } from '../kernel/types.js';
import { u } from '../kernel/wgsl.js';

export interface CarriedCopy {
  /** u32 word offset inside the bound staging-ring range */
  srcWord: number;
  /** words to copy into this copy's own destination binding (from its start) */
  words: number;
}

export interface CarrierRewrite extends ShaderCode {
  /** binding index of the staging-ring range; destination i is bound at ringBinding + 1 + i */
  ringBinding: number;
}

/** The kernel to rewrite: its parts and shader metadata, dispatch size and binding count. */
export interface CarrierInput extends ShaderCode {
  source: KernelSource;
  workgroups: readonly [number, number, number];
  bindings: readonly unknown[];
}

const FM_GID: EntryParam = { builtin: 'global_invocation_id', name: 'fm_gid', type: 'vec3<u32>' };

/** pieces staged in the ring start at 256-byte boundaries (the schedule's placement alignment) */
const RING_ALIGN_WORDS = 64;

/** The kernel finds each piece in the ring from the sizes of the ones before it: they must be packed so. */
function checkPacked(copies: readonly CarriedCopy[]): void {
  let expected = 0;
  for (const c of copies) {
    if (c.srcWord !== expected) fail('FM_LIMIT', `internal: carried pieces are not packed in the staging ring (word ${c.srcWord}, expected ${expected})`);
    expected += Math.ceil(c.words / RING_ALIGN_WORDS) * RING_ALIGN_WORDS;
  }
}

export function rewriteAsCarrier(kernel: CarrierInput, copies: readonly CarriedCopy[]): CarrierRewrite {
  const { source, workgroups } = kernel;
  const [sx, sy, sz] = kernel.workgroupSize;
  const gid = source.params.find((p) => p.builtin === 'global_invocation_id');
  const params = gid ? source.params : [...source.params, FM_GID];
  const args = source.params.map((p) => p.name).join(', ');
  const helperParams = source.params.map((p) => `${p.name}: ${p.type}`).join(', ');

  const rowThreads = workgroups[0] * sx;
  const planeThreads = rowThreads * workgroups[1] * sy;
  const totalThreads = planeThreads * workgroups[2] * sz;
  const ring = kernel.bindings.length;
  const destinations = copies.map((_, i) => storageDeclaration(ring + 1 + i, `fm_dst${i}`, 'u32')).join('\n');
  checkPacked(copies);
  // sizes and ring offsets come from the bindings (arrayLength), not constants: one carrier variant
  // serves every call of a kernel that carries as many pieces, whatever their sizes (a joint
  // program of many calls would otherwise compile thousands of distinct shaders)
  const loops = copies.map((_, i) => [
    `  n = arrayLength(&fm_dst${i});`,
    `  for (var j = t; j < n; j += ${u(totalThreads)}) { fm_dst${i}[j] = fm_ring[src + j]; }`,
    `  src += (n + ${u(RING_ALIGN_WORDS - 1)}) / ${u(RING_ALIGN_WORDS)} * ${u(RING_ALIGN_WORDS)};`,
  ].join('\n')).join('\n');

  const helper = `${source.header}fn fm_compute(${helperParams}) {${source.body}}${source.trailer}`;
  const carrier: KernelSource = {
    header: `${helper}\n${storageDeclaration(ring, 'fm_ring', 'u32')}\n${destinations}\n\n`,
    workgroupSize: source.workgroupSize,
    params,
    body: `\n  let t = ${(gid ?? FM_GID).name}.x + ${(gid ?? FM_GID).name}.y * ${u(rowThreads)} + ${(gid ?? FM_GID).name}.z * ${u(planeThreads)};\n  var src = 0u;\n  var n = 0u;\n${loops}\n  fm_compute(${args});\n`,
    trailer: '\n',
  };
  return { wgsl: renderKernel(carrier), workgroupSize: kernel.workgroupSize, workgroupBytes: kernel.workgroupBytes, ringBinding: ring };
}
