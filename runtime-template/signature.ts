/**
 * Signed bundles: with LoadOptions/VerifyOptions.trustedKeys, a bundle must carry signature.json,
 * an Ed25519 signature (WebCrypto) by one of those keys over the exact bytes of manifest.json.
 * The manifest pins every other file by size and sha256, so this check, made right after the
 * manifest's bytes are read and before anything in them is believed, covers the whole bundle.
 */
import type { SignatureFile } from '../schemas/signature.js';
import type { TrustedKey } from './api.js';
import { errorMessage, fail } from './errors.js';
import { BUNDLE_FORMAT, validateJson } from './format.js';
import type { BundleReader } from './reader.js';
import { parseJsonFile } from './reader.js';

export const SIGNATURE_PATH = 'signature.json';
const MAX_SIGNATURE_BYTES = 4096;
const ED25519_KEY_BYTES = 32;
/** DER prefix of an Ed25519 SubjectPublicKeyInfo (RFC 8410): the raw key follows */
const ED25519_SPKI_PREFIX = [0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00];


/** Refuses the bundle unless signature.json verifies `manifestBytes` with one of `trustedKeys`. */
export async function checkManifestSignature(reader: BundleReader, manifestBytes: Uint8Array<ArrayBuffer>, trustedKeys: readonly TrustedKey[]): Promise<void> {
  const trusted = parseTrustedKeys(trustedKeys);
  const signature = await readSignatureFile(reader);
  const signer = base64Bytes(signature.publicKey);
  if (!trusted.some((key) => sameBytes(key, signer))) {
    fail('FM_BUNDLE_SIGNATURE', `${reader.location} is signed by key ${await keyId(signer)}, which is not among the ${trusted.length} trusted key(s)`);
  }
  if (!(await ed25519Verifies(signer, base64Bytes(signature.signature), manifestBytes))) {
    fail('FM_BUNDLE_SIGNATURE', `the signature in ${SIGNATURE_PATH} does not verify manifest.json: the manifest was changed after signing, or the signature was forged`);
  }
}

function parseTrustedKeys(keys: readonly TrustedKey[]): Uint8Array<ArrayBuffer>[] {
  if (!Array.isArray(keys) || keys.length === 0) throw new TypeError('options.trustedKeys must be a non-empty array of Ed25519 public keys');
  return keys.map((key, i) => {
    const raw = typeof key === 'string' ? keyFromText(key) : key instanceof Uint8Array ? new Uint8Array(key) : undefined;
    if (!raw || raw.length !== ED25519_KEY_BYTES) {
      throw new TypeError(`options.trustedKeys[${i}] is not an Ed25519 public key (32 raw bytes, their base64, or an SPKI PEM)`);
    }
    return raw;
  });
}

function keyFromText(text: string): Uint8Array<ArrayBuffer> | undefined {
  const pem = /-----BEGIN PUBLIC KEY-----([\s\S]*?)-----END PUBLIC KEY-----/.exec(text);
  const bytes = base64Bytes((pem ? pem[1]! : text).replace(/\s+/g, ''));
  if (!pem) return bytes;
  const prefixed = bytes.length === ED25519_SPKI_PREFIX.length + ED25519_KEY_BYTES && ED25519_SPKI_PREFIX.every((b, i) => bytes[i] === b);
  return prefixed ? bytes.slice(ED25519_SPKI_PREFIX.length) : undefined;
}

async function readSignatureFile(reader: BundleReader): Promise<SignatureFile> {
  let bytes: Uint8Array;
  try {
    bytes = await reader.read(SIGNATURE_PATH, MAX_SIGNATURE_BYTES + 1);
  } catch (error) {
    fail('FM_BUNDLE_SIGNATURE', `${reader.location} is not signed: ${SIGNATURE_PATH} could not be read (${errorMessage(error)}); sign it with flashmemc sign`, error);
  }
  if (bytes.length > MAX_SIGNATURE_BYTES) fail('FM_BUNDLE_SIGNATURE', `${SIGNATURE_PATH} is larger than ${MAX_SIGNATURE_BYTES} bytes: not a signature`);
  try {
    return validateJson<SignatureFile>(BUNDLE_FORMAT.schemas.signature, parseJsonFile(bytes, SIGNATURE_PATH), SIGNATURE_PATH);
  } catch (error) {
    fail('FM_BUNDLE_SIGNATURE', `${SIGNATURE_PATH} is not a flashmemc signature: ${errorMessage(error)}`, error);
  }
}

async function ed25519Verifies(publicKey: Uint8Array<ArrayBuffer>, signature: Uint8Array<ArrayBuffer>, message: Uint8Array<ArrayBuffer>): Promise<boolean> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) fail('FM_BUNDLE_SIGNATURE', 'crypto.subtle is unavailable: signatures can only be checked in a secure context (https or localhost)');
  try {
    const key = await subtle.importKey('raw', publicKey, { name: 'Ed25519' }, false, ['verify']);
    return await subtle.verify({ name: 'Ed25519' }, key, signature, message);
  } catch (error) {
    fail('FM_BUNDLE_SIGNATURE', `this environment's WebCrypto cannot verify Ed25519 signatures (${errorMessage(error)})`, error);
  }
}

/** The first 16 hex digits of the key's sha256: how messages name keys. */
async function keyId(publicKey: Uint8Array<ArrayBuffer>): Promise<string> {
  const digest = new Uint8Array(await globalThis.crypto.subtle.digest('SHA-256', publicKey));
  return Array.from(digest.slice(0, 8), (byte) => byte.toString(16).padStart(2, '0')).join('');
}

function base64Bytes(text: string): Uint8Array<ArrayBuffer> {
  try {
    return Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
  } catch {
    return new Uint8Array(0);
  }
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return a.length === b.length && a.every((byte, i) => byte === b[i]);
}
