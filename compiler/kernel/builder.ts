/**
 * The one place that builds WGSL kernels. A template binds its tensors in binding order, declares
 * workgroup memory, and gives the entry point's workgroup size, builtins and body; the builder
 * renders the declarations and the entry point and returns a KernelSpec whose metadata
 * (workgroup size, workgroup bytes, bindings, source parts) is recorded, never read back from the
 * WGSL text. Shapes and strides are specialised into the source as literals.
 */
import type { EntryParam, KernelSource, KernelSpec, LowerTensor } from './types.js';
import { TensorVar, type ElementType } from './tensor.js';
import type { Grid1D } from './wgsl.js';

/** The usual builtins, by the names the templates use for them. */
export const GID: EntryParam = { builtin: 'global_invocation_id', name: 'gid', type: 'vec3<u32>' };
export const WID: EntryParam = { builtin: 'workgroup_id', name: 'wid', type: 'vec3<u32>' };
export const LID: EntryParam = { builtin: 'local_invocation_id', name: 'lid', type: 'vec3<u32>' };
export const LID_INDEX: EntryParam = { builtin: 'local_invocation_index', name: 'lid', type: 'u32' };

/** bytes of a workgroup-memory element type: f32/i32/u32 scalars, vecN and matNxM of them, and arrays of those */
function elementBytes(type: string): number {
  const array = /^array<(.+), (\d+)>$/.exec(type);
  if (array) return elementBytes(array[1]!) * Number(array[2]);
  const vec = /^vec([234])<(\w+)>$/.exec(type);
  if (vec) return (vec[2] === 'f16' ? 2 : 4) * Number(vec[1]);
  const mat = /^mat([234])x([234])<\w+>$/.exec(type);
  if (mat) return 4 * Number(mat[1]) * Number(mat[2] === '3' ? 4 : mat[2]);
  if (type === 'f32' || type === 'i32' || type === 'u32') return 4;
  if (type === 'f16') return 2;
  throw new Error(`internal: workgroup memory of element type ${type} is not sized by the kernel builder`);
}

export interface EntryPoint {
  /** @workgroup_size: x, or [x, y] / [x, y, z] */
  workgroupSize: number | readonly number[];
  params: readonly EntryParam[];
  /**
   * statements of the entry point; rendered as `{\n  ${body}\n}`. `rawBody` instead gives the
   * text between the braces verbatim.
   */
  body?: string;
  rawBody?: string;
}

/**
 * WGSL extensions a kernel may enable, each needing the device feature of WGSL_EXTENSION_FEATURES
 * (the bundle records the features; a device without them runs the kernel's fallback variant).
 */
export type WgslExtension = 'f16' | 'subgroups' | 'chromium_experimental_subgroup_matrix';

export const WGSL_EXTENSION_FEATURES: Readonly<Record<WgslExtension, string>> = {
  f16: 'shader-f16',
  subgroups: 'subgroups',
  chromium_experimental_subgroup_matrix: 'chromium-experimental-subgroup-matrix',
};

export interface BuildParts {
  /** everything before the entry point; defaults to `${declarations}\n\n` */
  header?: string;
  /** `enable` directives, rendered before the header */
  extensions?: readonly WgslExtension[];
  entry: EntryPoint;
  /** after the entry point; default '\n' */
  trailer?: string;
  workgroups: readonly [number, number, number] | readonly number[];
  /** an upper bound of one invocation's loop iterations, where it grows with a dimension (KernelSpec.loopTrips) */
  loopTrips?: number;
}

export class KernelBuilder {
  private readonly vars: TensorVar[] = [];
  private workgroupMemoryBytes = 0;

  constructor(readonly label: string) {}

  /** Binds `tensor` as storage binding i (i = bindings so far), `array<element>` named `name`. */
  bind(name: string, tensor: LowerTensor, element: ElementType): TensorVar {
    const v = new TensorVar(name, tensor, element, this.vars.length, 'storage');
    this.vars.push(v);
    return v;
  }

