/**
 * A tensor bound to a kernel (in the spirit of ONNX Runtime Web's IndicesHelper): it knows its
 * binding, WGSL element type, shape and strides, declares its own binding and renders element
 * and index expressions with the shape specialised into literals.
 */
import { numElements } from '../ir/types.js';
import { stridesOf, broadcastStrides } from './strides.js';
import { textureDecl } from './texture-layout.js';
import type { LowerTensor } from './types.js';
import { dot, unravel } from './wgsl.js';

/** A storage binding's element type: a scalar or a vec4 of one. */
export type ElementType = 'f32' | 'i32' | 'u32' | 'vec4<f32>' | 'vec4<i32>' | 'vec4<u32>' | 'vec2<f32>' | 'f16' | 'vec4<f16>';

/** How a kernel may access a storage binding. */
export type StorageAccess = 'read' | 'read_write';

/**
 * A storage binding's declaration. Bindings are read_write unless their tensor is marked
 * readOnly (LowerTensor.readOnly): tensors of one arena buffer are bound in the same dispatch as
 * the kernel's writable output, and WebGPU forbids a buffer being both read-only and writable
 * storage in one usage scope. Also used for bindings that are not tensors (the carrier's ring).
 */
export function storageDeclaration(binding: number, name: string, element: ElementType, access: StorageAccess = 'read_write'): string {
  return `@group(0) @binding(${binding}) var<storage, ${access}> ${name}: array<${element}>;`;
}

export class TensorVar {
  readonly shape: readonly number[];
  readonly strides: readonly number[];

  constructor(
    readonly name: string,
    readonly tensor: LowerTensor,
    readonly element: ElementType,
    readonly binding: number,
    readonly kind: 'storage' | 'texture',
  ) {
    this.shape = tensor.type.shape;
    this.strides = stridesOf(this.shape);
  }

  /** elements of the tensor (scalars, not vec4s) */
  get size(): number {
    return numElements(this.shape);
  }

  /** values per element of the binding's array (4 for vec4) */
  get width(): number {
    return /^vec(\d)/.exec(this.element) ? Number(this.element[3]) : 1;
  }

  /** 'read' for tensors lowering marked readOnly; a template never writes a kernel's inputs */
  get access(): StorageAccess {
    return this.tensor.readOnly ? 'read' : 'read_write';
  }

  declaration(): string {
    return this.kind === 'texture' ? textureDecl(this.binding, this.name) : storageDeclaration(this.binding, this.name, this.element, this.access);
  }

  /** `name[index]` */
  at(index: string): string {
    return `${this.name}[${index}]`;
  }

  /** the flat offset of per-axis coordinates (stride-1 and size-1 terms simplified) */
  offset(coords: readonly string[]): string {
    return dot(coords, this.strides);
  }

  /** the flat offset of an element of `outShape` that this tensor broadcasts to, from outShape's coordinates */
  broadcastOffset(coords: readonly string[], outShape: readonly number[]): string {
    return dot(coords, broadcastStrides(this.shape, outShape));
  }

  /** statements decomposing a flat index into per-axis coordinates `${prefix}0..` of this tensor's shape */
  unravel(flat: string, prefix: string): string {
    return unravel(flat, this.shape, prefix);
  }
}
