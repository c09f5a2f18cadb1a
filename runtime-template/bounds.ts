/**
 * Bounds checks: every index, range and size of the schedule against the bundle and the device.
 */
import type { Manifest } from '../schemas/manifest.js';
import type { CopyStep, DispatchStep, ModelSchedule, Region, StateWriteStep, Step, TextureDecl, TextureRegion, UploadStep } from '../schemas/schedule.js';
import type { ModelInfo, TensorInfo } from './api.js';
import { fail, quote } from './errors.js';
import { isTextureBinding, isTextureRegion, TEXEL_BYTES } from './format.js';
import { elementCount } from './tensors.js';
import type { VerifiedBundle } from './verify.js';

/** the device limits the bounds checks use (a GPUSupportedLimits has them all) */
interface BoundsLimits {
  maxBufferSize: number;
  maxStorageBufferBindingSize: number;
  maxStorageBuffersPerShaderStage: number;
  maxComputeWorkgroupsPerDimension: number;
  minStorageBufferOffsetAlignment: number;
  maxTextureDimension2D: number;
  maxTextureArrayLayers: number;
  maxSampledTexturesPerShaderStage: number;
}

/** WebGPU's default limits: every device has at least these */
const WEBGPU_DEFAULT_LIMITS: Readonly<BoundsLimits> = {
  maxBufferSize: 268435456,
  maxStorageBufferBindingSize: 134217728,
  maxStorageBuffersPerShaderStage: 8,
  maxComputeWorkgroupsPerDimension: 65535,
  minStorageBufferOffsetAlignment: 256,
  maxTextureDimension2D: 8192,
  maxTextureArrayLayers: 256,
  maxSampledTexturesPerShaderStage: 16,
};

/**
 * The limits verifyBundle checks against: the given target limits over WebGPU's defaults, or
 * without them the defaults improved by the manifest's requiredLimits (a device created for the
 * bundle has those). Limits named min* are alignments: smaller is better.
 */
export function verificationLimits(manifest: Manifest, target: Readonly<Record<string, number>> | undefined): BoundsLimits {
  const limits: BoundsLimits = { ...WEBGPU_DEFAULT_LIMITS };
  for (const key of Object.keys(limits) as (keyof BoundsLimits)[]) {
    if (target !== undefined) {
      const value = target[key];
      if (value === undefined) continue;
      if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
        throw new TypeError(`options.limits.${key} must be a positive integer, not ${String(value)}`);
      }
      limits[key] = value;
    } else {
      const required = manifest.requiredLimits[key];
      if (required !== undefined) limits[key] = key.startsWith('min') ? Math.min(limits[key], required) : Math.max(limits[key], required);
    }
  }
  return limits;
}

interface BoundsContext {
  info: ModelInfo;
  schedule: ModelSchedule;
  shaderCount: number;
  shardSizes: number[];
  limits: BoundsLimits;
}

export function checkScheduleBounds(bundle: VerifiedBundle, limits: BoundsLimits): void {
  bundle.schedule.models.forEach((schedule, i) => {
    const context: BoundsContext = {
      info: bundle.modelInfos[i]!,
      schedule,
      shaderCount: bundle.schedule.shaders.length,
      shardSizes: bundle.schedule.shards.map((shard) => shard.size),
      limits,
    };
    checkBuffers(context);
    checkTextures(context);
    schedule.init.forEach((step, index) => checkStep(step, `init[${index}]`, context));
    schedule.run.forEach((step, index) => checkStep(step, `run[${index}]`, context));
    checkOutputsReadOnce(context);
  });
  checkSharedMemory(bundle, limits);
  checkDecoder(bundle);
  checkDecodeLoop(bundle, limits);
  checkStatePositions(bundle);
}

/** words of the control block the runtime writes into loop buffer 0 (decode-loop.ts CONTROL_WORDS) and bytes of the token copy from it */
const LOOP_CONTROL_BYTES = 64;

