/**
 * Golden files for emitted WGSL and schedules. A diff here is a change in generated code: review
 * it, then accept it with `npm run test:update-golden` (sets FLASHMEM_UPDATE_GOLDEN=1).
 */
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { buildModel, randomFloats, type ModelSpec, type NodeSpec } from '../../fixtures/onnx-builder.js';
import { importOnnx } from '../../compiler/frontend/onnx.js';
import { runPipeline } from '../../compiler/passes/pipeline.js';
import { DEFAULT_LIMITS, type KernelChoices } from '../../compiler/target/limits.js';
import { compileStreamingContents, compileToContents } from '../../compiler/compile.js';
import { REPO_ROOT, tempDir } from '../harness/paths.js';
import { fixedTestProfile } from '../harness/profiles.js';

const GOLDEN_DIR = join(REPO_ROOT, 'test', 'golden', 'files');
const UPDATE = process.env.FLASHMEM_UPDATE_GOLDEN === '1';

function checkGolden(name: string, actual: string): void {
  const path = join(GOLDEN_DIR, name);
  if (UPDATE || !existsSync(path)) {
    if (!UPDATE) throw new Error(`golden file ${name} is missing: run npm run test:update-golden and review it`);
    mkdirSync(GOLDEN_DIR, { recursive: true });
    writeFileSync(path, actual);
    return;
  }
  expect(actual, `${name} differs from its golden file (review, then npm run test:update-golden)`).toBe(readFileSync(path, 'utf8'));
}

const f32 = 'float32' as const;

interface KernelCase {
  name: string;
  input: number[];
  node: Omit<NodeSpec, 'inputs' | 'outputs'>;
  weights?: { shape: number[] }[];
  /** a second runtime input instead of weights */
  input2?: number[];
  /** force the weight layout (2.5D texture kernels) */
  weightLayout?: 'buffer' | 'texture';
  /** the kernel variants of a real-GPU profile instead of the software rasteriser's */
  kernelChoices?: KernelChoices;
}

/** What kernelChoicesFor gives a real GPU, with occupancy targets small enough for these shapes to split K. */
const GPU_CHOICES: KernelChoices = { gemv: 'split-k', gemm: 'blocked', occupancyWorkgroups: 16, gemvUnroll: 16 };

const KERNEL_CASES: KernelCase[] = [
  { name: 'conv2d-3x3-relu', input: [1, 8, 10, 10], node: { opType: 'Conv', attrs: { pads: [1, 1, 1, 1] } }, weights: [{ shape: [8, 8, 3, 3] }, { shape: [8] }] },
  { name: 'conv2d-1x1', input: [1, 16, 7, 7], node: { opType: 'Conv' }, weights: [{ shape: [8, 16, 1, 1] }] },
  { name: 'conv2d-depthwise-stride2', input: [1, 8, 9, 9], node: { opType: 'Conv', attrs: { group: 8, strides: [2, 2], pads: [1, 1, 1, 1] } }, weights: [{ shape: [8, 1, 3, 3] }] },
  { name: 'gemm-transb', input: [1, 64], node: { opType: 'Gemm', attrs: { transB: 1 } }, weights: [{ shape: [10, 64] }, { shape: [10] }] },
  { name: 'gemv-split-k', input: [1, 300], node: { opType: 'Gemm', attrs: { transB: 1 } }, weights: [{ shape: [40, 300] }, { shape: [40] }] },
  { name: 'matmul-batched', input: [2, 5, 12], node: { opType: 'MatMul' }, input2: [2, 12, 7] },
  { name: 'gemm-blocked-k-chunks', input: [70, 400], node: { opType: 'Gemm', attrs: { transB: 1 } }, weights: [{ shape: [66, 400] }, { shape: [66] }], kernelChoices: GPU_CHOICES },
  { name: 'gemm-blocked-128x64', input: [300, 40], node: { opType: 'MatMul' }, weights: [{ shape: [40, 100] }], kernelChoices: { ...GPU_CHOICES, occupancyWorkgroups: 2 } },
  { name: 'gemv-k-chunks', input: [1, 2500], node: { opType: 'MatMul' }, weights: [{ shape: [2500, 40] }], kernelChoices: GPU_CHOICES },
  { name: 'conv2d-3x3-texture', input: [1, 8, 10, 10], node: { opType: 'Conv', attrs: { pads: [1, 1, 1, 1] } }, weights: [{ shape: [8, 8, 3, 3] }, { shape: [8] }], weightLayout: 'texture' },
  { name: 'conv2d-1x1-texture', input: [1, 16, 7, 7], node: { opType: 'Conv' }, weights: [{ shape: [8, 16, 1, 1] }], weightLayout: 'texture' },
  { name: 'gemm-transb-texture', input: [1, 64], node: { opType: 'Gemm', attrs: { transB: 1 } }, weights: [{ shape: [10, 64] }, { shape: [10] }], weightLayout: 'texture' },
  { name: 'matmul-k-tail-texture', input: [6, 7], node: { opType: 'MatMul' }, weights: [{ shape: [7, 12] }], weightLayout: 'texture' },
  { name: 'maxpool-3x3-s2', input: [1, 4, 11, 11], node: { opType: 'MaxPool', attrs: { kernel_shape: [3, 3], strides: [2, 2] } } },
  { name: 'global-average-pool', input: [1, 16, 7, 7], node: { opType: 'GlobalAveragePool' } },
  { name: 'softmax-last-axis', input: [4, 1000], node: { opType: 'Softmax', attrs: { axis: -1 } } },
  { name: 'add-broadcast', input: [2, 3, 4, 5], node: { opType: 'Add' }, input2: [3, 1, 5] },
  { name: 'transpose-0231', input: [1, 3, 4, 5], node: { opType: 'Transpose', attrs: { perm: [0, 2, 3, 1] } } },
  { name: 'resize-linear-half-pixel', input: [1, 2, 4, 4], node: { opType: 'Resize', attrs: { mode: 'linear', coordinate_transformation_mode: 'half_pixel' } } },
];

