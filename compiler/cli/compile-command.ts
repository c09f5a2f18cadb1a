import type { Argv } from 'yargs';
import { resolveTargetLimits } from '../target/limits.js';
import { FlashmemError } from '../errors.js';
import { basename, extname } from 'node:path';
import { compileModel, withLoadPlanProgress } from '../compile.js';
import { readPrivateKeyFile } from './sign-command.js';
import { compileMultiModel, type ModelInput } from '../compile-multi.js';
import { compileDecoder } from '../compile-decoder.js';
import { DEFAULT_PROFILE, resolveProfile } from '../profile/load.js';
import { progressBar } from './progress.js';
import { readFileSync } from 'node:fs';
import { readNpy } from './npy.js';
import type { FrozenInput } from '../frontend/onnx.js';

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

/**
 * `--input-value name=16000`, `name=0.5,1,2` or `name=file.npy` (repeatable): inputs frozen to
 * constants. A .npy file gives the shape too; plain values take the input's declared shape.
 */
export function parseInputValues(specs: readonly string[]): Record<string, FrozenInput> {
  const frozen: Record<string, FrozenInput> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const name = spec.slice(0, eq);
    const value = spec.slice(eq + 1);
    if (eq <= 0 || value === '') throw new FlashmemError('FM_BAD_ARGUMENT', `--input-value ${JSON.stringify(spec)} is not of the form name=16000, name=1,2,3 or name=file.npy`);
    if (value.endsWith('.npy')) {
      const array = readNpy(readFileOrFail(value), value);
      frozen[name] = { shape: array.shape, values: Array.from(array.data as ArrayLike<number | bigint>, Number) };
      continue;
    }
    const tokens = value.split(',').map((t) => t.trim());
    if (tokens.some((t) => t === '' || (Number.isNaN(Number(t)) && !/^nan$/i.test(t)))) {
      throw new FlashmemError('FM_BAD_ARGUMENT', `--input-value ${JSON.stringify(spec)}: ${JSON.stringify(value)} is not a list of numbers or a .npy file`);
    }
    frozen[name] = { values: tokens.map((t) => (/^nan$/i.test(t) ? NaN : Number(t))) };
  }
  return frozen;
}

function readFileOrFail(path: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (error) {
    throw new FlashmemError('FM_IO', `--input-value: reading ${JSON.stringify(path)} failed: ${(error as Error).message}`, { cause: error });
  }
}

/**
 * Model arguments of a multi-model compile: `a.onnx` (named by its stem) or `a.onnx=name`; each
 * `--input-shape` applies to every model with that input unless qualified as `model:input=dims`.
 */
export function parseModelInputs(paths: readonly string[], shapeSpecs: readonly string[]): ModelInput[] {
  const models = paths.map((spec) => {
    const name = explicitModelName(spec);
    const path = name === undefined ? spec : spec.slice(0, spec.length - name.length - 1);
    return { path, name: name ?? basename(path, extname(path)) };
  });
  const names = new Set(models.map((m) => m.name));
  const shapes = new Map<string, Record<string, number[]>>();
  const everywhere: Record<string, number[]> = {};
  for (const spec of shapeSpecs) {
    const colon = spec.indexOf(':');
    const model = colon > 0 ? spec.slice(0, colon) : '';
    const target = names.has(model) ? (shapes.get(model) ?? shapes.set(model, {}).get(model)!) : everywhere;
    Object.assign(target, parseInputShapes([names.has(model) ? spec.slice(colon + 1) : spec]));
  }
  return models.map((m) => ({ ...m, inputShapes: { ...shapes.get(m.name) }, sharedInputShapes: everywhere }));
}

/** `a.onnx=name` -> 'name'; undefined for a plain path (an '=' inside a folder name is not a name) */
function explicitModelName(spec: string): string | undefined {
  const eq = spec.lastIndexOf('=');
  const name = spec.slice(eq + 1);
  return eq > 0 && !name.includes('/') && !/\.onnx$/i.test(name) ? name : undefined;
}