/**
 * The decode loop's dispatches are checked as dispatches of their model whose buffers are the
 * model's followed by the loop's (schemas/schedule.ts decodeLoop). checkDecoder has checked the models exist.
 */
function checkDecodeLoop(bundle: VerifiedBundle, limits: BoundsLimits): void {
  const loop = bundle.schedule.decoder?.loop;
  if (!loop) return;
  const spec = bundle.schedule.decoder!;
  loop.buffers.forEach((buffer, i) => {
    if (buffer.size % 4 !== 0 || buffer.size > limits.maxBufferSize || (i === 0 && buffer.size < LOOP_CONTROL_BYTES)) {
      fail('FM_BUNDLE_INVALID', `schedule.json decoder.loop buffers[${i}]: size ${buffer.size} must be a multiple of 4 of at most ${limits.maxBufferSize}${i === 0 ? ` and hold the ${LOOP_CONTROL_BYTES}-byte control block` : ''}`);
    }
  });
  const plans: [string, readonly Step[]][] = [[spec.prefill, loop.afterPrefill], [spec.decode, loop.beforeDecode], [spec.decode, loop.afterDecode]];
  for (const [name, steps] of plans) {
    const index = bundle.schedule.models.findIndex((model) => model.model === name);
    const schedule = bundle.schedule.models[index]!;
    const asModel: ModelSchedule = { ...schedule, buffers: [...schedule.buffers, ...loop.buffers.map((buffer) => ({ role: 'state' as const, size: buffer.size }))], init: [], run: [...steps] };
    const context: BoundsContext = { info: bundle.modelInfos[index]!, schedule: asModel, shaderCount: bundle.schedule.shaders.length, shardSizes: [], limits };
    steps.forEach((step, i) => checkDispatch(step as DispatchStep, `schedule.json decoder.loop (model ${quote(name)}) step ${i} (dispatch ${quote((step as DispatchStep).label)})`, context));
  }
}

/**
 * A state write at 'position' writes at the cache slot the decoder API passes with a decode step,
 * and no other run has one: only the decoder's decode model (run by decoder() and generate(), never
 * by run(), and not also its prefill) may hold such steps, and every slot the decoder can pass
 * (below its context) must keep the rows inside their block.
 */
function checkStatePositions(bundle: VerifiedBundle): void {
  const spec = bundle.schedule.decoder;
  const plans = [
    ...bundle.schedule.models.map((model) => ({ name: model.model as string | undefined, steps: model.run, where: `schedule.json model ${quote(model.model)}` })),
    ...(bundle.schedule.sequence?.calls ?? []).map((call, i) => ({ name: undefined, steps: call.run, where: `schedule.json sequence call ${i}` })),
  ];
  for (const plan of plans) {
    plan.steps.forEach((step, i) => {
      if (step.op !== 'stateWrite' || step.at !== 'position') return;
      if (!spec || plan.name !== spec.decode || spec.prefill === spec.decode) {
        fail('FM_BUNDLE_INVALID', `${plan.where} run[${i}]: a state write at the decode position belongs to the decode model of a decoder, whose runs pass that position`);
      }
      if (spec.context - 1 + step.rows > step.cacheRows) {
        fail('FM_BUNDLE_INVALID', `${plan.where} run[${i}]: ${step.rows} rows written at positions up to ${spec.context - 1} overrun blocks of ${step.cacheRows} rows`);
      }
    });
  }
}

