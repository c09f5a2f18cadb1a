/**
 * Regenerates the committed fuzz corpus (fuzz/corpus/): one small hostile model per category of
 * the "Hostile inputs and faults" issue, each with `<name>.expect.json` giving the FlashmemError
 * code and a substring of the message (the offending node or tensor name). Every case is
 * compiled after writing, and the script fails when one does not give what its sidecar says.
 *
 *   npx tsx fuzz/make-corpus.ts [--check]     (--check: verify without writing)
 *
 * Deterministic: the same code writes the same bytes.
 */
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import * as path from 'node:path';
import { fileURLToPath } from 'node:url';
import onnxProto from 'onnx-proto';
import protobuf from 'protobufjs';
import { buildModelProto, rawBytes, type ModelSpec } from '../fixtures/onnx-builder.js';
import { expectationMismatch, filesToJson, runCase, type Sidecar } from './cases.js';
import { fastTmpRoot, OUTSIDE_DIR, OUTSIDE_SECRET, type AuxFile } from './exec.js';
import { lengthFields, tag, varint } from './mutate.js';
import { CORPUS_DIR } from './seeds.js';

const { onnx } = onnxProto;
const Long = protobuf.util.Long as unknown as { fromString(v: string): protobuf.Long };
type IModelProto = onnxProto.onnx.IModelProto;
type Proto = IModelProto & { graph: onnxProto.onnx.IGraphProto & { node: onnxProto.onnx.INodeProto[]; initializer: onnxProto.onnx.ITensorProto[] } };

export interface CorpusCase {
  name: string;
  category: string;
  build(): { model: Uint8Array; files?: AuxFile[] };
  expect: Pick<Sidecar, 'code' | 'mentions' | 'ok'>;
}

const encode = (p: IModelProto) => onnx.ModelProto.encode(onnx.ModelProto.create(p as onnxProto.onnx.ModelProto)).finish();
const proto = (spec: ModelSpec) => buildModelProto(spec) as Proto;

/** x -> Relu -> Neg -> y, with a weight W added in: the base most cases break one way. */
function base(): Proto {
  return proto({
    inputs: [{ name: 'x', dtype: 'float32', shape: [2, 4] }],
    outputs: [{ name: 'y', dtype: 'float32' }],
    initializers: [{ name: 'W', dtype: 'float32', shape: [2, 4], data: [1, 2, 3, 4, 5, 6, 7, 8] }],
    nodes: [
      { name: 'relu_node', opType: 'Relu', inputs: ['x'], outputs: ['r'] },
      { name: 'add_node', opType: 'Add', inputs: ['r', 'W'], outputs: ['a'] },
      { name: 'neg_node', opType: 'Neg', inputs: ['a'], outputs: ['y'] },
    ],
  });
}

/** base() with W stored in `weights.bin` at offset 8 (the file is returned as an aux file). */
function externalBase(mutateEntries: (entries: { key: string; value: string }[]) => void, extraFiles: AuxFile[] = []) {
  const p = base();
  const w = p.graph.initializer[0]!;
  const raw = rawBytes('float32', [1, 2, 3, 4, 5, 6, 7, 8]);
  const file = new Uint8Array(8 + raw.length);
  file.set(raw, 8);
  w.name = 'ext_weight';
  p.graph.node[1]!.input = ['r', 'ext_weight'];
  w.rawData = new Uint8Array();
  w.dataLocation = onnx.TensorProto.DataLocation.EXTERNAL;
  const entries = [{ key: 'location', value: 'weights.bin' }, { key: 'offset', value: '8' }, { key: 'length', value: String(raw.length) }];
  mutateEntries(entries);
  w.externalData = entries;
  return { model: encode(p), files: [{ name: 'weights.bin', kind: 'file' as const, bytes: file }, ...extraFiles] };
}

