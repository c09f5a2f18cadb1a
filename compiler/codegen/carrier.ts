/**
 * Kernel rewriting for streaming (FlashMem's carrier kernels): a kernel that carries weight
 * loads gets, in the same dispatch, a copy of its assigned chunks from the staging ring into
 * their destination. Every invocation of the dispatch runs the same branch-free strided copy
 * loop before its own work (no thread takes a different role, so there is no divergence); the
 * copy is memory traffic the kernel's own compute hides, up to the kernel's load capacity.
 *
 * The rewrite is textual on our own generated WGSL: the original entry point becomes a helper
 * function and a new entry point with the same workgroup size runs the copy, then calls it.
 */
import { fail } from '../errors.js';
import { u } from './wgsl.js';

export interface CarriedCopy {
  /** u32 word offsets relative to the bound ring / destination ranges */
  srcWord: number;
  dstWord: number;
  words: number;
}

export interface CarrierRewrite {
  wgsl: string;
  /** binding indices the rewrite added: the staging ring range, then the destination range */
  ringBinding: number;
  destinationBinding: number;
}

const ENTRY = /@compute\s+@workgroup_size\(([^)]*)\)\s*fn\s+main\s*\(([^)]*)\)/;

export function rewriteAsCarrier(wgsl: string, workgroups: readonly [number, number, number], bindingCount: number, copies: readonly CarriedCopy[]): CarrierRewrite {
  const m = ENTRY.exec(wgsl);
  if (!m) fail('FM_LIMIT', 'internal: kernel has no recognisable entry point to rewrite as a carrier');
  const size = m[1]!.split(',').map((s) => Number(s.trim().replace(/u$/, '')));
  const [sx = 1, sy = 1, sz = 1] = size;
  const params = m[2]!.trim();
  const gidName = /@builtin\(global_invocation_id\)\s+(\w+)/.exec(params)?.[1];
  const entryParams = gidName ? params : [params, '@builtin(global_invocation_id) fm_gid: vec3<u32>'].filter(Boolean).join(', ');
  const gid = gidName ?? 'fm_gid';
  const args = [...params.matchAll(/(\w+)\s*:\s*[\w<>]+/g)].map((p) => p[1]).join(', ');
  const helperParams = params.replace(/@builtin\([^)]*\)\s*/g, '');

  const rowThreads = workgroups[0] * sx;
  const planeThreads = rowThreads * workgroups[1] * sy;
  const totalThreads = planeThreads * workgroups[2] * sz;
  const ring = bindingCount;
  const destination = bindingCount + 1;
  const loops = copies.map((c) =>
    `  for (var j = t; j < ${u(c.words)}; j += ${u(totalThreads)}) { fm_dst[${u(c.dstWord)} + j] = fm_ring[${u(c.srcWord)} + j]; }`).join('\n');

  const body = wgsl.replace(ENTRY, `fn fm_compute(${helperParams})`);
  const rewritten = `${body}
@group(0) @binding(${ring}) var<storage, read_write> fm_ring: array<u32>;
@group(0) @binding(${destination}) var<storage, read_write> fm_dst: array<u32>;

@compute @workgroup_size(${m[1]})
fn main(${entryParams}) {
  let t = ${gid}.x + ${gid}.y * ${u(rowThreads)} + ${gid}.z * ${u(planeThreads)};
${loops}
  fm_compute(${args});
}
`;
  return { wgsl: rewritten, ringBinding: ring, destinationBinding: destination };
}