/** A decoder names two models of a shared-memory bundle, and the inputs and outputs generate() feeds and reads. */
function checkDecoder(bundle: VerifiedBundle): void {
  const spec = bundle.schedule.decoder;
  if (!spec) return;
  const where = 'schedule.json decoder';
  if (bundle.schedule.memory !== 'shared') fail('FM_BUNDLE_INVALID', `${where}: a decoder needs shared memory`);
  const model = (name: string) => bundle.modelInfos.find((info) => info.name === name) ?? fail('FM_BUNDLE_INVALID', `${where} names model ${quote(name)}, which the bundle does not have`);
  const prefill = model(spec.prefill);
  const decode = model(spec.decode);
  const has = (list: readonly TensorInfo[], name: string | undefined, what: string) => {
    if (name !== undefined && !list.some((t) => t.name === name)) fail('FM_BUNDLE_INVALID', `${where}: ${what} has no ${quote(name)}`);
  };
  has(prefill.inputs, spec.inputIds, 'the prefill model');
  has(prefill.outputs, spec.logits, 'the prefill model');
  for (const name of [spec.inputIds, spec.positionIds, spec.attentionBias, spec.localAttentionBias]) has(decode.inputs, name, 'the decode model');
  has(decode.outputs, spec.logits, 'the decode model');
  if (spec.promptLength > spec.context) fail('FM_BUNDLE_INVALID', `${where}: prompt length ${spec.promptLength} exceeds the context ${spec.context}`);
}

/** Shared memory and the declared sequence: each call is checked as a run of its model over the sequence's buffers. */
function checkSharedMemory(bundle: VerifiedBundle, limits: BoundsLimits): void {
  const { schedule } = bundle;
  if (schedule.memory !== 'shared') {
    if (schedule.sequence) fail('FM_BUNDLE_INVALID', 'schedule.json declares a sequence without shared memory ("memory": "shared")');
    return;
  }
  const textured = schedule.models.find((model) => (model.textures ?? []).length > 0);
  if (textured) fail('FM_BUNDLE_INVALID', `schedule.json model ${quote(textured.model)} has weight textures, which shared memory does not support`);
  const sequence = schedule.sequence;
  if (!sequence) return;
  if (sequence.calls.length !== sequence.models.length || sequence.calls.some((call, i) => call.model !== sequence.models[i])) {
    fail('FM_BUNDLE_INVALID', 'schedule.json sequence: calls do not follow sequence.models');
  }
  const base = { shaderCount: schedule.shaders.length, shardSizes: schedule.shards.map((shard) => shard.size), limits };
  sequence.calls.forEach((call, i) => {
    const index = schedule.models.findIndex((model) => model.model === call.model);
    if (index < 0) fail('FM_BUNDLE_INVALID', `schedule.json sequence call ${i} runs model ${quote(call.model)}, which the bundle does not have`);
    const asModel: ModelSchedule = { model: call.model, strategy: 'stream', buffers: sequence.buffers, init: i === 0 ? sequence.init : [], run: call.run, plannedPeakBytes: sequence.plannedPeakBytes };
    const context: BoundsContext = { ...base, info: bundle.modelInfos[index]!, schedule: asModel };
    if (i === 0) checkBuffers(context);
    asModel.init.forEach((step, index) => checkStep(step, `sequence init[${index}]`, context));
    call.run.forEach((step, index) => checkStep(step, `sequence call ${i} run[${index}]`, context));
    checkOutputsReadOnce(context);
  });
}

function modelWhere(context: BoundsContext): string {
  return `schedule.json model ${quote(context.info.name)}`;
}

function checkBuffers(context: BoundsContext): void {
  context.schedule.buffers.forEach((buffer, i) => {
    const where = `${modelWhere(context)} buffers[${i}]`;
    if (buffer.size % 4 !== 0) fail('FM_BUNDLE_INVALID', `${where}: size ${buffer.size} is not a multiple of 4`);
    if (buffer.size > context.limits.maxBufferSize) {
      fail('FM_BUNDLE_INVALID', `${where}: size ${buffer.size} exceeds the device's maxBufferSize ${context.limits.maxBufferSize}`);
    }
  });
}

function stepWhere(step: Step, at: string, context: BoundsContext): string {
  const what = step.op === 'dispatch' ? `dispatch ${quote(step.label)} of node ${quote(step.node)}` : step.op;
  return `${modelWhere(context)} ${at} (${what})`;
}