/** TypeProto { sequence_type { elem_type: TypeProto { ... } } }, `depth` levels, built without recursion. */
function nestedSequenceType(depth: number): Uint8Array {
  const typeLen: number[] = [0];
  const seqLen = (inner: number) => (inner ? tag(1, 2).length + varint(inner).length + inner : 0);
  for (let k = 1; k <= depth; k++) typeLen[k] = tag(4, 2).length + varint(seqLen(typeLen[k - 1]!)).length + seqLen(typeLen[k - 1]!);
  const out: number[] = [];
  for (let k = depth; k >= 1; k--) {
    const inner = typeLen[k - 1]!;
    out.push(...tag(4, 2), ...varint(seqLen(inner)));
    if (inner) out.push(...tag(1, 2), ...varint(inner));
  }
  return new Uint8Array(out);
}

export const CASES: readonly CorpusCase[] = [
  {
    name: 'truncated', category: 'truncated protobuf',
    build: () => {
      const m = encode(base());
      return { model: m.slice(0, Math.floor(m.length * 0.6)) };
    },
    expect: { code: 'FM_ONNX_PARSE', mentions: 'is not a valid ONNX model' },
  },
  {
    name: 'bit-flipped', category: 'bit-flipped protobuf',
    build: () => {
      const m = encode(base()).slice();
      // one bit of the graph's length prefix (the most significant varint byte): the graph now runs past the end
      const graph = lengthFields(m).find((f) => m[f.lenPos - 1] === 0x3a)!;
      m[graph.lenEnd - 1] = m[graph.lenEnd - 1]! ^ 0x40;
      return { model: m };
    },
    expect: { code: 'FM_ONNX_PARSE', mentions: 'index out of range' },
  },
  {
    name: 'length-prefix', category: 'corrupt length prefix',
    build: () => {
      const m = encode(base());
      // the longest length-delimited field claims 2^31 bytes
      const f = lengthFields(m).reduce((a, b) => (b.end - b.start > a.end - a.start ? b : a));
      const out = new Uint8Array(m.length - (f.lenEnd - f.lenPos) + 5);
      out.set(m.subarray(0, f.lenPos));
      out.set(varint(2 ** 31), f.lenPos);
      out.set(m.subarray(f.lenEnd), f.lenPos + 5);
      return { model: out };
    },
    expect: { code: 'FM_ONNX_PARSE', mentions: 'index out of range' },
  },
  {
    name: 'deep-nesting', category: 'messages nested deeper than the decoder can recurse',
    build: () => {
      const p = base();
      const graph = onnx.GraphProto.encode(onnx.GraphProto.create(p.graph as onnxProto.onnx.GraphProto)).finish();
      // an extra graph input whose type is a sequence of a sequence of ... 8000 deep
      const type = nestedSequenceType(8000);
      const info = [...tag(1, 2), ...varint(10), ...new TextEncoder().encode('deep_input'), ...tag(2, 2), ...varint(type.length)];
      p.graph = undefined as never;
      const rest = encode(p);
      const g = new Uint8Array([...graph, ...tag(11, 2), ...varint(info.length + type.length), ...info, ...type]);
      return { model: new Uint8Array([...rest, ...tag(7, 2), ...varint(g.length), ...g]) };
    },
    expect: { code: 'FM_ONNX_PARSE', mentions: 'nested too deeply' },
  },
  {
    name: 'negative-dim', category: 'negative dim',
    build: () => {
      const p = base();
      p.graph.input![0]!.type!.tensorType!.shape!.dim![1] = { dimValue: -7 };
      return { model: encode(p) };
    },
    expect: { code: 'FM_SHAPE', mentions: 'graph input "x" has invalid dimension -7' },
  },
  {
    name: 'absurd-dim', category: 'absurd dim (INT64_MAX)',
    build: () => {
      const p = base();
      p.graph.initializer[0]!.dims = [Long.fromString('9223372036854775807')];
      return { model: encode(p) };
    },
    expect: { code: 'FM_SHAPE', mentions: 'tensor "W" has dims [9223372036854776000]' },
  },
  {
    name: 'overflow-element-count', category: 'element count that overflows',
    build: () => {
      const p = base();
      p.graph.input![0]!.type!.tensorType!.shape!.dim = [{ dimValue: 65536 }, { dimValue: 65536 }, { dimValue: 65536 }];
      return { model: encode(p) };
    },
    expect: { code: 'FM_SHAPE', mentions: 'graph input "x" has dims [65536, 65536, 65536], more than 2^31 elements' },
  },
  {
    name: 'absurd-kernel', category: 'absurd kernel size',
    build: () => ({
      model: encode(proto({
        inputs: [{ name: 'x', dtype: 'float32', shape: [1, 1, 4, 4] }],
        outputs: [{ name: 'y', dtype: 'float32' }],
        nodes: [{ name: 'huge_pool', opType: 'MaxPool', inputs: ['x'], outputs: ['y'], attrs: { kernel_shape: [1_000_000, 1_000_000], strides: [1, 1] } }],
      })),
    }),
    expect: { code: 'FM_SHAPE', mentions: 'huge_pool' },
  },
  {
    name: 'cycle', category: 'cycle',
    build: () => {
      const p = base();
      p.graph.node[0]!.input = ['y'];
      return { model: encode(p) };
    },
    expect: { code: 'FM_ONNX_INVALID', mentions: '"neg_node" -> "relu_node"' },
  },
  {
    name: 'dangling-input', category: 'dangling input',
    build: () => {
      const p = base();
      p.graph.node[1]!.input = ['r', 'no_such_tensor'];
      return { model: encode(p) };
    },
    expect: { code: 'FM_ONNX_INVALID', mentions: 'node "add_node" (Add) input 1 reads "no_such_tensor"' },
  },
  {
    name: 'duplicate-name', category: 'duplicate names',
    build: () => {
      const p = base();
      p.graph.node[1]!.output = ['r'];
      p.graph.node[2]!.input = ['r'];
      return { model: encode(p) };
    },
    expect: { code: 'FM_ONNX_INVALID', mentions: 'value "r" is produced twice' },
  },
  {
    name: 'unknown-domain-op', category: 'unknown domain and op',
    build: () => {
      const p = base();
      p.graph.node[1]!.opType = 'FancyAdd';
      p.graph.node[1]!.domain = 'com.example';
      p.opsetImport!.push({ domain: 'com.example', version: 1 });
      return { model: encode(p) };
    },
    expect: { code: 'FM_UNSUPPORTED_OP', mentions: 'node "add_node": operator "FancyAdd" in domain "com.example"' },
  },
  {
    name: 'opset-mismatch', category: 'opset mismatch',
    build: () => {
      const p = base();
      p.opsetImport = [{ domain: '', version: 999 }];
      return { model: encode(p) };
    },
    expect: { code: 'FM_UNSUPPORTED_OP', mentions: 'uses default-domain opset 999' },
  },
  {
    name: 'huge-attribute-list', category: 'huge attribute list',
    build: () => ({
      model: encode(proto({
        inputs: [{ name: 'x', dtype: 'float32', shape: [2, 3] }],
        outputs: [{ name: 'y', dtype: 'float32' }],
        nodes: [{ name: 'wide_transpose', opType: 'Transpose', inputs: ['x'], outputs: ['y'], attrs: { perm: Array.from({ length: 20_000 }, (_, i) => i % 2) } }],
      })),
    }),
    expect: { code: 'FM_SHAPE', mentions: 'wide_transpose' },
  },
  {
    name: 'escape-external-data', category: 'external data escaping the model folder',
    build: () => externalBase((e) => { e[0]!.value = `../${OUTSIDE_DIR}/${OUTSIDE_SECRET}`; }),
    expect: { code: 'FM_EXTERNAL_DATA', mentions: 'tensor "ext_weight" (external data location "../outside/secret.bin"): the location escapes the model folder' },
  },
  {
    name: 'device-external-data', category: 'external data at an absolute device path',
    build: () => externalBase((e) => { e[0]!.value = '/dev/zero'; }),
    expect: { code: 'FM_EXTERNAL_DATA', mentions: 'tensor "ext_weight" (external data location "/dev/zero"): absolute locations are refused' },
  },
  {
    name: 'symlink-external-data', category: 'external data through a symlink out of the folder',
    build: () => externalBase((e) => { e[0]!.value = 'link.bin'; }, [{ name: 'link.bin', kind: 'symlink', target: `../${OUTSIDE_DIR}/${OUTSIDE_SECRET}` }]),
    expect: { code: 'FM_EXTERNAL_DATA', mentions: 'tensor "ext_weight" (external data location "link.bin"): the location resolves through a symlink' },
  },
  {
    name: 'wrong-external-length', category: 'wrong external-data length',
    build: () => externalBase((e) => { e[2]!.value = '31'; }),
    expect: { code: 'FM_EXTERNAL_DATA', mentions: 'tensor "ext_weight" (external data location "weights.bin"): external_data length 31 disagrees' },
  },
  {
    name: 'huge-constant-of-shape', category: 'constant folding that would allocate gigabytes (fuzz crasher: memory)',
    build: () => ({
      model: encode(proto({
        inputs: [],
        outputs: [{ name: 'y', dtype: 'float32' }],
        initializers: [{ name: 'big_shape', dtype: 'int64', shape: [1], data: [2 ** 31 - 2] }],
        nodes: [{ name: 'fill_everything', opType: 'ConstantOfShape', inputs: ['big_shape'], outputs: ['y'] }],
      })),
    }),
    expect: { code: 'FM_LIMIT', mentions: 'node "fill_everything" (ConstantOfShape)' },
  },
  {
    name: 'missing-node-input', category: 'a node without its required input (fuzz crasher: TypeError in constant folding)',
    build: () => {
      const p = base();
      p.graph.node = [{ name: 'lonely_relu', opType: 'Relu', input: [], output: ['y'] }];
      p.graph.input = [];
      p.graph.initializer = [];
      return { model: encode(p) };
    },
    expect: { code: 'FM_ONNX_INVALID', mentions: 'node "lonely_relu" (Relu)' },
  },
];

