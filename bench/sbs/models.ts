/**
 * The side-by-side benchmark's model set, declared as data: each entry says where its ONNX file
 * comes from, its stream budget, on which machines it runs and how many timed runs it gets there.
 * Entries whose generator or flashmemc feature has not landed yet carry `pending` (the reason)
 * and are listed in the results as such; replacing `pending` by a source enables them.
 */

export type Machine = 'llvmpipe' | 'h100' | string;

export type ModelSource =
  /** an ONNX "light" CNN (constant-filled weights) from <light dir>/light_<name>.onnx, given random weights */
  | { light: string }
  /**
   * a generated transformer (fixtures/families: a config name of fixtures/families/configs.ts with
   * `key=value` overrides); decoders run their `full` graph (input_ids [1, sequence] -> logits)
   */
  | { family: string; overrides?: string[] };

export interface RunCounts { warmup: number; runs: number }

export interface ModelEntry {
  name: string;
  kind: 'cnn' | 'encoder' | 'decoder' | 'sequence';
  /** single models: where the ONNX file comes from */
  source?: ModelSource;
  /** sequences: names of single-model entries run one after another (one ORT session per model, one flashmemc multi-model bundle) */
  parts?: string[];
  /** flashmemc stream budget as a fraction of the weight bytes (raised to the smallest feasible one) */
  budgetFraction: number;
  /** machines this entry runs on (default: all) */
  machines?: Machine[];
  /** per-machine run counts overriding the machine's defaults */
  runs?: Partial<Record<Machine, RunCounts>>;
  /** why the entry cannot run yet; absent when it can */
  pending?: string;
  /** false: no second (repeat-visit) process, to keep the largest models' runs short */
  repeatVisit?: boolean;
  /** decoders: tokens in the fixed-shape context (tokens/s figures) */
  contextTokens?: number;
}

/** default warm-up and timed runs per machine; the H100 gets >= 20 timed runs */
export const MACHINE_RUNS: Record<string, RunCounts> = {
  llvmpipe: { warmup: 1, runs: 5 },
  h100: { warmup: 5, runs: 30 },
  default: { warmup: 3, runs: 20 },
};

export const MODELS: ModelEntry[] = [
  { name: 'squeezenet', kind: 'cnn', source: { light: 'squeezenet' }, budgetFraction: 0.5 },
  { name: 'inception_v1', kind: 'cnn', source: { light: 'inception_v1' }, budgetFraction: 0.25 },
  { name: 'inception_v2', kind: 'cnn', source: { light: 'inception_v2' }, budgetFraction: 0.25, machines: ['h100'] },
  { name: 'densenet121', kind: 'cnn', source: { light: 'densenet121' }, budgetFraction: 0.25 },
  { name: 'resnet50', kind: 'cnn', source: { light: 'resnet50' }, budgetFraction: 0.25, runs: { llvmpipe: { warmup: 1, runs: 3 } } },
  { name: 'vgg19', kind: 'cnn', source: { light: 'vgg19' }, budgetFraction: 0.25, runs: { llvmpipe: { warmup: 1, runs: 3 } } },
  // transformer families (fixtures/families) at growing sizes, up to GPT-Neo-125M shape (1.3B shape on the H100)
  { name: 'gpt-neo-tiny', kind: 'decoder', source: { family: 'gpt-neo-tiny' }, budgetFraction: 0.25, contextTokens: 40 },
  { name: 'vit-tiny', kind: 'encoder', source: { family: 'vit-tiny' }, budgetFraction: 0.25 },
  { name: 'bert-tiny', kind: 'encoder', source: { family: 'bert-tiny' }, budgetFraction: 0.25 },
  { name: 'gpt-neo-4l-256', kind: 'decoder', source: { family: 'gpt-neo-125m', overrides: ['layers=4', 'hidden=256', 'heads=4', 'vocab=8192', 'sequence=64', 'context=256'] }, budgetFraction: 0.25, contextTokens: 64 },
  { name: 'gpt-neo-125m', kind: 'decoder', source: { family: 'gpt-neo-125m' }, budgetFraction: 0.25, contextTokens: 128, runs: { llvmpipe: { warmup: 1, runs: 2 } } },
  { name: 'vit-base', kind: 'encoder', source: { family: 'vit-base' }, budgetFraction: 0.25, machines: ['h100'] },
  { name: 'bert-base', kind: 'encoder', source: { family: 'bert-base' }, budgetFraction: 0.25, machines: ['h100'] },
  { name: 'gpt-neo-1.3b', kind: 'decoder', source: { family: 'gpt-neo-1.3b' }, budgetFraction: 0.125, contextTokens: 128, machines: ['h100'], runs: { h100: { warmup: 2, runs: 20 } }, repeatVisit: false },
  // several models in one app: the peer holds one session per model; flashmemc one multi-model
  // bundle (issue 5) whose models share GPU memory
  { name: 'cnn-sequence', kind: 'sequence', parts: ['squeezenet', 'inception_v1', 'densenet121'], budgetFraction: 0.25 },
];

export function entriesFor(machine: Machine, only?: string[]): ModelEntry[] {
  return MODELS.filter((m) => (!m.machines || m.machines.includes(machine)) && (!only || only.includes(m.name)));
}

export function runCounts(entry: ModelEntry, machine: Machine): RunCounts {
  return entry.runs?.[machine] ?? MACHINE_RUNS[machine] ?? MACHINE_RUNS.default!;
}
