import { describe, expect, it } from 'vitest';
import { importOnnx } from '../../compiler/frontend/onnx.js';
import { ONNX_DTYPE_CODES, toHalf } from '../../fixtures/onnx-builder.js';
import type { DType } from '../../compiler/ir/types.js';
import { encodeModel, expectFmError, leBytes, modelProto, modelWithInitializer, onnx, type ITensorProto, Long } from './helpers.js';


function decodeInitializer(tensor: ITensorProto) {
  const graph = importOnnx(modelWithInitializer({ name: 'W', ...tensor }));
  const value = graph.values.get('W')!;
  expect(value.data, 'initializer keeps its data').toBeDefined();
  return value.data!;
}

/** Expected host values: float32-class types round through Math.fround, others are exact doubles. */
function expectValues(data: Float32Array | Float64Array, expected: readonly number[]) {
  expect(data.length).toBe(expected.length);
  expected.forEach((v, i) => {
    if (Number.isNaN(v)) expect(Number.isNaN(data[i]!), `element ${i} is NaN`).toBe(true);
    else expect(Object.is(data[i], v) || data[i] === v, `element ${i}: ${data[i]} vs ${v}`).toBe(true);
  });
}

const F32_HOSTED = new Set<DType>(['float32', 'float16', 'bfloat16']);

/** Per dtype: values as stored (bit patterns for half types) and the numbers they mean. */
const CASES: { dtype: DType; stored: (number | bigint)[]; expected: number[] }[] = [
  { dtype: 'float32', stored: [0, -1.5, 3.25, 1e-30, Infinity], expected: [0, -1.5, 3.25, Math.fround(1e-30), Infinity] },
  { dtype: 'float64', stored: [0, -1.5, 1e300, Math.PI], expected: [0, -1.5, 1e300, Math.PI] },
  { dtype: 'int8', stored: [-128, -1, 0, 127], expected: [-128, -1, 0, 127] },
  { dtype: 'uint8', stored: [0, 1, 200, 255], expected: [0, 1, 200, 255] },
  { dtype: 'bool', stored: [0, 1, 1, 0], expected: [0, 1, 1, 0] },
  { dtype: 'int16', stored: [-32768, -2, 32767], expected: [-32768, -2, 32767] },
  { dtype: 'uint16', stored: [0, 65535, 1234], expected: [0, 65535, 1234] },
  { dtype: 'int32', stored: [-2147483648, -7, 2147483647], expected: [-2147483648, -7, 2147483647] },
  { dtype: 'uint32', stored: [0, 4294967295, 123456], expected: [0, 4294967295, 123456] },
  {
    dtype: 'int64',
    stored: [-(2n ** 53n), -1n, 0n, 2n ** 40n + 1n, 2n ** 53n + 1n, -(2n ** 63n), 2n ** 63n - 1n],
    expected: [-(2 ** 53), -1, 0, 2 ** 40 + 1, Number(2n ** 53n + 1n), -(2 ** 63), Number(2n ** 63n - 1n)],
  },
  { dtype: 'uint64', stored: [0n, 2n ** 64n - 1n, 2n ** 53n, 7n], expected: [0, Number(2n ** 64n - 1n), 2 ** 53, 7] },
  // IEEE binary16: zeros, 1, -2, max, min normal, min subnormal, infinities, 1/3 rounded, NaN
  {
    dtype: 'float16',
    stored: [0x0000, 0x8000, 0x3c00, 0xc000, 0x7bff, 0x0400, 0x0001, 0x7c00, 0xfc00, 0x3555, 0x7e00],
    expected: [0, -0, 1, -2, 65504, 2 ** -14, 2 ** -24, Infinity, -Infinity, 0.333251953125, NaN],
  },
  // bfloat16 is the top half of a float32: expected values come from reinterpreting bits << 16
  {
    dtype: 'bfloat16',
    stored: [0x3f80, 0xc000, 0x7f7f, 0x0080, 0x0001, 0x7f80, 0xff80, 0x3e20, 0x7fc0, 0x8000],
    expected: [0x3f80, 0xc000, 0x7f7f, 0x0080, 0x0001, 0x7f80, 0xff80, 0x3e20, 0x7fc0, 0x8000].map((bits) => {
      const view = new DataView(new ArrayBuffer(4));
      view.setUint32(0, bits << 16 >>> 0);
      return view.getFloat32(0);
    }),
  },
];

