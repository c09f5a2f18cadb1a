/**
 * Multi-model bundles: packages the shared-memory schedule (compiler/schedule/build-multi.ts) with
 * each model's manifest entry and the limits the bundle requires.
 */
import type { ManifestModel } from '../../schemas/manifest.js';
import type { TargetLimits } from '../target/limits.js';
import type { BundleContents } from './contents.js';
import { modelSignature, requiredLimits } from './assemble.js';
import { buildMultiSchedule, modelWeights, type BuiltMulti, type PlannedModel, type PlannedSequence } from '../schedule/build-multi.js';

export type { PlannedModel, PlannedSequence };

export interface MultiAssembly {
  contents: BundleContents;
  /** stream statistics per model entry plan, and of the sequence */
  stats: BuiltMulti['stats'];
}

export function assembleMultiBundle(models: PlannedModel[], sequence: PlannedSequence | undefined, limits: TargetLimits, shardBytes?: number): MultiAssembly {
  const { schedule, shaders, layout, plans, stats } = buildMultiSchedule(models, sequence, limits, shardBytes);
  const manifestModels: ManifestModel[] = models.map((m) => modelSignature(m.name, m.graph, m.program, modelWeights(m)));
  return {
    contents: {
      models: manifestModels, schedule, shaders: shaders.files, shards: layout.shards,
      requiredLimits: requiredLimits(plans, shaders.code), requiredFeatures: [],
    },
    stats,
  };
}
