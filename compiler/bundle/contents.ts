/**
 * What the compiler hands to the bundle writer: everything a bundle holds, in memory except
 * weight shards, which are produced piece by piece so that models larger than host memory can
 * be written without holding all weights at once.
 */
import type { ManifestModel } from '../../schemas/manifest.js';
import type { Schedule } from '../../schemas/schedule.js';
import type { ShardSource } from '../schedule/weights.js';

export type { ShardSource };


export interface BundleContents {
  models: ManifestModel[];
  /** schedule.shaders and schedule.shards already name the paths below */
  schedule: Schedule;
  /** 'shaders/<hash>.wgsl' -> WGSL source */
  shaders: Map<string, string>;
  shards: ShardSource[];
  requiredLimits: Record<string, number>;
  requiredFeatures: string[];
}
