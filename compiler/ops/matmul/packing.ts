/**
 * Preparing Gemm/MatMul's B: constant weights re-packed into column panels (see the matmul
 * overview in index.ts) and split into parts of at most maxStorageBufferBindingSize bytes;
 * runtime B is bound in place, vec4-loadable where its layout allows.
 */
import { numElements, type ConstTensor } from '../../ir/types.js';
import { hostArrayFor } from '../../ir/tensor.js';
import { describeNode } from '../../ir/graph.js';
import { lazyConstant } from '../../ir/lazy-constant.js';
import { bindingBytes, GPU_ELEMENT_BYTES } from '../../kernel/limits.js';
import type { LowerTensor } from '../../kernel/types.js';
import { fail } from '../../errors.js';
import type { LowerContext } from '../op.js';
import type { MatmulGeometry, OperandLayout } from './geometry.js';

// ---------------------------------------------------------------------------------------------
// Preparing B: parts of at most maxStorageBufferBindingSize bytes, vec4-loadable where possible
// ---------------------------------------------------------------------------------------------

/** One binding of B covering output columns [n0, n0 + width). */
export interface BPart {
  tensor: LowerTensor;
  layout: OperandLayout;
  n0: number;
  width: number;
  /** rows of this part can be read as vec4<T> at (k * rowStride + n) / 4 */
  vec4: boolean;
  /**
   * Set for packed constants: B stored as [panels, K, panel] (see packPanels); layout.rowStride
   * is then `panel`, and column n lives in panel n / panel.
   */
  panel?: number;
}

/**
 * Columns per panel of packed weights: 8 invocations x 4 columns, one SIMD row of llvmpipe
 * (AVX2) or a quarter warp, so that what they read for consecutive k is one sequential stream
 * (a [K, N] layout strides by N*4 bytes per k, which defeats hardware prefetching).
 */
export const PANEL_COLUMNS = 32;

export function vec4Loadable(layout: OperandLayout, width: number, elementCount: number): boolean {
  return layout.colStride === 1 && layout.rowStride % 4 === 0 && width % 4 === 0 && elementCount % 4 === 0 &&
    layout.batchStrides.every((s) => s % 4 === 0);
}

/** Output columns [n0, n1) whose packed weights are separate constants. */
export type ColumnRange = readonly [number, number];

export function prepareB(ctx: LowerContext, g: MatmulGeometry, ranges: readonly ColumnRange[]): BPart[] {
  const b = ctx.inputs[1]!;
  const limit = ctx.limits.maxStorageBufferBindingSize;
  const sharedByBatch = g.b.batchStrides.every((s) => s === 0);
  if (b.data && sharedByBatch) return packConstantB(ctx, g, b.data, limit, ranges);
  if (bindingBytes(b.type) > limit) {
    fail('FM_LIMIT', `${describeNode(ctx.node)}: B [${b.type.shape}] needs ${bindingBytes(b.type)} bytes, more than the target's maxStorageBufferBindingSize ${limit}; ` +
      'only constant weights can be split across bindings; reduce the batch size or target a device with a larger limit');
  }
  return [{ tensor: b, layout: g.b, n0: 0, width: g.N, vec4: vec4Loadable(g.b, g.N, numElements(b.type.shape)) }];
}

/**
 * Re-lays out constant B in panels (see packPanels), one constant per column range (the
 * split-large-weights pass's column_splits; all of N otherwise), each range split again into
 * parts that are small enough to be bound on their own. The panels are computed lazily (when
 * the bundle's shards are written), so the compiler never holds them next to the imported B.
 */
export function packConstantB(ctx: LowerContext, g: MatmulGeometry, data: ConstTensor, limit: number, ranges: readonly ColumnRange[]): BPart[] {
  const { K } = g;
  const limitPanel = Math.floor(limit / (K * GPU_ELEMENT_BYTES * 4)) * 4;
  if (limitPanel === 0) {
    fail('FM_LIMIT', `${describeNode(ctx.node)}: even 4 columns of B (K=${K}) exceed the target's maxStorageBufferBindingSize ${limit}`);
  }
  const parts: BPart[] = [];
  for (const [r0, r1] of ranges) {
    // no wider than the range (rounded to the vec4 tile): a narrow range is not padded to 32 columns
    const panel = Math.min(PANEL_COLUMNS, Math.ceil((r1 - r0) / 4) * 4, limitPanel);
    const panelsPerPart = Math.floor(limit / (K * panel * GPU_ELEMENT_BYTES));
    const panelCount = Math.ceil((r1 - r0) / panel);
    const partCount = Math.ceil(panelCount / panelsPerPart);
    // equal-sized parts keep the kernels alike
    const width = Math.ceil(panelCount / partCount) * panel;
    for (let n0 = r0; n0 < r1; n0 += width) {
      const cols = Math.min(width, r1 - n0);
      const label = ranges.length > 1 ? `weights_panels_cols${n0}` : partCount === 1 ? 'weights_panels' : `weights_panels_part${parts.length}`;
      const shape = [Math.ceil(cols / panel), K, panel];
      const tensor = ctx.constant(label, lazyConstant(data.dtype, shape, () => packPanels(data, g.b, K, n0, cols, panel).data));
      parts.push({ tensor, layout: { rowStride: panel, colStride: 1, batchStrides: g.batchShape.map(() => 0) }, n0, width: cols, vec4: true, panel });
    }
  }
  return parts;
}

/**
 * Columns [n0, n0 + cols) of B as [ceil(cols / panel), K, panel]: element (k, n) at
 * ((n / panel) * K + k) * panel + n % panel; zero past cols.
 */
export function packPanels(b: ConstTensor, layout: OperandLayout, K: number, n0: number, cols: number, panel: number): ConstTensor {
  const panels = Math.ceil(cols / panel);
  const out = hostArrayFor(b.dtype, panels * K * panel);
  // read once: b may itself be a lazy constant
  const src = b.data;
  for (let p = 0; p < panels; p++) {
    const c0 = p * panel, count = Math.min(panel, cols - c0);
    const panelBase = p * K * panel;
    // read B sequentially whichever of k or n is its contiguous axis
    if (layout.colStride === 1) {
      for (let k = 0; k < K; k++) {
        const from = k * layout.rowStride + n0 + c0;
        out.set(src.subarray(from, from + count), panelBase + k * panel);
      }
    } else {
      for (let n = 0; n < count; n++) {
        const base = (n0 + c0 + n) * layout.colStride;
        for (let k = 0; k < K; k++) out[panelBase + k * panel + n] = src[base + k * layout.rowStride]!;
      }
    }
  }
  return { dtype: b.dtype, shape: [panels, K, panel], data: out };
}

