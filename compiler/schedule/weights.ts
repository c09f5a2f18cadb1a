/**
 * Weight shard layout: weights in order of first use, converted to their GPU element type
 * (f32 or i32, little-endian), packed into bounded shards. Identical weights are stored once.
 * Shard bytes are produced lazily so huge models never hold a second copy of every weight; weights
 * re-laid out by lowering are lazy constants too (ir/lazy-constant.ts), computed here when
 * hashed and when written, one at a time.
 */
import { createHash } from 'node:crypto';
import { fail, quoteName } from '../errors.js';
import type { ConstTensor } from '../ir/types.js';
import { wgslType } from '../kernel/wgsl.js';

/** A weight shard as the bundle writer takes it: produced piece by piece, never held whole. */
export interface ShardSource {
  /** 'weights/<n>.bin' */
  path: string;
  size: number;
  /** produced lazily, in order; total length must equal size */
  pieces(): Iterable<Uint8Array>;
}

export const DEFAULT_SHARD_BYTES = 16 * 1024 * 1024;

/** one contiguous byte range of a weight inside one shard */
export interface WeightPiece {
  weight: string;
  shard: number;
  shardOffset: number;
  /** byte offset inside the weight */
  weightOffset: number;
  length: number;
}

export interface ShardLayout {
  shards: ShardSource[];
  /** weight id -> its pieces, in order */
  pieces: Map<string, WeightPiece[]>;
}

export function gpuBytes(id: string, t: ConstTensor): Uint8Array {
  // read once: a lazy constant (ir/lazy-constant.ts) recomputes on every read
  const data = t.data;
  if (wgslType(t.dtype) === 'f32') {
    const f = data instanceof Float32Array ? data : Float32Array.from(data);
    return new Uint8Array(f.buffer, f.byteOffset, f.byteLength);
  }
  const out = new Int32Array(data.length);
  for (let i = 0; i < out.length; i++) {
    const v = data[i]!;
    if (v > 2147483647 || v < -2147483648) {
      fail('FM_DTYPE', `weight ${quoteName(id)} holds ${v}, outside the int32 range the GPU stores integers in`);
    }
    out[i] = v;
  }
  return new Uint8Array(out.buffer);
}

/**
 * `granule` (texture weights: the bytes of one texture row) makes every piece of that weight a
 * whole number of granules, so that each piece uploads as whole texture rows; a granule larger
 * than a shard gets a shard of its own.
 */
export function layoutShards(weights: { id: string; data: ConstTensor; granule?: number }[], shardBytes = DEFAULT_SHARD_BYTES): ShardLayout {
  const pieces = new Map<string, WeightPiece[]>();
  const byContent = new Map<string, WeightPiece[]>();
  const shardContents: { weight: string; from: number; to: number }[][] = [];
  const shardSizes: number[] = [];
  const bytesOf = new Map<string, () => Uint8Array>();

  for (const { id, data, granule = 1 } of weights) {
    const bytes = gpuBytes(id, data);
    // pieces of the same bytes cut at another granule would not upload as whole rows
    const digest = `${granule}:${createHash('sha256').update(bytes).digest('hex')}`;
    const same = byContent.get(digest);
    if (same) {
      pieces.set(id, same.map((p) => ({ ...p, weight: id })));
      continue;
    }
    bytesOf.set(id, () => gpuBytes(id, data));
    const list: WeightPiece[] = [];
    let done = 0;
    while (done < bytes.length || (bytes.length === 0 && list.length === 0)) {
      if (shardSizes.length === 0 || shardSizes[shardSizes.length - 1]! >= shardBytes) {
        shardSizes.push(0);
        shardContents.push([]);
      }
      let shard = shardSizes.length - 1;
      let length = Math.min(bytes.length - done, Math.floor((shardBytes - shardSizes[shard]!) / granule) * granule);
      if (length === 0 && bytes.length > 0) {
        if (shardSizes[shard]! > 0) {
          shardSizes.push(0);
          shardContents.push([]);
          shard++;
        }
        length = Math.min(bytes.length - done, Math.max(granule, Math.floor(shardBytes / granule) * granule));
      }
      list.push({ weight: id, shard, shardOffset: shardSizes[shard]!, weightOffset: done, length });
      shardContents[shard]!.push({ weight: id, from: done, to: done + length });
      shardSizes[shard]! += length;
      done += length;
      if (bytes.length === 0) break;
    }
    pieces.set(id, list);
    byContent.set(digest, list);
  }
  // a weight's pieces are consecutive: keeping the last weight's bytes computes a lazy weight
  // once however many shards it spans, and holds at most one of them
  let last: { weight: string; bytes: Uint8Array } | undefined;
  const bytesFor = (weight: string): Uint8Array => {
    if (last?.weight !== weight) last = { weight, bytes: bytesOf.get(weight)!() };
    return last.bytes;
  };
  const shards: ShardSource[] = shardSizes.map((size, i) => ({
    path: `weights/${String(i).padStart(4, '0')}.bin`,
    size,
    *pieces() {
      for (const part of shardContents[i]!) yield bytesFor(part.weight).subarray(part.from, part.to);
      if (i === shardSizes.length - 1) last = undefined;
    },
  }));
  return { shards, pieces };
}
