/**
 * `Loop` whose trip count and condition are known at compile time is unrolled by infer-shapes,
 * one iteration at a time: each iteration's body nodes (names prefixed `<Loop>/iter<i>/`, the
 * iteration number a constant, loop-carried values threaded from the previous iteration) are
 * followed by a step marker; when the walk reaches the marker, the body's condition output must
 * have folded, and it decides between the next iteration and the end (final values as
 * Identity, scan outputs stacked with Unsqueeze + Concat). At most MAX_UNROLLED_ITERATIONS.
 */
import { fail, quoteName } from '../errors.js';
import { makeConst } from '../ir/tensor.js';
import type { ConstTensor, Node, Value } from '../ir/types.js';
import { branchNames, renameNode } from './inline-if.js';

/** Iterations a Loop may unroll into; beyond that it is refused (a kernel per body node per iteration). */
export const MAX_UNROLLED_ITERATIONS = 256;

/** Where an unrolled Loop stands after the iterations spliced so far. */
export interface LoopState {
  node: Node;
  /** the graph's opset: Unsqueeze takes its axes as an input from 13 */
  opset: number;
  iteration: number;
  /** the trip count M, Infinity when omitted */
  trips: number;
  /** the body's condition output of the last iteration (a value name); '' before the first */
  cond: string;
  carried: string[];
  /** per scan output, its value in every iteration so far */
  scans: string[][];
}

export interface LoopSplice {
  nodes: Node[];
  values: Value[];
  /** the marker that continues the loop (absent once it has ended) */
  marker?: Node;
}

const loopName = (node: Node) => `node ${quoteName(node.name)} (Loop)`;

/** The unrolling's first step: validates the node and emits iteration 0 (or the end, for M = 0). */
export function startLoop(node: Node, consts: (ConstTensor | undefined)[], opset: number, isTaken: (name: string) => boolean): { state: LoopState; splice: LoopSplice } {
  const body = node.subgraphs?.body;
  if (!body) fail('FM_ONNX_INVALID', `${loopName(node)} has no body`);
  const [m, cond] = [node.inputs[0], node.inputs[1]];
  if (m && !consts[0]) fail('FM_UNSUPPORTED_OP', `${loopName(node)}: its trip count is computed at run time; flashmemc unrolls Loop only with a compile-time trip count (freeze the inputs it depends on with --input-value)`);
  if (cond && !consts[1]) fail('FM_UNSUPPORTED_OP', `${loopName(node)}: its initial condition is computed at run time; flashmemc unrolls Loop only with compile-time conditions`);
  const carried = node.inputs.slice(2);
  if (body.inputs.length !== 2 + carried.length || body.outputs.length < 1 + carried.length) {
    fail('FM_ONNX_INVALID', `${loopName(node)}: its body takes ${body.inputs.length} inputs and gives ${body.outputs.length} outputs for ${carried.length} loop-carried values`);
  }
  const trips = m ? consts[0]!.data[0]! : Infinity;
  const running = cond ? !!consts[1]!.data[0] : true;
  const state: LoopState = { node, opset, iteration: 0, trips, cond: '', carried, scans: body.outputs.slice(1 + carried.length).map(() => []) };
  return { state, splice: running && trips > 0 ? iteration(state, isTaken) : finish(state) };
}

/** At the step marker: the condition must have folded; the next iteration, or the end. */
export function stepLoop(state: LoopState, condValue: ConstTensor | undefined, isTaken: (name: string) => boolean): LoopSplice {
  if (!condValue) fail('FM_UNSUPPORTED_OP', `${loopName(state.node)}: its condition after iteration ${state.iteration - 1} is computed at run time; flashmemc unrolls Loop only when every condition folds`);
  if (!condValue.data[0] || state.iteration >= state.trips) return finish(state);
  return iteration(state, isTaken);
}

function iteration(state: LoopState, isTaken: (name: string) => boolean): LoopSplice {
  const { node } = state;
  if (state.iteration >= MAX_UNROLLED_ITERATIONS) {
    fail('FM_UNSUPPORTED_OP', `${loopName(node)}: runs more than ${MAX_UNROLLED_ITERATIONS} iterations, the most flashmemc unrolls`);
  }
  const body = node.subgraphs!.body!;
  const prefix = `${node.name}/iter${state.iteration}/`;
  const rename = branchNames(prefix, body, isTaken);
  const counter = `${prefix}${body.inputs[0] || 'iteration'}`;
  const values: Value[] = [{ name: counter, type: { dtype: 'int64', shape: [] }, data: makeConst('int64', [], [state.iteration]) }];
  if (body.inputs[0]) rename.set(body.inputs[0], counter);
  if (body.inputs[1]) rename.set(body.inputs[1], state.cond || trueConst(prefix, values));
  body.inputs.slice(2).forEach((name, j) => name && rename.set(name, state.carried[j]!));
  const renamed = (name: string) => (name ? rename.get(name) ?? name : name);
  const nodes = body.nodes.map((n) => renameNode(n, prefix, renamed));
  for (const v of body.values.values()) values.push({ ...v, name: renamed(v.name) });
  const outputs = body.outputs.map(renamed);
  state.cond = outputs[0]!;
  state.carried = outputs.slice(1, 1 + state.carried.length);
  state.scans.forEach((list, k) => list.push(outputs[1 + state.carried.length + k]!));
  state.iteration++;
  const marker: Node = { name: `${prefix}step`, opType: 'LoopStep', domain: '', inputs: [state.cond], outputs: [], attrs: {} };
  return { nodes: [...nodes, marker], values, marker };
}

function trueConst(prefix: string, values: Value[]): string {
  const name = `${prefix}cond_in`;
  values.push({ name, type: { dtype: 'bool', shape: [] }, data: makeConst('bool', [], [1]) });
  return name;
}

/** Final loop-carried values as Identity; each scan output stacks its iterations along a new axis 0. */
function finish(state: LoopState): LoopSplice {
  const { node } = state;
  const nodes: Node[] = [];
  const values: Value[] = [];
  state.carried.forEach((name, j) => {
    const out = node.outputs[j];
    if (out) nodes.push({ name: `${node.name}/final${j}`, opType: 'Identity', domain: '', inputs: [name], outputs: [out], attrs: {} });
  });
  const axes = `${node.name}/axis0`;
  if (state.scans.length) values.push({ name: axes, type: { dtype: 'int64', shape: [1] }, data: makeConst('int64', [1], [0]) });
  state.scans.forEach((list, k) => {
    const out = node.outputs[state.carried.length + k];
    if (!out) return;
    if (list.length === 0) fail('FM_UNSUPPORTED_OP', `${loopName(node)}: runs no iteration, so its scan output ${k} has no shape`);
    const rows = list.map((name, i) => {
      const row = `${node.name}/scan${k}/${i}`;
      nodes.push(state.opset >= 13
        ? { name: row, opType: 'Unsqueeze', domain: '', inputs: [name, axes], outputs: [row], attrs: {} }
        : { name: row, opType: 'Unsqueeze', domain: '', inputs: [name], outputs: [row], attrs: { axes: { type: 'ints', value: [0] } } });
      return row;
    });
    nodes.push({ name: `${node.name}/scan${k}`, opType: 'Concat', domain: '', inputs: rows, outputs: [out], attrs: { axis: { type: 'int', value: 0 } } });
  });
  return { nodes, values };
}
