/**
 * Autoregressive decoders: a prefill graph (fixed prompt length T) and a single-token decode graph
 * with a KV cache of C slots, compiled into one multi-model bundle that stores their shared
 * weights once. The cache lives on the GPU between runs in state buffers (counted in the budget):
 * the decode graph reads it in place, and the runtime copies each run's new keys and values into
 * it (stateWrite steps). session.generate() drives the two models.
 *
 * The graphs follow the I/O contract of fixtures/families/decoder.ts (GPT-Neo / GPT-2 style):
 *   prefill  input_ids [1,T]                                    -> logits [1,T,V], present_key.<l>, present_value.<l> [1,H,T,D]
 *   decode   input_ids [1,1], position_ids [1,1], attention_bias [1,1,1,C] [, local_attention_bias],
 *            past_key.<l>, past_value.<l> [1,H,C,D]             -> logits [1,1,V], present_key.<l>, present_value.<l> [1,H,1,D]
 */
import type { KernelSpec } from './kernel/types.js';
import { fail, quoteName } from './errors.js';
import type { KernelProgram } from './lower/program.js';
import type { Graph } from './ir/types.js';
import { compileMultiContents, type MultiCompileOptions, type MultiCompileReport } from './compile-multi.js';
import { writeBundle } from './bundle/write.js';
import { assertOutputReplaceable } from './bundle/output-folder.js';
import { generateRuntime } from './bundle/runtime-gen.js';
import type { BundleContents } from './bundle/contents.js';
import type { DecoderSpec } from '../schemas/schedule.js';
import { buildDecodeLoop, DECODE_LOOP_BYTES } from './schedule/decode-loop.js';
import { shaderPath } from './schedule/build.js';

export const DECODER_NAMES = {
  inputIds: 'input_ids', positionIds: 'position_ids', attentionBias: 'attention_bias', localAttentionBias: 'local_attention_bias', logits: 'logits',
} as const;

const STATE_NAME = /^(past|present)_(key|value)\.(\d+)$/;

export interface DecoderCompileOptions extends Omit<MultiCompileOptions, 'prepare' | 'sequence'> {
  /**
   * GPT-Neo's local attention window, for the decode step's local_attention_bias. Read from the
   * prefill graph's fused attention when absent; a window at least as wide as the prefill's prompt
   * leaves no band there to read, so give it (the model config's window) in that case.
   */
  window?: number;
}

export async function compileDecoderContents(prefillPath: string, decodePath: string, options: DecoderCompileOptions = {}): Promise<{ contents: BundleContents; report: MultiCompileReport }> {
  const graphs = new Map<string, Graph>();
  let cacheBytes: number[] = [];
  // the decode graph first: its past_* inputs give the cache sizes the prefill writes into
  const { contents, report } = await compileMultiContents(
    [{ path: decodePath, name: 'decode' }, { path: prefillPath, name: 'prefill' }],
    {
      ...options,
      // the decode loop's control block and token readbacks come out of the budget too
      ...(options.memoryBudget !== undefined ? { memoryBudget: options.memoryBudget - DECODE_LOOP_BYTES } : {}),
      prepare: (name, program, graph) => {
        graphs.set(name, graph);
        cacheBytes = markState(name, program, cacheBytes);
      },
    },
  );
  const spec = decoderSpec(graphs.get('prefill')!, graphs.get('decode')!, options.window);
  spec.loop = buildDecodeLoop(spec, contents.schedule.models.map((schedule, i) => ({ schedule, info: contents.models[i]! })), (kernel) => addShader(contents, kernel));
  contents.schedule.decoder = spec;
  contents.schedule.plannedPeakBytes! += DECODE_LOOP_BYTES;
  return { contents, report: { ...report, plannedPeakBytes: contents.schedule.plannedPeakBytes!, shaders: contents.schedule.shaders.length, ...(options.memoryBudget !== undefined ? { budgetBytes: options.memoryBudget } : {}) } };
}

/** A shader file of the bundle, named by its content (equal kernels are one file): its index in schedule.shaders. */
/** Adds a decode-loop kernel's shader (once) and its grid to schedule.maxWorkgroups, which has one entry per shader. */
function addShader(contents: BundleContents, kernel: KernelSpec): number {
  const path = shaderPath(kernel.wgsl);
  const schedule = contents.schedule;
  if (!contents.shaders.has(path)) {
    contents.shaders.set(path, kernel.wgsl);
    schedule.shaders.push(path);
    schedule.maxWorkgroups?.push(0);
  }
  const index = schedule.shaders.indexOf(path);
  const [x, y, z] = kernel.workgroups;
  if (schedule.maxWorkgroups) schedule.maxWorkgroups[index] = Math.max(schedule.maxWorkgroups[index]!, x * y * z);
  return index;
}

