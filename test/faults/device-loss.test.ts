/**
 * A real device loss: the device of a session is destroyed while runs are in flight. Runs reject
 * with FM_WEBGPU naming the loss, the session can be disposed, and a new session on a fresh device
 * works. The sessions create (and own) their devices, so the suite's shared device is not involved.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  assembleBundle, importRuntime, mlpModel, mlpReference, rejectionOf, removeTempDirs, seededFloats, writeFixtureBundle, type RuntimeModule,
} from '../harness/bundle-fixtures.js';

let runtime: RuntimeModule;
let dir: string;

beforeAll(async () => {
  // generated before any device exists (generation blocks the thread for seconds)
  dir = await writeFixtureBundle(assembleBundle([mlpModel()]));
  runtime = await importRuntime(dir);
});
afterAll(removeTempDirs);

describe('device loss during a run', () => {
  it('device.destroy() with runs in flight: they and later runs reject, the session disposes, a new session works', async () => {
    const session = await runtime.loadBundle(dir);
    const x = seededFloats(6, 4);
    const { y } = await session.run({ x });
    mlpReference(x).forEach((v, i) => expect(y[i]).toBeCloseTo(v, 5));

    const inFlight = [session.run({ x }), session.run({ x })];
    session.device.destroy();
    for (const run of inFlight) {
      const error = await rejectionOf(run);
      expect(error.code, error.message).toBe('FM_WEBGPU');
      expect(error.message).toContain('the WebGPU device was lost (destroyed)');
    }
    const later = await rejectionOf(session.run({ x }));
    expect(later.message).toContain('device was lost (destroyed)');
    session.dispose();
    expect(session.stats().liveGpuBytes).toBe(0);

    const fresh = await runtime.loadBundle(dir);
    expect(fresh.device).not.toBe(session.device);
    const again = await fresh.run({ x });
    mlpReference(x).forEach((v, i) => expect(again.y![i]).toBeCloseTo(v, 5));
    fresh.dispose();
  });
});
