/**
 * Runs passes of the compiler's pipeline (compiler/passes/pipeline.ts PIPELINE) by name, for
 * pass tests in Before/After form: the state before a pass is what the pipeline prefix in front
 * of it leaves, and the state after is that plus the pass, both as the pass's own text dump.
 */
import { DEFAULT_LIMITS } from '../../compiler/target/limits.js';
import { PIPELINE, type CompileState, type PassOptions } from '../../compiler/passes/pipeline.js';
import type { Graph } from '../../compiler/ir/types.js';

const PASS_NAMES = PIPELINE.map((p) => p.name);

function passNamed(name: string) {
  const pass = PIPELINE.find((p) => p.name === name);
  if (!pass) throw new Error(`no pass named ${JSON.stringify(name)} in PIPELINE (${PASS_NAMES.join(', ')})`);
  return pass;
}

/**
 * Runs the named passes in the order given, which must be PIPELINE's order (a subsequence of it):
 * a test never runs passes in an order the compiler does not.
 */
export function runPasses(graph: Graph, names: readonly string[], options: PassOptions = { limits: DEFAULT_LIMITS }): CompileState {
  let last = -1;
  let state: CompileState = { graph };
  for (const name of names) {
    const pass = passNamed(name);
    const at = PASS_NAMES.indexOf(name);
    if (at <= last) throw new Error(`pass ${name} runs before ${PASS_NAMES[last]} in PIPELINE, not after`);
    last = at;
    state = pass.apply(state, options);
  }
  return state;
}

/** PIPELINE's pass names before `name` (exclusive). */
export function passesBefore(name: string): string[] {
  passNamed(name);
  return PASS_NAMES.slice(0, PASS_NAMES.indexOf(name));
}

/**
 * The pass's dump of the state the pipeline prefix before `name` leaves (before) and of that state
 * after `name` ran (after).
 */
export function beforeAndAfter(graph: Graph, name: string, options: PassOptions = { limits: DEFAULT_LIMITS }): { before: string; after: string } {
  const pass = passNamed(name);
  const prior = runPasses(graph, passesBefore(name), options);
  return { before: pass.dump(prior), after: pass.dump(pass.apply(prior, options)) };
}
