/**
 * Progress bars on stderr: one line, redrawn in place. `compile` names the phase (import, each
 * pass, each ILP window of the load plan) and, while shards are written, the bytes done of the
 * total; `profile` names the benchmark case of each sweep and each extra measurement. Only on a
 * TTY (logs, pipes and CI get nothing) and never on stdout, so --json stays clean.
 */
import type { CompileProgress } from '../compile.js';
import type { ProfileProgress } from '../profile/run.js';

const BAR_WIDTH = 24;
/** redraws at most this often (ms) within one step: writing 5 GB of shards reports thousands of pieces */
const REDRAW_MS = 100;

export interface ProgressBar<E = CompileProgress> {
  update(event: E): void;
  /** a line of its own above the bar, which is redrawn below it */
  log(line: string): void;
  /** clears the line */
  done(): void;
}

/** What the bar shows for an event. */
interface Frame {
  text: string;
  /**
   * Events of one step share a key (the shard bytes, the windows of one solve): the first event
   * of a key and the step's last event always draw, the ones between are throttled.
   */
  key: string;
  last: boolean;
}

const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;
const seconds = (ms: number) => `${(ms / 1000).toFixed(1)} s`;

function bar(fraction: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
}

export function progressText(event: CompileProgress, elapsedMs: number): string {
  const t = seconds(elapsedMs);
  switch (event.phase) {
    case 'import': return `importing ${t}`;
    case 'pass': return `${bar(event.index / event.count)} pass ${event.index + 1}/${event.count} ${event.pass} ${t}`;
    case 'load-plan': {
      // fitting the arena re-solves the plan: say which solve, so a bar that restarts is explained
      const again = event.solve > 1 ? ` (solve ${event.solve})` : '';
      return `${bar((event.window - 1) / event.windows)} load plan window ${event.window}/${event.windows}${again} ${t}`;
    }
    case 'plan': return `${bar(1)} planning weight streaming ${t}`;
    case 'write': {
      const fraction = event.totalBytes === 0 ? 1 : event.doneBytes / event.totalBytes;
      return `${bar(fraction)} writing shards ${mib(event.doneBytes)} / ${mib(event.totalBytes)} ${t}`;
    }
  }
}

export function profileProgressText(event: ProfileProgress, elapsedMs: number): string {
  const t = seconds(elapsedMs);
  switch (event.phase) {
    case 'upload': return `measuring upload bandwidth ${t}`;
    case 'sweep': {
      const done = event.sweep * event.count + event.index;
      return `${bar(done / (event.sweeps * event.count))} sweep ${event.sweep + 1}/${event.sweeps} case ${event.index + 1}/${event.count} ${event.op} ${event.size} ${t}`;
    }
    case 'measurement': return `${bar(event.index / event.count)} measurement ${event.index + 1}/${event.count} ${event.name} ${t}`;
  }
}

function compileFrame(event: CompileProgress, elapsedMs: number): Frame {
  const text = progressText(event, elapsedMs);
  switch (event.phase) {
    case 'pass': return { text, key: `pass ${event.index}`, last: true };
    case 'load-plan': return { text, key: `load-plan ${event.solve}`, last: event.window === event.windows };
    case 'write': return { text, key: 'write', last: event.doneBytes >= event.totalBytes };
    default: return { text, key: event.phase, last: true };
  }
}

/** every benchmark case and measurement takes long enough to be worth a redraw: none is throttled */
function profileFrame(event: ProfileProgress, elapsedMs: number): Frame {
  return { text: profileProgressText(event, elapsedMs), key: event.phase, last: true };
}

/** The compile bar on `stream` when it is a TTY and not quiet; otherwise none (nothing is printed). */
export function progressBar(stream: NodeJS.WriteStream, quiet: boolean): ProgressBar<CompileProgress> | undefined {
  return lineOnTerminal(stream, quiet, compileFrame);
}

/** The `flashmemc profile` bar, under the same conditions. */
export function profileProgressBar(stream: NodeJS.WriteStream, quiet: boolean): ProgressBar<ProfileProgress> | undefined {
  return lineOnTerminal(stream, quiet, profileFrame);
}

function lineOnTerminal<E>(stream: NodeJS.WriteStream, quiet: boolean, frame: (event: E, elapsedMs: number) => Frame): ProgressBar<E> | undefined {
  if (quiet || !stream.isTTY) return undefined;
  const start = performance.now();
  let lastDraw = 0;
  let lastKey: string | undefined;
  let shown = '';
  // a terminal that does not say how wide it is (columns 0 or unset) gets 80 columns
  const fit = (text: string) => text.slice(0, Math.max(20, (stream.columns || 80) - 1));
  return {
    update(event) {
      const now = performance.now();
      const f = frame(event, now - start);
      if (f.key === lastKey && !f.last && now - lastDraw < REDRAW_MS) return;
      lastKey = f.key;
      lastDraw = now;
      shown = fit(f.text);
      stream.write(`\r\x1b[2K${shown}`);
    },
    log(line) {
      stream.write(`\r\x1b[2K${line}\n${shown}`);
    },
    done() {
      if (shown) stream.write('\r\x1b[2K');
      shown = '';
    },
  };
}