function main(): void {
  const check = process.argv.includes('--check');
  const tmp = fastTmpRoot('flashmemc-corpus-');
  let failures = 0;
  try {
    if (!check) mkdirSync(CORPUS_DIR, { recursive: true });
    const names = new Set(CASES.map((c) => c.name));
    for (const c of CASES) {
      const built = c.build();
      const files = built.files ?? [];
      const sidecar: Sidecar = { category: c.category, ...c.expect, ...(files.length ? { files: filesToJson(files) } : {}) };
      const onnxPath = path.join(CORPUS_DIR, `${c.name}.onnx`);
      const sidecarPath = path.join(CORPUS_DIR, `${c.name}.expect.json`);
      const sidecarText = `${JSON.stringify(sidecar, null, 2)}\n`;
      if (check) {
        const same = existsSync(onnxPath) && Buffer.from(readFileSync(onnxPath)).equals(Buffer.from(built.model)) &&
          existsSync(sidecarPath) && readFileSync(sidecarPath, 'utf8') === sidecarText;
        if (!same) {
          console.log(`STALE ${c.name}: fuzz/corpus differs from what make-corpus.ts builds (run it without --check)`);
          failures++;
        }
      } else {
        writeFileSync(onnxPath, built.model);
        writeFileSync(sidecarPath, sidecarText);
      }
      const mismatch = expectationMismatch(sidecar, runCase(tmp, c.name, { model: built.model, files }));
      if (mismatch) failures++;
      console.log(`${mismatch ? 'FAIL' : 'ok  '} ${c.name.padEnd(24)} ${String(built.model.length).padStart(6)} B  ${mismatch ?? `${c.expect.code ?? 'ok'}`}`);
    }
    if (!check) {
      for (const f of readdirSync(CORPUS_DIR)) {
        const stem = f.replace(/\.expect\.json$|\.onnx$/, '');
        if (!names.has(stem)) {
          rmSync(path.join(CORPUS_DIR, f));
          console.log(`removed stale ${f}`);
        }
      }
    }
  } finally {
    rmSync(tmp, { recursive: true, force: true });
  }
  if (failures) {
    console.log(`${failures} case(s) failed`);
    process.exitCode = 1;
  }
}

if (process.argv[1] && path.resolve(process.argv[1]) === fileURLToPath(import.meta.url)) main();
