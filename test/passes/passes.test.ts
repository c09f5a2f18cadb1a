/** The pass pipeline: each pass does its rewrite (no GPU; passes.gpu.test.ts runs the result against onnxruntime). */
import { existsSync, readdirSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, type ModelSpec } from '../../fixtures/onnx-builder.js';
import { importOnnx } from '../../compiler/frontend/onnx.js';
import { PIPELINE, runPipeline } from '../../compiler/passes/pipeline.js';
import { DEFAULT_LIMITS } from '../../compiler/target/limits.js';
import { storageRoot } from '../../compiler/lower/program.js';
import { convBnRelu } from './conv-bn-relu.js';
import { tempDir } from '../harness/paths.js';

const f32 = 'float32' as const;

function optimise(spec: ModelSpec) {
  return runPipeline(importOnnx(buildModel(spec)), { limits: DEFAULT_LIMITS }).state;
}

describe('graph passes', () => {
  it('fold BatchNormalization into Conv, fuse Relu, drop dead nodes and unused weights', () => {
    const { graph, program } = optimise(convBnRelu());
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Conv']);
    expect(graph.nodes[0]!.fusedActivation?.opType).toBe('Relu');
    expect(graph.values.has('unused')).toBe(false);
    expect(program!.kernels.every((k) => k.opType === 'Conv')).toBe(true);
  });

  it('does not fuse an activation whose input has another consumer', () => {
    const spec: ModelSpec = {
      inputs: [{ name: 'a', dtype: f32, shape: [2, 8] }, { name: 'b', dtype: f32, shape: [2, 8] }],
      outputs: [{ name: 'y', dtype: f32 }, { name: 's', dtype: f32 }],
      nodes: [
        { opType: 'Add', inputs: ['a', 'b'], outputs: ['s'] },
        { opType: 'Relu', inputs: ['s'], outputs: ['y'] },
      ],
    };
    const { graph } = optimise(spec);
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Add', 'Relu']);
  });

  it('folds Shape -> Gather -> Concat subgraphs feeding Reshape', () => {
    const spec: ModelSpec = {
      opset: 13,
      inputs: [{ name: 'x', dtype: f32, shape: [2, 3, 4] }],
      outputs: [{ name: 'y', dtype: f32 }],
      initializers: [
        { name: 'zero', dtype: 'int64', shape: [], data: [0] },
        { name: 'minus1', dtype: 'int64', shape: [1], data: [-1] },
      ],
      nodes: [
        { opType: 'Shape', inputs: ['x'], outputs: ['shape'] },
        { opType: 'Gather', inputs: ['shape', 'zero'], outputs: ['batch'], attrs: { axis: 0 } },
        { opType: 'Unsqueeze', inputs: ['batch', 'axes'], outputs: ['batch1'] },
        { opType: 'Constant', inputs: [], outputs: ['axes'], attrs: { value: { tensor: { dtype: 'int64', shape: [1], data: [0] } } } },
        { opType: 'Concat', inputs: ['batch1', 'minus1'], outputs: ['target'], attrs: { axis: 0 } },
        { opType: 'Reshape', inputs: ['x', 'target'], outputs: ['r'] },
        { opType: 'Relu', inputs: ['r'], outputs: ['y'] },
      ],
    };
    // Constant is listed after its consumer on purpose: the frontend sorts nodes topologically.
    const { graph } = optimise(spec);
    expect(graph.nodes.map((n) => n.opType)).toEqual(['Reshape', 'Relu']);
    expect(graph.values.get('target')!.data!.data).toEqual(new Float64Array([2, -1]));
    expect(graph.values.get('y')!.type.shape).toEqual([2, 12]);
  });

  it('memory plan never overlaps two tensors that are live at the same time, and reuses memory', () => {
    const chain: ModelSpec = {
      inputs: [{ name: 'x', dtype: f32, shape: [64, 64] }],
      outputs: [{ name: 'y', dtype: f32 }],
      nodes: ['Sigmoid', 'Tanh', 'Sigmoid', 'Tanh', 'Sigmoid', 'Softsign'].map((op, i, all) => ({
        opType: op, inputs: [i === 0 ? 'x' : `t${i}`], outputs: [i === all.length - 1 ? 'y' : `t${i + 1}`],
      })),
    };
    const { program, plan } = optimise(chain);
    const live = [...plan!.placements].map(([id, p]) => ({ id, ...p, span: plan!.lifetimes.get(id)! })).filter((t) => program!.tensors.get(t.id)!.role !== 'weight');
    for (const a of live) {
      for (const b of live) {
        if (a === b || a.buffer !== b.buffer) continue;
        const timeOverlap = a.span.first <= b.span.last && b.span.first <= a.span.last;
        const byteOverlap = a.offset < b.offset + b.size && b.offset < a.offset + a.size;
        expect(timeOverlap && byteOverlap, `${a.id} and ${b.id}`).toBe(false);
      }
    }
    const total = live.reduce((s, t) => s + t.size, 0);
    expect(plan!.activationBytes).toBeLessThan(total / 2);
    expect(storageRoot(program!, 'y').id).toBe('y');
  });

  it('--dump-ir writes the IR after every pass', () => {
    const tmp = tempDir('dump');
    try {
      runPipeline(importOnnx(buildModel(convBnRelu())), { limits: DEFAULT_LIMITS, dumpDir: tmp.dir });
      const files = readdirSync(tmp.dir).sort();
      expect(files).toEqual(['00-imported.txt', ...PIPELINE.map((p, i) => `${String(i + 1).padStart(2, '0')}-${p.name}.txt`)]);
      expect(existsSync(join(tmp.dir, files[1]!))).toBe(true);
    } finally {
      tmp.cleanup();
    }
  });
});
