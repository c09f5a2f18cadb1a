/**
 * Streaming under a memory budget: the load plan's guarantees on a synthetic graph, and compiled
 * models whose streamed bundles give the preload bundle's outputs while the GPU bytes the runtime
 * actually allocates stay within the budget.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { readFile as readFile_ } from 'node:fs/promises';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { solveLoadPlan, minFeasibleBudget, type LoadProblem } from '../../compiler/schedule/load-plan.js';
import { compileStreamingContents } from '../../compiler/compile.js';
import { FlashmemError } from '../../compiler/errors.js';
import { randomInputs } from '../../compiler/cli/inputs.js';
import { compileAndOpen, type CompiledBundle } from '../harness/compile-run.js';
import { randomizeConstantWeights } from '../harness/randomize.js';
import { CONFORMANCE_DIR, REPO_ROOT, conformanceAvailable, tempDir } from '../harness/paths.js';
import { maxViolation } from '../harness/single-node.js';
import { openBundle } from '../../compiler/cli/bundle-session.js';
import { keepAlive, testDevice } from '../harness/gpu.js';
import { SHARD_BLOCK_BYTES } from '../../compiler/bundle/write.js';
import type { Schedule } from '../../schemas/schedule.js';
import type { TimelineEvent } from '../../runtime-template/runtime.js';

const MIB = 1048576;

function syntheticProblem(kernels: number, weightCount: number): LoadProblem {
  const steps = Array.from({ length: kernels }, (_, k) => ({ capacityBytes: (k % 3 === 0 ? 2 : 0.25) * MIB, activationBytes: MIB }));
  const weights = Array.from({ length: weightCount }, (_, i) => {
    const first = 1 + Math.floor((i * (kernels - 2)) / weightCount);
    return { id: `w${i}`, bytes: MIB * (1 + (i % 4)), firstUse: first, lastUse: Math.min(kernels - 1, first + (i % 3)) };
  });
  return { steps, weights, budgetBytes: 16 * MIB, overheadBytes: MIB, chunkBytes: 256 * 1024, maxDistance: 6, uploadBytesPerMs: 4 * MIB };
}

describe('load plan (ILP)', () => {
  it('loads every weight before its first use and keeps memory within the budget at every step', async () => {
    // a generous time limit per window: the solver status must not depend on how loaded the machine is (a 1 s window ran out under CI load)
    const p = { ...syntheticProblem(120, 60), windowTimeLimitS: 30 };
    const plan = await solveLoadPlan(p);
    expect(['optimal', 'feasible']).toContain(plan.stats.status);
    expect(plan.stats.windows).toBeGreaterThan(1);
    const held = new Array<number>(p.steps.length + 1).fill(0);
    for (const w of p.weights) {
      const wp = plan.weights.find((x) => x.id === w.id)!;
      if (wp.preload) {
        for (let k = -1; k < p.steps.length; k++) held[k + 1]! += w.bytes;
        continue;
      }
      const chunks = wp.carriers.reduce((s, c) => s + c.chunks, 0);
      expect(chunks * p.chunkBytes).toBeGreaterThanOrEqual(w.bytes);
      for (const c of wp.carriers) {
        expect(c.step).toBeLessThan(w.firstUse);
        expect(c.step).toBeGreaterThanOrEqual(w.firstUse - p.maxDistance);
      }
      expect(wp.loadStart).toBe(wp.carriers[0]!.step);
      for (let k = wp.loadStart; k <= w.lastUse; k++) held[k + 1]! += w.bytes;
    }
    held.forEach((bytes, i) => {
      const activations = p.steps[i - 1]?.activationBytes ?? 0;
      expect(bytes + activations + p.overheadBytes, `step ${i - 1}`).toBeLessThanOrEqual(p.budgetBytes);
    });
  });

  it('streamCost (the copies path): keeps weights resident where the budget allows instead of streaming them', async () => {
    // small enough to solve to optimality in one window, so the outcome cannot depend on how fast
    // the machine running the test is (the solver has a time limit per window)
    const steps = Array.from({ length: 30 }, () => ({ capacityBytes: 2 * MIB, activationBytes: MIB }));
    const weights = Array.from({ length: 10 }, (_, i) => ({ id: `w${i}`, bytes: MIB, firstUse: 2 + 3 * i, lastUse: 2 + 3 * i }));
    const p: LoadProblem = { steps, weights, budgetBytes: 8 * MIB, overheadBytes: MIB, chunkBytes: 256 * 1024, maxDistance: 4, uploadBytesPerMs: 4 * MIB };
    const free = await solveLoadPlan(p);
    const priced = await solveLoadPlan({ ...p, streamCost: { fixedMs: 0.02, bytesPerMs: 50 * MIB } });
    expect([free.stats.status, priced.stats.status]).toEqual(['optimal', 'optimal']);
    const preloaded = (plan: typeof free) => plan.weights.filter((w) => w.preload).length;
    // free streaming: preloading only costs memory, so nothing is preloaded
    expect(preloaded(free)).toBe(0);
    // priced: 6 MiB are left for weights and one must stay free to stream the rest through
    expect(preloaded(priced)).toBe(5);
    expect(priced.weights.every((w) => w.preload || w.carriers.length > 0)).toBe(true);
  });

  it('an early window never preloads the memory a later weight needs at its first use', async () => {
    // small early weights would all be worth preloading (streamCost), but the last weight needs
    // most of the budget while it is in use: preloading everything early would make it unplaceable
    const steps = Array.from({ length: 100 }, () => ({ capacityBytes: MIB, activationBytes: 0 }));
    const weights = [
      ...Array.from({ length: 10 }, (_, i) => ({ id: `small${i}`, bytes: MIB, firstUse: 1 + i, lastUse: 1 + i })),
      { id: 'big', bytes: 10 * MIB, firstUse: 95, lastUse: 95 },
    ];
    const p: LoadProblem = { steps, weights, budgetBytes: 12 * MIB, overheadBytes: 0, chunkBytes: 256 * 1024, maxDistance: 4, uploadBytesPerMs: 4 * MIB, windowKernels: 16, streamCost: { fixedMs: 0.02, bytesPerMs: 50 * MIB } };
    const plan = await solveLoadPlan(p);
    const preloadedBytes = weights.filter((w) => plan.weights.find((x) => x.id === w.id)!.preload).reduce((s, w) => s + w.bytes, 0);
    expect(preloadedBytes).toBeGreaterThan(0);
    expect(preloadedBytes + 10 * MIB).toBeLessThanOrEqual(p.budgetBytes);
    expect(plan.stats.greedyWindows).toBe(0);
  });

  it('refuses a budget below the smallest feasible one and says what that is', async () => {
    const p = syntheticProblem(40, 20);
    const min = minFeasibleBudget(p);
    await expect(solveLoadPlan({ ...p, budgetBytes: min - 1 })).rejects.toThrow(new RegExp(`smallest feasible budget.*${min} bytes`));
  });

  it('plans a 1,000-kernel graph in rolling windows (solve time: bench/load-plan.ts)', async () => {
    const p = { ...syntheticProblem(1000, 400), budgetBytes: 64 * MIB };
    const plan = await solveLoadPlan(p);
    expect(plan.weights).toHaveLength(400);
    expect(plan.stats.windows).toBeGreaterThanOrEqual(20);
    expect(plan.weights.filter((w) => !w.preload).length).toBeGreaterThan(300);
  }, 120_000);
});

async function outputsOf(bundle: CompiledBundle, seed: number) {
  return bundle.run(randomInputs(bundle.manifest.models[0]!, seed));
}

async function expectStreamMatchesPreload(modelPath: string, budgets: number[]) {
  const preload = await compileAndOpen(modelPath);
  try {
    const expected = await outputsOf(preload, 11);
    for (const budget of budgets) {
      const stream = await compileAndOpen(modelPath, { strategy: 'stream', memoryBudget: budget });
      try {
        const actual = await outputsOf(stream, 11);
        for (const [name, values] of Object.entries(expected)) {
          expect(maxViolation(actual[name] as Float32Array, values as Float32Array, 1e-4, 1e-6), `${name} at budget ${budget}`).toBeLessThanOrEqual(1);
        }
        const peak = stream.session.stats().peakGpuBytes;
        expect(peak, `measured peak GPU bytes at budget ${budget}`).toBeLessThanOrEqual(budget);
        expect(stream.session.stats().plannedPeakGpuBytes, 'the runtime allocates exactly the planned arenas').toBe(peak);
        expect(peak).toBeLessThan(preload.session.stats().peakGpuBytes);
        expect(stream.report.streaming!.streamedWeights).toBeGreaterThan(0);
        expect(stream.report.streaming!.carrierKernels).toBeGreaterThan(0);
      } finally {
        stream.close();
      }
    }
  } finally {
    preload.close();
  }
}

describe('streamed bundles', () => {
  it('mini-resnet: same outputs as preload, measured peak within the budget', async () => {
    await expectStreamMatchesPreload(join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx'), [200 * 1024, 180 * 1024]);
  });

  it('a budget below the smallest feasible one is refused with that budget in the message', async () => {
    await expect(compileStreamingContents(join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx'), { memoryBudget: 64 * 1024 }))
      .rejects.toSatisfy((e: unknown) => e instanceof FlashmemError && e.code === 'FM_BAD_ARGUMENT' && /smallest feasible budget .* \d+ bytes/.test(e.message));
  });

  it.skipIf(!conformanceAvailable('resnet50 at a tight budget'))('resnet50: a budget the load plan only just meets still compiles, loading just in time when early loads fragment the arena', async () => {
    // 16.5 MiB is within 0.3 MiB of the smallest budget the load plan can meet at all; plans that
    // load weights up to 8 kernels early leave the arena too fragmented to fit it
    const budget = 16.5 * MIB;
    const { report } = await compileStreamingContents(join(CONFORMANCE_DIR, 'light', 'light_resnet50.onnx'), { memoryBudget: budget });
    expect(report.plannedPeakBytes).toBeLessThanOrEqual(budget);
  }, 120_000);

  it.skipIf(!conformanceAvailable('streamed squeezenet'))('squeezenet (random weights): same outputs as preload under 6 MiB and 4.5 MiB (preload needs 8.5 MiB)', async () => {
    const tmp = tempDir('stream');
    try {
      const path = join(tmp.dir, 'squeezenet.onnx');
      writeFileSync(path, randomizeConstantWeights(readFileSync(join(CONFORMANCE_DIR, 'light', 'light_squeezenet.onnx'))));
      await expectStreamMatchesPreload(path, [6 * MIB, 4.5 * MIB]);
    } finally {
      tmp.cleanup();
    }
  }, 300_000);
});

/** A readFile hook over a bundle folder that records every read and the bytes in flight at once. */
function recordingReader(dir: string) {
  const reads: { path: string; offset: number; length: number }[] = [];
  let inFlight = 0;
  let maxInFlight = 0;
  const readFile = async (path: string, range?: { offset: number; length: number }) => {
    const { offset, length } = range ?? { offset: 0, length: Number.MAX_SAFE_INTEGER };
    reads.push({ path, offset, length });
    const counted = path.startsWith('weights/') ? length : 0;
    inFlight += counted;
    maxInFlight = Math.max(maxInFlight, inFlight);
    try {
      const bytes = await readFile_(join(dir, path));
      return bytes.subarray(offset, offset + length);
    } finally {
      inFlight -= counted;
    }
  };
  return { readFile, reads, maxInFlight: () => maxInFlight, reset: () => { reads.length = 0; maxInFlight = 0; } };
}

