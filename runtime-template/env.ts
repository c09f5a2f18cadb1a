/**
 * The environment: Node or browser, Node modules imported on demand, event-loop keep-alive for
 * Dawn's promises, sha256.
 */
import { fail } from './errors.js';

export const IN_NODE = typeof process !== 'undefined' && typeof process.versions?.node === 'string';

/** Node built-ins imported so far: every bundle read needs a few, and an import() costs a module-loader round trip (hooks run on their own thread) */
const builtins = new Map<string, Promise<unknown>>();

/**
 * Imports a Node built-in or package by a computed specifier, so that browser bundlers that meet
 * runtime.js do not try to resolve Node modules. Built-ins (`node:`) are imported once per process.
 */
export async function importNodeModule<T>(specifier: string): Promise<T> {
  if (!specifier.startsWith('node:')) return (await import(/* @vite-ignore */ specifier)) as T;
  let module = builtins.get(specifier);
  if (!module) builtins.set(specifier, (module = import(/* @vite-ignore */ specifier)));
  return (await module) as T;
}

let keepAliveTimer: ReturnType<typeof setInterval> | undefined;
let keepAliveUsers = 0;

/**
 * Dawn-node's promises hold no event-loop handle: while one is pending Node may exit or stall.
 * Hold a timer for as long as any awaited GPU promise is pending.
 */
export async function keepAlive<T>(promise: Promise<T>): Promise<T> {
  if (!IN_NODE) return promise;
  if (keepAliveUsers++ === 0) keepAliveTimer = setInterval(() => {}, 1 << 30);
  try {
    return await promise;
  } finally {
    if (--keepAliveUsers === 0) clearInterval(keepAliveTimer);
  }
}

export async function sha256Hex(bytes: Uint8Array<ArrayBuffer>): Promise<string> {
  const subtle = globalThis.crypto?.subtle;
  if (!subtle) fail('FM_WEBGPU', 'crypto.subtle is unavailable: load bundles from a secure context (https or localhost)');
  const digest = new Uint8Array(await subtle.digest('SHA-256', bytes));
  return Array.from(digest, (byte) => byte.toString(16).padStart(2, '0')).join('');
}

export type NodeFs = typeof import('node:fs/promises');
export type NodePath = typeof import('node:path');
export type NodeUrl = typeof import('node:url');
export type NodeModule = typeof import('node:module');
