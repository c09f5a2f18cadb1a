/**
 * The output folder of a compile (--out): what may be replaced, and replacing it safely.
 *
 * - Only what flashmemc wrote is ever deleted: an existing folder is replaced only when it is empty
 *   or holds exactly a bundle (its manifest.json is a flashmemc manifest, and every entry is a file
 *   that manifest lists, or a folder those files imply). Anything else (a thesis.tex beside a
 *   bundle, a web app's folder, a file) is refused with FM_OUTPUT naming what is in the way, unless
 *   the caller forces it (--force).
 * - One writer per output folder: a lock file beside it (<out>.flashmemc-lock, created exclusively,
 *   holding the writer's pid) makes a concurrent compile fail with FM_OUTPUT instead of racing the
 *   renames; a lock whose process is gone (same host) is taken over.
 * - The bundle is written into a fresh sibling <out>.tmp-* that replaces the folder only when
 *   complete; SIGINT/SIGTERM meanwhile remove it (and put a folder moved aside back) before the
 *   process exits non-zero.
 * - Every file system failure is FM_IO naming the path and the error code (ENOSPC, EACCES, EROFS...).
 */
import { SIGNATURE_PATH } from '../../schemas/signature.js';
import { randomBytes } from 'node:crypto';
import { existsSync, readFileSync, renameSync, rmSync, unlinkSync } from 'node:fs';
import { link, lstat, mkdir, readdir, readFile, rename, rm, unlink, writeFile } from 'node:fs/promises';
import { constants, hostname } from 'node:os';
import { dirname, resolve } from 'node:path';
import { fail, FlashmemError, ioFailed, quoteName, rethrowIn } from '../errors.js';
import { readBundleFileSync } from './safe-read.js';

export interface OutputOptions {
  /** replace the output folder whatever it holds (--force) */
  force?: boolean;
}

const MANIFEST = 'manifest.json';
/** as the runtime: a manifest lists files and signatures only */
const MAX_MANIFEST_BYTES = 16 << 20;
/** the files writeBundle writes besides manifest.json (write.ts) */
const WRITTEN_PATH = /^(schedule\.json|runtime\.js|runtime\.d\.ts|shaders\/[0-9a-f]{8,64}\.wgsl|weights\/[A-Za-z0-9_.-]+)$/;
/** a lock file that is empty this long after it was made belongs to a writer that died creating it */
const EMPTY_LOCK_GRACE_MS = 10_000;

// ------------------------------------------------------------------------ what may be replaced

/** Refuses (FM_OUTPUT) an output folder flashmemc may not replace; called before compiling, to fail fast. */
export async function assertOutputReplaceable(outDir: string, options: OutputOptions = {}): Promise<void> {
  const target = resolve(outDir);
  const stats = await lstat(target).catch((error: NodeJS.ErrnoException) => (error.code === 'ENOENT' ? undefined : ioFailure(`inspecting ${quoteName(target)}`, error)));
  if (!stats || options.force) return;
  if (!stats.isDirectory()) refuse(target, stats.isSymbolicLink() ? 'it is a symlink' : 'it is not a folder');
  const entries = (await readdir(target).catch((error: unknown) => ioFailure(`listing ${quoteName(target)}`, error))).sort();
  if (entries.length === 0) return;
  const listed = bundleFiles(target);
  if (!listed) {
    refuse(target, entries.includes(MANIFEST)
      ? `its ${MANIFEST} is not the manifest of a bundle flashmemc wrote`
      : `it holds ${quoteName(entries[0]!)} and no ${MANIFEST}: it is not a bundle`);
  }
  const unexpected = await firstUnexpectedEntry(target, '', listed);
  if (unexpected !== undefined) refuse(target, `it holds ${quoteName(unexpected)}, which is not a file of the bundle its ${MANIFEST} lists`);
}

function refuse(target: string, why: string): never {
  fail('FM_OUTPUT', `refusing to replace ${quoteName(target)}: ${why}. flashmemc replaces only an empty folder or one holding exactly a bundle it wrote; choose another --out, or pass --force to replace it anyway`);
}

/** The paths the folder's manifest lists (manifest.json included), or undefined when it is not a flashmemc manifest. */
function bundleFiles(target: string): Set<string> | undefined {
  let manifest: unknown;
  try {
    manifest = JSON.parse(readBundleFileSync(target, MANIFEST, { maxBytes: MAX_MANIFEST_BYTES }).toString('utf8'));
  } catch {
    return undefined;
  }
  const { format, files } = (typeof manifest === 'object' && manifest !== null ? manifest : {}) as { format?: unknown; files?: unknown };
  if (format !== 'flashmemc-bundle' || !Array.isArray(files)) return undefined;
  const paths = files.map((file: unknown) => (file as { path?: unknown } | null)?.path);
  if (!paths.every((path): path is string => typeof path === 'string' && WRITTEN_PATH.test(path))) return undefined;
  // signature.json (signed bundles) sits beside the manifest it signs, unlisted
  return new Set([MANIFEST, SIGNATURE_PATH, ...paths]);
}

