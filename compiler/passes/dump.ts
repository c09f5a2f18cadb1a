/** Human-readable text dumps of the IR, kernel program and memory plan, for --dump-ir. */
import type { Attr, Graph, TensorType } from '../ir/types.js';
import type { KernelProgram } from '../lower/program.js';
import type { MemoryPlan } from '../schedule/memory-plan.js';

const typeText = (t: TensorType) => `${t.dtype}[${t.shape.join(',')}]`;
const name = (s: string) => JSON.stringify(s);

function attrText(a: Attr): string {
  switch (a.type) {
    case 'tensor': return `tensor ${typeText(a.value)}`;
    case 'graph': return 'graph';
    case 'string': return JSON.stringify(a.value);
    case 'strings': return JSON.stringify(a.value);
    default: return JSON.stringify(a.value);
  }
}

export function dumpGraph(graph: Graph): string {
  const lines = [`graph ${name(graph.name)} opset ${graph.opset}`];
  const typeOf = (v: string) => {
    const value = graph.values.get(v);
    return value ? typeText(value.type) : '?';
  };
  for (const i of graph.inputs) lines.push(`input ${name(i)}: ${typeOf(i)}`);
  const constants = [...graph.values.values()].filter((v) => v.data);
  lines.push(`constants: ${constants.length} (${constants.reduce((s, v) => s + v.data!.data.length, 0)} elements)`);
  for (const n of graph.nodes) {
    const attrs = Object.entries(n.attrs).map(([k, a]) => `${k}=${attrText(a)}`).join(' ');
    const act = n.fusedActivation ? ` +${n.fusedActivation.opType}` : '';
    const ins = n.inputs.map((i) => (i ? `${name(i)}:${graph.values.get(i)?.data ? 'const ' : ''}${typeOf(i)}` : '_')).join(', ');
    const outs = n.outputs.map((o) => (o ? `${name(o)}:${typeOf(o)}` : '_')).join(', ');
    lines.push(`${outs} = ${n.opType}${act}(${ins})${attrs ? ` {${attrs}}` : ''}  # ${name(n.name)}`);
  }
  for (const o of graph.outputs) lines.push(`output ${name(o)}: ${typeOf(o)}`);
  return `${lines.join('\n')}\n`;
}

export function dumpProgram(program: KernelProgram): string {
  const lines = [`kernels: ${program.kernels.length}, tensors: ${program.tensors.size}`];
  for (const t of program.tensors.values()) {
    lines.push(`tensor ${name(t.id)} ${t.role} ${typeText(t.type)} ${t.bytes}B${t.aliasOf ? ` alias-of ${name(t.aliasOf)}` : ''}`);
  }
  program.kernels.forEach((k, i) => {
    lines.push(`#${i} ${k.label} (${k.opType}, ${k.costClass}) node ${name(k.node)} wg=[${k.workgroups}] bind=[${k.bindings.map(name).join(', ')}]`);
  });
  return `${lines.join('\n')}\n`;
}

export function dumpPlan(program: KernelProgram, plan: MemoryPlan): string {
  const lines = [
    `weights ${plan.weightBytes}B, activations arena ${plan.activationBytes}B`,
    ...plan.buffers.map((b, i) => `buffer ${i} ${b.role} ${b.size}B`),
  ];
  for (const [id, p] of plan.placements) {
    const span = plan.lifetimes.get(id)!;
    lines.push(`${name(id)} -> buffer ${p.buffer} @${p.offset} +${p.size} live [${span.first}, ${span.last}] ${program.tensors.get(id)!.role}`);
  }
  return `${lines.join('\n')}\n`;
}
