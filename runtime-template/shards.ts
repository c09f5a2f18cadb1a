/**
 * Weight shards: verified block reads and the read-ahead stream of shard ranges.
 */
import type { FileEntry } from '../schemas/manifest.js';
import type { Schedule, Step, UploadStep } from '../schemas/schedule.js';
import { type BundleReader, checkBlock, readVerifiedFile } from './reader.js';

/** A byte range of weight shard `shard`. */
export interface ShardRange {
  shard: number;
  offset: number;
  length: number;
}

/**
 * Reads weight shards by verified blocks (the manifest's per-block sha256): any byte range costs
 * reading the blocks it touches, never the whole shard, so streamed weights can come from storage
 * (a file range in Node, an HTTP Range request in browsers) while the model runs.
 */
export class ShardBlocks {
  constructor(private readonly reader: BundleReader, private readonly files: FileEntry[]) {}

  blockBytes(shard: number): number {
    return this.files[shard]!.blocks!.size;
  }

  /** the blocks of `range`, as [first, last] indices */
  blocksOf(range: ShardRange): [number, number] {
    const size = this.blockBytes(range.shard);
    return [Math.floor(range.offset / size), Math.floor((range.offset + Math.max(range.length, 1) - 1) / size)];
  }

  async readBlock(shard: number, block: number): Promise<Uint8Array<ArrayBuffer>> {
    const entry = this.files[shard]!;
    const size = entry.blocks!.size;
    const bytes = await this.reader.readRange(entry.path, block * size, Math.min(size, entry.size - block * size), entry.size);
    await checkBlock(entry, block, bytes);
    return bytes;
  }

  /** A bundle is verified whole, including shards that no step uses. */
  async verifyUnused(used: ReadonlySet<number>): Promise<void> {
    for (const [index, entry] of this.files.entries()) if (!used.has(index)) await readVerifiedFile(this.reader, entry);
  }
}

/**
 * Yields the bytes of a fixed sequence of shard ranges in order, reading ahead: blocks for later
 * ranges are requested while earlier ones are consumed, up to `windowBytes` held at once (and
 * always the blocks of the range being consumed), so I/O overlaps upload and compute while host
 * memory stays bounded. Each block is read once per stream, and released after its last range.
 */
export class RangeStream {
  private readonly blocks = new Map<string, { bytes: Promise<Uint8Array<ArrayBuffer>>; size: number; usesLeft: number; ready: boolean }>();
  private readonly uses = new Map<string, number>();
  private consumed = 0;
  private requested = 0;
  private heldBytes = 0;
  private failure?: unknown;

  constructor(private readonly store: ShardBlocks, private readonly ranges: readonly ShardRange[], private readonly windowBytes: number) {
    for (const range of ranges) for (const key of this.keysOf(range)) this.uses.set(key, (this.uses.get(key) ?? 0) + 1);
    this.fill();
  }

  /** whether the next range's bytes are already in host memory (no wait) */
  nextReady(): boolean {
    const range = this.ranges[this.consumed];
    return range !== undefined && this.keysOf(range).every((key) => this.blocks.get(key)?.ready === true);
  }

  /** The bytes of the next range, as a fresh array. */
  async next(): Promise<Uint8Array<ArrayBuffer>> {
    const range = this.ranges[this.consumed++];
    if (!range) throw new Error('RangeStream: no more ranges');
    this.fill();
    const keys = this.keysOf(range);
    const parts = await Promise.all(keys.map((key) => this.blocks.get(key)!.bytes));
    const out = new Uint8Array(range.length);
    const blockBytes = this.store.blockBytes(range.shard);
    const [first] = this.store.blocksOf(range);
    parts.forEach((part, i) => {
      const blockStart = (first + i) * blockBytes;
      const from = Math.max(range.offset, blockStart);
      const to = Math.min(range.offset + range.length, blockStart + part.length);
      if (to > from) out.set(part.subarray(from - blockStart, to - blockStart), from - range.offset);
    });
    for (const key of keys) this.release(key);
    this.fill();
    return out;
  }

  private keysOf(range: ShardRange): string[] {
    const [first, last] = this.store.blocksOf(range);
    const keys: string[] = [];
    for (let block = first; block <= last; block++) keys.push(`${range.shard}:${block}`);
    return keys;
  }

  private fill(): void {
    while (this.requested < this.ranges.length && this.failure === undefined) {
      const range = this.ranges[this.requested]!;
      const keys = this.keysOf(range).filter((key) => !this.blocks.has(key));
      const bytes = keys.length * this.store.blockBytes(range.shard);
      // read ahead within the window; the range being consumed is always read
      if (this.requested >= this.consumed && this.heldBytes > 0 && this.heldBytes + bytes > this.windowBytes) break;
      for (const key of keys) this.request(key, range.shard);
      this.requested++;
    }
  }

  private request(key: string, shard: number): void {
    const block = Number(key.slice(key.indexOf(':') + 1));
    const entry = { bytes: this.store.readBlock(shard, block), size: this.store.blockBytes(shard), usesLeft: this.uses.get(key)!, ready: false };
    entry.bytes.then(() => { entry.ready = true; }, (error: unknown) => { this.failure ??= error; });
    this.blocks.set(key, entry);
    this.heldBytes += entry.size;
  }

  private release(key: string): void {
    const entry = this.blocks.get(key)!;
    if (--entry.usesLeft > 0) return;
    this.blocks.delete(key);
    this.heldBytes -= entry.size;
  }
}

/** default LoadOptions.readAheadBytes */
export const DEFAULT_READ_AHEAD_BYTES = 64 << 20;

export function uploadRange(step: UploadStep): ShardRange {
  return { shard: step.shard, offset: step.shardOffset, length: step.dst.size };
}

export function uploadRanges(steps: readonly Step[]): ShardRange[] {
  return steps.flatMap((step) => (step.op === 'upload' ? [uploadRange(step)] : []));
}

export function usedShards(schedule: Schedule): Set<number> {
  return new Set(schedule.models.flatMap((model) => uploadRanges([...model.init, ...model.run]).map((range) => range.shard)));
}
