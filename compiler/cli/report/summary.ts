/**
 * What the HTML report shows, computed from the bundle's manifest, schedule and shaders (and a
 * run's timeline): pure data, rendered by render.ts. Every string in here comes from the bundle
 * and is untrusted; rendering escapes it.
 */
import type { Manifest, ManifestModel } from '../../../schemas/manifest.js';
import type { LoadPlanSummary, ModelSchedule, Schedule, Step } from '../../../schemas/schedule.js';
import { memoryOverTime, type MemoryPoint } from '../memory-chart.js';
import { streamedLoads, type StreamedLoad } from './streamed-loads.js';
import type { MatchedTimeline } from './timeline.js';

export interface ReportInput {
  /** the bundle folder as the user named it */
  bundle: string;
  manifest: Manifest;
  schedule: Schedule;
  /** WGSL of schedule.shaders[i] */
  shaders: readonly string[];
  timeline?: MatchedTimeline & { file: string };
}

export interface ShaderUse {
  shader: number;
  path: string;
  wgsl: string;
  dispatches: number;
  nodes: string[];
}

export interface KernelKind {
  label: string;
  dispatches: number;
  shaders: ShaderUse[];
}

export interface DispatchRow {
  kernel: number;
  label: string;
  node: string;
  shader: number;
  workgroups: [number, number, number];
}

export type WeightLayout = 'buffer' | 'texture';
export type Residency = 'resident' | 'streamed';

export interface WeightRow {
  name: string;
  /** how the compiler packed it: the derived constant's label (conv_packed_weights, weights_panels, ...), or as in the model */
  format: string;
  layout: WeightLayout;
  residency: Residency;
  bytes: number;
  uploads: number;
}

export interface WeightGroup {
  format: string;
  layout: WeightLayout;
  residency: Residency;
  tensors: number;
  bytes: number;
}

export interface LoadRow extends StreamedLoad {
  /** label and node of the loading kernel and of the first use */
  loadBy?: { label: string; node: string };
  usedBy?: { label: string; node: string };
  /** kernels from the one loading the bytes to their first use */
  distance?: number;
}

export interface PlanReport {
  /** the model's name, or 'sequence' */
  name: string;
  strategy: ModelSchedule['strategy'];
  signature?: ManifestModel;
  dispatches: DispatchRow[];
  kernels: KernelKind[];
  weights: WeightRow[];
  weightGroups: WeightGroup[];
  buffers: ModelSchedule['buffers'];
  textures: NonNullable<ModelSchedule['textures']>;
  plannedPeakBytes: number;
  memory: MemoryPoint[];
  loadPlan?: LoadPlanSummary;
  loads: LoadRow[];
}

export interface BundleReport {
  bundle: string;
  formatVersion: number;
  generator: string;
  files: number;
  bundleBytes: number;
  shaders: number;
  shards: number;
  requiredLimits: Record<string, number>;
  requiredFeatures: string[];
  memory: 'separate' | 'shared';
  plans: PlanReport[];
  timeline?: ReportInput['timeline'];
}

/** `node::const0:conv_packed_weights` -> conv_packed_weights (split parts and column slices grouped); plain names are model tensors */
export function weightFormat(name: string): string {
  const derived = /::[a-z]+\d+:([A-Za-z0-9_]+)$/.exec(name);
  return derived ? derived[1]!.replace(/_(cols|part)\d+$/, '') : 'as in the model';
}

function kernelKinds(run: readonly Step[], shaderPaths: readonly string[], shaders: readonly string[]): KernelKind[] {
  const kinds = new Map<string, Map<number, ShaderUse>>();
  for (const step of run) {
    if (step.op !== 'dispatch') continue;
    const uses = kinds.get(step.label) ?? kinds.set(step.label, new Map()).get(step.label)!;
    const use = uses.get(step.shader) ?? uses.set(step.shader, { shader: step.shader, path: shaderPaths[step.shader] ?? '?', wgsl: shaders[step.shader] ?? '', dispatches: 0, nodes: [] }).get(step.shader)!;
    use.dispatches++;
    use.nodes.push(step.node);
  }
  return [...kinds].map(([label, uses]) => ({ label, dispatches: [...uses.values()].reduce((s, u) => s + u.dispatches, 0), shaders: [...uses.values()] }))
    .sort((a, b) => b.dispatches - a.dispatches || (a.label < b.label ? -1 : 1));
}

