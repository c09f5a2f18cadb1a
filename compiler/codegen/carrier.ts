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
  /** u32 word offset inside the bound staging-ring range */
  srcWord: number;
  /** words to copy into this copy's own destination binding (from its start) */
  words: number;
}

export interface CarrierRewrite {
  wgsl: string;
  /** binding index of the staging-ring range; destination i is bound at ringBinding + 1 + i */
  ringBinding: number;
}

const ENTRY_START = /@compute\s+@workgroup_size\(([^)]*)\)\s*fn\s+main\s*\(/;

/** The entry point's header: workgroup size text, parameter list (balanced parentheses) and extent. */
function parseEntry(wgsl: string): { size: string; params: string; start: number; end: number } {
  const m = ENTRY_START.exec(wgsl);
  if (!m) fail('FM_LIMIT', 'internal: kernel has no recognisable entry point to rewrite as a carrier');
  let depth = 1;
  let i = m.index + m[0].length;
  const paramsStart = i;
  for (; i < wgsl.length && depth > 0; i++) {
    if (wgsl[i] === '(') depth++;
    else if (wgsl[i] === ')') depth--;
  }
  return { size: m[1]!, params: wgsl.slice(paramsStart, i - 1), start: m.index, end: i };
}

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

export function rewriteAsCarrier(wgsl: string, workgroups: readonly [number, number, number], bindingCount: number, copies: readonly CarriedCopy[]): CarrierRewrite {
  const entry = parseEntry(wgsl);
  const m = [undefined, entry.size, entry.params] as const;
  const size = m[1].split(',').map((s) => Number(s.trim().replace(/u$/, '')));
  const [sx = 1, sy = 1, sz = 1] = size;
  const params = m[2].trim();
  const gidName = /@builtin\(global_invocation_id\)\s+(\w+)/.exec(params)?.[1];
  const entryParams = gidName ? params : [params, '@builtin(global_invocation_id) fm_gid: vec3<u32>'].filter(Boolean).join(', ');
  const gid = gidName ?? 'fm_gid';
  const args = [...params.matchAll(/(\w+)\s*:\s*[\w<>]+/g)].map((p) => p[1]).join(', ');
  const helperParams = params.replace(/@builtin\([^)]*\)\s*/g, '');

  const rowThreads = workgroups[0] * sx;
  const planeThreads = rowThreads * workgroups[1] * sy;
  const totalThreads = planeThreads * workgroups[2] * sz;
  const ring = bindingCount;
  const destinations = copies.map((_, i) => `@group(0) @binding(${ring + 1 + i}) var<storage, read_write> fm_dst${i}: array<u32>;`).join('\n');
  checkPacked(copies);
  // sizes and ring offsets come from the bindings (arrayLength), not constants: one carrier variant
  // serves every call of a kernel that carries as many pieces, whatever their sizes (a joint
  // program of many calls would otherwise compile thousands of distinct shaders)
  const loops = copies.map((_, i) => [
    `  n = arrayLength(&fm_dst${i});`,
    `  for (var j = t; j < n; j += ${u(totalThreads)}) { fm_dst${i}[j] = fm_ring[src + j]; }`,
    `  src += (n + ${u(RING_ALIGN_WORDS - 1)}) / ${u(RING_ALIGN_WORDS)} * ${u(RING_ALIGN_WORDS)};`,
  ].join('\n')).join('\n');

  const body = `${wgsl.slice(0, entry.start)}fn fm_compute(${helperParams})${wgsl.slice(entry.end)}`;
  const rewritten = `${body}
@group(0) @binding(${ring}) var<storage, read_write> fm_ring: array<u32>;
${destinations}

@compute @workgroup_size(${entry.size})
fn main(${entryParams}) {
  let t = ${gid}.x + ${gid}.y * ${u(rowThreads)} + ${gid}.z * ${u(planeThreads)};
  var src = 0u;
  var n = 0u;
${loops}
  fm_compute(${args});
}
`;
  return { wgsl: rewritten, ringBinding: ring };
}
