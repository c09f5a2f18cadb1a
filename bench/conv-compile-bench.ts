/**
 * Times WebGPU pipeline creation (shader compilation) of Conv kernels, which on a software GPU
 * can cost more than running them: a network with a hundred distinct conv shapes compiles a
 * hundred kernels.
 *
 *   npx tsx bench/conv-compile-bench.ts [--tiles auto,16x8,8x8]
 */
import { createNodeDevice, keepAlive } from '../compiler/target/webgpu.js';
import { convOp, lowerConvWithTiles, type ConvTiles } from '../compiler/ops/conv/index.js';
import { DEFAULT_LIMITS } from '../compiler/target/limits.js';
import { type KernelSpec, type LowerTensor } from '../compiler/kernel/types.js';
import { type LowerContext } from '../compiler/ops/op.js';
import { makeConst } from '../compiler/ir/tensor.js';
import { numElements, type Attrs, type Node } from '../compiler/ir/types.js';

const SHAPES: { name: string; x: number[]; w: number[]; attrs: Attrs }[] = [
  { name: '3x3 128->32 @56 (DenseNet)', x: [1, 128, 56, 56], w: [32, 128, 3, 3], attrs: { pads: { type: 'ints', value: [1, 1, 1, 1] } } },
  { name: '3x3 64->64 @56 (ResNet)', x: [1, 64, 56, 56], w: [64, 64, 3, 3], attrs: { pads: { type: 'ints', value: [1, 1, 1, 1] } } },
  { name: '1x1 160->128 @56 (DenseNet)', x: [1, 160, 56, 56], w: [128, 160, 1, 1], attrs: {} },
  { name: '1x1 544->128 @14 (DenseNet)', x: [1, 544, 14, 14], w: [128, 544, 1, 1], attrs: {} },
  { name: '1x1 992->128 @7 (DenseNet)', x: [1, 992, 7, 7], w: [128, 992, 1, 1], attrs: {} },
];


function lower(shape: (typeof SHAPES)[number], tiles: ConvTiles | 'auto'): KernelSpec {
  const node: Node = { name: 'bench', opType: 'Conv', domain: '', inputs: ['x', 'w'], outputs: ['y'], attrs: shape.attrs };
  const w = makeConst('float32', shape.w, new Float32Array(numElements(shape.w)));
  const [yType] = convOp.inferTypes({ node, opset: 13, inputs: [{ dtype: 'float32', shape: shape.x }, w], consts: [undefined, w] });
  const kernels: KernelSpec[] = [];
  const ctx: LowerContext = {
    node, opset: 13, limits: DEFAULT_LIMITS,
    inputs: [{ id: 'x', type: { dtype: 'float32', shape: shape.x } }, { id: 'w', type: w, data: w }],
    outputs: [{ id: 'y', type: yType! }],
    kernel: (k) => kernels.push(k),
    constant: (label, t): LowerTensor => ({ id: label, type: t, data: t }),
    scratch: (label, type): LowerTensor => ({ id: label, type }),
  };
  if (tiles === 'auto') convOp.lower!(ctx);
  else lowerConvWithTiles(ctx, tiles);
  return kernels.at(-1)!;
}

async function main(): Promise<void> {
  const args = process.argv.slice(2);
  const variants = (args.includes('--tiles') ? args[args.indexOf('--tiles') + 1]! : 'auto').split(',').map((s): ConvTiles | 'auto' => {
    if (s === 'auto') return 'auto';
    const [ocTile, pxTile] = s.split('x').map(Number);
    return { ocTile: ocTile!, pxTile: pxTile! };
  });
  const { device } = await createNodeDevice();
  for (const shape of SHAPES) {
    for (const variant of variants) {
      let kernel: KernelSpec;
      try {
        kernel = lower(shape, variant);
      } catch (e) {
        console.log(`${shape.name.padEnd(30)} ${JSON.stringify(variant)}: ${(e as Error).message}`);
        continue;
      }
      const c0 = process.cpuUsage();
      const t0 = performance.now();
      const pipeline = await keepAlive(device.createComputePipelineAsync({ layout: 'auto', compute: { module: device.createShaderModule({ code: kernel.wgsl }), entryPoint: 'main' } }));
      const created = performance.now() - t0;
      // software drivers JIT the shader at its first dispatch: run one workgroup on tiny buffers
      const buffers = kernel.bindings.map(() => device.createBuffer({ size: 64, usage: GPUBufferUsage.STORAGE }));
      const bindGroup = device.createBindGroup({ layout: pipeline.getBindGroupLayout(0), entries: buffers.map((buffer, binding) => ({ binding, resource: { buffer } })) });
      const encoder = device.createCommandEncoder();
      const pass = encoder.beginComputePass();
      pass.setPipeline(pipeline);
      pass.setBindGroup(0, bindGroup);
      pass.dispatchWorkgroups(1, 1, 1);
      pass.end();
      device.queue.submit([encoder.finish()]);
      await keepAlive(device.queue.onSubmittedWorkDone());
      const wall = performance.now() - t0;
      const cpu = process.cpuUsage(c0);
      for (const b of buffers) b.destroy();
      const label = variant === 'auto' ? 'auto' : `${variant.ocTile}x${variant.pxTile}`;
      console.log(`${shape.name.padEnd(30)} ${label.padEnd(6)} pipeline ${created.toFixed(0).padStart(4)} ms, + first dispatch ${wall.toFixed(0).padStart(5)} ms (cpu ${((cpu.user + cpu.system) / 1000).toFixed(0)} ms), ${kernel.wgsl.length} chars WGSL`);
    }
  }
  process.exit(0);
}

await main();
