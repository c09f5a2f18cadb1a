/**
 * Progress bars (compiler/cli/progress.ts): the text of the load-plan windows and of the profile's
 * phases, drawing on a terminal only (nothing on a stream that is not a TTY, nor when quiet), and a
 * streaming compile reporting its ILP windows through CompileProgress. No GPU.
 */
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { buildModel, randomFloats, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { compileStreamingContents, type CompileProgress } from '../../compiler/compile.js';
import { profileProgressBar, profileProgressText, progressBar, progressText } from '../../compiler/cli/progress.js';
import { tempDir } from '../harness/paths.js';

/** A stderr stand-in: what was written, and whether it claims to be a terminal. */
function fakeStream(isTTY: boolean): { stream: NodeJS.WriteStream; written: () => string } {
  let text = '';
  const stream = { isTTY, columns: 160, write: (chunk: string) => ((text += chunk), true) } as unknown as NodeJS.WriteStream;
  return { stream, written: () => text };
}

const f32 = 'float32' as const;
const twoLayers: ModelSpec = {
  opset: 13,
  inputs: [{ name: 'x', dtype: f32, shape: [1, 32] }],
  outputs: [{ name: 'y', dtype: f32 }],
  initializers: [
    { name: 'w1', dtype: f32, shape: [32, 32], data: randomFloats(1024, 1) },
    { name: 'w2', dtype: f32, shape: [32, 8], data: randomFloats(256, 2) },
  ],
  nodes: [
    { opType: 'MatMul', inputs: ['x', 'w1'], outputs: ['h'] },
    { opType: 'Relu', inputs: ['h'], outputs: ['r'] },
    { opType: 'MatMul', inputs: ['r', 'w2'], outputs: ['y'] },
  ],
};

describe('progress text', () => {
  it('names the load-plan window, and the solve when fitting the arena solves again', () => {
    expect(progressText({ phase: 'load-plan', window: 3, windows: 12, solve: 1 }, 2500)).toBe(`[####${'.'.repeat(20)}] load plan window 3/12 2.5 s`);
    expect(progressText({ phase: 'load-plan', window: 1, windows: 2, solve: 3 }, 0)).toMatch(/^\[\.{24}\] load plan window 1\/2 \(solve 3\) 0\.0 s$/);
  });

  it('names the profile\'s sweep and case, and its extra measurements', () => {
    expect(profileProgressText({ phase: 'upload' }, 100)).toBe('measuring upload bandwidth 0.1 s');
    expect(profileProgressText({ phase: 'sweep', sweep: 1, sweeps: 3, index: 5, count: 10, op: 'Conv3x3', size: 'c16_32x32' }, 61_000))
      .toBe(`[${'#'.repeat(12)}${'.'.repeat(12)}] sweep 2/3 case 6/10 Conv3x3 c16_32x32 61.0 s`);
    expect(profileProgressText({ phase: 'measurement', index: 1, count: 2, name: 'layout-cost' }, 0)).toMatch(/^\[#{12}\.{12}\] measurement 2\/2 layout-cost 0\.0 s$/);
  });
});

describe('progress bars', () => {
  it('draw nothing on a stream that is not a terminal, or when quiet (--quiet, --json)', () => {
    for (const [isTTY, quiet] of [[false, false], [false, true], [true, true]] as const) {
      const { stream, written } = fakeStream(isTTY);
      expect(progressBar(stream, quiet)).toBeUndefined();
      expect(profileProgressBar(stream, quiet)).toBeUndefined();
      expect(written()).toBe('');
    }
  });

  it('on a terminal: redraw one line, throttle the windows of one solve but show the last, clear at the end', () => {
    const { stream, written } = fakeStream(true);
    const bar = progressBar(stream, false)!;
    bar.update({ phase: 'pass', pass: 'plan-loads', index: 14, count: 17 });
    for (let window = 1; window <= 50; window++) bar.update({ phase: 'load-plan', window, windows: 50, solve: 1 });
    bar.done();
    const frames = written().split('\r\x1b[2K').filter(Boolean);
    expect(frames[0]).toMatch(/pass 15\/17 plan-loads/);
    expect(frames.filter((f) => f.includes('load plan window')).length).toBeLessThan(50);
    expect(frames.at(-1)).toMatch(/load plan window 50\/50/);
    expect(written().endsWith('\r\x1b[2K')).toBe(true);
  });

  it('on a terminal: the profile\'s log lines go above the bar, which is drawn again below them', () => {
    const { stream, written } = fakeStream(true);
    const bar = profileProgressBar(stream, false)!;
    bar.update({ phase: 'upload' });
    bar.log('upload (queue.writeBuffer): 1.20 GB/s');
    expect(written()).toMatch(/^\r\x1b\[2Kmeasuring upload bandwidth \d\.\d s\r\x1b\[2Kupload \(queue\.writeBuffer\): 1\.20 GB\/s\nmeasuring upload bandwidth/);
  });
});

describe('compile progress', () => {
  const tmp = tempDir('progress');
  afterAll(() => tmp.cleanup());

  it('a streaming compile reports its load-plan windows inside the plan-loads pass', async () => {
    const model = join(tmp.dir, 'two-layers.onnx');
    writeFileSync(model, buildModel(twoLayers));
    const events: CompileProgress[] = [];
    const { report } = await compileStreamingContents(model, { memoryBudget: 64 * 1024, onProgress: (e) => events.push(e) });
    const windows = events.filter((e) => e.phase === 'load-plan');
    expect(windows.length).toBeGreaterThan(0);
    expect(windows[0]).toEqual({ phase: 'load-plan', window: 1, windows: report.streaming!.windows, solve: 1 });
    const phases = events.map((e) => (e.phase === 'pass' ? e.pass : e.phase));
    const first = phases.indexOf('load-plan');
    expect(phases[first - 1]).toBe('plan-loads');
    expect(phases[phases.lastIndexOf('load-plan') + 1]).toBe('rewrite-carriers');
  });
});
