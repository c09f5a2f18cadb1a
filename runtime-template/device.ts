/**
 * The WebGPU device: the app's, or one requested from Dawn (Node) or navigator.gpu (browsers).
 */
import type { Manifest } from '../schemas/manifest.js';
import type { LoadOptions } from './api.js';
import { importNodeModule, IN_NODE, keepAlive, type NodeModule, type NodePath, type NodeUrl } from './env.js';
import { errorMessage, fail, quote } from './errors.js';

export interface AcquiredDevice {
  device: GPUDevice;
  /** created by the session, so destroyed by it */
  owned: boolean;
}

type DawnModule = { create(flags: string[]): GPU };
const DEFAULT_NODE_BACKENDS = ['vulkan', 'opengles'];

export async function acquireDevice(manifest: Manifest, options: LoadOptions): Promise<AcquiredDevice> {
  if (options.device) {
    const missing = [...unmetLimits(options.device.limits, manifest.requiredLimits), ...unmetFeatures(options.device.features, manifest.requiredFeatures)];
    if (missing.length > 0) fail('FM_WEBGPU', `the given device does not meet the bundle's requirements: ${missing.join('; ')}`);
    return { device: options.device, owned: false };
  }
  return IN_NODE ? nodeDevice(manifest, options.backend, options.dawnToggles) : browserDevice(manifest);
}

/** Limits named min* are alignments (smaller is better); the others are maxima (larger is better). */
function unmetLimits(available: GPUSupportedLimits, required: Record<string, number>): string[] {
  return Object.entries(required).flatMap(([name, value]) => {
    const have = (available as unknown as Record<string, unknown>)[name];
    if (typeof have !== 'number') return [`limit ${name} is unknown to this WebGPU implementation`];
    const met = name.startsWith('min') ? have <= value : have >= value;
    return met ? [] : [`limit ${name} is ${have}, the bundle needs ${value}`];
  });
}

function unmetFeatures(available: GPUSupportedFeatures, required: string[]): string[] {
  return required.filter((feature) => !available.has(feature)).map((feature) => `feature ${feature} is missing`);
}

async function requestAdapter(gpu: GPU): Promise<GPUAdapter | null> {
  return (await keepAlive(gpu.requestAdapter())) ??
    // compatibility-mode adapters (OpenGL ES) answer only this request
    (await keepAlive(gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions)));
}

async function deviceFromAdapter(adapter: GPUAdapter, manifest: Manifest, where: string): Promise<GPUDevice> {
  const missing = [...unmetLimits(adapter.limits, manifest.requiredLimits), ...unmetFeatures(adapter.features, manifest.requiredFeatures)];
  if (missing.length > 0) fail('FM_WEBGPU', `the WebGPU adapter (${where}) does not meet the bundle's requirements: ${missing.join('; ')}`);
  try {
    return await keepAlive(adapter.requestDevice({
      requiredLimits: manifest.requiredLimits,
      requiredFeatures: manifest.requiredFeatures as GPUFeatureName[],
    }));
  } catch (error) {
    fail('FM_WEBGPU', `requesting a WebGPU device (${where}) failed: ${errorMessage(error)}`, error);
  }
}

async function nodeDevice(manifest: Manifest, backend: string | undefined, toggles: readonly string[] | undefined): Promise<AcquiredDevice> {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const flags = dawnToggleFlags(toggles ?? parseDawnToggles(process.env.FLASHMEM_DAWN_TOGGLES));
  const dawn = await importDawn();
  const requested = backend ?? process.env.FLASHMEM_WEBGPU_BACKEND;
  const backends = requested ? [requested] : DEFAULT_NODE_BACKENDS;
  for (const name of backends) {
    const instance = dawnInstance(dawn, name, flags);
    const adapter = await requestAdapter(instance);
    if (adapter) return { device: await deviceFromAdapter(adapter, manifest, `Dawn ${name}`), owned: true };
  }
  fail('FM_WEBGPU', `no WebGPU adapter on Dawn backend(s) ${backends.join(', ')}; set FLASHMEM_WEBGPU_BACKEND or pass options.device`);
}

const dawnInstances = new Map<string, GPU>();

/**
 * One Dawn instance per backend and toggles for the whole process: creating an instance loads and
 * probes the backend's driver, so sessions share one instead of each creating (and dropping) their own.
 */
function dawnInstance(dawn: DawnModule, backend: string, toggleFlags: string[]): GPU {
  const flags = [`backend=${backend}`, ...toggleFlags];
  const key = flags.join(' ');
  let instance = dawnInstances.get(key);
  if (!instance) dawnInstances.set(key, (instance = dawn.create(flags)));
  return instance;
}

/** Dawn toggle names: letters, digits and underscores (a comma or '=' would smuggle in other flags) */
const TOGGLE_NAME = /^-?[A-Za-z0-9_]+$/;

/** FLASHMEM_DAWN_TOGGLES: comma-separated toggle names, '-name' to disable one. */
export function parseDawnToggles(value: string | undefined): string[] {
  return (value ?? '').split(',').map((toggle) => toggle.trim()).filter((toggle) => toggle !== '');
}

/** The `webgpu` package's instance flags for toggles ('name' enabled, '-name' disabled). */
export function dawnToggleFlags(toggles: readonly string[]): string[] {
  const bad = toggles.find((toggle) => typeof toggle !== 'string' || !TOGGLE_NAME.test(toggle));
  if (bad !== undefined) fail('FM_WEBGPU', `Dawn toggle ${quote(String(bad))} is not a toggle name (letters, digits, underscores; '-' in front disables it)`);
  const enabled = toggles.filter((toggle) => !toggle.startsWith('-'));
  const disabled = toggles.filter((toggle) => toggle.startsWith('-')).map((toggle) => toggle.slice(1));
  return [
    ...(enabled.length > 0 ? [`enable-dawn-features=${enabled.join(',')}`] : []),
    ...(disabled.length > 0 ? [`disable-dawn-features=${disabled.join(',')}`] : []),
  ];
}

/** The `webgpu` package resolves from the app, not from the bundle folder runtime.js sits in. */
async function importDawn(): Promise<DawnModule> {
  try {
    return await importNodeModule<DawnModule>('webgpu');
  } catch (direct) {
    try {
      const { createRequire } = await importNodeModule<NodeModule>('node:module');
      const { pathToFileURL } = await importNodeModule<NodeUrl>('node:url');
      const { join } = await importNodeModule<NodePath>('node:path');
      const resolved = createRequire(join(process.cwd(), 'noop.js')).resolve('webgpu');
      return await importNodeModule<DawnModule>(pathToFileURL(resolved).href);
    } catch {
      fail('FM_WEBGPU', `the 'webgpu' package (Dawn for Node) could not be imported (${errorMessage(direct)}): install it (npm install webgpu) or pass options.device`, direct);
    }
  }
}

async function browserDevice(manifest: Manifest): Promise<AcquiredDevice> {
  const gpu = (globalThis as { navigator?: { gpu?: GPU } }).navigator?.gpu;
  if (!gpu) fail('FM_WEBGPU', 'this browser has no WebGPU (navigator.gpu is missing)');
  const adapter = await requestAdapter(gpu);
  if (!adapter) fail('FM_WEBGPU', 'the browser offers no WebGPU adapter');
  return { device: await deviceFromAdapter(adapter, manifest, 'navigator.gpu'), owned: true };
}
