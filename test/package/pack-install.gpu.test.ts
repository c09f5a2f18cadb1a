/**
 * flashmemc as users meet it: `npm pack` of this checkout, installed into an empty project, then
 * `npx flashmemc compile` and `npx flashmemc run` of the example the package ships. This catches
 * what a checkout hides: files missing from the package (`files` in package.json), imports of
 * dev-only modules, paths resolved against the checkout instead of the installed package.
 *
 * Needs the built compiler (dist/, which `npm test` builds first) and the npm registry (or npm's
 * cache) for the package's dependencies. *.gpu.test.ts: `run` uses the software GPU.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { REPO_ROOT, tempDir } from '../harness/paths.js';

const NPM = process.platform === 'win32' ? 'npm.cmd' : 'npm';
const NPX = process.platform === 'win32' ? 'npx.cmd' : 'npx';
const built = existsSync(join(REPO_ROOT, 'dist', 'compiler', 'cli', 'main.js'));

function run(cmd: string, args: string[], cwd: string): string {
  return execFileSync(cmd, args, {
    cwd,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'pipe'],
    // the install must not try onnxruntime-node's CUDA download (it is not a dependency, but be safe)
    env: { ...process.env, ONNXRUNTIME_NODE_INSTALL: 'skip', EGL_PLATFORM: 'surfaceless', FORCE_COLOR: '0' },
    timeout: 300_000,
  });
}

describe.skipIf(!built)('the npm package', () => {
  const tmp = tempDir('pack');
  const app = join(tmp.dir, 'app');
  let tarball = '';

  beforeAll(() => {
    // --ignore-scripts: `prepare` would rebuild dist/, which npm test has just built
    const out = run(NPM, ['pack', '--ignore-scripts', '--json', '--pack-destination', tmp.dir], REPO_ROOT);
    const [info] = JSON.parse(out) as { filename: string; files: { path: string }[] }[];
    tarball = join(tmp.dir, info!.filename);
    run('mkdir', ['-p', app], tmp.dir);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'app', version: '1.0.0', private: true, type: 'module' }));
    run(NPM, ['install', '--no-audit', '--no-fund', '--prefer-offline', tarball], app);
  }, 600_000);

  afterAll(() => tmp.cleanup());

  it('ships the compiler, the runtime template, the schemas, the profiles and the example, and no tests or sources of the compiler', () => {
    const root = join(app, 'node_modules', 'flashmemc');
    for (const file of ['dist/compiler/cli/main.js', 'dist/compiler/index.js', 'dist/compiler/index.d.ts', 'dist/runtime/runtime.js',
      'dist/runtime/runtime.d.ts', 'schemas/manifest.schema.json', 'runtime-template/runtime.ts', 'runtime-template/tsconfig.json',
      'schemas/schedule.ts', 'profiles/llvmpipe.json', 'examples/mini-resnet/model.onnx', 'README.md']) {
      expect(existsSync(join(root, file)), file).toBe(true);
    }
    expect(existsSync(join(root, 'test'))).toBe(false);
    expect(existsSync(join(root, 'compiler'))).toBe(false);
    expect(readdirSync(join(root, 'dist'))).not.toContain('test');
    const pkg = JSON.parse(readFileSync(join(root, 'package.json'), 'utf8')) as { bin: Record<string, string> };
    expect(existsSync(join(root, pkg.bin.flashmemc!))).toBe(true);
  });

  it('npx flashmemc compile and run the shipped example from the installed package', () => {
    const model = join(app, 'node_modules', 'flashmemc', 'examples', 'mini-resnet', 'model.onnx');
    const compiled = run(NPX, ['flashmemc', 'compile', model, '--out', 'bundle'], app);
    expect(compiled).toMatch(/compiled model: \d+ kernels/);
    expect(existsSync(join(app, 'bundle', 'runtime.js'))).toBe(true);
    const verified = run(NPX, ['flashmemc', 'verify', 'bundle'], app);
    expect(verified).toMatch(/^OK: \d+ files/);
    const inspected = run(NPX, ['flashmemc', 'inspect', 'bundle'], app);
    expect(inspected).toContain('conv2d');
    run(NPX, ['flashmemc', 'inspect', 'bundle', '--html', 'report.html'], app);
    expect(readFileSync(join(app, 'report.html'), 'utf8')).toMatch(/^<!doctype html>/i);
    const ran = run(NPX, ['flashmemc', 'run', 'bundle', '--random-inputs'], app);
    // the example is a 10-class classifier ending in softmax
    expect(ran).toMatch(/"probabilities" float32\[1,10\]/);
    expect(ran).toMatch(/peak GPU [\d.]+ MiB/);
  });

  it('exposes the compiler API (flashmemc) and the runtime (flashmemc/runtime) to JavaScript apps', () => {
    const model = join(app, 'node_modules', 'flashmemc', 'examples', 'mini-resnet', 'model.onnx');
    writeFileSync(join(app, 'api.mjs'), `
import { compileModel, verifyBundleDir, FORMAT_VERSION, ERROR_CODES } from 'flashmemc';
import { loadBundle, FlashmemRuntimeError } from 'flashmemc/runtime';
import schema from 'flashmemc/schemas/manifest.schema.json' with { type: 'json' };
// Dawn's promises hold no event-loop handle: keep the process alive while they settle
const keepAlive = setInterval(() => {}, 1000);
const report = await compileModel(${JSON.stringify(model)}, 'api-bundle', { strategy: 'stream', memoryBudget: 200000 });
const verified = await verifyBundleDir('api-bundle');
const session = await loadBundle('api-bundle');
const outputs = await session.run({ image: new Float32Array(${3 * 64 * 64}).fill(0.5) });
const stats = session.stats();
session.dispose();
console.log(JSON.stringify({ format: FORMAT_VERSION, codes: Object.keys(ERROR_CODES).length, schema: typeof schema.$schema,
  kernels: report.kernels, files: verified.files, outputs: Object.keys(outputs), sum: [...outputs.probabilities].reduce((a, b) => a + b, 0),
  peak: stats.peakGpuBytes, error: typeof FlashmemRuntimeError }));
clearInterval(keepAlive);
`);
    const result = JSON.parse(run('node', ['api.mjs'], app).trim().split('\n').pop()!) as Record<string, unknown>;
    expect(result).toMatchObject({ format: 1, schema: 'string', outputs: ['probabilities'], error: 'function' });
    expect(result.codes as number).toBeGreaterThan(10);
    expect(result.files as number).toBeGreaterThan(3);
    expect(result.sum as number).toBeCloseTo(1, 4);
    expect(result.peak as number).toBeLessThanOrEqual(200000);
  });

  it('types the compiler API and the runtime for TypeScript apps (tsc --strict, NodeNext)', () => {
    writeFileSync(join(app, 'app.ts'), `
import { compileModel, type CompileOptions, type CompileReport, FlashmemError } from 'flashmemc';
import { loadBundle, type FlashmemSession, type RunOutputs, type SessionStats } from 'flashmemc/runtime';
const options: CompileOptions = { strategy: 'stream', memoryBudget: 1 << 20 };
export async function build(): Promise<CompileReport> { return compileModel('model.onnx', 'out', options); }
export async function infer(): Promise<number> {
  const session: FlashmemSession = await loadBundle('out');
  const outputs: RunOutputs = await session.run({ input: new Float32Array(4) });
  const stats: SessionStats = session.stats();
  return outputs.probabilities!.length + stats.peakGpuBytes + (new FlashmemError('FM_IO', 'x').code === 'FM_IO' ? 1 : 0);
}
// @ts-expect-error: the runtime's options are typed; a misspelt option is an error
loadBundle('out', { streamedWeight: 'storage' });
`);
    const tsc = join(REPO_ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
    const out = (() => {
      try {
        return run('node', [tsc, '--noEmit', '--strict', '--module', 'nodenext', '--moduleResolution', 'nodenext', '--target', 'es2022',
          '--types', 'node', '--typeRoots', join(REPO_ROOT, 'node_modules', '@types'), 'app.ts'], app);
      } catch (error) {
        return String((error as { stdout?: string }).stdout ?? error);
      }
    })();
    expect(out).toBe('');
  });
});

