/**
 * The compile progress bar on stderr: one line, redrawn in place, naming the phase (import, each
 * pass, load planning) and, while shards are written, the bytes done of the total. Only on a TTY
 * (logs and pipes get nothing) and never on stdout, so --json stays clean.
 */
import type { CompileProgress } from '../compile.js';

const BAR_WIDTH = 24;
/** redraws at most this often (ms): writing 5 GB of shards reports thousands of pieces */
const REDRAW_MS = 100;

export interface ProgressBar {
  update(event: CompileProgress): void;
  /** clears the line */
  done(): void;
}

const mib = (b: number) => `${(b / 1048576).toFixed(0)} MiB`;

function bar(fraction: number): string {
  const filled = Math.round(Math.min(1, Math.max(0, fraction)) * BAR_WIDTH);
  return `[${'#'.repeat(filled)}${'.'.repeat(BAR_WIDTH - filled)}]`;
}

export function progressText(event: CompileProgress, elapsedMs: number): string {
  const t = `${(elapsedMs / 1000).toFixed(1)} s`;
  switch (event.phase) {
    case 'import': return `importing ${t}`;
    case 'pass': return `${bar(event.index / event.count)} pass ${event.index + 1}/${event.count} ${event.pass} ${t}`;
    case 'plan': return `${bar(1)} planning weight streaming ${t}`;
    case 'write': {
      const fraction = event.totalBytes === 0 ? 1 : event.doneBytes / event.totalBytes;
      return `${bar(fraction)} writing shards ${mib(event.doneBytes)} / ${mib(event.totalBytes)} ${t}`;
    }
  }
}

/** A bar on `stream` when it is a TTY and not quiet; otherwise one that prints nothing. */
export function progressBar(stream: NodeJS.WriteStream, quiet: boolean): ProgressBar | undefined {
  if (quiet || !stream.isTTY) return undefined;
  const start = performance.now();
  let lastDraw = 0;
  let lastPhase = '';
  let shown = false;
  return {
    update(event) {
      const now = performance.now();
      // phase changes always show; progress within a phase is throttled
      if (event.phase === lastPhase && event.phase === 'write' && now - lastDraw < REDRAW_MS && event.doneBytes < event.totalBytes) return;
      lastPhase = event.phase;
      lastDraw = now;
      const text = progressText(event, now - start).slice(0, Math.max(20, (stream.columns ?? 80) - 1));
      stream.write(`\r\x1b[2K${text}`);
      shown = true;
    },
    done() {
      if (shown) stream.write('\r\x1b[2K');
    },
  };
}
