import { fail, quoteName } from '../errors.js';
import type { Attrs, ConstTensor, Node } from './types.js';

function wrongType(node: Node, name: string, want: string): never {
  fail('FM_ONNX_INVALID', `node ${quoteName(node.name)} (${node.opType}): attribute ${quoteName(name)} must be ${want}`);
}

export function attrInt(node: Node, name: string, fallback: number): number;
export function attrInt(node: Node, name: string): number | undefined;
export function attrInt(node: Node, name: string, fallback?: number): number | undefined {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.type !== 'int') wrongType(node, name, 'an int');
  return a.value;
}

export function attrFloat(node: Node, name: string, fallback: number): number;
export function attrFloat(node: Node, name: string): number | undefined;
export function attrFloat(node: Node, name: string, fallback?: number): number | undefined {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.type === 'float' || a.type === 'int') return a.value;
  wrongType(node, name, 'a float');
}

export function attrInts(node: Node, name: string, fallback: number[]): number[];
export function attrInts(node: Node, name: string): number[] | undefined;
export function attrInts(node: Node, name: string, fallback?: number[]): number[] | undefined {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.type === 'ints') return a.value;
  if (a.type === 'int') return [a.value];
  wrongType(node, name, 'a list of ints');
}

export function attrFloats(node: Node, name: string): number[] | undefined {
  const a = node.attrs[name];
  if (!a) return undefined;
  if (a.type === 'floats') return a.value;
  if (a.type === 'float') return [a.value];
  wrongType(node, name, 'a list of floats');
}

export function attrString(node: Node, name: string, fallback: string): string;
export function attrString(node: Node, name: string): string | undefined;
export function attrString(node: Node, name: string, fallback?: string): string | undefined {
  const a = node.attrs[name];
  if (!a) return fallback;
  if (a.type !== 'string') wrongType(node, name, 'a string');
  return a.value;
}

export function attrTensor(node: Node, name: string): ConstTensor | undefined {
  const a = node.attrs[name];
  if (!a) return undefined;
  if (a.type !== 'tensor') wrongType(node, name, 'a tensor');
  return a.value;
}

export function cloneAttrs(attrs: Attrs): Attrs {
  return { ...attrs };
}