export function compileCommand(cli: Argv): void {
  cli.command(
    'compile <models..>',
    'compile ONNX models into a WebGPU bundle (several models: one bundle sharing GPU memory)',
    (y) => y
      .positional('models', { type: 'string', array: true, demandOption: true, describe: 'model.onnx files (external data is read from their folders); name one with path.onnx=name' })
      .option('sequence', { type: 'string', describe: 'multi-model bundles: the call order to plan jointly, e.g. a,b,c,b (needs --memory-budget)' })
      .option('stream-path', { choices: ['carriers', 'copies'] as const, default: 'carriers' as const, describe: 'streamed weights reach their slots through the staging ring and carrier kernels, or by direct copies before each kernel (pair with run --uploads mapped)' })
      .option('decoder-window', { type: 'number', describe: 'with --decoder: GPT-Neo\'s local attention window (default: read from the prefill graph)' })
      .option('decoder', { type: 'boolean', default: false, describe: 'an autoregressive decoder: two models named prefill and decode (prefill.onnx decode.onnx, or path=prefill path=decode) sharing weights, with the KV cache on the GPU' })
      .option('out', { type: 'string', demandOption: true, describe: 'bundle folder to write (replaced atomically; an existing folder only when it holds exactly a bundle flashmemc wrote)' })
      .option('force', { type: 'boolean', default: false, describe: 'replace --out whatever it holds (by default a folder that is not exactly a flashmemc bundle is refused with FM_OUTPUT)' })
      .option('input-shape', { type: 'string', array: true, default: [] as string[], describe: 'fix an input shape: name=1x3x224x224 (repeatable)' })
      .option('input-value', { type: 'string', array: true, default: [] as string[], describe: 'freeze an input to a constant and fold what depends on it: name=16000, name=1,2,3 or name=file.npy (repeatable; single-model compiles)' })
      .option('target-limits', { type: 'string', default: 'webgpu', describe: 'WebGPU limits to compile for: webgpu (the default limits), compat, or a JSON file of limits (e.g. an adapter\'s)' })
      .option('strategy', { choices: ['preload', 'stream'] as const, describe: 'preload every weight at load, or stream weights under --memory-budget (the default when a budget is given)' })
      .option('memory-budget', { type: 'string', describe: 'GPU memory budget for --strategy stream: bytes or KiB/MiB/GiB (e.g. 48MiB)' })
      .option('profile', { type: 'string', describe: `device profile for the stream strategy's load capacities: a shipped name or a file from flashmemc profile (default: ${DEFAULT_PROFILE})` })
      .option('weight-layout', { choices: ['auto', 'buffer', 'texture'] as const, default: 'auto' as const, describe: 'Conv/MatMul/Gemm weight layout: auto (the device profile\'s layout costs decide; buffer without them), or force storage buffers or 2.5D textures' })
      .option('max-weight-bytes', { type: 'string', describe: 'split constant weights (MatMul/Gemm columns, Gather rows) larger than this: bytes or KiB/MiB/GiB (default: maxStorageBufferBindingSize, and a quarter of --memory-budget when streaming)' })
      .option('sign', { type: 'string', describe: 'sign the bundle with this private key (flashmemc keygen): writes signature.json with it' })
      .option('quiet', { type: 'boolean', default: false, describe: 'no progress bar on stderr (shown only when stderr is a terminal, without --json)' })
      .option('dump-ir', { type: 'string', describe: 'write the IR after every pass into this folder' })
      .option('json', { type: 'boolean', default: false, describe: 'print the compile report as JSON' }),
    async (args) => {
      const models = args.models as string[];
      const bundleOptions = {
        limits: resolveTargetLimits(args['target-limits']),
        strategy: args.strategy ?? (args['memory-budget'] === undefined ? 'preload' as const : 'stream' as const),
        memoryBudget: args['memory-budget'] === undefined ? undefined : parseSize(args['memory-budget']),
        profile: args.profile === undefined ? undefined : resolveProfile(args.profile),
        maxWeightBytes: args['max-weight-bytes'] === undefined ? undefined : parseSize(args['max-weight-bytes']),
        streamPath: args['stream-path'],
        // read before compiling: a bad key should not cost a compile
        signingKey: args.sign === undefined ? undefined : readPrivateKeyFile(args.sign),
        force: args.force,
      };
      // a machine reading --json gets no bar either, like a pipe
      const progress = progressBar(process.stderr, args.quiet || args.json);
      // multi-model and decoder compiles report each model's import and passes, and the load
      // plans they solve outside compileModel's own reporting
      const onProgress = progress?.update;
      const withProgress = <T>(compile: () => Promise<T>) => withLoadPlanProgress(onProgress, compile).finally(() => progress?.done());
      if ((args['input-value'] as string[]).length > 0 && (args.decoder || models.length > 1 || args.sequence !== undefined)) {
        throw new FlashmemError('FM_BAD_ARGUMENT', '--input-value applies to single-model compiles');
      }
      if (args.decoder) {
        const inputs = parseModelInputs(models, args['input-shape']);
        const path = (name: string) => inputs.find((m) => m.name === name)?.path ?? failDecoderArgs(inputs.map((m) => m.name));
        if (inputs.length !== 2) failDecoderArgs(inputs.map((m) => m.name));
        const report = await withProgress(() => compileDecoder(path('prefill'), path('decode'), args.out, { ...bundleOptions, window: args['decoder-window'], onProgress }));
        if (args.json) process.stdout.write(`${JSON.stringify(report, null, 2)}\n`);
        else printMultiReport(report, args.out);
        return;
      }
      if (models.length > 1 || args.sequence !== undefined || models.some((m) => explicitModelName(m) !== undefined)) {
        const inputs = parseModelInputs(models, args['input-shape']);
        const sequence = args.sequence?.split(',').map((name) => name.trim());
        const multi = await withProgress(() => compileMultiModel(inputs, args.out, { ...bundleOptions, sequence, onProgress }));
        if (args.json) process.stdout.write(`${JSON.stringify(multi, null, 2)}\n`);
        else printMultiReport(multi, args.out);
        return;
      }
      const report = await compileModel(models[0]!, args.out, {
        inputShapes: parseInputShapes(args['input-shape']),
        inputValues: parseInputValues(args['input-value']),
        limits: resolveTargetLimits(args['target-limits']),
        strategy: args.strategy ?? (args['memory-budget'] === undefined ? 'preload' : 'stream'),
        memoryBudget: args['memory-budget'] === undefined ? undefined : parseSize(args['memory-budget']),
        dumpDir: args['dump-ir'],
        weightLayout: args['weight-layout'],
        profile: args.profile === undefined ? undefined : resolveProfile(args.profile),
        maxWeightBytes: args['max-weight-bytes'] === undefined ? undefined : parseSize(args['max-weight-bytes']),
        streamPath: args['stream-path'],
        signingKey: bundleOptions.signingKey,
        onProgress,
        force: args.force,
      }).finally(() => progress?.done());
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

function failDecoderArgs(names: string[]): never {
  throw new FlashmemError('FM_BAD_ARGUMENT', `--decoder takes two models named prefill and decode (e.g. gpt/prefill.onnx gpt/decode.onnx); got ${names.map((n) => JSON.stringify(n)).join(', ')}`);
}

function printMultiReport(report: Awaited<ReturnType<typeof compileMultiModel>>, out: string): void {
  for (const m of report.models) {
    process.stdout.write(`  ${m.name}: ${m.kernels} kernels, weights ${mib(m.weightBytes)}, entry plan peak ${mib(m.plannedPeakBytes)}\n`);
  }
  if (report.sequence) {
    const q = report.sequence;
    process.stdout.write(`  sequence ${q.models.join(',')}: ${q.kernels} kernels planned jointly, ${mib(q.streamedBytes)} streamed per pass, load plan ${q.solver} in ${q.solveMs.toFixed(0)} ms\n`);
  }
  process.stdout.write(
    `compiled ${report.models.length} models (${report.strategy}${report.budgetBytes !== undefined ? ` under ${mib(report.budgetBytes)}` : ''}): ` +
    `${report.shaders} shaders, ${mib(report.shardBytes)} of weight shards, planned peak GPU ${mib(report.plannedPeakBytes)} (shared) in ${(report.totalMs / 1000).toFixed(2)} s -> ${out}\n`,
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

export const mib = (b: number) => `${(b / 1048576).toFixed(2)} MiB`;
