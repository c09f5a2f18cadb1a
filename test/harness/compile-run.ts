/**
 * End-to-end helpers: compile an ONNX file to a bundle in a temp folder and run it through the
 * bundle's own generated runtime on the test WebGPU device.
 */
import { join } from 'node:path';
import { compileModel, type CompileOptions, type CompileReport } from '../../compiler/compile.js';
import { openBundle, type RuntimeSession } from '../../compiler/cli/bundle-session.js';
import type { Manifest } from '../../schemas/manifest.js';
import type { NumericArray } from '../../compiler/cli/npy.js';
import { keepAlive } from '../../compiler/cli/webgpu.js';
import { tempDir } from './paths.js';
import { testDevice } from './single-node.js';

export interface CompiledBundle {
  dir: string;
  report: CompileReport;
  session: RuntimeSession;
  manifest: Manifest;
  run(inputs: Record<string, NumericArray>): Promise<Record<string, NumericArray>>;
  close(): void;
}

export async function compileAndOpen(modelPath: string, options: CompileOptions = {}): Promise<CompiledBundle> {
  const tmp = tempDir('bundle');
  const dir = join(tmp.dir, 'bundle');
  try {
    const report = await compileModel(modelPath, dir, options);
    const { session, manifest } = await openBundle(dir, { device: await testDevice() });
    return {
      dir, report, session, manifest,
      run: (inputs) => keepAlive(session.run(inputs)),
      close() {
        session.dispose();
        tmp.cleanup();
      },
    };
  } catch (e) {
    tmp.cleanup();
    throw e;
  }
}
