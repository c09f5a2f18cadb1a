/**
 * `flashmemc keygen` and `flashmemc sign`: Ed25519 keys and bundle signatures (bundle/sign.ts),
 * and the --key/--sign options other commands share.
 */
import { closeSync, openSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import type { KeyObject } from 'node:crypto';
import type { Argv } from 'yargs';
import { fail, ioFailed, quoteName } from '../errors.js';
import { generateSigningKey, keyId, parsePrivateKey, parsePublicKey, signBundleDir } from '../bundle/sign.js';
import { verifyBundleDir } from '../bundle/verify.js';

function readKeyFile(file: string, what: string): string {
  try {
    return readFileSync(file, 'utf8');
  } catch (error) {
    fail('FM_IO', `reading the ${what} ${file} failed: ${(error as Error).message}`, error);
  }
}

export function readPrivateKeyFile(file: string): KeyObject {
  return parsePrivateKey(readKeyFile(file, 'private key'), file);
}

export function readPublicKeyFiles(files: readonly string[]): KeyObject[] {
  return files.map((file) => parsePublicKey(readKeyFile(file, 'public key'), file));
}

/**
 * Writes a new file only (never replaces a key), private keys readable by their owner only. A write
 * that fails (a full disk) removes the file it created, so that a retry is not refused as existing.
 */
function writeNewFile(file: string, text: string, mode: number): void {
  let fd: number;
  try {
    fd = openSync(file, 'wx', mode);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') fail('FM_OUTPUT', `${quoteName(file)} exists; keygen never replaces a key (choose another --out)`, error);
    ioFailed(`creating key file ${quoteName(file)}`, error);
  }
  try {
    writeFileSync(fd, text);
    closeSync(fd);
  } catch (error) {
    closeQuietly(fd);
    // created by the open above ('wx'): this process's file
    rmSync(file, { force: true });
    ioFailed(`writing key file ${quoteName(file)}`, error);
  }
}

function closeQuietly(fd: number): void {
  try {
    closeSync(fd);
  } catch {
    // already closed (the write succeeded, the close failed)
  }
}

export function signCommands(cli: Argv): void {
  cli.command(
    'keygen',
    'make an Ed25519 key pair for signing bundles: <out>.key (private, PKCS#8 PEM) and <out>.pub (public, SPKI PEM)',
    (y) => y.option('out', { type: 'string', demandOption: true, describe: 'path prefix of the two key files' }),
    (args) => {
      const pair = generateSigningKey();
      writeNewFile(`${args.out}.key`, pair.privatePem, 0o600);
      try {
        writeNewFile(`${args.out}.pub`, pair.publicPem, 0o644);
      } catch (error) {
        // half a pair is no use: the private key just written goes too
        rmSync(`${args.out}.key`, { force: true });
        throw error;
      }
      process.stdout.write(
        `wrote ${args.out}.key (keep it secret) and ${args.out}.pub (key id ${keyId(Buffer.from(pair.publicKeyBase64, 'base64'))})\n` +
        `public key for loadBundle({ trustedKeys }): ${pair.publicKeyBase64}\n`,
      );
    },
  );
  cli.command(
    'sign <bundle>',
    'sign a bundle: verifies it, then writes signature.json (Ed25519 over manifest.json, which pins every file\'s sha256)',
    (y) => y
      .positional('bundle', { type: 'string', demandOption: true })
      .option('key', { type: 'string', demandOption: true, describe: 'private key file from flashmemc keygen' }),
    async (args) => {
      const key = readPrivateKeyFile(args.key);
      // only a bundle that verifies gets a signature: signing vouches for it
      await verifyBundleDir(args.bundle);
      const signature = await signBundleDir(args.bundle, key);
      process.stdout.write(`signed ${args.bundle} with key ${keyId(Buffer.from(signature.publicKey, 'base64'))}\n`);
    },
  );
}