function checkStep(step: Step, at: string, context: BoundsContext): void {
  const where = stepWhere(step, at, context);
  const isInit = at.startsWith('init');
  switch (step.op) {
    case 'upload': return checkUpload(step, where, context, isInit);
    case 'dispatch': return checkDispatch(step, where, context);
    case 'copy': return checkCopy(step, where, context);
    case 'writeInput':
      if (isInit) fail('FM_BUNDLE_INVALID', `${where}: init steps run once at load and cannot write inputs`);
      return checkIoRegion(step.dst, context.info.inputs, step.input, 'input', where, context);
    case 'readOutput':
      if (isInit) fail('FM_BUNDLE_INVALID', `${where}: init steps run once at load and cannot read outputs`);
      return checkIoRegion(step.src, context.info.outputs, step.output, 'output', where, context);
    case 'stateWrite':
      if (isInit) fail('FM_BUNDLE_INVALID', `${where}: init steps cannot write decoder state`);
      return checkStateWrite(step, where, context);
  }
}

/** The rows copied must be the source region exactly, and every block must fit its state buffer region. */
function checkStateWrite(step: StateWriteStep, where: string, context: BoundsContext): void {
  checkRegion(step.src, where, context);
  checkRegion(step.dst, where, context);
  if (context.schedule.buffers[step.dst.buffer]!.role !== 'state') fail('FM_BUNDLE_INVALID', `${where}: the destination is not a state buffer`);
  if (step.rowBytes % 4 !== 0 || step.rows > step.cacheRows) fail('FM_BUNDLE_INVALID', `${where}: ${step.rows} rows of ${step.rowBytes} bytes do not fit blocks of ${step.cacheRows} rows`);
  if (step.heads * step.rows * step.rowBytes !== step.src.size || step.heads * step.cacheRows * step.rowBytes !== step.dst.size) {
    fail('FM_BUNDLE_INVALID', `${where}: ${step.heads} blocks of ${step.rows} (source) and ${step.cacheRows} (state) rows of ${step.rowBytes} bytes do not match sizes ${step.src.size} and ${step.dst.size}`);
  }
  if (step.src.buffer === step.dst.buffer) fail('FM_BUNDLE_INVALID', `${where}: source and destination are the same buffer`);
}

function checkRegion(region: Region, where: string, context: BoundsContext): void {
  const buffer = context.schedule.buffers[region.buffer];
  if (!buffer) fail('FM_BUNDLE_INVALID', `${where}: buffer ${region.buffer} does not exist (the model has ${context.schedule.buffers.length})`);
  if (region.offset % 4 !== 0 || region.size % 4 !== 0) {
    fail('FM_BUNDLE_INVALID', `${where}: region offset ${region.offset} and size ${region.size} must be multiples of 4`);
  }
  if (region.offset + region.size > buffer.size) {
    fail('FM_BUNDLE_INVALID', `${where}: region [${region.offset}, ${region.offset + region.size}) lies outside buffer ${region.buffer} of ${buffer.size} bytes`);
  }
}

function checkTextures(context: BoundsContext): void {
  const { limits } = context;
  (context.schedule.textures ?? []).forEach((texture, i) => {
    const where = `${modelWhere(context)} textures[${i}]`;
    if (texture.width > limits.maxTextureDimension2D || texture.height > limits.maxTextureDimension2D) {
      fail('FM_BUNDLE_INVALID', `${where}: ${texture.width}x${texture.height} texels exceed the device's maxTextureDimension2D ${limits.maxTextureDimension2D}`);
    }
    if (texture.layers > limits.maxTextureArrayLayers) {
      fail('FM_BUNDLE_INVALID', `${where}: ${texture.layers} layers exceed the device's maxTextureArrayLayers ${limits.maxTextureArrayLayers}`);
    }
  });
}

function textureOf(index: number, where: string, context: BoundsContext): TextureDecl {
  const texture = context.schedule.textures?.[index];
  if (!texture) fail('FM_BUNDLE_INVALID', `${where}: texture ${index} does not exist (the model has ${context.schedule.textures?.length ?? 0})`);
  return texture;
}

