import type { Argv } from 'yargs';
import { checkOutputFilePath, writeOutputFile } from '../output-file.js';
import { profileProgressBar } from './progress.js';

export function profileCommand(cli: Argv): void {
  cli.command(
    'profile',
    'measure a device profile (kernel latency model, load capacities, upload bandwidth) on this WebGPU device',
    (y) => y
      .option('out', { type: 'string', demandOption: true, describe: 'profile file to write (e.g. profile.json)' })
      .option('backend', { type: 'string', describe: 'Dawn backend: vulkan, opengles, ... (default: FLASHMEM_WEBGPU_BACKEND or the first that works)' })
      .option('quick', { type: 'boolean', default: false, describe: 'a few seconds on tiny sizes (for tests; less accurate)' })
      .option('sizes', { choices: ['auto', 'small', 'large'] as const, default: 'auto' as const, describe: 'size sweep: small for software adapters, large for GPUs' })
      .option('name', { type: 'string', describe: 'profile name recorded in schedules (default: from the adapter, e.g. llvmpipe)' })
      .option('quiet', { type: 'boolean', default: false, describe: 'no progress bar and measurement log on stderr (shown only when stderr is a terminal, without --json)' })
      .option('verbose', { type: 'boolean', default: false, describe: 'print the measurement log on stderr also when it is not a terminal (e.g. 2> profile.log)' })
      .option('json', { type: 'boolean', default: false, describe: 'print the profile and the measured kernels as JSON' }),
    async (args) => {
      // before minutes of measuring: a path that cannot be written fails now
      checkOutputFilePath(args.out, '--out');
      // loaded only here: the profiler pulls in the benchmark cases and the WebGPU device
      const { runProfile } = await import('../profile/run.js');
      const { formatProfile } = await import('../profile/report.js');
      // on a terminal the measurement log goes above the bar; elsewhere (CI) and with --json
      // nothing is printed unless --verbose asks for the log
      const progress = profileProgressBar(process.stderr, args.json || args.quiet);
      const log = progress?.log ?? (args.verbose ? (line: string) => process.stderr.write(`${line}\n`) : undefined);
      const run = await runProfile({ backend: args.backend, quick: args.quick, sizes: args.sizes, name: args.name, log, onProgress: progress?.update })
        .finally(() => progress?.done());
      // atomically, FM_IO with the path and what to do on any failure (output-file.ts)
      writeOutputFile(args.out, `${JSON.stringify(run.profile, null, 2)}\n`, '--out');
      if (args.json) {
        process.stdout.write(`${JSON.stringify({ out: args.out, elapsedMs: Math.round(run.elapsedMs), profile: run.profile, samples: run.samples }, null, 2)}\n`);
      } else {
        process.stdout.write(`${formatProfile(run.profile)}\nwrote ${args.out} in ${(run.elapsedMs / 1000).toFixed(1)} s\n`);
      }
    },
  );
}
