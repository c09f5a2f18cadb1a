/**
 * signature.json: an Ed25519 signature over the exact bytes of manifest.json, which pins every
 * other file of the bundle by size and sha256, so one signature covers the whole bundle. It sits
 * beside the manifest and is not listed in it (it signs the manifest). Optional: loaders that are
 * given trusted keys refuse bundles without one.
 */
import { z } from 'zod';

export const SIGNATURE_FORMAT = 'flashmemc-signature';
export const SIGNATURE_PATH = 'signature.json';
/** a signature file is a few hundred bytes; anything larger is not one */
export const MAX_SIGNATURE_BYTES = 4096;

export const signatureSchema = z.object({
  format: z.literal(SIGNATURE_FORMAT),
  algorithm: z.literal('Ed25519'),
  /** the file signed: always manifest.json */
  signed: z.literal('manifest.json'),
  /** the signer's raw 32-byte Ed25519 public key, base64 */
  publicKey: z.string().regex(/^[A-Za-z0-9+/]{43}=$/),
  /** the 64-byte signature, base64 */
  signature: z.string().regex(/^[A-Za-z0-9+/]{86}==$/),
}).strict();

export type SignatureFile = z.infer<typeof signatureSchema>;
