/**
 * Tallies the ONNX backend node suite (../shared/conformance/onnx/node/, FLASHMEM_NODE_SUITE_DIR
 * overrides): every case is compiled in-process, its bundle checked by the runtime's own verifier
 * (verifyBundleDir) and, unless --no-gpu, run on the test device against test_data_set_0.
 * Outcomes: pass, wrong (values or shape differ), refused (a written bundle the runtime refuses),
 * compile:<FM code>, run:<code>. A yardstick for the before/after numbers, not a test:
 *
 *   EGL_PLATFORM=surfaceless npx tsx test/conformance/node-suite-tally.ts [--no-gpu] [--filter re] [--json out.json]
 */
import { existsSync, readdirSync, writeFileSync } from 'node:fs';
import { join, resolve } from 'node:path';
import { compileModel } from '../../compiler/compile.js';
import { verifyBundleDir } from '../../compiler/bundle/verify.js';
import { openBundle } from '../../compiler/cli/bundle-session.js';
import { readTensorFile } from '../../compiler/frontend/onnx.js';
import { typedArrayFor } from '../../compiler/cli/inputs.js';
import { createNodeDevice, keepAlive } from '../../compiler/target/webgpu.js';
import { maxViolation } from '../harness/single-node.js';
import { REPO_ROOT, tempDir } from '../harness/paths.js';

const SUITE = resolve(process.env.FLASHMEM_NODE_SUITE_DIR ?? join(REPO_ROOT, '..', 'shared', 'conformance', 'onnx', 'node'));

interface Args { gpu: boolean; filter?: RegExp; json?: string }

function parseArgs(argv: string[]): Args {
  const args: Args = { gpu: true };
  for (let i = 0; i < argv.length; i++) {
    if (argv[i] === '--no-gpu') args.gpu = false;
    else if (argv[i] === '--filter') args.filter = new RegExp(argv[++i]!);
    else if (argv[i] === '--json') args.json = argv[++i];
  }
  return args;
}

const codeOf = (e: unknown) => (e as { code?: string }).code ?? 'internal';
const messageOf = (e: unknown) => String((e as Error).message ?? e).split('\n')[0]!.slice(0, 300);

async function runCase(dir: string, out: string, device: GPUDevice | undefined): Promise<{ outcome: string; message?: string }> {
  try {
    await compileModel(join(dir, 'model.onnx'), out);
  } catch (e) {
    return { outcome: `compile:${codeOf(e)}`, message: messageOf(e) };
  }
  try {
    await verifyBundleDir(out);
  } catch (e) {
    return { outcome: 'refused', message: messageOf(e) };
  }
  if (!device) return { outcome: 'compiled' };
  let opened;
  try {
    opened = await openBundle(out, { device });
  } catch (e) {
    return { outcome: codeOf(e).startsWith('FM_BUNDLE') ? 'refused' : `load:${codeOf(e)}`, message: messageOf(e) };
  }
  try {
    const model = opened.manifest.models[0]!;
    const set = join(dir, 'test_data_set_0');
    const inputs = Object.fromEntries(model.inputs.map((sig, i) => [sig.name, typedArrayFor(sig.dtype, readTensorFile(join(set, `input_${i}.pb`)).data)]));
    const outputs = await keepAlive(opened.session.run(inputs));
    for (const [i, sig] of model.outputs.entries()) {
      const expected = readTensorFile(join(set, `output_${i}.pb`));
      if (sig.shape.join() !== expected.shape.join()) return { outcome: 'wrong', message: `output ${i} shape [${sig.shape}] vs [${expected.shape}]` };
      const actual = Array.from(outputs[sig.name]! as ArrayLike<number | bigint>, Number);
      const v = maxViolation(actual, Array.from(expected.data as ArrayLike<number | bigint>, Number), 1e-3, 1e-3);
      if (!(v <= 1)) return { outcome: 'wrong', message: `output ${i} violation ${v}` };
    }
    return { outcome: 'pass' };
  } catch (e) {
    return { outcome: `run:${codeOf(e)}`, message: messageOf(e) };
  } finally {
    opened.session.dispose();
  }
}

async function main(): Promise<void> {
  const args = parseArgs(process.argv.slice(2));
  if (!existsSync(SUITE)) {
    console.log(`node suite not found at ${SUITE} (set FLASHMEM_NODE_SUITE_DIR)`);
    return;
  }
  const cases = readdirSync(SUITE).filter((c) => existsSync(join(SUITE, c, 'model.onnx')) && (!args.filter || args.filter.test(c))).sort();
  const device = args.gpu ? (await createNodeDevice()).device : undefined;
  const results: Record<string, { outcome: string; message?: string }> = {};
  const tmp = tempDir('node-suite');
  try {
    for (const [i, id] of cases.entries()) {
      results[id] = await runCase(join(SUITE, id), join(tmp.dir, String(i)), device);
      if (process.env.TALLY_VERBOSE) console.log(id, results[id]!.outcome, results[id]!.message ?? '');
    }
  } finally {
    tmp.cleanup();
  }
  const counts: Record<string, number> = {};
  for (const r of Object.values(results)) counts[r.outcome] = (counts[r.outcome] ?? 0) + 1;
  console.log(`node suite: ${cases.length} cases`);
  for (const [outcome, n] of Object.entries(counts).sort((a, b) => b[1] - a[1])) console.log(`  ${outcome}: ${n}`);
  if (args.json) writeFileSync(args.json, JSON.stringify(results, null, 1));
  process.exit(0);
}

await main();
