/**
 * Signing bundles with Ed25519 (Node crypto): keys, signature.json over the exact bytes of
 * manifest.json (which pins every other file's size and sha256), and the check `verify --key`
 * makes before any other work. The runtime makes the same check with WebCrypto
 * (runtime-template/signature.ts) when given trustedKeys.
 */
import { createHash, createPrivateKey, createPublicKey, generateKeyPairSync, sign, verify, type KeyObject } from 'node:crypto';
import { rename, rm, writeFile } from 'node:fs/promises';
import { readBundleFileSync } from './safe-read.js';
import { join } from 'node:path';
import { fail, ioFailed, quoteName } from '../errors.js';
import { MAX_SIGNATURE_BYTES, SIGNATURE_FORMAT, SIGNATURE_PATH, signatureSchema, type SignatureFile } from '../../schemas/signature.js';

const MANIFEST = 'manifest.json';
const MAX_MANIFEST_BYTES = 16 << 20;
/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the raw 32-byte key follows */
const SPKI_PREFIX_BYTES = 12;

export interface SigningKeyPair {
  /** PKCS#8 PEM: keep it secret */
  privatePem: string;
  /** SPKI PEM: give it to verify --key and to apps */
  publicPem: string;
  /** the raw public key, base64: what loadBundle({ trustedKeys }) takes in browsers */
  publicKeyBase64: string;
}

export function generateSigningKey(): SigningKeyPair {
  const { privateKey, publicKey } = generateKeyPairSync('ed25519');
  return {
    privatePem: privateKey.export({ format: 'pem', type: 'pkcs8' }).toString(),
    publicPem: publicKey.export({ format: 'pem', type: 'spki' }).toString(),
    publicKeyBase64: rawPublicKey(publicKey).toString('base64'),
  };
}

function rawPublicKey(key: KeyObject): Buffer {
  return key.export({ format: 'der', type: 'spki' }).subarray(SPKI_PREFIX_BYTES);
}

/** The raw public key in base64: the form the runtime's trustedKeys take. */
export function rawPublicKeyBase64(key: KeyObject): string {
  return rawPublicKey(key).toString('base64');
}

/** The first 16 hex digits of the raw key's sha256 (as the runtime's messages name keys). */
export function keyId(rawKey: Uint8Array): string {
  return createHash('sha256').update(rawKey).digest('hex').slice(0, 16);
}

/** Parses a private key PEM; anything but an Ed25519 private key is FM_BAD_ARGUMENT naming the file. */
export function parsePrivateKey(pem: string, file: string): KeyObject {
  let key: KeyObject;
  try {
    key = createPrivateKey(pem);
  } catch (error) {
    fail('FM_BAD_ARGUMENT', `${file} is not a private key in PEM (make one with flashmemc keygen): ${(error as Error).message}`, error);
  }
  if (key.asymmetricKeyType !== 'ed25519') fail('FM_BAD_ARGUMENT', `${file} is a ${key.asymmetricKeyType} key; bundles are signed with Ed25519 (flashmemc keygen)`);
  return key;
}

/** Parses a trusted public key: SPKI PEM, or the raw key in base64 as keygen prints it. */
export function parsePublicKey(text: string, file: string): KeyObject {
  const trimmed = text.trim();
  let key: KeyObject;
  try {
    key = trimmed.startsWith('-----BEGIN')
      ? createPublicKey(trimmed)
      : createPublicKey({ key: { kty: 'OKP', crv: 'Ed25519', x: Buffer.from(trimmed, 'base64').toString('base64url') }, format: 'jwk' });
  } catch (error) {
    fail('FM_BAD_ARGUMENT', `${file} is not a public key (SPKI PEM or base64 Ed25519 key from flashmemc keygen): ${(error as Error).message}`, error);
  }
  if (key.asymmetricKeyType !== 'ed25519') fail('FM_BAD_ARGUMENT', `${file} is a ${key.asymmetricKeyType} key; bundle signatures are Ed25519`);
  return key;
}

export function signatureOf(manifestBytes: Uint8Array, privateKey: KeyObject): SignatureFile {
  return {
    format: SIGNATURE_FORMAT, algorithm: 'Ed25519', signed: MANIFEST,
    publicKey: rawPublicKey(createPublicKey(privateKey)).toString('base64'),
    signature: sign(null, manifestBytes, privateKey).toString('base64'),
  };
}

/** Writes signature.json into a bundle folder (through a temporary file and a rename: never half-written). */
export async function signBundleDir(bundleDir: string, privateKey: KeyObject): Promise<SignatureFile> {
  const manifestBytes = readBundleFileSync(bundleDir, MANIFEST, { maxBytes: MAX_MANIFEST_BYTES });
  const signature = signatureOf(manifestBytes, privateKey);
  const target = join(bundleDir, SIGNATURE_PATH);
  const temporary = `${target}.tmp-${process.pid}`;
  try {
    await writeFile(temporary, `${JSON.stringify(signature, null, 2)}\n`, { flag: 'wx' });
    await rename(temporary, target);
  } catch (error) {
    await rm(temporary, { force: true });
    ioFailed(`writing the signature ${quoteName(target)}`, error);
  }
  return signature;
}

/**
 * Refuses the bundle (FM_BUNDLE_SIGNATURE) unless its signature.json is by one of `trusted` and
 * verifies manifest.json's bytes. Reads only those two files, both capped.
 */
export async function checkBundleSignature(bundleDir: string, trusted: readonly KeyObject[]): Promise<void> {
  const manifestBytes = readBundleFileSync(bundleDir, MANIFEST, { maxBytes: MAX_MANIFEST_BYTES });
  const signature = await readSignature(bundleDir);
  const signer = Buffer.from(signature.publicKey, 'base64');
  const key = trusted.find((candidate) => rawPublicKey(candidate).equals(signer));
  if (!key) fail('FM_BUNDLE_SIGNATURE', `${bundleDir} is signed by key ${keyId(signer)}, which is not among the ${trusted.length} trusted key(s) given with --key`);
  if (!verify(null, manifestBytes, key, Buffer.from(signature.signature, 'base64'))) {
    fail('FM_BUNDLE_SIGNATURE', `the signature in ${SIGNATURE_PATH} does not verify manifest.json: the manifest was changed after signing, or the signature was forged`);
  }
}

async function readSignature(bundleDir: string): Promise<SignatureFile> {
  let bytes: Buffer;
  try {
    bytes = readBundleFileSync(bundleDir, SIGNATURE_PATH, { maxBytes: MAX_SIGNATURE_BYTES });
  } catch (error) {
    fail('FM_BUNDLE_SIGNATURE', `${bundleDir} is not signed: ${(error as Error).message}; sign it with flashmemc sign`, error);
  }
  let json: unknown;
  try {
    json = JSON.parse(bytes.toString('utf8'));
  } catch (error) {
    fail('FM_BUNDLE_SIGNATURE', `${SIGNATURE_PATH} is not JSON: ${(error as Error).message}`, error);
  }
  const parsed = signatureSchema.safeParse(json);
  if (!parsed.success) fail('FM_BUNDLE_SIGNATURE', `${SIGNATURE_PATH} is not a flashmemc signature: ${parsed.error.issues.map((i) => `${i.path.join('.')}: ${i.message}`).join('; ')}`);
  return parsed.data;
}
