import { execFileSync } from 'node:child_process';
import { closeSync, existsSync, mkdirSync, openSync, symlinkSync, writeFileSync, writeSync, ftruncateSync } from 'node:fs';
import * as path from 'node:path';
import { describe, expect, it } from 'vitest';
import { importOnnx, importOnnxFile } from '../../compiler/frontend/onnx.js';
import { encodeModel, expectFmError, leBytes, modelProto, modelWithInitializer, tempDir, type ITensorProto } from './helpers.js';

const EXTERNAL = 1;

function externalTensor(name: string, dims: number[], entries: Record<string, string>): ITensorProto {
  return {
    name, dataType: 1, dims, dataLocation: EXTERNAL,
    externalData: Object.entries(entries).map(([key, value]) => ({ key, value })),
  };
}

/** A float32 tensor of `values` stored in `file` at `offset`, after some unrelated bytes. */
function writeWeights(file: string, offset: number, values: number[]): void {
  const bytes = leBytes('float32', values);
  const content = new Uint8Array(offset + bytes.length + 7).fill(0xee);
  content.set(bytes, offset);
  writeFileSync(file, content);
}

const W = [1.5, -2.25, 3, 0.125];

describe('external data: happy paths', () => {
  const dir = tempDir('extdata');
  writeWeights(path.join(dir, 'weights.bin'), 16, W);
  mkdirSync(path.join(dir, 'data'));
  writeWeights(path.join(dir, 'data', 'w.bin'), 0, W);

  it('reads offset + length from a file next to the model (importOnnxFile defaults baseDir)', () => {
    const model = path.join(dir, 'model.onnx');
    writeFileSync(model, modelWithInitializer(externalTensor('W', [2, 2], { location: 'weights.bin', offset: '16', length: '16' })));
    const t = importOnnxFile(model).values.get('W')!.data!;
    expect(t.shape).toEqual([2, 2]);
    expect(Array.from(t.data)).toEqual(W);
  });

  it('length is optional, and subfolders and inner ".." that stay inside are allowed', () => {
    for (const location of ['data/w.bin', 'data/../data/w.bin', './data/w.bin']) {
      const t = importOnnx(modelWithInitializer(externalTensor('W', [4], { location })), { baseDir: dir }).values.get('W')!.data!;
      expect(Array.from(t.data), location).toEqual(W);
    }
  });

  it('a symlink that stays inside the folder is followed', () => {
    symlinkSync('weights.bin', path.join(dir, 'alias.bin'));
    const t = importOnnx(modelWithInitializer(externalTensor('W', [4], { location: 'alias.bin', offset: '16' })), { baseDir: dir }).values.get('W')!.data!;
    expect(Array.from(t.data)).toEqual(W);
  });

  it('reads only the needed range: a tensor 3 GiB into a sparse file loads at once', () => {
    const file = path.join(dir, 'huge.bin');
    const offset = 3 * 1024 ** 3;
    const fd = openSync(file, 'w');
    try {
      ftruncateSync(fd, offset + 64);
      writeSync(fd, leBytes('float32', W), 0, 16, offset);
    } finally {
      closeSync(fd);
    }
    const start = performance.now();
    const t = importOnnx(modelWithInitializer(externalTensor('W', [4], { location: 'huge.bin', offset: String(offset), length: '16' })), { baseDir: dir }).values.get('W')!.data!;
    expect(Array.from(t.data)).toEqual(W);
    // reading 3 GiB would take seconds and exceed the largest Node buffer
    expect(performance.now() - start).toBeLessThan(2000);
  });

  it('external data in attribute tensors (Constant value) resolves the same way', () => {
    const proto = modelProto({ inputs: [], outputs: [{ name: 'y', dtype: 'float32' }], nodes: [{ opType: 'Constant', inputs: [], outputs: ['y'] }] });
    proto.graph.node![0]!.attribute = [{ name: 'value', type: 4, t: externalTensor('', [4], { location: 'weights.bin', offset: '16' }) }];
    const attr = importOnnx(encodeModel(proto), { baseDir: dir }).nodes[0]!.attrs.value!;
    expect(attr.type === 'tensor' && Array.from(attr.value.data)).toEqual(W);
    expectFmError(() => importOnnx(encodeModel(proto)), 'FM_EXTERNAL_DATA', 'attribute "value" of node', 'baseDir');
  });
});

