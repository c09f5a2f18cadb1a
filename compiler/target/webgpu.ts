/**
 * Creates a WebGPU device in Node through Dawn (the `webgpu` npm package). The backend comes from
 * FLASHMEM_WEBGPU_BACKEND (e.g. 'vulkan', 'opengles'); by default every backend is tried in turn
 * and the first that yields an adapter wins (here, Mesa llvmpipe answers only on OpenGL ES).
 */
import { FlashmemError, quoteName } from '../errors.js';

const DEFAULT_BACKENDS = ['vulkan', 'opengles'];

let keepAliveTimer: NodeJS.Timeout | undefined;
let keepAliveUsers = 0;

/**
 * Dawn-node's promises hold no event-loop handle: while one is pending Node may exit or stall.
 * Hold a timer for as long as any awaited GPU promise is pending.
 */
export async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  if (keepAliveUsers++ === 0) keepAliveTimer = setInterval(() => {}, 1 << 30);
  try {
    return await promise;
  } finally {
    if (--keepAliveUsers === 0) clearInterval(keepAliveTimer);
  }
}

export interface NodeGpu {
  device: GPUDevice;
  adapter: GPUAdapter;
  backend: string;
}

type DawnModule = { create(flags: string[]): GPU; globals: Record<string, unknown> };

/**
 * Dawn instances must stay referenced while their devices live: a collected instance makes Dawn
 * crash or hang (webgpu README, "Lifetime"). Instances are kept for the life of the process.
 */
const liveInstances = new Set<GPU>();

/** Dawn toggle names: letters, digits and underscores (a comma or '=' would smuggle in other flags) */
const TOGGLE_NAME = /^-?[A-Za-z0-9_]+$/;

/**
 * The `webgpu` package's instance flags for Dawn toggles: the given ones, else
 * FLASHMEM_DAWN_TOGGLES (comma-separated), 'name' enabled and '-name' disabled; the runtime
 * (runtime-template/device.ts) reads the same variable the same way.
 */
export function dawnToggleFlags(toggles?: readonly string[]): string[] {
  const list = toggles ?? (process.env.FLASHMEM_DAWN_TOGGLES ?? '').split(',').map((t) => t.trim()).filter((t) => t !== '');
  const bad = list.find((toggle) => !TOGGLE_NAME.test(toggle));
  if (bad !== undefined) throw new FlashmemError('FM_BAD_ARGUMENT', `Dawn toggle ${quoteName(bad)} is not a toggle name (letters, digits, underscores; '-' in front disables it)`);
  const enabled = list.filter((t) => !t.startsWith('-'));
  const disabled = list.filter((t) => t.startsWith('-')).map((t) => t.slice(1));
  return [
    ...(enabled.length > 0 ? [`enable-dawn-features=${enabled.join(',')}`] : []),
    ...(disabled.length > 0 ? [`disable-dawn-features=${disabled.join(',')}`] : []),
  ];
}

export interface NodeDeviceOptions {
  backend?: string;
  limits?: Record<string, number>;
  /** Dawn toggles (dawnToggleFlags); FLASHMEM_DAWN_TOGGLES when absent */
  dawnToggles?: readonly string[];
  /** features to enable where the adapter has them (the others are left off, not an error) */
  optionalFeatures?: readonly string[];
}

export async function createNodeDevice(options: NodeDeviceOptions = {}): Promise<NodeGpu> {
  process.env.EGL_PLATFORM ??= 'surfaceless';
  const toggleFlags = dawnToggleFlags(options.dawnToggles);
  const dawn = (await import('webgpu')) as unknown as DawnModule;
  Object.assign(globalThis, dawn.globals);
  const requested = options.backend ?? process.env.FLASHMEM_WEBGPU_BACKEND;
  const backends = requested ? [requested] : DEFAULT_BACKENDS;
  const failures: string[] = [];
  for (const backend of backends) {
    const gpu = dawn.create([`backend=${backend}`, ...toggleFlags]);
    liveInstances.add(gpu);
    const adapter =
      (await keepAlive(gpu.requestAdapter())) ??
      (await keepAlive(gpu.requestAdapter({ featureLevel: 'compatibility' } as GPURequestAdapterOptions)));
    if (!adapter) {
      failures.push(backend);
      continue;
    }
    const requiredLimits: Record<string, number> = {};
    for (const [key, value] of Object.entries(options.limits ?? adapterMaxima(adapter))) {
      // a lookup by name also finds Object.prototype members ("toString"): only numbers are limits
      const max: unknown = (adapter.limits as unknown as Record<string, unknown>)[key];
      if (typeof max !== 'number') throw new FlashmemError('FM_WEBGPU', `adapter (${backend}) has no limit ${quoteName(key)}`);
      if (value > max) throw new FlashmemError('FM_WEBGPU', `adapter (${backend}) limit ${key} is ${max}, the bundle needs ${value}`);
      requiredLimits[key] = value;
    }
    const requiredFeatures = (options.optionalFeatures ?? []).filter((f) => adapter.features.has(f)) as GPUFeatureName[];
    const device = await keepAlive(adapter.requestDevice({ requiredLimits, requiredFeatures }));
    return { device, adapter, backend };
  }
  throw new FlashmemError('FM_WEBGPU', `no WebGPU adapter on backend(s) ${failures.join(', ')}; set FLASHMEM_WEBGPU_BACKEND`);
}

const LIMITS_TO_RAISE = [
  'maxStorageBufferBindingSize', 'maxBufferSize', 'maxStorageBuffersPerShaderStage',
  'maxComputeInvocationsPerWorkgroup', 'maxComputeWorkgroupSizeX', 'maxComputeWorkgroupSizeY',
  'maxComputeWorkgroupStorageSize', 'maxComputeWorkgroupsPerDimension',
] as const;

export function adapterMaxima(adapter: GPUAdapter): Record<string, number> {
  const limits = adapter.limits as unknown as Record<string, number>;
  return Object.fromEntries(LIMITS_TO_RAISE.map((k) => [k, limits[k]!]));
}
