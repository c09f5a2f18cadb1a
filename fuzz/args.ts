/**
 * The command line both fuzzers share (fuzz.ts for ONNX, bundle-fuzz.ts for bundles): the common
 * options are read here; each fuzzer's own options go to its `extra` reader.
 */
import * as path from 'node:path';

export interface CommonFuzzOptions {
  seconds?: number;
  seed?: number;
  outDir?: string;
  maxExecs?: number;
  timeoutMs?: number;
  runsLog?: string;
  help?: boolean;
}

/** Reads a fuzzer's own option `a`, taking its value with value() / num(value()); false: not one of its options. */
export type ExtraFuzzArg<T> = (out: T, a: string, value: () => string, num: (v: string) => number) => boolean;

export function parseFuzzArgs<T extends CommonFuzzOptions>(argv: readonly string[], target: 'onnx' | 'bundle', out: T, extra: ExtraFuzzArg<T>): T {
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    const value = () => {
      const v = argv[++i];
      if (v === undefined) throw new Error(`${a} needs a value`);
      return v;
    };
    const num = (v: string) => {
      const n = Number(v);
      if (!Number.isFinite(n) || n < 0) throw new Error(`${a}: not a non-negative number: ${v}`);
      return n;
    };
    if (a === '--seconds') out.seconds = num(value());
    else if (a === '--seed') out.seed = Math.trunc(num(value()));
    else if (a === '--out') out.outDir = path.resolve(value());
    else if (a === '--no-save') out.outDir = undefined;
    else if (a === '--max-execs') out.maxExecs = Math.trunc(num(value()));
    else if (a === '--timeout-ms') out.timeoutMs = num(value());
    else if (a === '--runs-log') out.runsLog = path.resolve(value());
    else if (a === '--target') { if (value() !== target) throw new Error(target === 'onnx' ? '--target: onnx or bundle' : '--target: this is the bundle fuzzer'); }
    else if (a === '--help' || a === '-h') out.help = true;
    else if (!extra(out, a, value, num)) throw new Error(`unknown argument ${a}`);
  }
  return out;
}