/** The typed field ONNX uses for each dtype, filled the way an exporter would. */
function typedFields(dtype: DType, stored: (number | bigint)[]): ITensorProto {
  const nums = stored.map(Number);
  switch (dtype) {
    case 'float32': return { floatData: nums };
    case 'float64': return { doubleData: nums };
    case 'int64': return { int64Data: stored.map((v) => Long.fromString(String(v), false)) };
    case 'uint32': case 'uint64': return { uint64Data: stored.map((v) => Long.fromString(String(v), true)) };
    default: return { int32Data: nums };
  }
}

describe('initializer encodings', () => {
  for (const { dtype, stored, expected } of CASES) {
    it(`${dtype} from raw_data`, () => {
      const t = decodeInitializer({ dataType: ONNX_DTYPE_CODES[dtype], dims: [stored.length], rawData: leBytes(dtype, stored) });
      expect(t.dtype).toBe(dtype);
      expect(t.shape).toEqual([stored.length]);
      expect(t.data).toBeInstanceOf(F32_HOSTED.has(dtype) ? Float32Array : Float64Array);
      expectValues(t.data, expected);
    });
    it(`${dtype} from its typed field`, () => {
      const t = decodeInitializer({ dataType: ONNX_DTYPE_CODES[dtype], dims: [stored.length], ...typedFields(dtype, stored) });
      expect(t.dtype).toBe(dtype);
      expect(t.data).toBeInstanceOf(F32_HOSTED.has(dtype) ? Float32Array : Float64Array);
      expectValues(t.data, expected);
    });
  }

  it('raw_data at an unaligned offset inside the model buffer decodes correctly', () => {
    const bytes = modelWithInitializer({ name: 'W', dataType: 1, dims: [3], rawData: leBytes('float32', [1.5, -2, 8]) });
    const shifted = (by: number) => {
      const view = new Uint8Array(bytes.length + by).subarray(by);
      view.set(bytes);
      return view;
    };
    const unaligned = [1, 2, 3].map(shifted).find((b) => onnx.ModelProto.decode(b).graph!.initializer![0]!.rawData!.byteOffset % 4 !== 0);
    expect(unaligned, 'the test really exercises an unaligned view').toBeDefined();
    expectValues(importOnnx(unaligned!).values.get('W')!.data!.data, [1.5, -2, 8]);
  });

  it('float16 bit patterns agree with the fixture builder (round trip of representable values)', () => {
    const values = [0.5, -3.75, 1024, 2 ** -20, 60000];
    const t = decodeInitializer({ dataType: 10, dims: [values.length], rawData: leBytes('float16', values.map(toHalf)) });
    expectValues(t.data, values);
  });

  it('int64 typed fields decode from protobufjs Long objects', () => {
    const bytes = modelWithInitializer({ name: 'W', dataType: 7, dims: [2], int64Data: [Long.fromString('-9007199254740993'), Long.fromNumber(5)] });
    const raw = onnx.ModelProto.decode(bytes).graph!.initializer![0]!.int64Data![0];
    expect(typeof raw, 'protobufjs hands int64 back as Long').toBe('object');
    const t = importOnnx(bytes).values.get('W')!.data!;
    expectValues(t.data, [Number(-9007199254740993n), 5]);
  });

  it('dims given as Long, scalars and empty tensors', () => {
    expect(decodeInitializer({ dataType: 1, dims: [Long.fromNumber(2), Long.fromNumber(1)], floatData: [1, 2] }).shape).toEqual([2, 1]);
    const scalar = decodeInitializer({ dataType: 6, dims: [], int32Data: [42] });
    expect(scalar.shape).toEqual([]);
    expectValues(scalar.data, [42]);
    const empty = decodeInitializer({ dataType: 1, dims: [3, 0] });
    expect(empty.shape).toEqual([3, 0]);
    expect(empty.data.length).toBe(0);
  });

  it('narrow integers in int32_data wrap to their width like a C cast', () => {
    expectValues(decodeInitializer({ dataType: 3, dims: [2], int32Data: [255, 128] }).data, [-1, -128]);
    expectValues(decodeInitializer({ dataType: 2, dims: [2], int32Data: [256, -1] }).data, [0, 255]);
  });

  it('attribute tensors (Constant value) decode like initializers', () => {
    const proto = modelProto({
      inputs: [],
      outputs: [{ name: 'y', dtype: 'float16' }],
      nodes: [{ opType: 'Constant', inputs: [], outputs: ['y'], attrs: { value: { tensor: { dtype: 'float16', shape: [2], data: [1.5, -0.25] } } } }],
    });
    const attr = importOnnx(encodeModel(proto)).nodes[0]!.attrs.value!;
    expect(attr.type).toBe('tensor');
    if (attr.type !== 'tensor') return;
    expect(attr.value.dtype).toBe('float16');
    expectValues(attr.value.data, [1.5, -0.25]);
  });
});

