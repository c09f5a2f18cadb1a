/**
 * ONNX's own backend test data (pytorch-converted, pytorch-operator, simple), read in place from
 * ../shared: every case compiles to a bundle, runs on WebGPU through the generated runtime and
 * matches the expected outputs within rtol = atol = 1e-3, unless it is on the reviewed skip list.
 */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { readTensorFile } from '../../compiler/frontend/onnx.js';
import { compileToContents } from '../../compiler/compile.js';
import { FlashmemError } from '../../compiler/errors.js';
import { compileAndOpen } from '../harness/compile-run.js';
import { expectDataSetMatches } from '../harness/data-set.js';
import { CONFORMANCE_DIR, conformanceAvailable } from '../harness/paths.js';
import { SKIPPED } from './skip-list.js';

const SUITES = ['pytorch-converted', 'pytorch-operator', 'simple'];
const available = conformanceAvailable('conformance');

function cases(): string[] {
  if (!available) return [];
  return SUITES.flatMap((suite) => {
    const dir = join(CONFORMANCE_DIR, suite);
    return existsSync(dir) ? readdirSync(dir).filter((c) => existsSync(join(dir, c, 'model.onnx'))).map((c) => `${suite}/${c}`) : [];
  }).sort();
}

const results = { passed: 0, skipped: 0 };

describe.skipIf(!available)('ONNX conformance cases', () => {
  afterAll(() => {
    console.log(`conformance: ${results.passed} passed, ${results.skipped} skipped (reviewed skip list)`);
  });

  for (const id of cases()) {
    const skip = SKIPPED[id];
    const modelPath = join(CONFORMANCE_DIR, id, 'model.onnx');
    if (skip && 'outsideF32' in skip) {
      it(`${id} is skipped: ${skip.reason}`, () => {
        const expected = readTensorFile(join(CONFORMANCE_DIR, id, 'test_data_set_0', 'output_0.pb'));
        const f32Max = 3.4028234663852886e38, f32MinNormal = 1.1754943508222875e-38;
        const outside = Array.from(expected.data).filter((v) => v !== 0 && (Math.abs(v) > f32Max || Math.abs(v) < f32MinNormal));
        expect(expected.dtype).toBe('float64');
        expect(outside.length, 'expected outputs within f32 range: remove this case from the skip list').toBeGreaterThan(0);
        results.skipped++;
      });
      continue;
    }
    if (skip) {
      it(`${id} is rejected as documented: ${skip.reason}`, () => {
        let error: unknown;
        try {
          compileToContents(modelPath);
        } catch (e) {
          error = e;
        }
        expect(error, 'this case compiles now: remove it from the skip list').toBeInstanceOf(FlashmemError);
        expect((error as FlashmemError).code).toBe(skip.code);
        results.skipped++;
      });
      continue;
    }
    it(id, async () => {
      const bundle = await compileAndOpen(modelPath);
      try {
        const dataSets = readdirSync(join(CONFORMANCE_DIR, id)).filter((d) => d.startsWith('test_data_set_')).sort();
        expect(dataSets.length).toBeGreaterThan(0);
        for (const set of dataSets) {
          await expectDataSetMatches(bundle, join(CONFORMANCE_DIR, id, set), (i) => `${set} output ${i}: worst |error| / (1e-3 + 1e-3 |expected|)`);
        }
        results.passed++;
      } finally {
        bundle.close();
      }
    });
  }
});