/** A texture upload writes whole rows of one layer, straight from the shard: its size must be exactly those rows. */
function checkTextureRegion(dst: TextureRegion, where: string, context: BoundsContext): void {
  const texture = textureOf(dst.texture, where, context);
  if (dst.layer >= texture.layers || dst.y + dst.rows > texture.height) {
    fail('FM_BUNDLE_INVALID', `${where}: rows [${dst.y}, ${dst.y + dst.rows}) of layer ${dst.layer} lie outside texture ${dst.texture} (${texture.width}x${texture.height}x${texture.layers})`);
  }
  if (dst.size !== dst.rows * texture.width * TEXEL_BYTES) {
    fail('FM_BUNDLE_INVALID', `${where}: ${dst.size} bytes for ${dst.rows} rows of ${texture.width} texels (${dst.rows * texture.width * TEXEL_BYTES} bytes)`);
  }
}

function checkUpload(step: UploadStep, where: string, context: BoundsContext, isInit: boolean): void {
  if (isTextureRegion(step.dst)) {
    // texture weights are resident: uploaded once at load, never streamed by run steps
    if (!isInit) fail('FM_BUNDLE_INVALID', `${where}: texture uploads belong to init steps`);
    checkTextureRegion(step.dst, where, context);
  } else {
    checkRegion(step.dst, where, context);
  }
  const shardSize = context.shardSizes[step.shard];
  if (shardSize === undefined) fail('FM_BUNDLE_INVALID', `${where}: shard ${step.shard} does not exist (the bundle has ${context.shardSizes.length})`);
  if (step.shardOffset + step.dst.size > shardSize) {
    fail('FM_BUNDLE_INVALID', `${where}: weight ${quote(step.weight)} reads bytes [${step.shardOffset}, ${step.shardOffset + step.dst.size}) of shard ${step.shard}, which has ${shardSize}`);
  }
}

function checkCopy(step: CopyStep, where: string, context: BoundsContext): void {
  checkRegion(step.src, `${where} source`, context);
  checkRegion(step.dst, `${where} destination`, context);
  if (step.src.size !== step.dst.size) fail('FM_BUNDLE_INVALID', `${where}: copies ${step.src.size} bytes into a region of ${step.dst.size}`);
  if (step.src.buffer === step.dst.buffer) fail('FM_BUNDLE_INVALID', `${where}: source and destination are the same buffer`);
}

function checkIoRegion(region: Region, tensors: readonly TensorInfo[], index: number, kind: string, where: string, context: BoundsContext): void {
  checkRegion(region, where, context);
  const tensor = tensors[index];
  if (!tensor) fail('FM_BUNDLE_INVALID', `${where}: ${kind} ${index} does not exist (the model has ${tensors.length})`);
  // every GPU element is 4 bytes: f32 for float dtypes, i32 for integer and bool dtypes
  const expected = 4 * elementCount(tensor.shape);
  if (region.size !== expected) {
    fail('FM_BUNDLE_INVALID', `${where}: region of ${region.size} bytes for ${kind} ${quote(tensor.name)}, whose shape [${tensor.shape.join(', ')}] needs ${expected}`);
  }
}

