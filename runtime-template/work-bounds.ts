/**
 * Bounded work and memory: what a bundle will make the device do, computed from its schedule alone
 * before any GPU work, and refused (FM_BUNDLE_BOUNDS) when it exceeds what the bundle declares or
 * what the caller allows. A bundle's author controls every number in it (and recomputes its
 * hashes), so a schedule that passes the per-step bounds checks (bounds.ts) could still allocate
 * forty 256 MiB buffers or dispatch 65535 x 65535 workgroups; these checks close that.
 *
 * Dispatch grids have two bounds: what the dispatch's bindings imply (GRID_ROW_SLACK below), which
 * holds whatever the bundle says, and the grid the compiler recorded for each shader
 * (schedule.maxWorkgroups), believed only up to the first.
 */
import type { DispatchStep, ModelSchedule, Region, Schedule, Step } from '../schemas/schedule.js';
import type { ModelInfo } from './api.js';
import { fail, quote } from './errors.js';
import { isTextureBinding, sharedBufferKeys, TEXEL_BYTES } from './format.js';
import { TOKEN_READBACK_BYTES } from './decode-loop.js';
import { elementCount } from './tensors.js';

export interface WorkLimits {
  /** most bytes of GPU buffers and textures the session may allocate (LoadOptions.maxGpuBytes) */
  maxGpuBytes?: number;
  /** most workgroups one run may dispatch, summed over its dispatches (LoadOptions.maxWorkgroupsPerRun) */
  maxWorkgroupsPerRun?: number;
}

/**
 * A dispatch may have at most one workgroup per 4-byte element it binds, plus one row of a 2D grid
 * (kernels with more workgroups than fit one axis split them into rows of the axis limit): every
 * kernel the compiler emits gives each workgroup at least one element of its outputs.
 */
const GRID_ROW_SLACK = 65535;

/** The bytes loadBundle will allocate on the device: buffers (shared ones once), textures, readback buffers. */
export function scheduledGpuBytes(schedule: Schedule): number {
  const readbacks = schedule.models.reduce((sum, model) => sum + readbackBytes(model), 0) + decodeLoopBytes(schedule);
  if (schedule.memory === 'shared') return sharedBufferBytes(schedule) + readbacks;
  return schedule.models.reduce((sum, model) => sum + modelBufferBytes(model), 0) + readbacks;
}

/** the decoder's GPU decode loop (decode-loop.ts): its buffers and token readback buffers */
function decodeLoopBytes(schedule: Schedule): number {
  const loop = schedule.decoder?.loop;
  if (!loop) return 0;
  return loop.buffers.reduce((sum, buffer) => sum + buffer.size, 0) + loop.tokenReadbacks * TOKEN_READBACK_BYTES;
}

function modelBufferBytes(model: ModelSchedule): number {
  const buffers = model.buffers.reduce((sum, buffer) => sum + buffer.size, 0);
  const textures = (model.textures ?? []).reduce((sum, t) => sum + t.width * t.height * t.layers * TEXEL_BYTES, 0);
  return buffers + textures;
}

function readbackBytes(model: ModelSchedule): number {
  return model.run.reduce((sum, step) => sum + (step.op === 'readOutput' ? step.src.size : 0), 0);
}

/** Shared memory: one buffer per role and ordinal, as large as the largest plan's (session.ts createSharedBuffers). */
function sharedBufferBytes(schedule: Schedule): number {
  const sizes = new Map<string, number>();
  for (const plan of [...schedule.models, ...(schedule.sequence ? [schedule.sequence] : [])]) {
    sharedBufferKeys(plan).forEach((key, i) => sizes.set(key, Math.max(sizes.get(key) ?? 0, plan.buffers[i]!.size)));
  }
  return [...sizes.values()].reduce((sum, size) => sum + size, 0);
}

