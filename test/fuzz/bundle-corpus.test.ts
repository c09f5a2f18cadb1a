/**
 * The bundle fuzzer's regression suite (verification only, no GPU): every saved bundle crasher
 * (fuzz/crashers/bundle-<hash>/), every corpus case (fuzz/bundle-corpus/<name>/) and every recipe
 * (fuzz/bundle-recipes.ts) is verified by verifyBundleDir and by the package runtime's
 * verifyBundle, which must give exactly the FM_* code (or success) the case names, never a crash.
 * Crashers marked `knownCrash` are skipped with their reason printed.
 */
import { rmSync } from 'node:fs';
import * as path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { caseFiles, caseMismatch, listBundleCases, verifyInProcess, writeFiles, type BundleCase } from '../../fuzz/bundle-cases.js';
import { buildRecipe, recipeByName, RECIPES } from '../../fuzz/bundle-recipes.js';
import { buildBundleSeeds, type BundleFiles, type BundleSeed } from '../../fuzz/bundle-seeds.js';
import { fastTmpRoot } from '../../fuzz/exec.js';
import { FUZZ_DIR } from '../../fuzz/seeds.js';

const tmp = fastTmpRoot('flashmemc-bundle-corpus-test-');
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const CORPUS = path.join(FUZZ_DIR, 'bundle-corpus');
const CRASHERS = path.join(FUZZ_DIR, 'crashers');

let seeds: BundleSeed[] = [];
let n = 0;

beforeAll(async () => {
  // only the seeds recipes need: the fixtures and the compiled seeds the recipes name
  const names = [...new Set([...RECIPES.map((r) => r.seed), ...listBundleCases(CRASHERS, 'bundle-').flatMap((c) => (c.sidecar.recipe ? [recipeByName(c.sidecar.recipe).seed] : []))])];
  seeds = await buildBundleSeeds({ workDir: path.join(tmp, 'seeds'), only: names });
}, 120_000);

async function verdictOf(files: BundleFiles) {
  const dir = path.join(tmp, `case-${n++}`);
  writeFiles(dir, files);
  try {
    return await verifyInProcess(dir);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

function filesOf(c: BundleCase): BundleFiles {
  return c.sidecar.recipe ? buildRecipe(recipeByName(c.sidecar.recipe), seeds).files : caseFiles(c);
}

function replay(cases: BundleCase[]) {
  for (const c of cases) {
    if (c.sidecar.knownCrash) {
      it.skip(`${c.name} (known crash, not fixed here: ${c.sidecar.reason ?? 'see its case.json'})`, () => {});
      console.warn(`[bundle corpus] SKIPPED ${c.name}: knownCrash — ${c.sidecar.reason ?? 'see its case.json'}`);
      continue;
    }
    it(`${c.name}${c.sidecar.category ? ` (${c.sidecar.category.slice(0, 80)})` : ''}`, async () => {
      expect(caseMismatch(c.sidecar, await verdictOf(filesOf(c))), path.relative(FUZZ_DIR, c.dir)).toBeUndefined();
    });
  }
}

describe('bundle recipes', () => {
  for (const recipe of RECIPES) {
    it(`${recipe.name}: ${recipe.why.slice(0, 100)}`, async () => {
      expect(caseMismatch(recipe.expect, await verdictOf(buildRecipe(recipe, seeds).files))).toBeUndefined();
    });
  }
});

describe('bundle crashers', () => {
  const crashers = listBundleCases(CRASHERS, 'bundle-');
  it('each names what fixed it', () => {
    for (const c of crashers) expect(c.sidecar.fixedBy ?? c.sidecar.reason, `${c.name}/case.json`).toBeTruthy();
  });
  replay(crashers);
});

describe('bundle corpus', () => {
  const corpus = listBundleCases(CORPUS);
  it('is small, and each case names the code it must give', () => {
    expect(corpus.length).toBeGreaterThan(10);
    for (const c of corpus) expect(c.sidecar.code ?? c.sidecar.ok, `${c.name}/case.json`).toBeTruthy();
    const bytes = corpus.reduce((sum, c) => sum + [...caseFiles(c).entries()].filter(([p]) => !p.startsWith('runtime.')).reduce((s, [, b]) => s + b.length, 0), 0);
    expect(bytes).toBeLessThan(2 * 1024 * 1024);
  });
  replay(corpus);
});
