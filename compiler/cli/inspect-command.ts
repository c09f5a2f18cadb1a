import { memoryChartSvg, memoryOverTime, textureBytes } from './memory-chart.js';
import type { Argv } from 'yargs';
import { FlashmemError } from '../errors.js';
import { readBundleFileSync } from '../bundle/safe-read.js';
import { writeOutputFile } from '../output-file.js';
import type { ModelSchedule, Schedule } from '../../schemas/schedule.js';
import { scheduleSchema } from '../../schemas/schedule.js';
import { manifestSchema, type Manifest } from '../../schemas/manifest.js';
import { readManifest } from './bundle-session.js';
import { mib } from './compile-command.js';
import { readReportInput } from './report/load.js';
import { bundleReport } from './report/summary.js';
import { renderReport } from './report/render.js';

export interface ModelSummary {
  model: string;
  strategy: string;
  dispatches: number;
  kernelsByLabel: Record<string, number>;
  weights: number;
  weightBytes: number;
  largestWeights: { weight: string; bytes: number }[];
  buffers: { role: string; size: number }[];
  plannedPeakBytes: number;
  /** the layouts the compiler chose: weight textures (2.5D) and the kernels binding them */
  weightLayouts: WeightLayoutSummary;
}

export interface WeightLayoutSummary {
  textures: number;
  textureBytes: number;
  /** dispatches binding a weight texture: kernel label, node, texture geometry (texels x rows x layers) */
  textureKernels: { label: string; node: string; texture: string }[];
  /** dispatches binding weights only through storage buffers */
  bufferKernels: number;
}

function summarizeLayouts(s: ModelSchedule): WeightLayoutSummary {
  const textureKernels: WeightLayoutSummary['textureKernels'] = [];
  let bufferKernels = 0;
  for (const step of s.run) {
    if (step.op !== 'dispatch') continue;
    const bound = step.bindings.flatMap((b) => ('texture' in b ? [s.textures?.[b.texture]] : []));
    if (bound.length === 0) bufferKernels++;
    for (const t of bound) textureKernels.push({ label: step.label, node: step.node, texture: t ? `${t.width}x${t.height}x${t.layers}` : '?' });
  }
  return { textures: s.textures?.length ?? 0, textureBytes: textureBytes(s), textureKernels, bufferKernels };
}

export function summarizeModel(s: ModelSchedule): ModelSummary {
  const kernelsByLabel: Record<string, number> = {};
  let dispatches = 0;
  for (const step of s.run) {
    if (step.op !== 'dispatch') continue;
    dispatches++;
    kernelsByLabel[step.label] = (kernelsByLabel[step.label] ?? 0) + 1;
  }
  const weightBytes = new Map<string, number>();
  for (const step of [...s.init, ...s.run]) {
    if (step.op === 'upload') weightBytes.set(step.weight, (weightBytes.get(step.weight) ?? 0) + step.dst.size);
  }
  const largest = [...weightBytes].sort((a, b) => b[1] - a[1]).slice(0, 5).map(([weight, bytes]) => ({ weight, bytes }));
  return {
    model: s.model, strategy: s.strategy, dispatches, kernelsByLabel,
    weights: weightBytes.size, weightBytes: [...weightBytes.values()].reduce((a, b) => a + b, 0),
    largestWeights: largest, buffers: s.buffers, plannedPeakBytes: s.plannedPeakBytes, weightLayouts: summarizeLayouts(s),
  };
}