describe('streaming runtime: byte-range reads, read-ahead, timeline', () => {
  const model = join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx');

  it("'storage' mode re-reads streamed weights by verified block ranges on every run, within the read-ahead window, with the outputs of 'memory' mode", async () => {
    const stream = await compileAndOpen(model, { strategy: 'stream', memoryBudget: 180 * 1024 });
    try {
      const expected = await outputsOf(stream, 5);
      const schedule = JSON.parse(readFileSync(join(stream.dir, 'schedule.json'), 'utf8')) as Schedule;
      const runUploads = schedule.models[0]!.run.filter((step) => step.op === 'upload').length;
      expect(runUploads).toBeGreaterThan(0);
      const reader = recordingReader(stream.dir);
      const { session } = await openBundle(stream.dir, { device: await testDevice(), load: { streamedWeights: 'storage', readAheadBytes: 64 * 1024, readFile: reader.readFile } });
      try {
        const weightReads = () => reader.reads.filter((r) => r.path.startsWith('weights/'));
        // at load, weights are read by block: never a whole-file read
        expect(weightReads().every((r) => r.length <= SHARD_BLOCK_BYTES)).toBe(true);
        reader.reset();
        for (let run = 0; run < 2; run++) {
          const actual = await keepAlive(session.run(randomInputs(stream.manifest.models[0]!, 5)));
          for (const [name, values] of Object.entries(expected)) expect(Array.from(actual[name] as Float32Array)).toEqual(Array.from(values as Float32Array));
        }
        // every run read its streamed weights again, by range
        expect(weightReads().length).toBeGreaterThanOrEqual(2);
        expect(weightReads().every((r) => r.length <= SHARD_BLOCK_BYTES)).toBe(true);
        // read-ahead is bounded: the window, plus at most the blocks of the range being consumed
        expect(reader.maxInFlight()).toBeLessThanOrEqual(64 * 1024 + 2 * SHARD_BLOCK_BYTES);
        const timeline = session.stats().timeline as TimelineEvent[];
        expect(timeline.filter((e) => e.kind === 'read').length).toBeGreaterThan(0);
        expect(timeline.filter((e) => e.kind === 'upload').length).toBe(runUploads);
      } finally {
        session.dispose();
      }
    } finally {
      stream.close();
    }
  });

  it('stats() gives a per-step timeline of the last run: every dispatch and upload in schedule order, GPU submissions with their end', async () => {
    const stream = await compileAndOpen(model, { strategy: 'stream', memoryBudget: 180 * 1024 });
    const { session } = await openBundle(stream.dir, { device: await testDevice(), load: { gpuTimeline: true } });
    try {
      await keepAlive(session.run(randomInputs(stream.manifest.models[0]!, 1)));
      const stats = session.stats();
      const schedule = JSON.parse(readFileSync(join(stream.dir, 'schedule.json'), 'utf8')) as Schedule;
      const run = schedule.models[0]!.run;
      const timeline = stats.timeline as TimelineEvent[];
      const stepEvents = timeline.filter((e) => e.step >= 0 && e.kind !== 'read');
      expect(stepEvents.map((e) => e.step)).toEqual(run.map((_, i) => i));
      expect(stepEvents.map((e) => e.kind)).toEqual(run.map((step) => step.op));
      const gpu = timeline.filter((e) => e.kind === 'gpu');
      expect(gpu.length).toBeGreaterThan(0);
      for (const e of timeline) expect(e.endMs).toBeGreaterThanOrEqual(e.startMs);
      expect((stats.loadTimeline as TimelineEvent[]).filter((e) => e.kind === 'upload').length)
        .toBe(schedule.models[0]!.init.filter((step) => step.op === 'upload').length);
      expect(stats.plannedPeakGpuBytes).toBe(schedule.models[0]!.plannedPeakBytes);
      // without gpuTimeline, the timeline has the steps but no GPU completion entries
      await outputsOf(stream, 1);
      expect((stream.session.stats().timeline as TimelineEvent[]).some((e) => e.kind === 'gpu')).toBe(false);
    } finally {
      session.dispose();
      stream.close();
    }
  });

  it("uploads 'mapped': streamed bytes are copied from host-visible staging filled at load, one submission per run, same outputs and device peak", async () => {
    const stream = await compileAndOpen(model, { strategy: 'stream', memoryBudget: 180 * 1024 });
    try {
      const expected = await outputsOf(stream, 9);
      const queued = stream.session.stats();
      const { session } = await openBundle(stream.dir, { device: await testDevice(), load: { uploads: 'mapped', gpuTimeline: true } });
      try {
        const actual = await keepAlive(session.run(randomInputs(stream.manifest.models[0]!, 9)));
        for (const [name, values] of Object.entries(expected)) expect(Array.from(actual[name] as Float32Array)).toEqual(Array.from(values as Float32Array));
        const stats = session.stats();
        const timeline = stats.timeline as TimelineEvent[];
        expect(timeline.filter((e) => e.kind === 'gpu')).toHaveLength(1);
        expect(timeline.filter((e) => e.kind === 'upload').length).toBeGreaterThan(0);
        expect(stats.hostStagingBytes as number).toBeGreaterThan(0);
        // the staging lives outside the budgeted device memory, which is unchanged
        expect(stats.peakGpuBytes).toBe(queued.peakGpuBytes);
        expect(stats.peakGpuBytes).toBeLessThanOrEqual(180 * 1024);
      } finally {
        session.dispose();
      }
    } finally {
      stream.close();
    }
  });

  it("streamPath 'copies': no staging ring and no carrier kernels; same outputs with queued or mapped uploads, peak within the budget", async () => {
    const preload = await compileAndOpen(model);
    const copies = await compileAndOpen(model, { strategy: 'stream', memoryBudget: 180 * 1024, streamPath: 'copies' });
    try {
      const expected = await outputsOf(preload, 4);
      const schedule = JSON.parse(readFileSync(join(copies.dir, 'schedule.json'), 'utf8')) as Schedule;
      expect(schedule.models[0]!.buffers.some((b) => b.role === 'staging')).toBe(false);
      expect(schedule.models[0]!.run.some((s) => s.op === 'dispatch' && s.label.endsWith('+carry'))).toBe(false);
      expect(schedule.models[0]!.run.some((s) => s.op === 'upload')).toBe(true);
      for (const uploads of ['queue', 'mapped'] as const) {
        const { session } = await openBundle(copies.dir, { device: await testDevice(), load: { uploads } });
        try {
          const actual = await keepAlive(session.run(randomInputs(copies.manifest.models[0]!, 4)));
          for (const [name, values] of Object.entries(expected)) {
            expect(maxViolation(actual[name] as Float32Array, values as Float32Array, 1e-4, 1e-6), `${name} (${uploads})`).toBeLessThanOrEqual(1);
          }
          expect(session.stats().peakGpuBytes).toBeLessThanOrEqual(180 * 1024);
        } finally {
          session.dispose();
        }
      }
    } finally {
      preload.close();
      copies.close();
    }
  });

  it("a tampered block of a streamed weight fails the run that reads it ('storage' mode) with FM_BUNDLE_HASH", async () => {
    const stream = await compileAndOpen(model, { strategy: 'stream', memoryBudget: 180 * 1024 });
    try {
      const schedule = JSON.parse(readFileSync(join(stream.dir, 'schedule.json'), 'utf8')) as Schedule;
      const upload = schedule.models[0]!.run.find((step) => step.op === 'upload')!;
      if (upload.op !== 'upload') throw new Error('no run upload');
      const { session } = await openBundle(stream.dir, { device: await testDevice(), load: { streamedWeights: 'storage' } });
      try {
        const shard = join(stream.dir, schedule.shards[upload.shard]!.path);
        const bytes = readFileSync(shard);
        bytes[upload.shardOffset]! ^= 0xff;
        writeFileSync(shard, bytes);
        await expect(keepAlive(session.run(randomInputs(stream.manifest.models[0]!, 2))))
          .rejects.toSatisfy((e: unknown) => (e as { code?: string }).code === 'FM_BUNDLE_HASH' && /block \d+ .*tampered or corrupt/.test((e as Error).message));
      } finally {
        session.dispose();
      }
    } finally {
      stream.close();
    }
  });
});
