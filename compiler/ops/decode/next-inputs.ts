/**
 * The decode step's inputs, written on the GPU from the control block: input_ids = the fed token,
 * position_ids = its position, and the additive attention biases over the C cache slots (0 for
 * the slots attended, -1e9 elsewhere: exactly what runtime-template/decoder.ts cacheBias() writes
 * on the host), the local one (GPT-Neo's local layers) over the last window - 1 past slots.
 */
import { kernel } from '../../kernel/builder.js';
import type { KernelSpec } from '../../kernel/types.js';
import { grid1D, u } from '../../kernel/wgsl.js';
import { CONTROL_WORDS, controlConstants } from './control.js';

export interface NextInputsPlan {
  /** cache slots C: elements of each bias */
  context: number;
  /** GPT-Neo's local window; 0 without a local bias */
  window: number;
}

export function nextInputsKernel(plan: NextInputsPlan): KernelSpec {
  const k = kernel('decode_next_inputs');
  k.bind('control', { id: 'control', type: { dtype: 'uint32', shape: [CONTROL_WORDS] } }, 'u32');
  k.bind('input_ids', { id: 'input_ids', type: { dtype: 'int32', shape: [1] } }, 'i32');
  k.bind('position_ids', { id: 'position_ids', type: { dtype: 'int32', shape: [1] } }, 'i32');
  k.bind('bias', { id: 'attention_bias', type: { dtype: 'float32', shape: [plan.context] } }, 'f32');
  const local = plan.window > 0;
  if (local) k.bind('local_bias', { id: 'local_attention_bias', type: { dtype: 'float32', shape: [plan.context] } }, 'f32');
  const grid = grid1D(plan.context, 64);
  const body = [
    'let p = control[C_POSITION];',
    'if (i == 0u) {',
    '    input_ids[0] = i32(control[C_TOKEN]);',
    '    position_ids[0] = i32(p);',
    '  }',
    'bias[i] = select(-1e9, 0.0, i < p);',
    // slots [max(0, p - (window - 1)), p), written without underflow
    ...(local ? [`local_bias[i] = select(-1e9, 0.0, i < p && i + ${u(plan.window - 1)} >= p);`] : []),
  ].join('\n  ');
  return k.buildGrid1D(grid, body, `${k.declarations()}\n${controlConstants()}\n\n`);
}
