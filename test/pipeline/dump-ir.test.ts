/**
 * --dump-ir shows the FlashMem half of the pass list: plan-loads, rewrite-carriers and
 * build-schedule are dumped after memory planning, in that order, and say what they decided.
 */
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { compileModel, type CompileProgress } from '../../compiler/compile.js';
import { COMPILE_PIPELINE } from '../../compiler/pipeline/backend.js';
import type { Schedule } from '../../schemas/schedule.js';
import { REPO_ROOT, tempDir } from '../harness/paths.js';

const MODEL = join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx');
const FLASHMEM_PASSES = ['plan-loads', 'rewrite-carriers', 'build-schedule'];

describe('--dump-ir with the stream strategy', () => {
  const tmp = tempDir('dump-ir');
  const dumpDir = join(tmp.dir, 'ir');
  const outDir = join(tmp.dir, 'bundle');
  const passes: Extract<CompileProgress, { phase: 'pass' }>[] = [];
  let files: string[] = [];
  const dumpOf = (pass: string) => readFileSync(join(dumpDir, files.find((f) => f.endsWith(`-${pass}.txt`))!), 'utf8');

  beforeAll(async () => {
    await compileModel(MODEL, outDir, {
      strategy: 'stream', memoryBudget: 256 * 1024, dumpDir,
      onProgress: (event) => { if (event.phase === 'pass') passes.push(event); },
    });
    files = readdirSync(dumpDir).sort();
  }, 120_000);
  afterAll(() => tmp.cleanup());

  it('dumps every pass of the list, the FlashMem passes last and in order after memory planning', () => {
    expect(files).toEqual(['00-imported.txt', ...COMPILE_PIPELINE.map((p, i) => `${String(i + 1).padStart(2, '0')}-${p.name}.txt`)]);
    const names = files.map((f) => f.replace(/^\d+-/, '').replace(/\.txt$/, ''));
    expect(names.slice(-4)).toEqual(['plan-activation-memory', ...FLASHMEM_PASSES]);
  });

  it('reports each pass once, with the list length as the count', () => {
    expect(passes.map((p) => p.pass)).toEqual(COMPILE_PIPELINE.map((p) => p.name));
    expect(passes.every((p, i) => p.index === i && p.count === COMPILE_PIPELINE.length)).toBe(true);
  });

  it('the load plan dump names the streamed weights and the budget', () => {
    const text = dumpOf('plan-loads');
    expect(text).toMatch(/^strategy stream, budget 262144B/);
    expect(text).toMatch(/^weight "[^"]+" \d+B stream from /m);
  });

  it('the carrier dump names carrier kernels and the weight pieces they carry', () => {
    const text = dumpOf('rewrite-carriers');
    const carriers = Number(/^carrier kernels: (\d+)/.exec(text)![1]);
    expect(carriers).toBeGreaterThan(0);
    expect(text.match(/^#\d+ \S+\+carry \(.*\): carries "[^"]+"\[\d+, \d+\)/gm)?.length).toBe(carriers);
  });

  it("the schedule dump's step counts are the bundle schedule's", () => {
    const text = dumpOf('build-schedule');
    const schedule = JSON.parse(readFileSync(join(outDir, 'schedule.json'), 'utf8')) as Schedule;
    const model = schedule.models[0]!;
    expect(Number(/^run steps: (\d+)/m.exec(text)![1])).toBe(model.run.length);
    expect(Number(/^init steps: (\d+)/m.exec(text)![1])).toBe(model.init.length);
    const carried = model.run.filter((s) => s.op === 'dispatch' && s.label.endsWith('+carry')).length;
    expect(carried).toBe(model.loadPlan!.carrierKernels);
    expect(Number(/^carrier kernels: (\d+)/.exec(dumpOf('rewrite-carriers'))![1])).toBe(carried);
  });
});
