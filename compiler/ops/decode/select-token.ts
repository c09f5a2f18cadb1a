/**
 * Token selection on the GPU, one workgroup (every reduction's result reaches the invocations through
 * workgroupUniformLoad, so that all of them take the same decisions: reading the tree's root from
 * workgroup memory directly gave invocations different sums on Mesa llvmpipe): reads one row of logits (the row in the control
 * block), chooses the next token, and advances the control block (token, position + 1, row 0).
 *
 * Greedy (mode 0): the first index of the largest logit, as the host argmax and onnxruntime's
 * reference do (ties keep the lowest index).
 *
 * Sampling (mode 1), deterministic given the seed (the reduction orders are fixed):
 *   1. top-k (0 < k < vocab): the k-th largest logit by radix select over order-preserving u32
 *      keys (32 counting passes); the kept set is every logit above it plus, of those equal to
 *      it, the lowest indices up to k in all: exactly k tokens, so k = 1 is the greedy token.
 *   2. weights w = exp((logit - max) / temperature) over the kept set, Z their sum.
 *   3. top-p (p < 1): the largest key threshold t (bit by bit, 32 passes) whose kept tokens with
 *      key >= t still hold mass >= p * Z: the smallest set of most likely tokens reaching p
 *      (tokens tied at t all stay).
 *   4. u = pcg(seed ^ pcg(position)) / 2^32 (24 bits), position the cache slot of the token whose
 *      logits are read; the token is the first, in index order, whose running sum of the kept
 *      weights exceeds u * (their sum).
 */
import { kernel, LID_INDEX } from '../../kernel/builder.js';
import type { KernelSpec } from '../../kernel/types.js';
import { u } from '../../kernel/wgsl.js';
import { CONTROL_WORDS, controlConstants } from './control.js';

/** one workgroup of this many invocations (WebGPU's default maxComputeInvocationsPerWorkgroup) */
const WG = 256;

export interface SelectTokenPlan {
  vocab: number;
  /** rows of the logits binding: the prefill's prompt length, or 1 */
  rows: number;
}

export function selectTokenKernel(plan: SelectTokenPlan): KernelSpec {
  const k = kernel('decode_select_token');
  k.bind('logits', { id: 'logits', type: { dtype: 'float32', shape: [plan.rows, plan.vocab] } }, 'f32');
  k.bind('control', { id: 'control', type: { dtype: 'uint32', shape: [CONTROL_WORDS] } }, 'u32');
  const header = [
    k.declarations(),
    controlConstants(),
    `const V: u32 = ${u(plan.vocab)};`,
    `const WG: u32 = ${u(WG)};`,
    `const CHUNK: u32 = ${u(Math.ceil(plan.vocab / WG))};`,
    'const NONE: u32 = 0xffffffffu;',
    k.workgroupArray('red_f', 'f32', WG),
    k.workgroupArray('red_u', 'u32', WG),
    'var<workgroup> wg_mode: u32;',
    'var<workgroup> wg_top_k: u32;',
    'var<workgroup> wg_top_p: f32;',
    // reduction results, broadcast with workgroupUniformLoad (a uniform value every invocation agrees on)
    'var<workgroup> wg_u32: u32;',
    'var<workgroup> wg_f32: f32;',
    HELPERS,
  ].join('\n');
  return k.build({ header: `${header}\n`, entry: { workgroupSize: WG, params: [LID_INDEX], body: MAIN }, workgroups: [1, 1, 1] });
}

