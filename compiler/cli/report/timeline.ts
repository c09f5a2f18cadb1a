/**
 * `flashmemc run --timeline t.json` files ({ run, load }: the runtime's SessionStats.timeline and
 * loadTimeline, runtime-template/api.ts TimelineEvent), checked against the schema and against the
 * bundle: every event must name a step of this bundle's schedule with the same op and label, so a
 * timeline of another bundle (or an edited one) is refused instead of shown next to wrong kernels.
 */
import { z } from 'zod';
import { FlashmemError } from '../../errors.js';
import type { Schedule, Step } from '../../../schemas/schedule.js';

const STEP_KINDS = ['writeInput', 'upload', 'copy', 'dispatch', 'readOutput', 'stateWrite'] as const;

const timelineEvent = z.object({
  kind: z.enum([...STEP_KINDS, 'read', 'gpu']),
  /** the step's index in the run (or init) steps; -1 for 'gpu' */
  step: z.number().int().min(-1),
  label: z.string().optional(),
  bytes: z.number().int().min(0).optional(),
  startMs: z.number(),
  /** null: a 'gpu' submission whose end was not known when the file was written (NaN in JSON) */
  endMs: z.number().nullable(),
})
  .refine((e) => (e.step === -1) === (e.kind === 'gpu'), { message: "step is -1 exactly for 'gpu' events" })
  .refine((e) => e.endMs === null ? e.kind === 'gpu' : e.endMs >= e.startMs, { message: 'endMs is before startMs (or missing)' });

const timelineFile = z.object({ run: z.array(timelineEvent), load: z.array(timelineEvent) });

export type TimelineEvent = z.infer<typeof timelineEvent>;

export interface TimelineRow extends TimelineEvent {
  /** the node of a dispatch step */
  node?: string;
}

export interface MatchedTimeline {
  /** the model (or 'sequence') whose run steps the run timeline replays */
  plan: string;
  run: TimelineRow[];
  load: TimelineRow[];
}

interface Plan {
  name: string;
  run: readonly Step[];
  init: readonly Step[];
}

function plansOf(schedule: Schedule): Plan[] {
  const plans: Plan[] = schedule.models.map((m) => ({ name: m.model, run: m.run, init: m.init }));
  for (const call of schedule.sequence?.calls ?? []) plans.push({ name: `sequence (${call.model})`, run: call.run, init: schedule.sequence!.init });
  return plans;
}

/** The label the runtime gives a step's event (runtime-template/replay.ts). */
function labelOf(step: Step): string | undefined {
  switch (step.op) {
    case 'dispatch': return step.label;
    case 'upload': case 'copy': return step.weight;
    case 'stateWrite': return step.state;
    default: return undefined;
  }
}

/** Whether the event records `steps[event.step]`: the same op ('read' waits for an upload's bytes) and label. */
function fits(event: TimelineEvent, steps: readonly Step[]): boolean {
  if (event.kind === 'gpu') return true;
  const step = steps[event.step];
  if (!step) return false;
  const op = event.kind === 'read' ? 'upload' : event.kind;
  return step.op === op && (event.label === undefined || event.label === labelOf(step));
}

function describe(event: TimelineEvent, index: number, part: string): string {
  return `event ${index} of "${part}" (${event.kind} of step ${event.step}${event.label === undefined ? '' : ` ${JSON.stringify(event.label.slice(0, 80))}`})`;
}

function badTimeline(file: string, why: string): never {
  throw new FlashmemError('FM_BAD_ARGUMENT', `--timeline ${JSON.stringify(file)}: ${why}`);
}

/** Parses a timeline file's text; FM_BAD_ARGUMENT naming the first problem. */
export function parseTimeline(text: string, file: string): z.infer<typeof timelineFile> {
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    badTimeline(file, `not JSON (${(e as Error).message}); give a file written by flashmemc run --timeline`);
  }
  const parsed = timelineFile.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    badTimeline(file, `not a flashmemc run --timeline file: ${issue.path.join('.') || 'top level'}: ${issue.message}`);
  }
  return parsed.data;
}

/**
 * Matches a parsed timeline to the bundle: the run's events to the one plan (a model, or a call
 * of the sequence) they all fit, reload steps of its init included; the load's events each to some
 * plan's init (the load replays every model's init in turn). FM_BAD_ARGUMENT when one fits nowhere.
 */
export function matchTimeline(timeline: z.infer<typeof timelineFile>, schedule: Schedule, file: string): MatchedTimeline {
  const plans = plansOf(schedule);
  const fitsPlan = (e: TimelineEvent, p: Plan) => fits(e, p.run) || fits(e, p.init);
  const misfits = (p: Plan) => timeline.run.findIndex((e) => !fitsPlan(e, p));
  const plan = plans.find((p) => misfits(p) < 0);
  if (!plan) {
    const best = plans.reduce((a, b) => (timeline.run.filter((e) => fitsPlan(e, a)).length >= timeline.run.filter((e) => fitsPlan(e, b)).length ? a : b));
    const index = misfits(best);
    badTimeline(file, `${describe(timeline.run[index]!, index, 'run')} matches no step of this bundle's schedule: the timeline was written for another bundle`);
  }
  const loadMisfit = timeline.load.findIndex((e) => !plans.some((p) => fits(e, p.init)));
  if (loadMisfit >= 0) badTimeline(file, `${describe(timeline.load[loadMisfit]!, loadMisfit, 'load')} matches no init step of this bundle: the timeline was written for another bundle`);
  const withNode = (e: TimelineEvent, steps: readonly Step[]): TimelineRow => {
    const step = e.kind === 'dispatch' ? steps[e.step] : undefined;
    return step?.op === 'dispatch' ? { ...e, node: step.node } : e;
  };
  return { plan: plan.name, run: timeline.run.map((e) => withNode(e, plan.run)), load: timeline.load.map((e) => withNode(e, plan.init)) };
}
