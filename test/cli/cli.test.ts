/**
 * The flashmemc CLI end to end (compile -> run -> inspect, in process through main()), and the
 * documented error code for each kind of bad input.
 */
import { existsSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import onnxProto from 'onnx-proto';
import { buildModel, buildModelProto, randomFloats, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { cli } from '../harness/cli.js';
import { readNpy, writeNpy } from '../../compiler/cli/npy.js';
import { runOrt } from '../harness/ort.js';
import { maxViolation } from '../harness/single-node.js';
import { tempDir } from '../harness/paths.js';

const f32 = 'float32' as const;


const tinyCnn = (inputShape: (number | string)[] = [1, 3, 8, 8]): ModelSpec => ({
  opset: 13,
  inputs: [{ name: 'image', dtype: f32, shape: inputShape }],
  outputs: [{ name: 'scores/out:0', dtype: f32 }],
  initializers: [
    { name: 'w', dtype: f32, shape: [4, 3, 3, 3], data: randomFloats(108, 1) },
    { name: 'fc', dtype: f32, shape: [4, 5], data: randomFloats(20, 2) },
  ],
  nodes: [
    { opType: 'Conv', inputs: ['image', 'w'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1] } },
    { opType: 'Relu', inputs: ['c'], outputs: ['r'] },
    { opType: 'GlobalAveragePool', inputs: ['r'], outputs: ['p'] },
    { opType: 'Flatten', inputs: ['p'], outputs: ['f'] },
    { opType: 'MatMul', inputs: ['f', 'fc'], outputs: ['m'] },
    { opType: 'Softmax', inputs: ['m'], outputs: ['scores/out:0'], attrs: { axis: -1 } },
  ],
});

describe('flashmemc CLI', () => {
  const tmp = tempDir('cli');
  const model = join(tmp.dir, 'tiny.onnx');
  const bundle = join(tmp.dir, 'bundle');
  beforeAll(() => writeFileSync(model, buildModel(tinyCnn())));
  afterAll(() => tmp.cleanup());

  it('compile writes a complete bundle', async () => {
    const r = await cli('compile', model, '--out', bundle);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/compiled tiny: \d+ kernels/);
    for (const f of ['manifest.json', 'schedule.json', 'runtime.js', 'runtime.d.ts']) expect(existsSync(join(bundle, f))).toBe(true);
    expect(readdirSync(join(bundle, 'shaders')).length).toBeGreaterThan(0);
    expect(readdirSync(join(bundle, 'weights')).length).toBeGreaterThan(0);
  });

  it('run --inputs (npy) --save-outputs --json matches onnxruntime', async () => {
    const inputs = join(tmp.dir, 'inputs');
    const outputs = join(tmp.dir, 'outputs');
    const x = randomFloats(192, 9);
    (await import('node:fs')).mkdirSync(inputs, { recursive: true });
    writeFileSync(join(inputs, 'image.npy'), writeNpy({ dtype: f32, shape: [1, 3, 8, 8], data: x }));
    const r = await cli('run', bundle, '--inputs', inputs, '--save-outputs', outputs, '--json');
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const report = JSON.parse(r.stdout);
    expect(report.outputs[0]).toMatchObject({ name: 'scores/out:0', dtype: 'float32', shape: [1, 5] });
    expect(report.peakGpuBytes).toBeGreaterThan(0);
    const saved = readNpy(readFileSync(join(outputs, 'scores_out_0.npy')), 'saved');
    const ref = await runOrt(readFileSync(model), { image: { dtype: f32, shape: [1, 3, 8, 8], data: x } });
    expect(maxViolation(saved.data as Float32Array, ref['scores/out:0']!.data as Float32Array)).toBeLessThanOrEqual(1);
  });

  it('run --random-inputs prints outputs and peak GPU bytes; inspect summarises', async () => {
    const r = await cli('run', bundle, '--random-inputs', '--seed', '3');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/"scores\/out:0" float32\[1,5\]/);
    expect(r.stdout).toMatch(/peak GPU \d+\.\d+ MiB/);
    const i = await cli('inspect', bundle);
    expect(i.code).toBe(0);
    expect(i.stdout).toMatch(/model "tiny"/);
    expect(i.stdout).toMatch(/kernels: \d+ dispatches/);
  });

  it('compile --memory-budget streams; inspect shows the load plan and writes a memory chart', async () => {
    const streamed = join(tmp.dir, 'streamed');
    const c = await cli('compile', model, '--out', streamed, '--memory-budget', '16KiB');
    expect(c.stderr).toBe('');
    expect(c.stdout).toMatch(/streaming under 0\.02 MiB: \d+ weights/);
    const svg = join(tmp.dir, 'memory.svg');
    const i = await cli('inspect', streamed, '--svg', svg);
    expect(i.stdout).toMatch(/load plan \(\w+, 1 windows\): budget 0\.02 MiB/);
    const chart = readFileSync(svg, 'utf8');
    expect(chart).toMatch(/^<svg /);
    expect(chart.match(/<polygon /g)).toHaveLength(3);
    expect(chart).toContain('budget 0.02 MiB');
    const tooSmall = await cli('compile', model, '--out', join(tmp.dir, 'too-small'), '--memory-budget', '1KiB');
    expect(tooSmall.code).toBe(2);
    expect(tooSmall.stderr).toMatch(/FM_BAD_ARGUMENT.*smallest feasible budget/);
  });

  it('--input-shape fixes symbolic dims; without it the error names the input', async () => {
    const symbolic = join(tmp.dir, 'symbolic.onnx');
    writeFileSync(symbolic, buildModel(tinyCnn(['batch', 3, 'h', 'w'])));
    const bad = await cli('compile', symbolic, '--out', join(tmp.dir, 'sym-bad'));
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/FM_UNKNOWN_DIM.*image/);
    expect(bad.stderr).toMatch(/--input-shape/);
    const good = await cli('compile', symbolic, '--out', join(tmp.dir, 'sym-good'), '--input-shape', 'image=1x3x6x6');
    expect(good.code).toBe(0);
    const manifest = JSON.parse(readFileSync(join(tmp.dir, 'sym-good', 'manifest.json'), 'utf8'));
    expect(manifest.models[0].inputs[0].shape).toEqual([1, 3, 6, 6]);
  });

  describe('bad input gives its documented error code and leaves no bundle', () => {
    const cases: [string, () => Uint8Array | string, RegExp][] = [
      ['a truncated file', () => buildModel(tinyCnn()).subarray(0, 150), /FM_ONNX_PARSE/],
      ['a file with the wrong magic (not protobuf)', () => new TextEncoder().encode('PK\u0003\u0004 this is a zip, not an onnx model'), /FM_ONNX_PARSE/],
      ['an unknown operator', () => buildModel({ ...tinyCnn(), nodes: [...tinyCnn().nodes.slice(0, 5), { opType: 'FancySoftmax', name: 'head', inputs: ['m'], outputs: ['scores/out:0'] }] }), /FM_UNSUPPORTED_OP.*"head".*FancySoftmax.*opset 13/],
      ['impossible shapes (Add of [1,4] and [1,5])', () => buildModel({ ...tinyCnn(), nodes: [...tinyCnn().nodes.slice(0, 5), { opType: 'Add', inputs: ['m', 'f'], outputs: ['scores/out:0'] }] }), /FM_SHAPE/],
      ['external data escaping the model folder', () => externalEscape(), /FM_EXTERNAL_DATA.*\.\.\/secret\.bin/],
      ['a missing file', () => join(tmp.dir, 'does-not-exist.onnx'), /FM_(IO|ONNX_PARSE)/],
    ];
    for (const [what, make, pattern] of cases) {
      it(what, async () => {
        const made = make();
        const path = typeof made === 'string' ? made : join(tmp.dir, `bad-${what.replace(/\W+/g, '-')}.onnx`);
        if (typeof made !== 'string') writeFileSync(path, made);
        const out = join(tmp.dir, `out-${what.replace(/\W+/g, '-')}`);
        const r = await cli('compile', path, '--out', out);
        expect(r.code).toBe(2);
        expect(r.stderr).toMatch(pattern);
        expect(existsSync(out)).toBe(false);
      });
    }
  });

  it('--target-limits: kernels are split to fit the target, or refused naming the node', async () => {
    const wide = join(tmp.dir, 'wide.onnx');
    const names = ['a', 'b', 'c', 'd', 'e'];
    writeFileSync(wide, buildModel({
      inputs: names.map((name) => ({ name, dtype: f32, shape: [1024] })),
      outputs: [{ name: 's', dtype: f32 }],
      nodes: [{ name: 'sum5', opType: 'Sum', inputs: names, outputs: ['s'] }],
    }));
    const compat = await cli('compile', wide, '--out', join(tmp.dir, 'wide-compat'), '--target-limits', 'compat');
    expect(compat.code).toBe(0);
    const schedule = JSON.parse(readFileSync(join(tmp.dir, 'wide-compat', 'schedule.json'), 'utf8'));
    const dispatches = schedule.models[0].run.filter((s: { op: string }) => s.op === 'dispatch');
    expect(dispatches.length).toBeGreaterThan(1);
    for (const d of dispatches) expect(d.bindings.length).toBeLessThanOrEqual(4);

    const limitsFile = join(tmp.dir, 'limits.json');
    writeFileSync(limitsFile, JSON.stringify({ maxStorageBufferBindingSize: 1024 }));
    const tiny = await cli('compile', wide, '--out', join(tmp.dir, 'wide-tiny'), '--target-limits', limitsFile);
    expect(tiny.code).toBe(2);
    expect(tiny.stderr).toMatch(/FM_LIMIT.*"sum5"/);
    const bad = await cli('compile', wide, '--out', join(tmp.dir, 'wide-bad'), '--target-limits', 'no-such-preset');
    expect(bad.stderr).toMatch(/FM_BAD_ARGUMENT.*--target-limits/);
  });

  it('argument errors are FM_BAD_ARGUMENT', async () => {
    const r = await cli('run', bundle);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/FM_BAD_ARGUMENT.*--inputs.*--random-inputs/);
  });
});

function externalEscape(): Uint8Array {
  const proto = buildModelProto(tinyCnn());
  const w = proto.graph!.initializer![0]!;
  w.rawData = undefined;
  w.dataLocation = onnxProto.onnx.TensorProto.DataLocation.EXTERNAL;
  w.externalData = [{ key: 'location', value: '../secret.bin' }, { key: 'offset', value: '0' }, { key: 'length', value: '432' }];
  return onnxProto.onnx.ModelProto.encode(onnxProto.onnx.ModelProto.create(proto as onnxProto.onnx.ModelProto)).finish();
}