/** The first entry (sorted, depth first) that is neither a listed file nor a folder listed files lie in. */
async function firstUnexpectedEntry(dir: string, prefix: string, listed: Set<string>): Promise<string | undefined> {
  const entries = await readdir(dir, { withFileTypes: true }).catch((error: unknown) => ioFailure(`listing ${quoteName(dir)}`, error));
  for (const entry of entries.sort((a, b) => (a.name < b.name ? -1 : 1))) {
    const path = prefix ? `${prefix}/${entry.name}` : entry.name;
    // Dirent types come from lstat: a symlink is neither a file nor a folder here
    if (entry.isFile() && listed.has(path)) continue;
    if (entry.isDirectory() && [...listed].some((file) => file.startsWith(`${path}/`))) {
      const inner = await firstUnexpectedEntry(resolve(dir, entry.name), path, listed);
      if (inner !== undefined) return inner;
      continue;
    }
    return path;
  }
  return undefined;
}

// ------------------------------------------------------------------------------- replacing it

/**
 * Writes a new output folder: `write(temp)` fills a fresh sibling temp folder, which then replaces
 * the output folder (checked again, under the lock). On failure or interruption nothing is left
 * but what was there before.
 */
export async function replaceOutputFolder<T>(outDir: string, options: OutputOptions, write: (temp: string) => Promise<T>): Promise<T> {
  const target = resolve(outDir);
  await assertOutputReplaceable(target, options);
  await mkdir(dirname(target), { recursive: true }).catch((error: unknown) => ioFailure(`creating ${quoteName(dirname(target))}`, error));
  const lock = outputLock(target);
  const temp = `${target}.tmp-${randomBytes(6).toString('hex')}`;
  // guarded from before the lock and the temp folder exist: a signal at any point leaves neither behind
  const active = guardAgainstSignals({ target, temp, lock: lock.path, lockText: lock.text });
  try {
    await acquireOutputLock(lock, target);
    try {
      await assertOutputReplaceable(target, options);
      // not recursive: the temp folder must be new
      await mkdir(temp).catch((error: unknown) => ioFailure(`creating ${quoteName(temp)}`, error));
      try {
        // the files' messages name them inside the bundle (weights/0000.bin): say which bundle
        const result = await write(temp).catch((error: unknown) => (error instanceof FlashmemError && error.code === 'FM_IO' ? rethrowIn(`writing the bundle folder ${quoteName(outDir)}`, error) : Promise.reject(error)));
        // checked again: something may have been put into the output folder while the files were written
        await assertOutputReplaceable(target, options);
        await swapIn(active);
        return result;
      } catch (error) {
        await rm(temp, { recursive: true, force: true });
        throw error;
      }
    } finally {
      await releaseLock(lock);
    }
  } finally {
    active.done();
  }
}

/** A write in progress, as the signal handlers must undo it. */
interface ActiveWrite {
  target: string;
  temp: string;
  /** the previous output folder while it is moved aside */
  aside?: string;
  lock: string;
  lockText: string;
  done(): void;
}

/** Moves the finished temp folder into place; a previous folder is moved aside first and put back if that fails. */
async function swapIn(write: ActiveWrite): Promise<void> {
  const { target, temp } = write;
  if (!(await lstat(target).then(() => true, () => false))) {
    await rename(temp, target).catch((error: unknown) => renameFailure(target, error));
    return;
  }
  const aside = `${target}.old-${randomBytes(6).toString('hex')}`;
  await rename(target, aside).catch((error: unknown) => ioFailure(`moving the previous ${quoteName(target)} aside`, error));
  write.aside = aside;
  try {
    await rename(temp, target);
  } catch (error) {
    await rename(aside, target);
    write.aside = undefined;
    renameFailure(target, error);
  }
  write.aside = undefined;
  await rm(aside, { recursive: true, force: true }).catch((error: unknown) => ioFailure(`removing the previous bundle (moved to ${quoteName(aside)})`, error));
}

function renameFailure(target: string, error: unknown): never {
  const code = (error as NodeJS.ErrnoException).code;
  // only a writer that is not flashmemc (the lock keeps those out) can have put something there
  if (code === 'ENOTEMPTY' || code === 'EEXIST') fail('FM_OUTPUT', `something else created ${quoteName(target)} while the bundle was written; nothing was replaced`, error);
  ioFailure(`moving the bundle to ${quoteName(target)}`, error);
}

// -------------------------------------------------------------------------------- signals

const activeWrites = new Set<ActiveWrite>();
const SIGNALS = ['SIGINT', 'SIGTERM'] as const;

/**
 * Registers a write for clean-up on SIGINT/SIGTERM (one handler for all writes of the process, so
 * that concurrent writes are all undone before it exits).
 */
function guardAgainstSignals(write: Omit<ActiveWrite, 'done'>): ActiveWrite {
  const active: ActiveWrite = {
    ...write,
    done: () => {
      activeWrites.delete(active);
      if (activeWrites.size === 0) for (const signal of SIGNALS) process.off(signal, undoWritesAndExit);
    },
  };
  if (activeWrites.size === 0) for (const signal of SIGNALS) process.on(signal, undoWritesAndExit);
  activeWrites.add(active);
  return active;
}

