import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { DEFAULT_LIMITS, LIMIT_PRESETS, type TargetLimits } from '../ops/op.js';
import { FlashmemError } from '../errors.js';
import { compileModel } from '../compile.js';
import { DEFAULT_PROFILE, resolveProfile } from '../profile/load.js';

/** `--input-shape name=1x3x224x224` (repeatable) -> { name: [1, 3, 224, 224] } */
export function parseInputShapes(specs: readonly string[]): Record<string, number[]> {
  const shapes: Record<string, number[]> = {};
  for (const spec of specs) {
    const eq = spec.lastIndexOf('=');
    const name = spec.slice(0, eq);
    const dims = spec.slice(eq + 1).split(/[x,]/).map((d) => Number(d));
    if (eq <= 0 || dims.some((d) => !Number.isInteger(d) || d < 0)) {
      throw new FlashmemError('FM_BAD_ARGUMENT', `--input-shape ${JSON.stringify(spec)} is not of the form name=1x3x224x224`);
    }
    shapes[name] = dims;
  }
  return shapes;
}

export function compileCommand(cli: Argv): void {
  cli.command(
    'compile <model>',
    'compile an ONNX model into a WebGPU bundle',
    (y) => y
      .positional('model', { type: 'string', demandOption: true, describe: 'path to model.onnx (external data is read from its folder)' })
      .option('out', { type: 'string', demandOption: true, describe: 'bundle folder to write (replaced atomically)' })
      .option('input-shape', { type: 'string', array: true, default: [] as string[], describe: 'fix an input shape: name=1x3x224x224 (repeatable)' })
      .option('target-limits', { type: 'string', default: 'webgpu', describe: 'WebGPU limits to compile for: webgpu (the default limits), compat, or a JSON file of limits (e.g. an adapter\'s)' })
      .option('strategy', { choices: ['preload', 'stream'] as const, describe: 'preload every weight at load, or stream weights under --memory-budget (the default when a budget is given)' })
      .option('memory-budget', { type: 'string', describe: 'GPU memory budget for --strategy stream: bytes or KiB/MiB/GiB (e.g. 48MiB)' })
      .option('weight-layout', { choices: ['auto', 'buffer', 'texture'] as const, default: 'auto' as const, describe: 'Conv/MatMul/Gemm weight layout: auto (the device profile\'s layout costs decide; buffer without them), or force storage buffers or 2.5D textures' })
      .option('profile', { type: 'string', describe: `device profile for the stream strategy's load capacities: a shipped name or a file from flashmemc profile (default: ${DEFAULT_PROFILE})` })
      .option('dump-ir', { type: 'string', describe: 'write the IR after every pass into this folder' })
      .option('json', { type: 'boolean', default: false, describe: 'print the compile report as JSON' }),
    async (args) => {
      const report = await compileModel(args.model, args.out, {
        inputShapes: parseInputShapes(args['input-shape']),
        limits: resolveTargetLimits(args['target-limits']),
        strategy: args.strategy ?? (args['memory-budget'] === undefined ? 'preload' : 'stream'),
        memoryBudget: args['memory-budget'] === undefined ? undefined : parseSize(args['memory-budget']),
        dumpDir: args['dump-ir'],
        weightLayout: args['weight-layout'],
        profile: args.profile === undefined ? undefined : resolveProfile(args.profile),
      });
      if (args.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        process.stdout.write(
          `compiled ${report.modelName}: ${report.kernels} kernels (${report.shaders} distinct shaders), ` +
          `weights ${mib(report.weightBytes)}, activation arena ${mib(report.activationBytes)}, ` +
          `planned peak GPU ${mib(report.plannedPeakBytes)} in ${(report.totalMs / 1000).toFixed(2)} s -> ${args.out}\n`,
        );
        const s = report.streaming;
        if (s) {
          process.stdout.write(
            `streaming under ${mib(s.budgetBytes)}: ${s.streamedWeights} weights (${mib(s.streamedBytes)}) streamed, ${s.preloadedWeights} preloaded; ` +
            `${mib(s.carriedBytes)} carried by ${s.carrierKernels} kernels, ${mib(s.copiedBytes)} copied from the ring, ${mib(s.directBytes)} uploaded directly; ` +
            `load plan ${s.solverStatus} in ${s.solveMs.toFixed(0)} ms (${s.windows} windows), device profile ${s.profile.name}\n`,
          );
        }
      }
    },
  );
}

/** '48MiB', '1.5GiB', '65536' -> bytes */
export function parseSize(text: string): number {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB|KB|MB|GB)?\s*$/i.exec(text);
  if (!m) throw new FlashmemError('FM_BAD_ARGUMENT', `size ${JSON.stringify(text)} is not of the form 123, 64KiB, 48MiB or 2GiB`);
  const unit = (m[2] ?? 'B').toLowerCase();
  const scale: Record<string, number> = { b: 1, kib: 1024, mib: 1048576, gib: 1073741824, kb: 1000, mb: 1e6, gb: 1e9 };
  return Math.round(Number(m[1]) * scale[unit]!);
}

/** A preset name or a JSON file whose numeric fields override the default limits. */
export function resolveTargetLimits(spec: string): TargetLimits {
  const preset = LIMIT_PRESETS[spec];
  if (preset) return preset;
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(spec, 'utf8'));
  } catch (e) {
    throw new FlashmemError('FM_BAD_ARGUMENT', `--target-limits ${JSON.stringify(spec)} is neither a preset (${Object.keys(LIMIT_PRESETS).join(', ')}) nor a readable JSON file: ${(e as Error).message}`);
  }
  const limits: TargetLimits = { ...DEFAULT_LIMITS };
  for (const key of Object.keys(DEFAULT_LIMITS) as (keyof TargetLimits)[]) {
    const value = (parsed as Record<string, unknown>)[key];
    if (value === undefined) continue;
    if (typeof value !== 'number' || !Number.isInteger(value) || value <= 0) {
      throw new FlashmemError('FM_BAD_ARGUMENT', `--target-limits: ${key} must be a positive integer, got ${JSON.stringify(value)}`);
    }
    limits[key] = value;
  }
  return limits;
}

export const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;