function checkDispatch(step: DispatchStep, where: string, context: BoundsContext): void {
  const { limits } = context;
  if (step.shader >= context.shaderCount) fail('FM_BUNDLE_INVALID', `${where}: shader ${step.shader} does not exist (the bundle has ${context.shaderCount})`);
  const regions = step.bindings.filter((binding): binding is Region => !isTextureBinding(binding));
  const textures = step.bindings.length - regions.length;
  if (regions.length > limits.maxStorageBuffersPerShaderStage) {
    fail('FM_BUNDLE_INVALID', `${where}: ${regions.length} bindings exceed the device's maxStorageBuffersPerShaderStage ${limits.maxStorageBuffersPerShaderStage}`);
  }
  if (textures > limits.maxSampledTexturesPerShaderStage) {
    fail('FM_BUNDLE_INVALID', `${where}: ${textures} texture bindings exceed the device's maxSampledTexturesPerShaderStage ${limits.maxSampledTexturesPerShaderStage}`);
  }
  step.bindings.forEach((binding, i) => {
    if (isTextureBinding(binding)) textureOf(binding.texture, `${where} binding ${i}`, context);
    else checkBinding(binding, `${where} binding ${i}`, context);
  });
  checkBindingAccess(step, where);
  step.workgroups.forEach((count, axis) => {
    if (count > limits.maxComputeWorkgroupsPerDimension) {
      fail('FM_BUNDLE_INVALID', `${where}: ${count} workgroups along ${'xyz'[axis]} exceed the device's maxComputeWorkgroupsPerDimension ${limits.maxComputeWorkgroupsPerDimension}`);
    }
  });
}

function checkBinding(binding: Region, where: string, context: BoundsContext): void {
  const { limits } = context;
  checkRegion(binding, where, context);
  if (binding.size === 0) fail('FM_BUNDLE_INVALID', `${where}: a storage binding cannot be empty`);
  if (binding.offset % limits.minStorageBufferOffsetAlignment !== 0) {
    fail('FM_BUNDLE_INVALID', `${where}: offset ${binding.offset} is not a multiple of the device's minStorageBufferOffsetAlignment ${limits.minStorageBufferOffsetAlignment}`);
  }
  if (binding.size > limits.maxStorageBufferBindingSize) {
    fail('FM_BUNDLE_INVALID', `${where}: ${binding.size} bytes exceed the device's maxStorageBufferBindingSize ${limits.maxStorageBufferBindingSize}`);
  }
}

/**
 * WebGPU's rules for the storage bindings of one dispatch (one usage scope): writable bindings
 * must not alias, and a buffer bound writable may not also be bound read-only; read-only bindings
 * may overlap each other. `readOnly` lists storage bindings, ascending, each once.
 */
function checkBindingAccess(step: DispatchStep, where: string): void {
  const readOnly = step.readOnly ?? [];
  readOnly.forEach((index, k) => {
    if (index >= step.bindings.length || isTextureBinding(step.bindings[index]!)) {
      fail('FM_BUNDLE_INVALID', `${where}: readOnly names binding ${index}, which is not a storage binding`);
    }
    if (k > 0 && index <= readOnly[k - 1]!) fail('FM_BUNDLE_INVALID', `${where}: readOnly must list binding indices once each, ascending`);
  });
  const isReadOnly = new Set(readOnly);
  const storage = step.bindings.flatMap((binding, i) => (isTextureBinding(binding) ? [] : [{ region: binding, i, readOnly: isReadOnly.has(i) }]));
  storage.forEach((a, k) => {
    for (const b of storage.slice(k + 1)) {
      if (a.region.buffer !== b.region.buffer || (a.readOnly && b.readOnly)) continue;
      if (a.readOnly !== b.readOnly) {
        fail('FM_BUNDLE_INVALID', `${where}: bindings ${a.i} and ${b.i} bind buffer ${a.region.buffer} both read-only and writable in one dispatch`);
      }
      const overlaps = a.region.offset < b.region.offset + b.region.size && b.region.offset < a.region.offset + a.region.size;
      if (overlaps) fail('FM_BUNDLE_INVALID', `${where}: bindings ${a.i} and ${b.i} overlap in buffer ${a.region.buffer}`);
    }
  });
}

function checkOutputsReadOnce(context: BoundsContext): void {
  const reads = context.info.outputs.map(() => 0);
  for (const step of context.schedule.run) if (step.op === 'readOutput') reads[step.output]!++;
  reads.forEach((count, i) => {
    if (count !== 1) {
      fail('FM_BUNDLE_INVALID', `${modelWhere(context)}: output ${quote(context.info.outputs[i]!.name)} is read ${count} times per run, expected once`);
    }
  });
}
