import type { Argv } from 'yargs';
import { verifyBundleDir } from '../bundle/verify.js';
import { resolveTargetLimits } from '../target/limits.js';
import { readPublicKeyFiles } from './sign-command.js';
import { parseSize } from './compile-command.js';
import { FlashmemError } from '../errors.js';

export function positiveCount(value: number | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  if (!Number.isSafeInteger(value) || value <= 0) throw new FlashmemError('FM_BAD_ARGUMENT', `${flag} must be a positive integer`);
  return value;
}

export function verifyCommand(cli: Argv): void {
  cli.command(
    'verify <bundle>',
    'verify a bundle without a GPU: format, schemas, sha256 of every file, bounds against the target limits',
    (y) => y
      .positional('bundle', { type: 'string', demandOption: true, describe: 'bundle folder written by flashmemc compile' })
      .option('target-limits', { type: 'string', describe: 'WebGPU limits to check against: webgpu, compat, or a JSON file of limits (default: WebGPU defaults raised to the manifest\'s requiredLimits)' })
      .option('key', { type: 'string', array: true, describe: 'trusted public key file (flashmemc keygen; repeatable): refuse bundles not signed by one of them' })
      .option('max-gpu-bytes', { type: 'string', describe: 'refuse a bundle that allocates more GPU memory than this: bytes or KiB/MiB/GiB' })
      .option('max-workgroups', { type: 'number', describe: 'refuse a bundle a run of which dispatches more workgroups than this in total' })
      .option('json', { type: 'boolean', default: false, describe: 'print a JSON report' }),
    async (args) => {
      const limits = args['target-limits'] === undefined ? undefined : { ...resolveTargetLimits(args['target-limits']) };
      const trustedKeys = args.key === undefined ? undefined : readPublicKeyFiles(args.key);
      const maxGpuBytes = args['max-gpu-bytes'] === undefined ? undefined : parseSize(args['max-gpu-bytes']);
      const maxWorkgroupsPerRun = positiveCount(args['max-workgroups'], '--max-workgroups');
      const report = await verifyBundleDir(args.bundle, { limits, trustedKeys, maxGpuBytes, maxWorkgroupsPerRun });
      if (args.json) {
        process.stdout.write(`${JSON.stringify({ ok: true, ...report }, null, 2)}\n`);
      } else {
        process.stdout.write(`OK: ${report.files} files, ${report.bytes} bytes verified (${report.models.map((m) => JSON.stringify(m.name)).join(', ')}); loading allocates ${report.gpuBytes} bytes of GPU memory\n`);
      }
    },
  );
}