function weightRows(init: readonly Step[], run: readonly Step[]): WeightRow[] {
  const rows = new Map<string, WeightRow>();
  const add = (step: Step, residency: Residency) => {
    if (step.op !== 'upload') return;
    const row = rows.get(step.weight) ?? rows.set(step.weight, { name: step.weight, format: weightFormat(step.weight), layout: 'buffer', residency, bytes: 0, uploads: 0 }).get(step.weight)!;
    if ('texture' in step.dst) row.layout = 'texture';
    // a weight uploaded during the run streams, whatever init did
    if (residency === 'streamed') row.residency = 'streamed';
    row.bytes += step.dst.size;
    row.uploads++;
  };
  for (const step of init) add(step, 'resident');
  for (const step of run) add(step, 'streamed');
  return [...rows.values()];
}

function weightGroups(weights: readonly WeightRow[]): WeightGroup[] {
  const groups = new Map<string, WeightGroup>();
  for (const w of weights) {
    const key = JSON.stringify([w.format, w.layout, w.residency]);
    const group = groups.get(key) ?? groups.set(key, { format: w.format, layout: w.layout, residency: w.residency, tensors: 0, bytes: 0 }).get(key)!;
    group.tensors++;
    group.bytes += w.bytes;
  }
  return [...groups.values()].sort((a, b) => b.bytes - a.bytes);
}

function loadRows(schedule: ModelSchedule, dispatches: readonly DispatchRow[]): LoadRow[] {
  const kernel = (k: number | undefined) => (k === undefined ? undefined : { label: dispatches[k]!.label, node: dispatches[k]!.node });
  return streamedLoads(schedule).map((load) => ({
    ...load,
    loadBy: kernel(load.loadKernel),
    usedBy: kernel(load.firstUse),
    distance: load.loadKernel !== undefined && load.firstUse !== undefined ? load.firstUse - load.loadKernel : undefined,
  }));
}

function planReport(schedule: ModelSchedule, bundleSchedule: Schedule, shaders: readonly string[], signature?: ManifestModel): PlanReport {
  const dispatches = schedule.run.flatMap((s) => (s.op === 'dispatch' ? [s] : [])).map((s, kernel): DispatchRow => ({ kernel, label: s.label, node: s.node, shader: s.shader, workgroups: s.workgroups }));
  const weights = weightRows(schedule.init, schedule.run);
  return {
    name: schedule.model, strategy: schedule.strategy, signature, dispatches,
    kernels: kernelKinds(schedule.run, bundleSchedule.shaders, shaders),
    weights, weightGroups: weightGroups(weights),
    buffers: schedule.buffers, textures: schedule.textures ?? [], plannedPeakBytes: schedule.plannedPeakBytes,
    memory: memoryOverTime(schedule), loadPlan: schedule.loadPlan, loads: loadRows(schedule, dispatches),
  };
}

/** A declared call sequence as one plan: its calls' steps in order (dispatch indices run on across calls). */
function sequenceAsSchedule(schedule: Schedule): ModelSchedule | undefined {
  const sequence = schedule.sequence;
  if (!sequence) return undefined;
  return {
    model: `sequence ${sequence.models.join(', ')}`, strategy: sequence.loadPlan ? 'stream' : 'preload', loadPlan: sequence.loadPlan,
    buffers: sequence.buffers, init: sequence.init, run: sequence.calls.flatMap((c) => c.run),
    liveArenaBytes: sequence.liveArenaBytes, plannedPeakBytes: sequence.plannedPeakBytes,
  };
}

export function bundleReport(input: ReportInput): BundleReport {
  const { manifest, schedule, shaders } = input;
  const plans = schedule.models.map((m, i) => planReport(m, schedule, shaders, manifest.models.find((sig) => sig.name === m.model) ?? manifest.models[i]));
  const sequence = sequenceAsSchedule(schedule);
  if (sequence) plans.push(planReport(sequence, schedule, shaders));
  return {
    bundle: input.bundle,
    formatVersion: manifest.formatVersion,
    generator: `${manifest.generator.name} ${manifest.generator.version}`,
    files: manifest.files.length,
    bundleBytes: manifest.files.reduce((s, f) => s + f.size, 0),
    shaders: schedule.shaders.length,
    shards: schedule.shards.length,
    requiredLimits: manifest.requiredLimits,
    requiredFeatures: manifest.requiredFeatures,
    memory: schedule.memory ?? 'separate',
    plans,
    timeline: input.timeline,
  };
}
