/**
 * Timelines of runs and of the load (SessionStats.timeline, loadTimeline).
 */
import type { TimelineEvent } from './api.js';
import { keepAlive } from './env.js';

/** Collects timeline events of a run or of the load, and the GPU completion of each submission. */
export class Timeline {
  readonly events: TimelineEvent[] = [];
  private readonly gpuDone: Promise<void>[] = [];
  private readonly origin: number;

  /** `record` false: add() keeps nothing (the decode loop's steps, thousands per generate()) */
  constructor(origin = performance.now(), private readonly trackGpu = false, private readonly record = true) {
    this.origin = origin;
  }

  now(): number {
    return performance.now() - this.origin;
  }

  add(kind: TimelineEvent['kind'], step: number, startMs: number, extra: { label?: string; bytes?: number } = {}): void {
    if (!this.record) return;
    this.events.push({ kind, step, ...extra, startMs, endMs: this.now() });
  }

  /** Called right after a submission: its 'gpu' entry ends when the queue reports the work done. */
  submitted(queue: GPUQueue): void {
    if (!this.trackGpu || !this.record) return;
    const event: TimelineEvent = { kind: 'gpu', step: -1, startMs: this.now(), endMs: Number.NaN };
    this.events.push(event);
    this.gpuDone.push(queue.onSubmittedWorkDone().then(() => { event.endMs = this.now(); }, () => {}));
  }

  /** Waits until every submission's end is known. */
  async settled(): Promise<void> {
    await keepAlive(Promise.all(this.gpuDone));
  }
}
