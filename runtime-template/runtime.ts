/// <reference types="@webgpu/types" preserve="true" />
/**
 * flashmemc runtime: loads a flashmemc bundle (manifest.json, schedule.json, shaders/, weights/),
 * verifies all of it, and replays its schedule on WebGPU, in Node 20 (Dawn, through the `webgpu`
 * npm package) and in browsers.
 *
 * This folder is a template. compiler/bundle/runtime-gen.ts inlines its modules, from this entry,
 * into each bundle's one self-contained runtime.js (and runtime.d.ts), filling in BUNDLE_FORMAT
 * (format.ts: the bundle format's version and JSON Schemas). The modules import only each other
 * and, type-only, the bundle format's types from schemas/; Node modules are imported dynamically,
 * and only when running in Node.
 *
 * This module is the public API: what it exports is what runtime.js exports.
 */
import type { FlashmemSession, LoadOptions, VerifyOptions, VerifySummary } from './api.js';
import { checkScheduleBounds, verificationLimits } from './bounds.js';
import { acquireDevice } from './device.js';
import { openBundleReader } from './reader.js';
import { Session } from './session.js';
import { readVerifiedBundle, verifyFileContents } from './verify.js';
import { checkWorkBounds } from './work-bounds.js';

export type {
  DType, TensorInfo, ModelInfo, TypedArray, InputValue, RunInputs, RunOutputs, ByteRange, ReadFileHook, LoadOptions,
  VerifyOptions, VerifySummary, SessionStats, PlanUse, CallStats, ModelCallStats, TimelineEvent, FlashmemSession,
  GenerateOptions, GenerateResult, SamplingOptions, DecoderStepper, TrustedKey,
} from './api.js';
export { FlashmemRuntimeError, type RuntimeErrorCode } from './errors.js';

/**
 * Loads a bundle from a folder path (Node), a file: URL (Node) or an http(s) URL, verifies it
 * completely (format version, JSON Schemas, sha256 of every file, bounds of every step against the
 * device) and prepares it on the GPU: buffers, pipelines, bind groups, preloaded weights.
 */
export async function loadBundle(dirOrUrl: string | URL, options: LoadOptions = {}): Promise<FlashmemSession> {
  const startedAt = performance.now();
  const reader = await openBundleReader(dirOrUrl, options);
  const bundle = await readVerifiedBundle(reader, options.trustedKeys);
  // before a device is even requested: these need only the schedule
  checkWorkBounds(bundle.schedule, bundle.modelInfos, options);
  const acquired = await acquireDevice(bundle.manifest, options);
  try {
    checkScheduleBounds(bundle, acquired.device.limits);
    // shards are verified block by block as they stream in (ShardBlocks), before their bytes reach the GPU
    return await Session.start(acquired, bundle, reader, startedAt, options);
  } catch (error) {
    if (acquired.owned) acquired.device.destroy();
    throw error;
  }
}

/**
 * Verifies a bundle without a device: every check loadBundle makes before GPU work (format version,
 * JSON Schemas, cross references, bounds of every step, here against `options.limits`), plus the
 * size and sha256 of every file the manifest lists (shards, runtime.js and runtime.d.ts included).
 * Rejects with FM_BUNDLE_SIGNATURE (with trustedKeys), FM_BUNDLE_VERSION, FM_BUNDLE_INVALID, FM_BUNDLE_HASH or FM_IO.
 */
export async function verifyBundle(dirOrUrl: string | URL, options: VerifyOptions = {}): Promise<VerifySummary> {
  const reader = await openBundleReader(dirOrUrl, options);
  const bundle = await readVerifiedBundle(reader, options.trustedKeys);
  checkScheduleBounds(bundle, verificationLimits(bundle.manifest, options.limits));
  const gpuBytes = checkWorkBounds(bundle.schedule, bundle.modelInfos, options);
  let bytes = bundle.manifestBytes;
  for (const entry of bundle.manifest.files) {
    if (!bundle.verifiedFiles.has(entry.path)) await verifyFileContents(reader, entry);
    bytes += entry.size;
  }
  return { models: bundle.manifest.models, files: bundle.manifest.files.length + 1, bytes, gpuBytes };
}
