/**
 * ONNX's light models replace every weight by a ConstantOfShape node with one value, so all
 * channels compute the same thing and outputs are nearly uniform: a test comparing outputs would
 * pass for many wrong kernels. This rewrites each ConstantOfShape weight into an initializer of
 * deterministic random values (fan-in scaling keeps deep networks' activations bounded; BN
 * scale and variance stay positive), so comparisons with onnxruntime exercise real numerics.
 */
import onnxProto from 'onnx-proto';
import { randomFloats } from '../../fixtures/onnx-builder.js';

const { onnx } = onnxProto;

export function randomizeConstantWeights(model: Uint8Array, seed = 1): Uint8Array {
  const proto = onnx.ModelProto.decode(model);
  const graph = proto.graph!;
  graph.initializer ??= [];
  const initializers = new Map(graph.initializer.map((t) => [t.name, t]));
  const role = consumerRoles(graph);
  const kept: onnxProto.onnx.INodeProto[] = [];
  let next = seed;
  for (const node of graph.node ?? []) {
    const shapeTensor = node.opType === 'ConstantOfShape' ? initializers.get(node.input?.[0] ?? '') : undefined;
    if (!shapeTensor) {
      kept.push(node);
      continue;
    }
    const dims = int64Values(shapeTensor);
    const count = dims.reduce((a, b) => a * b, 1);
    const out = node.output![0]!;
    const [lo, hi] = range(role.get(out), dims);
    const data = randomFloats(count, next++, lo, hi);
    graph.initializer.push({ name: out, dataType: 1, dims, rawData: new Uint8Array(data.buffer) });
  }
  graph.node = kept as onnxProto.onnx.NodeProto[];
  exposeSoftmaxLogits(graph);
  return onnx.ModelProto.encode(proto).finish();
}

/**
 * A final Softmax saturates to one-hot for large logits, hiding errors upstream: the logits
 * feeding a Softmax that is a graph output become graph outputs too.
 */
function exposeSoftmaxLogits(graph: onnxProto.onnx.IGraphProto): void {
  const outputs = new Set(graph.output!.map((o) => o.name));
  for (const node of graph.node ?? []) {
    const logits = node.input?.[0];
    if (node.opType !== 'Softmax' || !outputs.has(node.output![0]!) || !logits || outputs.has(logits)) continue;
    graph.output!.push({ name: logits, type: { tensorType: { elemType: 1 } } });
    outputs.add(logits);
  }
}

type Role = 'positive' | 'weight';

/** BatchNormalization's scale (input 1) and variance (input 4) must stay positive. */
function consumerRoles(graph: onnxProto.onnx.IGraphProto): Map<string, Role> {
  const roles = new Map<string, Role>();
  for (const node of graph.node ?? []) {
    node.input?.forEach((name, i) => {
      if (node.opType === 'BatchNormalization' && (i === 1 || i === 4)) roles.set(name, 'positive');
      else if (!roles.has(name)) roles.set(name, 'weight');
    });
  }
  return roles;
}

function range(role: Role | undefined, dims: number[]): [number, number] {
  if (role === 'positive') return [0.5, 1.5];
  if (dims.length < 2) return [-0.1, 0.1];
  const fanIn = dims.slice(1).reduce((a, b) => a * b, 1);
  // variance 1/fan_in (LeCun): with ReLU halving it per layer, residual sums stay bounded
  const bound = Math.sqrt(3 / fanIn);
  return [-bound, bound];
}

function int64Values(t: onnxProto.onnx.ITensorProto): number[] {
  if (t.rawData && t.rawData.length > 0) {
    const view = new DataView(t.rawData.buffer, t.rawData.byteOffset, t.rawData.byteLength);
    return Array.from({ length: t.rawData.length / 8 }, (_, i) => Number(view.getBigInt64(i * 8, true)));
  }
  return (t.int64Data ?? []).map((v) => Number(v));
}