function undoWritesAndExit(signal: NodeJS.Signals): void {
  for (const write of activeWrites) undoWriteNow(write);
  process.stderr.write(`flashmemc: ${signal}: stopped writing; no output folder was changed\n`);
  process.exit(128 + (constants.signals[signal] ?? 1));
}

/** Synchronous, each step on its own (best effort): the process exits right after. */
function undoWriteNow(write: ActiveWrite): void {
  const attempt = (step: () => void) => {
    try {
      step();
    } catch {
      // the process is exiting; what could not be undone stays, as after a crash
    }
  };
  attempt(() => rmSync(write.temp, { recursive: true, force: true }));
  // moved aside and not yet replaced: put it back; already replaced: the write was complete
  if (write.aside) attempt(() => (existsSync(write.target) ? rmSync(write.aside!, { recursive: true, force: true }) : renameSync(write.aside!, write.target)));
  attempt(() => {
    if (readFileSync(write.lock, 'utf8') === write.lockText) unlinkSync(write.lock);
  });
}

// ------------------------------------------------------------------------------------ the lock

interface OutputLock {
  path: string;
  /** what this writer writes into it */
  text: string;
}

function outputLock(target: string): OutputLock {
  return { path: `${target}.flashmemc-lock`, text: `flashmemc ${process.pid} ${hostname()}\n` };
}

/** Takes <out>.flashmemc-lock, or fails with FM_OUTPUT while a live writer holds it. */
async function acquireOutputLock({ path, text }: OutputLock, target: string): Promise<void> {
  for (let attempt = 0; attempt < 3; attempt++) {
    if (await createExclusively(path, text)) return;
    const holder = await readLock(path);
    if (holder === undefined) continue;
    if (!isStale(holder)) {
      const who = holder.pid !== undefined ? `another flashmemc (pid ${holder.pid}${holder.pid === process.pid ? ', this process' : ''})` : 'something';
      fail('FM_OUTPUT', `${who} is writing ${quoteName(target)} (lock file ${quoteName(path)}); wait for it to finish, or remove the lock file if no flashmemc is running`);
    }
    await breakStaleLock(path, holder.text);
  }
  fail('FM_OUTPUT', `could not take the lock ${quoteName(path)} for ${quoteName(target)}: other writers keep taking it`);
}

async function createExclusively(path: string, text: string): Promise<boolean> {
  try {
    await writeFile(path, text, { flag: 'wx' });
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'EEXIST') return false;
    ioFailure(`creating the lock file ${quoteName(path)}`, error);
  }
}

interface LockHolder {
  text: string;
  pid?: number;
  host?: string;
  modifiedMs: number;
}

/** The lock's holder; undefined when the lock vanished meanwhile. */
async function readLock(path: string): Promise<LockHolder | undefined> {
  try {
    const [text, stats] = await Promise.all([readFile(path, 'utf8'), lstat(path)]);
    const match = /^flashmemc (\d+) (.*)\n$/.exec(text);
    return { text, pid: match ? Number(match[1]) : undefined, host: match?.[2], modifiedMs: stats.mtimeMs };
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    ioFailure(`reading the lock file ${quoteName(path)}`, error);
  }
}

/** Stale: its process is gone (only knowable on this host), or it stayed empty (its writer died creating it). */
function isStale(holder: LockHolder): boolean {
  if (holder.text === '') return Date.now() - holder.modifiedMs > EMPTY_LOCK_GRACE_MS;
  if (holder.pid === undefined || holder.host !== hostname()) return false;
  try {
    process.kill(holder.pid, 0);
    return false;
  } catch (error) {
    // EPERM: alive, someone else's
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}

/**
 * Removes a stale lock without removing a fresh one that replaced it meanwhile: the lock is moved
 * away first (atomic) and deleted only if it is still the stale one; otherwise it is put back.
 */
async function breakStaleLock(path: string, staleText: string): Promise<void> {
  const moved = `${path}.stale-${randomBytes(6).toString('hex')}`;
  try {
    await rename(path, moved);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return;
    ioFailure(`removing the stale lock file ${quoteName(path)}`, error);
  }
  const text = await readFile(moved, 'utf8').catch(() => staleText);
  // link fails if a newer lock exists already: then that one stands
  if (text !== staleText) await link(moved, path).catch(() => {});
  await unlink(moved).catch(() => {});
}

/** Removes the lock only while it is this writer's (a lock taken over as stale is someone else's now). */
async function releaseLock({ path, text }: OutputLock): Promise<void> {
  const current = await readFile(path, 'utf8').catch(() => undefined);
  if (current === text) await unlink(path).catch(() => {});
}

// ------------------------------------------------------------------------------------ fs errors

/** FM_IO naming what failed, the error code and what to do (ioAdvice); Node's own message would repeat the path at full length. */
export function ioFailure(what: string, error: unknown): never {
  ioFailed(what, error);
}