const HELPERS = `
// IEEE order as unsigned order; -0 counts as +0, so equal floats have equal keys
fn order_key(v: f32) -> u32 {
  var b = bitcast<u32>(v);
  if (b == 0x80000000u) { b = 0u; }
  if ((b & 0x80000000u) != 0u) { return ~b; }
  return b | 0x80000000u;
}

fn pcg(v: u32) -> u32 {
  let s = v * 747796405u + 2891336453u;
  let w = ((s >> ((s >> 28u) + 4u)) ^ s) * 277803737u;
  return (w >> 22u) ^ w;
}

fn sum_u(lid: u32, v: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_u[lid] += red_u[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { wg_u32 = red_u[0]; }
  return workgroupUniformLoad(&wg_u32);
}

fn sum_f(lid: u32, v: f32) -> f32 {
  red_f[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_f[lid] += red_f[lid + s]; }
    workgroupBarrier();
  }
  if (lid == 0u) { wg_f32 = red_f[0]; }
  return workgroupUniformLoad(&wg_f32);
}

fn min_u(lid: u32, v: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_u[lid] = min(red_u[lid], red_u[lid + s]); }
    workgroupBarrier();
  }
  if (lid == 0u) { wg_u32 = red_u[0]; }
  return workgroupUniformLoad(&wg_u32);
}

fn max_u(lid: u32, v: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) { red_u[lid] = max(red_u[lid], red_u[lid + s]); }
    workgroupBarrier();
  }
  if (lid == 0u) { wg_u32 = red_u[0]; }
  return workgroupUniformLoad(&wg_u32);
}

// exclusive prefix sum over the invocations (Hillis-Steele)
fn scan_u(lid: u32, v: u32) -> u32 {
  red_u[lid] = v;
  workgroupBarrier();
  for (var s = 1u; s < WG; s <<= 1u) {
    var add = 0u;
    if (lid >= s) { add = red_u[lid - s]; }
    workgroupBarrier();
    red_u[lid] += add;
    workgroupBarrier();
  }
  let r = red_u[lid] - v;
  workgroupBarrier();
  return r;
}

// prefix sums over the invocations: (exclusive, inclusive, total), the intervals [exclusive, inclusive) tiling [0, total) exactly
fn scan_f(lid: u32, v: f32) -> vec3<f32> {
  red_f[lid] = v;
  workgroupBarrier();
  for (var s = 1u; s < WG; s <<= 1u) {
    var add = 0.0;
    if (lid >= s) { add = red_f[lid - s]; }
    workgroupBarrier();
    red_f[lid] += add;
    workgroupBarrier();
  }
  var before = 0.0;
  if (lid > 0u) { before = red_f[lid - 1u]; }
  let mine = red_f[lid];
  if (lid == 0u) { wg_f32 = red_f[WG - 1u]; }
  return vec3<f32>(before, mine, workgroupUniformLoad(&wg_f32));
}

// the top-k set: keys above kth, and of those equal to it the first \`ties\` in index order (tie: the running count of equal keys before this one)
fn in_top_k(key: u32, kth: u32, ties: u32, tie: u32) -> bool {
  return key > kth || (key == kth && tie < ties);
}

// weight mass of this invocation's chunk of kept tokens with key >= cut
fn chunk_mass(lid: u32, base: u32, max_v: f32, inv_t: f32, kth: u32, ties: u32, tie_base: u32, cut: u32) -> f32 {
  var tie = tie_base;
  var mass = 0.0;
  let end = min(V, (lid + 1u) * CHUNK);
  for (var i = lid * CHUNK; i < end; i++) {
    let v = logits[base + i];
    let key = order_key(v);
    if (in_top_k(key, kth, ties, tie) && key >= cut) { mass += exp((v - max_v) * inv_t); }
    if (key == kth) { tie++; }
  }
  return mass;
}

fn sample(lid: u32, base: u32, max_v: f32, position: u32) -> u32 {
  let inv_t = 1.0 / max(bitcast<f32>(control[C_TEMPERATURE]), 1e-6);
  let seed = control[C_SEED];
  let top_k = workgroupUniformLoad(&wg_top_k);
  let top_p = workgroupUniformLoad(&wg_top_p);
  // 1. top-k by radix select of the k-th largest key
  var kth = 0u;
  var ties = NONE;
  var tie_base = 0u;
  if (top_k > 0u && top_k < V) {
    var need = top_k;
    var prefix = 0u;
    for (var bit = 31i; bit >= 0i; bit--) {
      let b = u32(bit);
      let cand = prefix | (1u << b);
      var count = 0u;
      for (var i = lid; i < V; i += WG) {
        if ((order_key(logits[base + i]) >> b) == (cand >> b)) { count++; }
      }
      let total = sum_u(lid, count);
      if (total >= need) { prefix = cand; } else { need -= total; }
    }
    kth = prefix;
    ties = need;
    var equal = 0u;
    let end = min(V, (lid + 1u) * CHUNK);
    for (var i = lid * CHUNK; i < end; i++) {
      if (order_key(logits[base + i]) == kth) { equal++; }
    }
    tie_base = scan_u(lid, equal);
  }
  // 2-3. top-p: the largest threshold whose kept mass still reaches p of the whole
  var cut = 0u;
  if (top_p < 1.0) {
    let wanted = top_p * sum_f(lid, chunk_mass(lid, base, max_v, inv_t, kth, ties, tie_base, 0u));
    for (var bit = 31i; bit >= 0i; bit--) {
      let cand = cut | (1u << u32(bit));
      if (sum_f(lid, chunk_mass(lid, base, max_v, inv_t, kth, ties, tie_base, cand)) >= wanted) { cut = cand; }
    }
  }
  // 4. inverse transform sampling over the kept tokens in index order
  let sums = scan_f(lid, chunk_mass(lid, base, max_v, inv_t, kth, ties, tie_base, cut));
  let goal = f32(pcg(seed ^ pcg(position)) >> 8u) * (1.0 / 16777216.0) * sums.z;
  let mine = goal >= sums.x && goal < sums.y;
  var found = NONE;
  var last = NONE;
  var acc = sums.x;
  var tie = tie_base;
  let end = min(V, (lid + 1u) * CHUNK);
  for (var i = lid * CHUNK; i < end; i++) {
    let v = logits[base + i];
    let key = order_key(v);
    if (in_top_k(key, kth, ties, tie) && key >= cut) {
      last = i;
      acc += exp((v - max_v) * inv_t);
      if (mine && found == NONE && goal < acc) { found = i; }
    }
    if (key == kth) { tie++; }
  }
  // rounding between the scan and this walk: the chunk's last kept token
  if (mine && found == NONE) { found = last; }
  let chosen = min_u(lid, found);
  // goal rounded up to the total: the last kept token of all
  let fallback = max_u(lid, select(last, 0u, last == NONE));
  return select(chosen, fallback, chosen == NONE);
}
`;