describe('external data: refused locations and sizes', () => {
  const root = tempDir('extdata-bad');
  const base = path.join(root, 'model');
  mkdirSync(base);
  writeWeights(path.join(root, 'outside.bin'), 0, W);
  writeWeights(path.join(base, 'w.bin'), 0, W);
  mkdirSync(path.join(base, 'folder'));
  const load = (entries: Record<string, string>, baseDir: string = base, dims = [4]) =>
    () => importOnnx(modelWithInitializer(externalTensor('W', dims, entries)), { baseDir });

  it('importOnnx(bytes) without baseDir says a baseDir is needed', () => {
    expectFmError(() => importOnnx(modelWithInitializer(externalTensor('W', [4], { location: 'w.bin' }))), 'FM_EXTERNAL_DATA', '"W"', '"w.bin"', 'baseDir');
  });
  it('absolute paths', () => {
    expectFmError(load({ location: path.join(base, 'w.bin') }), 'FM_EXTERNAL_DATA', '"W"', 'absolute');
    expectFmError(load({ location: 'C:\\weights\\w.bin' }), 'FM_EXTERNAL_DATA', '"W"', 'absolute');
  });
  it('".." escaping the folder, even when the target exists', () => {
    expect(existsSync(path.join(base, '../outside.bin'))).toBe(true);
    expectFmError(load({ location: '../outside.bin' }), 'FM_EXTERNAL_DATA', '"W"', '"../outside.bin"', 'escapes');
    expectFmError(load({ location: 'folder/../../outside.bin' }), 'FM_EXTERNAL_DATA', '"W"', 'escapes');
  });
  it('a symlink whose real path leaves the folder (file or directory link)', () => {
    symlinkSync(path.join(root, 'outside.bin'), path.join(base, 'link.bin'));
    expectFmError(load({ location: 'link.bin' }), 'FM_EXTERNAL_DATA', '"W"', '"link.bin"', 'symlink');
    symlinkSync(root, path.join(base, 'linkdir'));
    expectFmError(load({ location: 'linkdir/outside.bin' }), 'FM_EXTERNAL_DATA', '"W"', 'symlink');
    symlinkSync('/dev/zero', path.join(base, 'zero'));
    expectFmError(load({ location: 'zero' }), 'FM_EXTERNAL_DATA', '"W"', 'symlink');
  });
  it('a directory', () => {
    expectFmError(load({ location: 'folder' }), 'FM_EXTERNAL_DATA', '"W"', '"folder"', 'directory');
  });
  it('a FIFO is refused without blocking on open', () => {
    execFileSync('mkfifo', [path.join(base, 'pipe')]);
    expectFmError(load({ location: 'pipe' }), 'FM_EXTERNAL_DATA', '"W"', '"pipe"', 'FIFO');
  });
  it('a device (with /dev as the base folder)', () => {
    expectFmError(load({ location: 'zero' }, '/dev'), 'FM_EXTERNAL_DATA', '"W"', '"zero"', 'device');
  });
  it('a missing file', () => {
    expectFmError(load({ location: 'nope.bin' }), 'FM_EXTERNAL_DATA', '"W"', '"nope.bin"', 'does not exist');
  });
  it('offset + length beyond the end of the file', () => {
    expectFmError(load({ location: 'w.bin', offset: '8' }), 'FM_EXTERNAL_DATA', '"W"', '"w.bin"', 'beyond the end');
    expectFmError(load({ location: 'w.bin', offset: '9007199254740000' }), 'FM_EXTERNAL_DATA', '"W"', 'beyond the end');
  });
  it('a length that disagrees with the tensor size', () => {
    expectFmError(load({ location: 'w.bin', length: '12' }), 'FM_EXTERNAL_DATA', '"W"', '"w.bin"', 'length 12', '16 bytes');
  });
  it('malformed offset/length values and a missing location', () => {
    expectFmError(load({ location: 'w.bin', offset: '-4' }), 'FM_EXTERNAL_DATA', '"W"', 'offset', '"-4"');
    expectFmError(load({ location: 'w.bin', length: '1e3' }), 'FM_EXTERNAL_DATA', '"W"', 'length');
    expectFmError(load({ offset: '0' }), 'FM_EXTERNAL_DATA', '"W"', 'location');
  });
  it('a baseDir that does not exist', () => {
    expectFmError(load({ location: 'w.bin' }, path.join(root, 'missing-dir')), 'FM_EXTERNAL_DATA', '"W"', 'missing-dir');
  });
});
