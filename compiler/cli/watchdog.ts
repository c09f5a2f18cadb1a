/**
 * A process-level deadline for CLI commands. The runtime's runTimeoutMs destroys the device when a
 * run overstays, but it is a JavaScript timer: on backends that execute GPU work synchronously on
 * the calling thread (Dawn's OpenGL ES backend on Mesa llvmpipe), a hostile kernel blocks that
 * thread and no timer can fire. The watchdog's timer runs on a worker thread, which the blocked
 * main thread cannot stall: at the deadline it prints the FM_TIMEOUT error and kills the process
 * (SIGKILL: signal handlers would need the blocked thread).
 */
import { Worker } from 'node:worker_threads';

const WATCHDOG_SOURCE = `
const { parentPort } = require('node:worker_threads');
const { writeSync } = require('node:fs');
let timer;
parentPort.on('message', ({ ms, message }) => {
  clearTimeout(timer);
  if (ms === undefined) return;
  timer = setTimeout(() => {
    writeSync(2, message);
    process.kill(process.pid, 'SIGKILL');
  }, ms);
});
`;

/** extra time the runtime's own timeout gets to reject cleanly (exit code 2) before the process is killed */
const GRACE_MS = 2000;

export interface Watchdog {
  /** the process is killed unless disarm() comes within ms (plus a grace period) */
  arm(ms: number, message: string): void;
  disarm(): void;
  stop(): Promise<void>;
}

export function startWatchdog(): Watchdog {
  const worker = new Worker(WATCHDOG_SOURCE, { eval: true });
  // the watchdog never keeps a finished command alive
  worker.unref();
  return {
    arm: (ms, message) => worker.postMessage({ ms: ms + GRACE_MS, message: `${message}\n` }),
    disarm: () => worker.postMessage({}),
    stop: async () => { await worker.terminate(); },
  };
}

/** Runs `work` with the watchdog armed for `ms`. */
export async function guarded<T>(watchdog: Watchdog | undefined, ms: number, what: string, work: () => Promise<T>): Promise<T> {
  watchdog?.arm(ms, `flashmemc: error FM_TIMEOUT: ${what} took longer than --timeout ${ms} ms and the GPU work could not be interrupted on this backend: the process was killed`);
  try {
    return await work();
  } finally {
    watchdog?.disarm();
  }
}
