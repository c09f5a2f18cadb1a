import { readFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { DEFAULT_LIMITS, LIMIT_PRESETS, type TargetLimits } from '../ops/op.js';
import { FlashmemError } from '../errors.js';
import { compileModel } from '../compile.js';

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
      .option('dump-ir', { type: 'string', describe: 'write the IR after every pass into this folder' })
      .option('json', { type: 'boolean', default: false, describe: 'print the compile report as JSON' }),
    async (args) => {
      const report = await compileModel(args.model, args.out, {
        inputShapes: parseInputShapes(args['input-shape']),
        limits: resolveTargetLimits(args['target-limits']),
        dumpDir: args['dump-ir'],
      });
      if (args.json) {
        process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
      } else {
        process.stdout.write(
          `compiled ${report.modelName}: ${report.kernels} kernels (${report.shaders} distinct shaders), ` +
          `weights ${mib(report.weightBytes)}, activation arena ${mib(report.activationBytes)}, ` +
          `planned peak GPU ${mib(report.plannedPeakBytes)} in ${(report.totalMs / 1000).toFixed(2)} s -> ${args.out}\n`,
        );
      }
    },
  );
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