function kernelModel(c: KernelCase): ModelSpec {
  const nodeInputs = ['x'];
  const initializers: ModelSpec['initializers'] = [];
  const inputs = [{ name: 'x', dtype: f32, shape: c.input }];
  if (c.input2) {
    inputs.push({ name: 'x2', dtype: f32, shape: c.input2 });
    nodeInputs.push('x2');
  }
  c.weights?.forEach((w, i) => {
    initializers.push({ name: `w${i}`, dtype: f32, shape: w.shape, data: randomFloats(w.shape.reduce((a, b) => a * b, 1), i + 1) });
    nodeInputs.push(`w${i}`);
  });
  if (c.node.opType === 'Resize') {
    initializers.push({ name: 'scales', dtype: f32, shape: [4], data: [1, 1, 2, 2] });
    nodeInputs.push('', 'scales');
  }
  const nodes: NodeSpec[] = [{ ...c.node, inputs: nodeInputs, outputs: [c.name.endsWith('-relu') ? 'pre' : 'y'] }];
  if (c.name.endsWith('-relu')) nodes.push({ opType: 'Relu', inputs: ['pre'], outputs: ['y'] });
  return { opset: 13, inputs, outputs: [{ name: 'y', dtype: f32 }], initializers, nodes };
}

describe('golden WGSL', () => {
  for (const c of KERNEL_CASES) {
    it(c.name, () => {
      const { program } = runPipeline(importOnnx(buildModel(kernelModel(c))), { limits: DEFAULT_LIMITS, weightLayout: c.weightLayout, kernelChoices: c.kernelChoices }).state;
      const text = program!.kernels.map((k, i) => `// kernel ${i}: ${k.label} workgroups [${k.workgroups}]\n${k.wgsl}`).join('\n');
      checkGolden(`${c.name}.wgsl`, text);
    });
  }
});

describe('golden carrier kernel', () => {
  it('a streamed kernel carrying weight chunks from the staging ring', async () => {
    // a fixed profile: re-measuring the shipped profiles must not move this golden file
    const { contents } = await compileStreamingContents(join(REPO_ROOT, 'examples', 'mini-resnet', 'model.onnx'), { memoryBudget: 200 * 1024, profile: fixedTestProfile() });
    const run = contents.schedule.models[0]!.run;
    const carrier = run.find((s) => s.op === 'dispatch' && s.label.endsWith('+carry'));
    expect(carrier, 'the streamed schedule has a carrier kernel').toBeDefined();
    const path = contents.schedule.shaders[(carrier as { shader: number }).shader]!;
    checkGolden('carrier-kernel.wgsl', contents.shaders.get(path)!);
  });
});

describe('golden schedule', () => {
  it('conv-relu-pool-gemm schedule.json', () => {
    const tmp = tempDir('golden');
    try {
      const spec: ModelSpec = {
        opset: 13,
        inputs: [{ name: 'image', dtype: f32, shape: [1, 3, 8, 8] }],
        outputs: [{ name: 'logits', dtype: f32 }],
        initializers: [
          { name: 'conv.w', dtype: f32, shape: [4, 3, 3, 3], data: randomFloats(108, 1) },
          { name: 'fc.w', dtype: f32, shape: [10, 4], data: randomFloats(40, 2) },
          { name: 'fc.b', dtype: f32, shape: [10], data: randomFloats(10, 3) },
        ],
        nodes: [
          { opType: 'Conv', inputs: ['image', 'conv.w'], outputs: ['c'], attrs: { pads: [1, 1, 1, 1] } },
          { opType: 'Relu', inputs: ['c'], outputs: ['r'] },
          { opType: 'GlobalAveragePool', inputs: ['r'], outputs: ['p'] },
          { opType: 'Flatten', inputs: ['p'], outputs: ['f'] },
          { opType: 'Gemm', inputs: ['f', 'fc.w', 'fc.b'], outputs: ['logits'], attrs: { transB: 1 } },
        ],
      };
      const path = join(tmp.dir, 'tiny.onnx');
      writeFileSync(path, buildModel(spec));
      const { contents } = compileToContents(path);
      checkGolden('tiny-cnn.schedule.json', `${JSON.stringify(contents.schedule, null, 2)}\n`);
    } finally {
      tmp.cleanup();
    }
  });
});
