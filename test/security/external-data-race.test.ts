/**
 * External data cannot be read from outside the model folder by racing the path checks: while a
 * child process keeps swapping the folder `sub` (where the model's external data lives) for a
 * symlink to a folder outside, and back, the model is imported and compiled over and over. The
 * file outside holds a marker value; every import and compile must either fail with
 * FM_EXTERNAL_DATA or produce weights without the marker.
 *
 * Without the check of the opened descriptor (compiler/frontend/external-data.ts), a folder swapped
 * between realpath and open is followed (O_NOFOLLOW guards only the last component) and the
 * marker leaks into the weights within a few hundred imports.
 */
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdirSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { generateRuntime } from '../../compiler/bundle/runtime-gen.js';
import { compileModel } from '../../compiler/compile.js';
import { FlashmemError } from '../../compiler/errors.js';
import { importOnnxFile } from '../../compiler/frontend/onnx.js';
import { encodeModel, modelProto, type ITensorProto } from '../frontend/helpers.js';
import { tempDir } from '../harness/paths.js';

const WEIGHTS = 24;
const ELEMENTS = 4;
const INSIDE_VALUE = 1;
/** what the file outside the model folder holds: no weight of the model may ever contain it */
const MARKER = 31337;
const IMPORT_SECONDS = 3;
const COMPILE_SECONDS = 4;

const tmp = tempDir('extdata-race');
afterAll(tmp.cleanup);

/** y = x + W0 + ... + W23, every Wi [4] float32 stored externally in sub/w.bin: 24 opens per import. */
function raceModel(dir: string): string {
  const names = Array.from({ length: WEIGHTS }, (_, i) => `W${i}`);
  const nodes = names.map((name, i) => ({ opType: 'Add', inputs: [i === 0 ? 'x' : `s${i - 1}`, name], outputs: [i === WEIGHTS - 1 ? 'y' : `s${i}`] }));
  const proto = modelProto({ opset: 13, inputs: [{ name: 'x', dtype: 'float32', shape: [ELEMENTS] }], outputs: [{ name: 'y', dtype: 'float32' }], nodes });
  proto.graph.initializer = names.map((name, i): ITensorProto => ({
    name, dataType: 1, dims: [ELEMENTS], dataLocation: 1,
    externalData: [{ key: 'location', value: 'sub/w.bin' }, { key: 'offset', value: String(i * ELEMENTS * 4) }, { key: 'length', value: String(ELEMENTS * 4) }],
  }));
  const file = join(dir, 'model.onnx');
  writeFileSync(file, encodeModel(proto));
  return file;
}

function weightFile(value: number): Buffer {
  return Buffer.from(new Float32Array(WEIGHTS * ELEMENTS).fill(value).buffer);
}

/** Swaps `sub` between the real folder and the symlink to the outside folder, as fast as it can, until killed. */
function startFlipping(modelDir: string): ChildProcess {
  const script = `
    const { renameSync } = require('node:fs');
    const at = (name) => require('node:path').join(${JSON.stringify(modelDir)}, name);
    for (;;) {
      try { renameSync(at('sub'), at('sub_dir')); renameSync(at('sub_link'), at('sub')); } catch {}
      try { renameSync(at('sub'), at('sub_link')); renameSync(at('sub_dir'), at('sub')); } catch {}
    }`;
  return spawn(process.execPath, ['-e', script], { stdio: 'ignore' });
}

const markerBytes = Buffer.from(new Float32Array([MARKER]).buffer);

interface Tally { ok: number; refused: number }

/** A refusal must be FM_EXTERNAL_DATA; anything else fails the test. */
function countRefusal(error: unknown, tally: Tally): void {
  if (!(error instanceof FlashmemError) || error.code !== 'FM_EXTERNAL_DATA') throw error;
  tally.refused++;
}

describe('external data race', () => {
  it('a folder flipping to a symlink outside never lets outside bytes into the weights', async () => {
    const modelDir = join(tmp.dir, 'model');
    const outside = join(tmp.dir, 'outside');
    mkdirSync(join(modelDir, 'sub'), { recursive: true });
    mkdirSync(outside);
    writeFileSync(join(modelDir, 'sub', 'w.bin'), weightFile(INSIDE_VALUE));
    writeFileSync(join(outside, 'w.bin'), weightFile(MARKER));
    symlinkSync(outside, join(modelDir, 'sub_link'));
    const model = raceModel(modelDir);
    // the model reads the real folder's values while nothing flips
    expect(Array.from(importOnnxFile(model).values.get('W0')!.data!.data)).toEqual([1, 1, 1, 1]);
    // generated (seconds of type-checking) before the race, so that the compile phase compiles
    generateRuntime();

    const flipper = startFlipping(modelDir);
    try {
      const imports: Tally = { ok: 0, refused: 0 };
      for (const end = Date.now() + IMPORT_SECONDS * 1000; Date.now() < end;) {
        try {
          const graph = importOnnxFile(model);
          for (let i = 0; i < WEIGHTS; i++) expect(Array.from(graph.values.get(`W${i}`)!.data!.data), `W${i}`).not.toContain(MARKER);
          imports.ok++;
        } catch (error) {
          countRefusal(error, imports);
        }
      }
      const compiles: Tally = { ok: 0, refused: 0 };
      const out = join(tmp.dir, 'bundle');
      for (const end = Date.now() + COMPILE_SECONDS * 1000; Date.now() < end || compiles.ok + compiles.refused < 2;) {
        try {
          await compileModel(model, out);
          for (const shard of readdirSync(join(out, 'weights'))) expect(readFileSync(join(out, 'weights', shard)).includes(markerBytes), shard).toBe(false);
          compiles.ok++;
        } catch (error) {
          countRefusal(error, compiles);
        }
      }
      console.log(`external data race: imports ${JSON.stringify(imports)}, compiles ${JSON.stringify(compiles)}`);
      // the race was really run: both outcomes occurred
      expect(imports.ok).toBeGreaterThan(0);
      expect(imports.refused).toBeGreaterThan(0);
    } finally {
      flipper.kill();
    }
  });
});
