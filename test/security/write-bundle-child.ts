/**
 * A child process for output-folder.test.ts: writes the mlp fixture bundle to the folder given as
 * argv[2] through writeBundle, as `flashmemc compile` would, and exits 0, or 2 with the FM_* error
 * on stderr (as the CLI does). `--slow` makes the shard trickle out (the parent signals the process
 * while it writes); a stub runtime.js keeps the process from generating the real one (seconds).
 */
import { writeBundle } from '../../compiler/bundle/write.js';
import { assembleBundle, mlpModel } from '../harness/bundle-fixtures.js';

const [out, mode] = process.argv.slice(2);
const contents = assembleBundle([mlpModel()], { pieceBytes: 1 });
if (mode === '--slow') {
  const shard = contents.shards[0]!;
  const pause = new Int32Array(new SharedArrayBuffer(4));
  contents.shards[0] = {
    ...shard,
    *pieces() {
      for (const piece of shard.pieces()) {
        // a synchronous pause per byte; the writer awaits each write, so signals are handled between them
        Atomics.wait(pause, 0, 0, 50);
        yield piece;
      }
    },
  };
}
try {
  await writeBundle(out!, contents, { runtime: { js: 'export {};\n', dts: 'export {};\n' } });
  process.exit(0);
} catch (error) {
  process.stderr.write(`${(error as Error).message}\n`);
  process.exit((error as { code?: string }).code?.startsWith('FM_') ? 2 : 70);
}
