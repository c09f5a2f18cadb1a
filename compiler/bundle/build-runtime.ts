/**
 * `npm run build` step: writes the package's runtime (dist/runtime/runtime.js, runtime.d.ts and
 * the key of their sources) so that installed tools never generate it at run time and apps can
 * import it as `flashmemc/runtime`.
 */
import { generateRuntime, packageRoot } from './runtime-gen.js';
import { readCachedRuntime, runtimeCacheFile, runtimeSourceKey } from './runtime-cache.js';

const root = packageRoot();
const runtime = generateRuntime();
const written = readCachedRuntime(root, runtimeSourceKey(root));
if (written?.js !== runtime.js) {
  process.stderr.write(`build-runtime: could not write ${runtimeCacheFile(root)}\n`);
  process.exit(1);
}
process.stdout.write(`build-runtime: ${runtimeCacheFile(root)} (${runtime.js.length} bytes)\n`);
