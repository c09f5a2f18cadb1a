/** Reads what the report needs besides manifest.json and schedule.json: the shaders and a run's timeline. */
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FlashmemError } from '../../errors.js';
import type { Manifest } from '../../../schemas/manifest.js';
import type { Schedule } from '../../../schemas/schedule.js';
import { matchTimeline, parseTimeline } from './timeline.js';
import type { ReportInput } from './summary.js';

function readText(path: string, missing: (message: string) => FlashmemError): string {
  try {
    return readFileSync(path, 'utf8');
  } catch (e) {
    throw missing((e as Error).message);
  }
}

/** The report's input; FM_BUNDLE_INVALID for a missing shader, FM_IO for an unreadable timeline, FM_BAD_ARGUMENT for a bad one. */
export function readReportInput(bundle: string, manifest: Manifest, schedule: Schedule, timelineFile?: string): ReportInput {
  // schedule paths are validated bundle-relative names (schemas/common.ts bundlePath): no escape from the folder
  const shaders = schedule.shaders.map((path) => readText(join(bundle, path), (why) => new FlashmemError('FM_BUNDLE_INVALID', `shader ${path}: ${why}`)));
  if (timelineFile === undefined) return { bundle, manifest, schedule, shaders };
  const text = readText(timelineFile, (why) => new FlashmemError('FM_IO', `cannot read --timeline ${JSON.stringify(timelineFile)}: ${why}`));
  const timeline = matchTimeline(parseTimeline(text, timelineFile), schedule, timelineFile);
  return { bundle, manifest, schedule, shaders, timeline: { ...timeline, file: timelineFile } };
}