export function inspectCommand(cli: Argv): void {
  cli.command(
    'inspect <bundle>',
    'summarise a bundle: models, kernels, weights, memory',
    (y) => y
      .positional('bundle', { type: 'string', demandOption: true })
      .option('json', { type: 'boolean', default: false })
      .option('svg', { type: 'string', describe: 'write a memory-over-time chart of the first model (SVG) to this file' })
      .option('html', { type: 'string', describe: 'write a self-contained HTML report (models, kernels and their WGSL, weights, memory, load plan) to this file' })
      .option('timeline', { type: 'string', describe: 'with --html: add the per-step timeline a flashmemc run --timeline file recorded' })
      .check((a) => {
        if (a.timeline !== undefined && a.html === undefined) throw new FlashmemError('FM_BAD_ARGUMENT', '--timeline goes into the HTML report: add --html report.html');
        return true;
      }),
    (args) => {
      const manifest = manifestSchema.safeParse(readManifest(args.bundle));
      if (!manifest.success) throw new FlashmemError('FM_BUNDLE_INVALID', `manifest.json: ${manifest.error.message}`);
      const parsed = scheduleSchema.safeParse(readScheduleJson(args.bundle, manifest.data));
      if (!parsed.success) throw new FlashmemError('FM_BUNDLE_INVALID', `schedule.json: ${parsed.error.message}`);
      const schedule: Schedule = parsed.data;
      const models = schedule.models.map(summarizeModel);
      // read and checked before anything is written: a bad --timeline leaves no half-done outputs
      const report = args.html === undefined ? undefined : bundleReport(readReportInput(args.bundle, manifest.data, schedule, args.timeline));
      if (args.svg) {
        const first = schedule.models[0]!;
        writeOutputFile(args.svg, memoryChartSvg(`${first.model} (${first.strategy}): GPU memory over the run`, memoryOverTime(first), first.loadPlan?.budgetBytes), '--svg');
      }
      if (report) writeOutputFile(args.html!, renderReport(report), '--html');
      const files = manifest.data.files;
      const totals = { shaders: schedule.shaders.length, shards: schedule.shards.length, bundleBytes: files.reduce((s, f) => s + f.size, 0) };
      if (args.json) {
        process.stdout.write(`${JSON.stringify({ models, ...totals, requiredLimits: manifest.data.requiredLimits }, null, 2)}\n`);
        return;
      }
      const out: string[] = [`bundle ${args.bundle}: format ${manifest.data.formatVersion}, ${totals.shaders} shaders, ${totals.shards} weight shards, ${mib(totals.bundleBytes)} on disk`];
      for (const [i, m] of models.entries()) {
        const sig = manifest.data.models[i]!;
        out.push(`model ${JSON.stringify(m.model)} (${m.strategy})`);
        for (const t of sig.inputs) out.push(`  input  ${JSON.stringify(t.name)} ${t.dtype}[${t.shape}]`);
        for (const t of sig.outputs) out.push(`  output ${JSON.stringify(t.name)} ${t.dtype}[${t.shape}]`);
        out.push(`  kernels: ${m.dispatches} dispatches: ${Object.entries(m.kernelsByLabel).sort((a, b) => b[1] - a[1]).map(([l, n]) => `${l} x${n}`).join(', ')}`);
        out.push(`  weights: ${m.weights} tensors, ${mib(m.weightBytes)}; largest: ${m.largestWeights.map((w) => `${JSON.stringify(w.weight)} ${mib(w.bytes)}`).join(', ')}`);
        const layouts = m.weightLayouts;
        out.push(`  weight layouts: ${layouts.textures} textures (2.5D rgba32float, ${mib(layouts.textureBytes)}) bound by ${layouts.textureKernels.length} kernels, ` +
          `${layouts.bufferKernels} other kernels bind buffers only`);
        for (const k of layouts.textureKernels) out.push(`    texture ${k.texture} texels: ${k.label} node ${JSON.stringify(k.node)}`);
        const textureMemory = layouts.textures > 0 ? `, weight textures ${mib(layouts.textureBytes)}` : '';
        out.push(`  GPU memory: ${m.buffers.map((b) => `${b.role} ${mib(b.size)}`).join(', ')}${textureMemory}; planned peak ${mib(m.plannedPeakBytes)}`);
        const plan = schedule.models[i]!.loadPlan;
        if (plan) {
          out.push(`  load plan (${plan.solver}, ${plan.windows} windows): budget ${mib(plan.budgetBytes)}; ${plan.streamedWeights} weights streamed (${mib(plan.streamedBytes)}), ` +
            `${plan.preloadedWeights} preloaded; ${mib(plan.carriedBytes)} carried by ${plan.carrierKernels} kernels through a ${mib(plan.ringBytes)} staging ring, ${mib(plan.copiedBytes)} copied from the ring between kernels, ${mib(plan.directBytes)} uploaded directly`);
        }
      }
      process.stdout.write(`${out.join('\n')}\n`);
    },
  );
}

/** schedule.json as the manifest lists it: a regular file of the bundle, of the declared size (safe-read.ts). */
function readScheduleJson(bundleDir: string, manifest: Manifest): unknown {
  const entry = manifest.files.find((file) => file.kind === 'schedule' && file.path === 'schedule.json');
  if (!entry) throw new FlashmemError('FM_BUNDLE_INVALID', 'manifest.json lists no schedule.json');
  const bytes = readBundleFileSync(bundleDir, entry.path, { maxBytes: entry.size, declaredSize: entry.size });
  try {
    return JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes));
  } catch (error) {
    throw new FlashmemError('FM_BUNDLE_INVALID', `schedule.json is not valid UTF-8 JSON: ${(error as Error).message.slice(0, 200)}`, { cause: error });
  }
}