  /**
   * Like bind, but a tensor already bound with the same element type is not bound again: its
   * variable is returned (so `Mul(x, x)` binds x once). Only for templates that address every
   * operand through its TensorVar (never by the name they passed), since the name may be another's.
   */
  bindOnce(name: string, tensor: LowerTensor, element: ElementType): TensorVar {
    const bound = this.vars.find((v) => v.kind === 'storage' && v.tensor.id === tensor.id && v.element === element);
    return bound ?? this.bind(name, tensor, element);
  }

  /** Binds a weight stored as an rgba32float texture_2d_array (read with textureLoad). */
  bindTexture(name: string, tensor: LowerTensor): TensorVar {
    if (!tensor.texture) throw new Error(`internal: kernel ${this.label} binds ${name} as a texture, but it is stored in a buffer`);
    const v = new TensorVar(name, tensor, 'f32', this.vars.length, 'texture');
    this.vars.push(v);
    return v;
  }

  /** The binding declarations so far, one per line. */
  declarations(): string {
    return this.vars.map((v) => v.declaration()).join('\n');
  }

  /** Declares `var<workgroup> name: array<element, count>;` (the returned text goes in the header) and counts its bytes. */
  workgroupArray(name: string, element: string, count: number): string {
    this.workgroupMemoryBytes += elementBytes(element) * count;
    return `var<workgroup> ${name}: array<${element}, ${count}>;`;
  }

  /**
   * The common kernel shape: one invocation per element of a 1-D grid (grid1D), the default
   * header (the declarations), `body` after the grid's prologue (which defines `i`).
   */
  buildGrid1D(grid: Grid1D, body: string, header?: string, loopTrips?: number): KernelSpec {
    return this.build({ header, entry: { workgroupSize: grid.workgroupSize, params: [GID], body: `${grid.prologue}\n  ${body}` }, workgroups: grid.workgroups, loopTrips });
  }

  build(parts: BuildParts): KernelSpec {
    const size = typeof parts.entry.workgroupSize === 'number' ? [parts.entry.workgroupSize] : [...parts.entry.workgroupSize];
    const workgroupSize: [number, number, number] = [size[0] ?? 1, size[1] ?? 1, size[2] ?? 1];
    const enables = (parts.extensions ?? []).map((e) => `enable ${e};\n`).join('');
    const source: KernelSource = {
      header: `${enables}${parts.header ?? `${this.declarations()}\n\n`}`,
      workgroupSize: size,
      params: parts.entry.params,
      body: parts.entry.rawBody ?? `\n  ${parts.entry.body ?? ''}\n`,
      trailer: parts.trailer ?? '\n',
    };
    const [x = 1, y = 1, z = 1] = parts.workgroups;
    return {
      label: this.label,
      wgsl: renderKernel(source),
      bindings: this.vars.map((v) => v.tensor),
      readOnly: this.vars.flatMap((v) => (v.kind === 'storage' && v.access === 'read' ? [v.binding] : [])),
      workgroups: [x, y, z],
      workgroupSize,
      workgroupBytes: this.workgroupMemoryBytes,
      source,
      ...(parts.extensions?.length ? { features: parts.extensions.map((e) => WGSL_EXTENSION_FEATURES[e]) } : {}),
      ...(parts.loopTrips !== undefined ? { loopTrips: parts.loopTrips } : {}),
    };
  }
}

export function renderParams(params: readonly EntryParam[]): string {
  return params.map((p) => `@builtin(${p.builtin}) ${p.name}: ${p.type}`).join(', ');
}

/** `@workgroup_size(...)` text of a size as templates write it: `64`, `16, 16`. */
export function workgroupSizeText(size: readonly number[]): string {
  return size.join(', ');
}

/** The WGSL of a kernel's parts: header, entry point, trailer. */
export function renderKernel(source: KernelSource): string {
  return `${source.header}@compute @workgroup_size(${workgroupSizeText(source.workgroupSize)})\nfn main(${renderParams(source.params)}) {${source.body}}${source.trailer}`;
}

/** Starts a kernel: bind its tensors, then build it. */
export function kernel(label: string): KernelBuilder {
  return new KernelBuilder(label);
}