export function checkWorkBounds(schedule: Schedule, infos: readonly ModelInfo[], limits: WorkLimits = {}): number {
  checkDeclaredPeaks(schedule);
  const total = scheduledGpuBytes(schedule);
  const maxGpuBytes = positiveLimit(limits.maxGpuBytes, 'maxGpuBytes');
  if (maxGpuBytes !== undefined && total > maxGpuBytes) {
    fail('FM_BUNDLE_BOUNDS', `the bundle allocates ${total} bytes of GPU memory, more than maxGpuBytes ${maxGpuBytes}`);
  }
  const maxWorkgroups = positiveLimit(limits.maxWorkgroupsPerRun, 'maxWorkgroupsPerRun');
  const kernels = kernelGrids(schedule);
  schedule.models.forEach((model, i) => {
    checkInputsWrittenOnce(model, infos[i]!);
    checkPlanWork(model.run, model, `model ${quote(model.model)}`, maxWorkgroups, kernels);
    checkPlanWork(model.init, model, `model ${quote(model.model)} init`, maxWorkgroups, kernels);
  });
  schedule.sequence?.calls.forEach((call, i) => checkPlanWork(call.run, schedule.sequence!, `sequence call ${i}`, maxWorkgroups, kernels));
  checkDecoderContext(schedule, infos);
  checkDecodeLoopWork(schedule, maxWorkgroups, kernels);
  checkRecordedGrids(kernels);
  return total;
}

/**
 * A decode-loop token runs the decode model's run steps and the loop's: their workgroups together
 * are one run. The loop's dispatches bind the model's buffers and then the loop's (bounds.ts).
 */
function checkDecodeLoopWork(schedule: Schedule, maxWorkgroups: number | undefined, kernels: KernelGrids): void {
  const spec = schedule.decoder;
  const loop = spec?.loop;
  if (!spec || !loop) return;
  const plan = (name: string) => {
    const model = schedule.models.find((m) => m.model === name);
    // bounds.ts names a missing model; it runs later, so nothing to add up here
    return model && { ...model, buffers: [...model.buffers, ...loop.buffers] };
  };
  const prefill = plan(spec.prefill);
  const decode = plan(spec.decode);
  if (!prefill || !decode) return;
  const dispatching = (steps: readonly Step[]) => steps.filter((step) => step.op === 'dispatch' || step.op === 'upload' || step.op === 'copy');
  checkPlanWork([...dispatching(prefill.run), ...loop.afterPrefill], prefill, 'decoder.loop after the prefill', maxWorkgroups, kernels);
  checkPlanWork([...loop.beforeDecode, ...dispatching(decode.run), ...loop.afterDecode], decode, 'decoder.loop decode step', maxWorkgroups, kernels);
}

/**
 * Per shader: the bound the compiler recorded (schedule.maxWorkgroups, absent in older bundles) and,
 * filled in while the dispatches are checked, the most workgroups its dispatches' bindings allow.
 */
interface KernelGrids {
  recorded: readonly number[] | undefined;
  implied: number[];
}

function kernelGrids(schedule: Schedule): KernelGrids {
  const recorded = schedule.maxWorkgroups;
  if (recorded !== undefined && recorded.length !== schedule.shaders.length) {
    fail('FM_BUNDLE_INVALID', `schedule.json: maxWorkgroups has ${recorded.length} entries for ${schedule.shaders.length} shaders`);
  }
  return { recorded, implied: schedule.shaders.map(() => 0) };
}

/**
 * A recorded bound is believed only up to what the bindings imply: whoever edits a bundle writes
 * maxWorkgroups too, so the binding-implied bound stays the real guard and the recorded one only
 * tightens it (a dispatch edited above the grid the compiler built is refused even where its
 * bindings would allow more).
 */
function checkRecordedGrids({ recorded, implied }: KernelGrids): void {
  recorded?.forEach((bound, shader) => {
    if (bound > implied[shader]!) {
      fail('FM_BUNDLE_BOUNDS', `schedule.json maxWorkgroups[${shader}] is ${bound} workgroups, more than the ${implied[shader]} the bindings of that shader's dispatches allow (one workgroup per bound element plus one grid row)`);
    }
  });
}

function positiveLimit(value: number | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value <= 0) throw new TypeError(`options.${name} must be a positive integer, not ${String(value)}`);
  return value;
}

