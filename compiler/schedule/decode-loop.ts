/**
 * The decoder's GPU decode loop (schedule decoder.loop): the kernels a decode step runs around the
 * decode graph so that the host never writes per-token inputs or reads logits, bound to the
 * regions the decode and prefill schedules already give their inputs, outputs and cache writes.
 * Read from the built schedules (data), never from generated code.
 */
import type { ManifestModel } from '../../schemas/manifest.js';
import { TOKEN_READBACK_BYTES, type DecodeLoop, type DecoderSpec, type DispatchStep, type ModelSchedule, type Region, type StateWriteStep } from '../../schemas/schedule.js';
import { fail, quoteName } from '../errors.js';
import type { KernelSpec } from '../kernel/types.js';
import { cacheWriteKernel, CONTROL_BYTES, nextInputsKernel, selectTokenKernel } from '../ops/decode/index.js';

/** decode steps in flight at once: the host reads token n while the GPU computes n + 1 .. n + 3 */
export const TOKEN_READBACKS = 4;

/** GPU bytes the loop allocates: its control block and token readback buffers */
export const DECODE_LOOP_BYTES = CONTROL_BYTES + TOKEN_READBACKS * TOKEN_READBACK_BYTES;

interface LoopModel {
  schedule: ModelSchedule;
  info: ManifestModel;
}

/** `shaderIndex` adds a kernel's WGSL to the bundle and gives its index in schedule.shaders. */
export function buildDecodeLoop(spec: DecoderSpec, models: LoopModel[], shaderIndex: (kernel: KernelSpec) => number): DecodeLoop {
  const named = (name: string) => models.find((m) => m.schedule.model === name) ?? fail('FM_BAD_ARGUMENT', `--decoder: no model ${quoteName(name)}`);
  const decode = named(spec.decode);
  const prefill = named(spec.prefill);
  const dispatch = (k: KernelSpec, bindings: Region[]): DispatchStep => ({
    op: 'dispatch', shader: shaderIndex(k), bindings, workgroups: k.workgroups, label: k.label, node: `decoder.${k.label}`,
  });
  const control = (model: LoopModel): Region => ({ buffer: model.schedule.buffers.length, offset: 0, size: CONTROL_BYTES });
  const local = spec.localAttentionBias !== undefined;
  const beforeDecode = dispatch(nextInputsKernel({ context: spec.context, window: local ? spec.window : 0 }), [
    control(decode),
    inputRegion(decode, spec.inputIds), inputRegion(decode, spec.positionIds), inputRegion(decode, spec.attentionBias),
    ...(local ? [inputRegion(decode, spec.localAttentionBias!)] : []),
  ]);
  const cacheWrites = decode.schedule.run.filter((s): s is StateWriteStep => s.op === 'stateWrite').map((s) =>
    dispatch(cacheWriteKernel({ heads: s.heads, rows: s.rows, rowWords: s.rowBytes / 4, cacheRows: s.cacheRows }), [s.src, s.dst, control(decode)]));
  const select = (model: LoopModel) => {
    const logits = outputRegion(model, spec.logits);
    return dispatch(selectTokenKernel({ vocab: spec.vocab, rows: logits.size / 4 / spec.vocab }), [logits, control(model)]);
  };
  return {
    buffers: [{ size: CONTROL_BYTES }],
    tokenReadbacks: TOKEN_READBACKS,
    afterPrefill: [select(prefill)],
    beforeDecode: [beforeDecode],
    afterDecode: [...cacheWrites, select(decode)],
  };
}

function inputRegion(model: LoopModel, name: string): Region {
  const index = model.info.inputs.findIndex((t) => t.name === name);
  const step = model.schedule.run.find((s) => s.op === 'writeInput' && s.input === index);
  if (!step || step.op !== 'writeInput') fail('FM_BAD_ARGUMENT', `--decoder: the ${model.schedule.model} graph writes no input ${quoteName(name)}`);
  return step.dst;
}

function outputRegion(model: LoopModel, name: string): Region {
  const index = model.info.outputs.findIndex((t) => t.name === name);
  const step = model.schedule.run.find((s) => s.op === 'readOutput' && s.output === index);
  if (!step || step.op !== 'readOutput') fail('FM_BAD_ARGUMENT', `--decoder: the ${model.schedule.model} graph reads no output ${quoteName(name)}`);
  return step.src;
}
