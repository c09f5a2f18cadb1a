/**
 * `If` whose condition is a compile-time constant (often once `--input-value` froze an input):
 * the node is replaced by the nodes of the branch the condition selects, with the branch's own
 * names prefixed by the If's name (so they cannot collide with the outer graph's or the other
 * branch's) and its outer-scope references kept; each If output becomes an Identity of the
 * branch output. A condition computed at run time selects on the GPU instead (selectIf).
 * infer-shapes calls these during its walk, so the inlined nodes fold and get shapes like any other.
 */
import { fail, quoteName } from '../errors.js';
import type { ConstTensor, Node, Subgraph, Value } from '../ir/types.js';

export interface InlinedBranch {
  nodes: Node[];
  /** the branch's initializers, under their new names */
  values: Value[];
}

/** The nodes replacing `node` (an If) whose condition is the constant `cond`. */
export function inlineIf(node: Node, cond: ConstTensor, isTaken: (name: string) => boolean): InlinedBranch {
  if (cond.data.length !== 1) fail('FM_SHAPE', `node ${quoteName(node.name)} (If): the condition has ${cond.data.length} elements, it must have one`);
  const attr = cond.data[0] ? 'then_branch' : 'else_branch';
  const branch = inlineBranch(node, attr, '', isTaken);
  node.outputs.forEach((out, i) => {
    if (out) branch.nodes.push({ name: `${node.name}/output${i}`, opType: 'Identity', domain: '', inputs: [branch.outputs[i]!], outputs: [out], attrs: {} });
  });
  return branch;
}

/**
 * An If whose condition is computed at run time: both branches are inlined and each output is
 * Where(cond, then output, else output), so both branches run on every call (the cost: the
 * work of both) and the condition never leaves the GPU. The Where nodes are listed in `selects`:
 * infer-shapes refuses them unless both branches give one shape and dtype (an If whose branches
 * differ in shape cannot run shape-specialised kernels without knowing the condition).
 */
export function selectIf(node: Node, isTaken: (name: string) => boolean): InlinedBranch & { selects: Set<Node> } {
  const then = inlineBranch(node, 'then_branch', 'then/', isTaken);
  const otherwise = inlineBranch(node, 'else_branch', 'else/', (name) => isTaken(name) || then.defined.has(name));
  const selects = new Set<Node>();
  const nodes = [...then.nodes, ...otherwise.nodes];
  node.outputs.forEach((out, i) => {
    if (!out) return;
    const select: Node = { name: `${node.name}/select${i}`, opType: 'Where', domain: '', inputs: [node.inputs[0]!, then.outputs[i]!, otherwise.outputs[i]!], outputs: [out], attrs: {} };
    selects.add(select);
    nodes.push(select);
  });
  return { nodes, values: [...then.values, ...otherwise.values], selects };
}

/** One branch's nodes and initializers under fresh names, and its outputs under those names. */
function inlineBranch(node: Node, attr: 'then_branch' | 'else_branch', tag: string, isTaken: (name: string) => boolean): InlinedBranch & { outputs: string[]; defined: Set<string> } {
  const branch = node.subgraphs?.[attr];
  if (!branch) fail('FM_ONNX_INVALID', `node ${quoteName(node.name)} (If) has no ${attr}`);
  if (branch.outputs.length !== node.outputs.length) {
    fail('FM_ONNX_INVALID', `node ${quoteName(node.name)} (If): ${attr} has ${branch.outputs.length} outputs, the node ${node.outputs.length}`);
  }
  const rename = branchNames(`${node.name}/${tag}`, branch, isTaken);
  const renamed = (name: string) => (name ? rename.get(name) ?? name : name);
  const nodes = branch.nodes.map((n) => renameNode(n, `${node.name}/${tag}`, renamed));
  const values = [...branch.values.values()].map((v) => ({ ...v, name: renamed(v.name) }));
  return { nodes, values, outputs: branch.outputs.map(renamed), defined: new Set(rename.values()) };
}

/** New names for everything the branch defines (initializers and node outputs): `<If name>/[then/|else/]<name>`, made unique. */
export function branchNames(prefix: string, branch: Subgraph, isTaken: (name: string) => boolean): Map<string, string> {
  const rename = new Map<string, string>();
  const defined = [...branch.values.keys(), ...branch.nodes.flatMap((n) => n.outputs.filter((o) => o))];
  const used = new Set<string>();
  for (const name of defined) {
    let fresh = `${prefix}${name}`;
    for (let k = 1; isTaken(fresh) || used.has(fresh); k++) fresh = `${prefix}${name}_${k}`;
    used.add(fresh);
    rename.set(name, fresh);
  }
  return rename;
}

/** A node of the branch under the new names; nested bodies see the renamed outer values too. */
export function renameNode(n: Node, prefix: string, renamed: (name: string) => string): Node {
  return {
    ...n,
    name: `${prefix}${n.name}`,
    inputs: n.inputs.map(renamed),
    outputs: n.outputs.map(renamed),
    ...(n.subgraphs ? { subgraphs: Object.fromEntries(Object.entries(n.subgraphs).map(([k, body]) => [k, renameBody(body, renamed)])) } : {}),
  };
}

/** A nested body keeps its own definitions (they are renamed when it is inlined) and follows renamed outer references. */
function renameBody(body: Subgraph, renamed: (name: string) => string): Subgraph {
  const own = new Set([...body.inputs, ...body.values.keys(), ...body.nodes.flatMap((n) => n.outputs)]);
  const outer = (name: string) => (own.has(name) ? name : renamed(name));
  return {
    ...body,
    outputs: body.outputs.map(outer),
    nodes: body.nodes.map((n) => renameNode(n, '', outer)),
  };
}
