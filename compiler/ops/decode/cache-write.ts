/**
 * A decode step's new keys or values into the KV cache at the position in the control block: the
 * GPU-driven form of a stateWrite step at 'position' (heads blocks of `rows` rows; the state buffer's
 * blocks hold cacheRows rows each), so that the step's commands do not depend on the position.
 */
import { kernel } from '../../kernel/builder.js';
import type { KernelSpec } from '../../kernel/types.js';
import { grid1D, u } from '../../kernel/wgsl.js';
import { CONTROL_WORDS, controlConstants } from './control.js';

export interface CacheWritePlan {
  heads: number;
  rows: number;
  /** 4-byte words per row */
  rowWords: number;
  cacheRows: number;
}

export function cacheWriteKernel(plan: CacheWritePlan): KernelSpec {
  const { heads, rows, rowWords, cacheRows } = plan;
  const k = kernel('decode_cache_write');
  k.bind('present', { id: 'present', type: { dtype: 'float32', shape: [heads, rows, rowWords] } }, 'f32');
  k.bind('cache', { id: 'cache', type: { dtype: 'float32', shape: [heads, cacheRows, rowWords] } }, 'f32');
  k.bind('control', { id: 'control', type: { dtype: 'uint32', shape: [CONTROL_WORDS] } }, 'u32');
  const block = rows * rowWords;
  const body = [
    'let p = control[C_POSITION];',
    // a full cache writes nothing (the runtime never steps there; a hostile position cannot reach another head's block)
    `if (p + ${u(rows)} > ${u(cacheRows)}) { return; }`,
    `let h = i / ${u(block)};`,
    `cache[h * ${u(cacheRows * rowWords)} + p * ${u(rowWords)} + i % ${u(block)}] = present[i];`,
  ].join('\n  ');
  return k.buildGrid1D(grid1D(heads * block, 256), body, `${k.declarations()}\n${controlConstants()}\n\n`);
}