export async function compileDecoder(prefillPath: string, decodePath: string, outDir: string, options: DecoderCompileOptions = {}): Promise<MultiCompileReport> {
  const start = performance.now();
  // an output folder in the way fails before the models are read
  await assertOutputReplaceable(outDir, options);
  const { contents, report } = await compileDecoderContents(prefillPath, decodePath, options);
  await writeBundle(outDir, contents, { runtime: generateRuntime(), signingKey: options.signingKey, force: options.force, selfCheck: true });
  return { ...report, totalMs: performance.now() - start };
}

/** State index of a cache tensor name: key l -> 2l, value l -> 2l + 1. */
function stateIndex(name: string): number | undefined {
  const m = STATE_NAME.exec(name);
  return m ? 2 * Number(m[3]) + (m[2] === 'value' ? 1 : 0) : undefined;
}

/**
 * Moves the cache tensors out of the model's signature into decoder state: the decode graph's
 * past_* inputs become views of their state buffers, and the present_* outputs of both graphs
 * are copied into them after the kernels instead of being read back.
 */
function markState(model: string, program: KernelProgram, decodeCacheBytes: number[]): number[] {
  const outputs = new Map(program.outputs.flatMap((id) => (stateIndex(id) === undefined ? [] : [[id, stateIndex(id)!] as [string, number]])));
  const inputs = new Map(program.inputs.flatMap((id) => (stateIndex(id) === undefined ? [] : [[id, stateIndex(id)!] as [string, number]])));
  if (outputs.size === 0) fail('FM_BAD_ARGUMENT', `--decoder: the ${model} graph has no present_key.<l> / present_value.<l> outputs (see compiler/compile-decoder.ts for the I/O contract)`);
  const count = outputs.size;
  if ([...outputs.values()].some((i) => i >= count)) fail('FM_BAD_ARGUMENT', `--decoder: the ${model} graph's present_* outputs are not numbered 0..${count / 2 - 1}`);
  if (model === 'decode' && (inputs.size !== count || [...inputs.values()].some((i) => i >= count))) {
    fail('FM_BAD_ARGUMENT', `--decoder: the decode graph needs past_key.<l> / past_value.<l> inputs matching its ${count} present_* outputs`);
  }
  program.inputs = program.inputs.filter((id) => !inputs.has(id));
  program.outputs = program.outputs.filter((id) => !outputs.has(id));
  // every cache tensor is [1, heads, C, headDim], C from the decode graph (the prefill writes T <= C rows)
  const buffers = model === 'decode'
    ? Array.from({ length: count }, (_, i) => program.tensors.get([...inputs].find(([, index]) => index === i)![0])!.bytes)
    : decodeCacheBytes;
  if (buffers.length !== count) fail('FM_BAD_ARGUMENT', `--decoder: the prefill graph has ${count} present_* outputs, the decode graph ${buffers.length}`);
  program.state = { buffers, inputs, outputs, writeAt: model === 'decode' ? 'position' : 'start' };
  return buffers;
}

/** The decoder section of the schedule; the prefill's state buffers take the decode graph's sizes. */
function decoderSpec(prefill: Graph, decode: Graph, window: number | undefined): DecoderSpec {
  const shape = (graph: Graph, name: string, what: string) => {
    const value = graph.values.get(name);
    if (!value || !graph.inputs.concat(graph.outputs).includes(name)) fail('FM_BAD_ARGUMENT', `--decoder: the ${what} graph has no ${quoteName(name)}`);
    return value.type.shape;
  };
  const past = shape(decode, 'past_key.0', 'decode');
  const hasLocal = decode.inputs.includes(DECODER_NAMES.localAttentionBias);
  return {
    prefill: 'prefill', decode: 'decode',
    context: past[2]!, promptLength: shape(prefill, DECODER_NAMES.inputIds, 'prefill')[1]!, vocab: shape(decode, DECODER_NAMES.logits, 'decode').at(-1)!,
    inputIds: DECODER_NAMES.inputIds, positionIds: DECODER_NAMES.positionIds, attentionBias: DECODER_NAMES.attentionBias,
    ...(hasLocal ? { localAttentionBias: DECODER_NAMES.localAttentionBias } : {}),
    window: hasLocal ? window ?? attentionWindow(prefill) : 0,
    logits: DECODER_NAMES.logits,
  };
}

/** GPT-Neo's local window, from the fused attention of the prefill graph (its `window` attribute). */
function attentionWindow(prefill: Graph): number {
  for (const node of prefill.nodes) {
    const window = node.attrs.window;
    if (node.opType === 'Attention' && window?.type === 'int' && window.value > 0) return window.value;
  }
  fail('FM_BAD_ARGUMENT', '--decoder: the decode graph has local_attention_bias but the prefill graph shows no local window (it may be wider than the prompt): give it with --decoder-window');
}