const MAIN = `if (lid == 0u) {
    wg_mode = control[C_MODE];
    wg_top_k = control[C_TOP_K];
    wg_top_p = bitcast<f32>(control[C_TOP_P]);
  }
  let position = control[C_POSITION];
  let rows = arrayLength(&logits) / V;
  let base = min(control[C_ROW], rows - 1u) * V;
  // greedy: each invocation's first largest logit in its strided indices, then a tree keeping the lower index on ties
  let first = min(lid, V - 1u);
  var best_v = logits[base + first];
  var best_i = first;
  for (var i = lid + WG; i < V; i += WG) {
    let v = logits[base + i];
    if (v > best_v) { best_v = v; best_i = i; }
  }
  red_f[lid] = best_v;
  red_u[lid] = best_i;
  workgroupBarrier();
  for (var s = WG / 2u; s > 0u; s >>= 1u) {
    if (lid < s) {
      let v = red_f[lid + s];
      let j = red_u[lid + s];
      if (v > red_f[lid] || (v == red_f[lid] && j < red_u[lid])) { red_f[lid] = v; red_u[lid] = j; }
    }
    workgroupBarrier();
  }
  if (lid == 0u) {
    wg_f32 = red_f[0];
    wg_u32 = red_u[0];
  }
  let max_v = workgroupUniformLoad(&wg_f32);
  var chosen = workgroupUniformLoad(&wg_u32);
  let mode = workgroupUniformLoad(&wg_mode);
  if (mode == 1u) { chosen = sample(lid, base, max_v, position); }
  if (lid == 0u) {
    control[C_TOKEN] = chosen;
    control[C_POSITION] = position + 1u;
    control[C_ROW] = 0u;
  }`;
