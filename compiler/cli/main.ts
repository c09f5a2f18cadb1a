#!/usr/bin/env node
/** flashmemc command line: compile, run, inspect. */
import { readFileSync, realpathSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { join } from 'node:path';
import { packageRoot } from '../bundle/runtime-gen.js';
import yargs, { type Argv } from 'yargs';
import { hideBin } from 'yargs/helpers';
import { ERROR_CODES, FlashmemError } from '../errors.js';
import { compileCommand } from './compile-command.js';
import { runCommand } from './run-command.js';
import { inspectCommand } from './inspect-command.js';
import { verifyCommand } from './verify-command.js';
import { profileCommand } from './profile-command.js';
import { signCommands } from './sign-command.js';

function version(): string {
  const pkg = JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string };
  return pkg.version;
}

export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  const cli = (yargs(argv) as Argv)
    .scriptName('flashmemc')
    .version(version())
    .strict()
    .demandCommand(1, 'name a command: compile, run, inspect, verify, profile, keygen or sign')
    .epilogue(`Error codes:\n${Object.entries(ERROR_CODES).map(([c, d]) => `  ${c}  ${d}`).join('\n')}`)
    .wrap(Math.min(110, process.stdout.columns ?? 110))
    .fail((msg, err) => {
      if (err) throw err;
      throw new FlashmemError('FM_BAD_ARGUMENT', `${msg} (see flashmemc --help)`);
    });
  compileCommand(cli);
  runCommand(cli);
  inspectCommand(cli);
  verifyCommand(cli);
  profileCommand(cli);
  signCommands(cli);
  try {
    await cli.parseAsync();
  } catch (e) {
    exitCode = reportError(e);
  }
  return exitCode;
}

/** FlashmemError from the compiler, or the runtime's own error class with the same codes */
function hasFlashmemCode(e: unknown): e is Error {
  const code = (e as { code?: unknown } | undefined)?.code;
  return e instanceof Error && typeof code === 'string' && code.startsWith('FM_');
}

function reportError(e: unknown): number {
  if (e instanceof FlashmemError || hasFlashmemCode(e)) {
    process.stderr.write(`flashmemc: error ${(e as Error).message}\n`);
    return 2;
  }
  process.stderr.write(`flashmemc: internal error (please report): ${(e as Error)?.stack ?? String(e)}\n`);
  return 70;
}

/** true when this file is the process entry, also through npm's bin symlink */
function invokedDirectly(): boolean {
  if (!process.argv[1]) return false;
  try {
    return realpathSync(process.argv[1]) === realpathSync(fileURLToPath(import.meta.url));
  } catch {
    return false;
  }
}

if (invokedDirectly()) {
  main(hideBin(process.argv)).then((code) => process.exit(code));
}
