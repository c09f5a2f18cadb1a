/** The model of the hostile-name tests (names.test.ts, names.gpu.test.ts): every name an injection attempt. */
import { randomFloats, type ModelSpec } from '../../fixtures/onnx-builder.js';

export const HOSTILE = [
  'x"; alert(1); "',
  "y'`${process.exit(1)}`",
  'z */ fn main() { /*',
  'line1\nline2\r\n@compute',
  'fn',
  'var<storage>',
  '名前🙂',
  '\\u0000\u0001',
  '</script><script>',
];

const f32 = 'float32' as const;

export function hostileModel(): ModelSpec {
  const [input, weight, hidden, output, second, nodeA, nodeB, nodeC] = HOSTILE;
  return {
    opset: 13,
    graphName: HOSTILE[2],
    inputs: [{ name: input!, dtype: f32, shape: [2, 8] }],
    outputs: [{ name: output!, dtype: f32 }, { name: second!, dtype: f32 }],
    initializers: [{ name: weight!, dtype: f32, shape: [8, 4], data: randomFloats(32, 5) }],
    nodes: [
      { name: nodeA, opType: 'MatMul', inputs: [input!, weight!], outputs: [hidden!] },
      { name: nodeB, opType: 'Relu', inputs: [hidden!], outputs: [output!] },
      { name: nodeC, opType: 'Sigmoid', inputs: [hidden!], outputs: [second!] },
    ],
  };
}