/** What the schedule allocates may not exceed the peak it declares (the figure tools and apps budget with). */
function checkDeclaredPeaks(schedule: Schedule): void {
  if (schedule.memory === 'shared') {
    const allocated = scheduledGpuBytes(schedule);
    const declared = schedule.plannedPeakBytes;
    if (declared === undefined || allocated > declared) {
      fail('FM_BUNDLE_BOUNDS', `schedule.json: the shared buffers and readback buffers take ${allocated} bytes, the schedule declares a planned peak of ${declared ?? 'none'}`);
    }
    return;
  }
  for (const model of schedule.models) {
    const allocated = modelBufferBytes(model) + readbackBytes(model);
    if (allocated > model.plannedPeakBytes) {
      fail('FM_BUNDLE_BOUNDS', `schedule.json model ${quote(model.model)}: its buffers, textures and readback take ${allocated} bytes, it declares a planned peak of ${model.plannedPeakBytes}`);
    }
  }
}

function checkPlanWork(steps: readonly Step[], plan: { buffers: readonly { size: number }[] }, where: string, maxWorkgroups: number | undefined, kernels: KernelGrids): void {
  let workgroups = 0;
  steps.forEach((step, i) => {
    if (step.op !== 'dispatch') return;
    const grid = step.workgroups[0] * step.workgroups[1] * step.workgroups[2];
    const allowed = boundElements(step, plan) + GRID_ROW_SLACK;
    if (grid > allowed) {
      fail('FM_BUNDLE_BOUNDS', `schedule.json ${where} step ${i} (dispatch ${quote(step.label)}): ${grid} workgroups for ${allowed - GRID_ROW_SLACK} bound elements; no kernel needs more than one workgroup per element`);
    }
    // loadBundle checks work before the step bounds (bounds.ts), which refuse a shader index out of range
    if (step.shader < kernels.implied.length) {
      kernels.implied[step.shader] = Math.max(kernels.implied[step.shader]!, allowed);
      const recorded = kernels.recorded?.[step.shader];
      if (recorded !== undefined && grid > recorded) {
        fail('FM_BUNDLE_BOUNDS', `schedule.json ${where} step ${i} (dispatch ${quote(step.label)}): ${grid} workgroups, more than the ${recorded} the compiler recorded for shader ${step.shader} (schedule.json maxWorkgroups)`);
      }
    }
    workgroups += grid;
  });
  if (maxWorkgroups !== undefined && workgroups > maxWorkgroups) {
    fail('FM_BUNDLE_BOUNDS', `schedule.json ${where}: one run dispatches ${workgroups} workgroups, more than maxWorkgroupsPerRun ${maxWorkgroups}`);
  }
}

/** 4-byte elements a dispatch binds: its buffer ranges, and whole textures (bounds.ts has checked the indices). */
function boundElements(step: DispatchStep, plan: { buffers: readonly { size: number }[]; textures?: readonly { width: number; height: number; layers: number }[] }): number {
  let bytes = 0;
  for (const binding of step.bindings) {
    if (isTextureBinding(binding)) {
      const t = plan.textures?.[binding.texture];
      if (t) bytes += t.width * t.height * t.layers * TEXEL_BYTES;
    } else {
      bytes += (binding as Region).size;
    }
  }
  return bytes / 4;
}

/**
 * Every input is written by exactly one step per run: its region (bounds.ts checks it is the
 * input's size) bounds the host memory run() converts inputs into, which the declared shape alone
 * would not (an input no step writes could declare a billion elements).
 */
function checkInputsWrittenOnce(model: ModelSchedule, info: ModelInfo): void {
  const writes = info.inputs.map(() => 0);
  for (const step of model.run) if (step.op === 'writeInput' && step.input < writes.length) writes[step.input]!++;
  writes.forEach((count, i) => {
    if (count !== 1) fail('FM_BUNDLE_BOUNDS', `schedule.json model ${quote(model.model)}: input ${quote(info.inputs[i]!.name)} is written ${count} times per run, expected once`);
  });
}

/** The decoder's host-side bias arrays have `context` elements: the decode model's bias input must have exactly that many. */
function checkDecoderContext(schedule: Schedule, infos: readonly ModelInfo[]): void {
  const spec = schedule.decoder;
  if (!spec) return;
  const decode = infos.find((info) => info.name === spec.decode);
  const bias = decode?.inputs.find((input) => input.name === spec.attentionBias);
  const elements = bias ? elementCount(bias.shape) : undefined;
  if (elements !== spec.context) {
    fail('FM_BUNDLE_BOUNDS', `schedule.json decoder: context ${spec.context} does not match the ${elements ?? 'missing'} elements of the decode model's attention bias input ${quote(spec.attentionBias)}`);
  }
}
