import { z } from 'zod';

/** Bundle format version. Bump on any incompatible change; the runtime refuses other versions. */
export const FORMAT_VERSION = 1;

export const uint = z.number().int().min(0).max(Number.MAX_SAFE_INTEGER);
export const dtype = z.enum([
  'float32', 'float16', 'float64', 'bfloat16', 'int8', 'uint8', 'int16', 'uint16', 'int32', 'uint32', 'int64', 'uint64', 'bool',
]);
/** relative path inside the bundle: no absolute paths, no '..', only safe characters */
export const bundlePath = z.string().regex(/^(shaders|weights)\/[A-Za-z0-9_.-]+$|^[A-Za-z0-9_.-]+$/).refine((p) => !p.split('/').includes('..'), 'path escapes the bundle');
export const sha256 = z.string().regex(/^[0-9a-f]{64}$/);
