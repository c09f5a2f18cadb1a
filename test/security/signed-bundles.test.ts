/**
 * Signed bundles: `flashmemc keygen`, `compile --sign`, `flashmemc sign`, and the checks of
 * `verify --key` (Node crypto) and of the runtime's `trustedKeys` (WebCrypto), made before any other
 * work: unsigned, wrongly signed, re-signed-by-another-key and edited-after-signing bundles are
 * refused with FM_BUNDLE_SIGNATURE.
 */
import { existsSync, readFileSync, statSync } from 'node:fs';
import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { generateSigningKey, parsePrivateKey, signBundleDir } from '../../compiler/bundle/sign.js';
import { cli } from '../harness/cli.js';
import {
  assembleBundle, editJsonAndRehash, editManifest, importRuntime, mlpModel, rejectionOf, removeTempDirs, tempDir, writeFixtureBundle,
  type RuntimeModule,
} from '../harness/bundle-fixtures.js';
import { REPO_ROOT } from '../harness/paths.js';

afterAll(removeTempDirs);

const MODEL = join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx');

async function expectCli(code: number, ...argv: string[]): Promise<{ stdout: string; stderr: string }> {
  const r = await cli(...argv);
  expect(r.code, r.stderr || r.stdout).toBe(code);
  return r;
}

async function keyPair(dir: string, name: string): Promise<{ key: string; pub: string; base64: string }> {
  const r = await expectCli(0, 'keygen', '--out', join(dir, name));
  const base64 = /trustedKeys \}\): (\S+)/.exec(r.stdout)?.[1];
  expect(base64).toMatch(/^[A-Za-z0-9+/]{43}=$/);
  return { key: join(dir, `${name}.key`), pub: join(dir, `${name}.pub`), base64: base64! };
}

async function signedFixture(privatePem: string): Promise<string> {
  const dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
  await signBundleDir(dir, parsePrivateKey(privatePem, 'test key'));
  return dir;
}

describe('keygen', () => {
  it('writes a private key readable by its owner only and a public key, and never replaces a key', async () => {
    const dir = await tempDir();
    const { key, pub } = await keyPair(dir, 'release');
    expect(readFileSync(key, 'utf8')).toContain('-----BEGIN PRIVATE KEY-----');
    expect(readFileSync(pub, 'utf8')).toContain('-----BEGIN PUBLIC KEY-----');
    expect(statSync(key).mode & 0o077).toBe(0);
    const again = await expectCli(2, 'keygen', '--out', join(dir, 'release'));
    expect(again.stderr).toContain('FM_OUTPUT');
    expect(readFileSync(key, 'utf8')).toContain('PRIVATE KEY');
  });
});

describe('compile --sign and verify --key', () => {
  let keys: { key: string; pub: string; base64: string };
  let other: { key: string; pub: string; base64: string };
  let signed: string;

  beforeAll(async () => {
    const dir = await tempDir();
    keys = await keyPair(dir, 'a');
    other = await keyPair(dir, 'b');
    signed = join(dir, 'signed');
    await expectCli(0, 'compile', MODEL, '--out', signed, '--sign', keys.key);
  });

  it('writes signature.json into the bundle and verify --key accepts it', async () => {
    const signature = JSON.parse(await readFile(join(signed, 'signature.json'), 'utf8'));
    expect(signature).toMatchObject({ format: 'flashmemc-signature', algorithm: 'Ed25519', signed: 'manifest.json', publicKey: keys.base64 });
    const r = await expectCli(0, 'verify', signed, '--key', keys.pub);
    expect(r.stdout).toMatch(/^OK: /);
    // trusting several keys, one of them the signer's
    await expectCli(0, 'verify', signed, '--key', other.pub, '--key', keys.pub);
  });

  it('refuses a bundle signed by a key that is not trusted', async () => {
    const r = await expectCli(2, 'verify', signed, '--key', other.pub);
    expect(r.stderr).toContain('FM_BUNDLE_SIGNATURE');
    expect(r.stderr).toContain('not among the 1 trusted key(s)');
  });

  it('refuses an unsigned bundle, before reading anything the manifest lists', async () => {
    const dir = join(await tempDir(), 'unsigned');
    await expectCli(0, 'compile', MODEL, '--out', dir);
    // the schedule is broken too: the signature check comes first
    await writeFile(join(dir, 'schedule.json'), '{');
    const r = await expectCli(2, 'verify', dir, '--key', keys.pub);
    expect(r.stderr).toContain('FM_BUNDLE_SIGNATURE');
    expect(r.stderr).toContain('is not signed');
    // without --key the same bundle is judged on its contents
    expect((await expectCli(2, 'verify', dir)).stderr).toContain('FM_BUNDLE_HASH');
  });

  it('refuses a bundle edited after signing, even with every hash recomputed', async () => {
    const dir = await signedFixture(readFileSync(keys.key, 'utf8'));
    await expectCli(0, 'verify', dir, '--key', keys.pub);
    await editJsonAndRehash(dir, 'schedule.json', (schedule) => { schedule.models[0].run[1].workgroups = [1, 1, 1]; });
    const r = await expectCli(2, 'verify', dir, '--key', keys.pub);
    expect(r.stderr).toContain('does not verify manifest.json');
  });

  it('refuses a forged signature and a signature file that is not one', async () => {
    const dir = await signedFixture(readFileSync(keys.key, 'utf8'));
    const file = join(dir, 'signature.json');
    const signature = JSON.parse(await readFile(file, 'utf8'));
    const bytes = Buffer.from(signature.signature, 'base64');
    bytes[0]! ^= 1;
    await writeFile(file, JSON.stringify({ ...signature, signature: bytes.toString('base64') }));
    expect((await expectCli(2, 'verify', dir, '--key', keys.pub)).stderr).toContain('does not verify manifest.json');
    await writeFile(file, JSON.stringify({ ...signature, algorithm: 'RSA' }));
    expect((await expectCli(2, 'verify', dir, '--key', keys.pub)).stderr).toContain('is not a flashmemc signature');
    await writeFile(file, 'x'.repeat(100_000));
    expect((await expectCli(2, 'verify', dir, '--key', keys.pub)).stderr).toContain('FM_BUNDLE_SIGNATURE');
  });

  it('refuses keys that are not Ed25519 keys, naming the file', async () => {
    const dir = await tempDir();
    const bad = join(dir, 'bad.pub');
    await writeFile(bad, 'not a key');
    expect((await expectCli(2, 'verify', signed, '--key', bad)).stderr).toMatch(/FM_BAD_ARGUMENT: .*bad\.pub/);
    expect((await expectCli(2, 'compile', MODEL, '--out', join(dir, 'x'), '--sign', bad)).stderr).toMatch(/FM_BAD_ARGUMENT: .*bad\.pub/);
    expect(existsSync(join(dir, 'x'))).toBe(false);
  });
});

