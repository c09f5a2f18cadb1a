import { renameSync, writeFileSync } from 'node:fs';
import type { Argv } from 'yargs';
import { fail } from '../errors.js';

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
      .option('json', { type: 'boolean', default: false, describe: 'print the profile and the measured kernels as JSON' }),
    async (args) => {
      // loaded only here: the profiler pulls in the benchmark cases and the WebGPU device
      const { runProfile } = await import('../profile/run.js');
      const { formatProfile } = await import('../profile/report.js');
      const log = args.json ? undefined : (line: string) => process.stderr.write(`${line}\n`);
      const run = await runProfile({ backend: args.backend, quick: args.quick, sizes: args.sizes, name: args.name, log });
      writeAtomically(args.out, `${JSON.stringify(run.profile, null, 2)}\n`);
      if (args.json) {
        process.stdout.write(`${JSON.stringify({ out: args.out, elapsedMs: Math.round(run.elapsedMs), profile: run.profile, samples: run.samples }, null, 2)}\n`);
      } else {
        process.stdout.write(`${formatProfile(run.profile)}\nwrote ${args.out} in ${(run.elapsedMs / 1000).toFixed(1)} s\n`);
      }
    },
  );
}

function writeAtomically(file: string, text: string): void {
  const tmp = `${file}.tmp-${process.pid}`;
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, file);
  } catch (e) {
    fail('FM_IO', `cannot write ${JSON.stringify(file)}: ${(e as Error).message}`, e);
  }
}