describe('initializer errors', () => {
  it('string tensors are FM_DTYPE', () => {
    expectFmError(() => decodeInitializer({ dataType: 8, dims: [1], stringData: [new TextEncoder().encode('a')] }), 'FM_DTYPE', '"W"', 'STRING');
  });
  it('complex and undefined element types are FM_DTYPE', () => {
    expectFmError(() => decodeInitializer({ dataType: 14, dims: [1], floatData: [1, 2] }), 'FM_DTYPE', '"W"', 'COMPLEX64');
    expectFmError(() => decodeInitializer({ dims: [1], floatData: [1] }), 'FM_DTYPE', '"W"', 'UNDEFINED');
  });
  it('negative dims are FM_SHAPE', () => {
    expectFmError(() => decodeInitializer({ dataType: 1, dims: [2, -3], floatData: [1] }), 'FM_SHAPE', '"W"', '-3');
  });
  it('element counts beyond 2^31 or overflowing are FM_SHAPE before any allocation', () => {
    expectFmError(() => decodeInitializer({ dataType: 1, dims: [65536, 65536], rawData: new Uint8Array(4) }), 'FM_SHAPE', '"W"', '2^31');
    expectFmError(() => decodeInitializer({ dataType: 1, dims: [2 ** 40, 2 ** 40, 2 ** 40], rawData: new Uint8Array(4) }), 'FM_SHAPE', '"W"');
    expectFmError(() => decodeInitializer({ dataType: 7, dims: [Long.fromString('4611686018427387904')], int64Data: [1] }), 'FM_SHAPE', '"W"');
  });
  it('raw_data whose size disagrees with dims is FM_ONNX_INVALID', () => {
    expectFmError(() => decodeInitializer({ dataType: 1, dims: [1_000_000], rawData: new Uint8Array(8) }), 'FM_ONNX_INVALID', '"W"', '8 bytes', '4000000');
    expectFmError(() => decodeInitializer({ dataType: 7, dims: [2], rawData: new Uint8Array(12) }), 'FM_ONNX_INVALID', '"W"');
  });
  it('a typed field with the wrong count is FM_ONNX_INVALID', () => {
    expectFmError(() => decodeInitializer({ dataType: 1, dims: [3], floatData: [1, 2] }), 'FM_ONNX_INVALID', '"W"', 'float_data', '2 values');
  });
  it('values in the wrong typed field are FM_ONNX_INVALID', () => {
    expectFmError(() => decodeInitializer({ dataType: 1, dims: [2], int32Data: [1, 2] }), 'FM_ONNX_INVALID', '"W"', 'int32_data', 'float_data');
    expectFmError(() => decodeInitializer({ dataType: 7, dims: [1], int32Data: [1] }), 'FM_ONNX_INVALID', '"W"', 'int64_data');
  });
  it('a non-empty tensor without data is FM_ONNX_INVALID', () => {
    expectFmError(() => decodeInitializer({ dataType: 1, dims: [4] }), 'FM_ONNX_INVALID', '"W"', 'no data');
  });
  it('segmented tensors are FM_UNSUPPORTED_OP', () => {
    expectFmError(() => decodeInitializer({ dataType: 1, dims: [1], floatData: [1], segment: { begin: 0, end: 1 } }), 'FM_UNSUPPORTED_OP', '"W"', 'segment');
  });
});