describe('flashmemc sign', () => {
  it('signs a bundle that verifies, and refuses one that does not', async () => {
    const dir = await tempDir();
    const keys = await keyPair(dir, 'k');
    const bundle = await writeFixtureBundle(assembleBundle([mlpModel()]));
    await expectCli(2, 'verify', bundle, '--key', keys.pub);
    await expectCli(0, 'sign', bundle, '--key', keys.key);
    await expectCli(0, 'verify', bundle, '--key', keys.pub);
    const broken = await writeFixtureBundle(assembleBundle([mlpModel()]));
    await editManifest(broken, (m) => { m.extra = 1; });
    await expectCli(2, 'sign', broken, '--key', keys.key);
    expect(existsSync(join(broken, 'signature.json'))).toBe(false);
  });
});

describe('runtime trustedKeys (WebCrypto)', () => {
  const pair = generateSigningKey();
  const stranger = generateSigningKey();
  let runtime: RuntimeModule;
  let bundle: string;
  beforeAll(async () => {
    bundle = await signedFixture(pair.privatePem);
    runtime = await importRuntime(bundle);
  });

  it('accepts the signer as base64, as SPKI PEM and as raw bytes', async () => {
    for (const key of [pair.publicKeyBase64, pair.publicPem, Buffer.from(pair.publicKeyBase64, 'base64')]) {
      await expect(runtime.verifyBundle(bundle, { trustedKeys: [key] })).resolves.toMatchObject({ models: [{ name: 'mlp' }] });
    }
  });

  it('refuses other signers and unsigned bundles in verifyBundle and loadBundle, reading only manifest.json and signature.json', async () => {
    const reads: string[] = [];
    const readFile = async (path: string) => {
      reads.push(path);
      return new Uint8Array(await (await import('node:fs/promises')).readFile(join(bundle, path)));
    };
    await expect(rejectionOf(runtime.verifyBundle(bundle, { trustedKeys: [stranger.publicKeyBase64], readFile }))).resolves.toMatchObject({ code: 'FM_BUNDLE_SIGNATURE' });
    expect(reads).toEqual(['manifest.json', 'signature.json']);
    // refused before any device is requested (this test file has no GPU)
    await expect(rejectionOf(runtime.loadBundle(bundle, { trustedKeys: [stranger.publicKeyBase64] }))).resolves.toMatchObject({ code: 'FM_BUNDLE_SIGNATURE' });
    const unsigned = await writeFixtureBundle(assembleBundle([mlpModel()]));
    const refusal = await rejectionOf(runtime.loadBundle(unsigned, { trustedKeys: [pair.publicKeyBase64] }));
    expect(refusal).toMatchObject({ code: 'FM_BUNDLE_SIGNATURE' });
    expect(refusal.message).toContain('is not signed');
  });

  it('refuses a manifest changed after signing', async () => {
    const dir = await signedFixture(pair.privatePem);
    await editManifest(dir, (m) => { (m.models as { name: string }[])[0]!.name = 'mlp'; m.generator = { name: 'flashmemc', version: '9.9.9' }; });
    const refusal = await rejectionOf(runtime.verifyBundle(dir, { trustedKeys: [pair.publicKeyBase64] }));
    expect(refusal).toMatchObject({ code: 'FM_BUNDLE_SIGNATURE' });
    expect(refusal.message).toContain('does not verify manifest.json');
  });

  it('rejects trustedKeys that are not Ed25519 public keys with a TypeError', async () => {
    await expect(runtime.verifyBundle(bundle, { trustedKeys: [] })).rejects.toThrow(TypeError);
    await expect(runtime.verifyBundle(bundle, { trustedKeys: ['AAAA'] })).rejects.toThrow(/trustedKeys\[0\] is not an Ed25519 public key/);
  });
});
