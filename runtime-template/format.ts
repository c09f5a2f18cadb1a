/**
 * The bundle format: BUNDLE_FORMAT (the generator replaces its initializer with the format version
 * and JSON Schemas of schemas/*.ts), a validator for the JSON Schema keywords zod's draft-2020-12
 * export uses, and facts of the schedule's layout.
 */
import type { Region, TextureBinding, TextureRegion } from '../schemas/schedule.js';
import { fail, quote } from './errors.js';

type JsonSchema = boolean | { readonly [keyword: string]: unknown };

interface EmbeddedFormat {
  formatVersion: number;
  schemas: { manifest: JsonSchema; schedule: JsonSchema; signature: JsonSchema };
}

/** Filled in at generation time from schemas/*.ts; formatVersion 0 marks an ungenerated template. */
export const BUNDLE_FORMAT: EmbeddedFormat = { formatVersion: 0, schemas: { manifest: false, schedule: false, signature: false } };

export const BUNDLE_FORMAT_NAME = 'flashmemc-bundle';
export const MANIFEST_PATH = 'manifest.json';
/** a manifest lists files and signatures only; anything this large is not one */
export const MAX_MANIFEST_BYTES = 16 << 20;

type KeywordCheck = (argument: unknown, value: unknown, path: string, schema: Readonly<Record<string, unknown>>) => string[];

/** keywords that never constrain a value */
const ANNOTATION_KEYWORDS = new Set(['$schema', '$id', '$comment', 'title', 'description', 'default', 'examples']);
const MAX_REPORTED_VIOLATIONS = 5;

/**
 * Above 0 while testing whether a value matches an alternative of anyOf/oneOf: only whether it has a
 * violation matters then, so checks stop at the first one and build no paths. (Every step of a
 * schedule is tested against each step form: building every message of every mismatching form made
 * validation an order of magnitude slower than parsing.)
 */
let probing = 0;

/** a schema's constraining keywords, listed once per schema object */
const keywordLists = new WeakMap<object, [string, unknown][]>();
function keywordsOf(schema: { readonly [keyword: string]: unknown }): [string, unknown][] {
  let list = keywordLists.get(schema);
  if (!list) keywordLists.set(schema, (list = Object.entries(schema).filter(([keyword]) => !ANNOTATION_KEYWORDS.has(keyword))));
  return list;
}

function matches(schema: JsonSchema, value: unknown, path: string): boolean {
  probing++;
  try {
    return schemaViolations(schema, value, path).length === 0;
  } finally {
    probing--;
  }
}

function schemaViolations(schema: JsonSchema, value: unknown, path = ''): string[] {
  if (schema === true) return [];
  if (schema === false) return [`${pointer(path)}: no value is allowed here`];
  const violations: string[] = [];
  for (const [keyword, argument] of keywordsOf(schema)) {
    const check = KEYWORD_CHECKS[keyword];
    // an unknown keyword may constrain values in ways this validator would silently accept
    if (!check) violations.push(`${pointer(path)}: schema keyword "${keyword}" is not supported by this runtime`);
    else violations.push(...check(argument, value, path, schema));
    if (probing > 0 && violations.length > 0) break;
  }
  return violations;
}

function pointer(path: string): string {
  return path === '' ? '/' : path;
}

/** A JSON pointer one level down; keys come from the bundle, so long ones are cut (messages stay short). */
function childPath(path: string, key: string | number): string {
  if (probing > 0) return path;
  const name = String(key);
  const shown = name.length > 200 ? `${name.slice(0, 200)}…` : name;
  return `${path}/${/[~/]/.test(shown) ? shown.replace(/~/g, '~0').replace(/\//g, '~1') : shown}`;
}

function jsonTypeOf(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'array';
  if (typeof value === 'number') return Number.isInteger(value) ? 'integer' : 'number';
  return typeof value;
}

function hasJsonType(type: string, value: unknown): boolean {
  switch (type) {
    case 'integer': return typeof value === 'number' && Number.isInteger(value);
    case 'number': return typeof value === 'number' && Number.isFinite(value);
    case 'object': return isPlainObject(value);
    case 'array': return Array.isArray(value);
    case 'null': return value === null;
    default: return typeof value === type;
  }
}

export function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function jsonEqual(a: unknown, b: unknown): boolean {
  if (a === b) return true;
  if (Array.isArray(a) && Array.isArray(b)) return a.length === b.length && a.every((item, i) => jsonEqual(item, b[i]));
  if (isPlainObject(a) && isPlainObject(b)) {
    const keys = Object.keys(a);
    return keys.length === Object.keys(b).length && keys.every((key) => key in b && jsonEqual(a[key], b[key]));
  }
  return false;
}

const compiledPatterns = new Map<string, RegExp>();
function compiledPattern(source: string): RegExp {
  let pattern = compiledPatterns.get(source);
  if (!pattern) compiledPatterns.set(source, (pattern = new RegExp(source, 'u')));
  return pattern;
}

function asSchemaList(argument: unknown): JsonSchema[] {
  return Array.isArray(argument) ? (argument as JsonSchema[]) : [];
}

/** Alternatives of oneOf/anyOf: report the one that came closest, so the message names the real problem. */
function closestAlternative(alternatives: JsonSchema[], value: unknown, path: string): string[] {
  const results = alternatives.map((alternative) => schemaViolations(alternative, value, path));
  return results.reduce((best, next) => (next.length < best.length ? next : best), results[0] ?? []);
}

const KEYWORD_CHECKS: Record<string, KeywordCheck> = {
  type: (type, value, path) => {
    const types = Array.isArray(type) ? (type as string[]) : [type as string];
    return types.some((t) => hasJsonType(t, value)) ? [] : [`${pointer(path)}: expected ${types.join(' or ')}, got ${jsonTypeOf(value)}`];
  },
  const: (expected, value, path) =>
    (jsonEqual(expected, value) ? [] : [`${pointer(path)}: must be ${JSON.stringify(expected)}`]),
  enum: (allowed, value, path) =>
    (asArray(allowed).some((a) => jsonEqual(a, value)) ? [] : [`${pointer(path)}: must be one of ${JSON.stringify(allowed)}`]),
  pattern: (source, value, path) =>
    (typeof value !== 'string' || compiledPattern(source as string).test(value) ? [] : [`${pointer(path)}: ${quote(value)} does not match ${source}`]),
  minLength: (min, value, path) =>
    (typeof value !== 'string' || [...value].length >= (min as number) ? [] : [`${pointer(path)}: must have at least ${min} characters`]),
  minimum: (min, value, path) =>
    (typeof value !== 'number' || value >= (min as number) ? [] : [`${pointer(path)}: ${value} is below the minimum ${min}`]),
  maximum: (max, value, path) =>
    (typeof value !== 'number' || value <= (max as number) ? [] : [`${pointer(path)}: ${value} is above the maximum ${max}`]),
  minItems: (min, value, path) =>
    (!Array.isArray(value) || value.length >= (min as number) ? [] : [`${pointer(path)}: needs at least ${min} items, has ${value.length}`]),
  maxItems: (max, value, path) =>
    (!Array.isArray(value) || value.length <= (max as number) ? [] : [`${pointer(path)}: allows at most ${max} items, has ${value.length}`]),
  prefixItems: (schemas, value, path) => {
    if (!Array.isArray(value)) return [];
    return asSchemaList(schemas).flatMap((schema, i) => (i < value.length ? schemaViolations(schema, value[i], childPath(path, i)) : []));
  },
  items: (schema, value, path, parent) => {
    if (!Array.isArray(value)) return [];
    const first = asSchemaList(parent.prefixItems).length;
    // stop at a few: a hostile array of a million bad items would otherwise cost minutes and gigabytes
    const violations: string[] = [];
    const enough = probing > 0 ? 1 : MAX_REPORTED_VIOLATIONS + 1;
    for (let i = first; i < value.length && violations.length < enough; i++) {
      violations.push(...schemaViolations(schema as JsonSchema, value[i], childPath(path, i)));
    }
    return violations;
  },
  required: (names, value, path) => {
    if (!isPlainObject(value)) return [];
    return asArray(names).filter((name) => !Object.hasOwn(value, name as string)).map((name) => `${pointer(path)}: missing property "${name}"`);
  },
  properties: (properties, value, path) => {
    if (!isPlainObject(value)) return [];
    const violations: string[] = [];
    for (const [key, schema] of Object.entries(properties as Record<string, JsonSchema>)) {
      if (Object.hasOwn(value, key)) violations.push(...schemaViolations(schema, value[key], childPath(path, key)));
      if (probing > 0 && violations.length > 0) break;
    }
    return violations;
  },
  additionalProperties: (schema, value, path, parent) => {
    if (!isPlainObject(value)) return [];
    const declared = isPlainObject(parent.properties) ? parent.properties : {};
    return Object.keys(value).filter((key) => !Object.hasOwn(declared, key)).flatMap((key) =>
      (schema === false ? [`${pointer(path)}: unexpected property ${quote(key)}`] : schemaViolations(schema as JsonSchema, value[key], childPath(path, key))));
  },
  propertyNames: (schema, value, path) => {
    if (!isPlainObject(value)) return [];
    return Object.keys(value).flatMap((key) => schemaViolations(schema as JsonSchema, key, `${path}/<name ${quote(key)}>`));
  },
  anyOf: (alternatives, value, path) => {
    const list = asSchemaList(alternatives);
    if (list.some((alternative) => matches(alternative, value, path))) return [];
    const none = `${pointer(path)}: matches none of the ${list.length} allowed forms`;
    return probing > 0 ? [none] : [none, ...closestAlternative(list, value, path)];
  },
  oneOf: (alternatives, value, path) => {
    const list = asSchemaList(alternatives);
    const matching = list.filter((alternative) => matches(alternative, value, path)).length;
    if (matching === 1) return [];
    if (matching > 1) return [`${pointer(path)}: matches ${matching} of the allowed forms, exactly one is required`];
    const none = `${pointer(path)}: matches none of the ${list.length} allowed forms`;
    return probing > 0 ? [none] : [none, ...closestAlternative(list, value, path)];
  },
};

function asArray(value: unknown): unknown[] {
  return Array.isArray(value) ? value : [];
}

export function validateJson<T>(schema: JsonSchema, value: unknown, file: string): T {
  const violations = schemaViolations(schema, value);
  if (violations.length > 0) {
    const shown = violations.slice(0, MAX_REPORTED_VIOLATIONS).join('; ');
    const more = violations.length > MAX_REPORTED_VIOLATIONS ? ' (and more)' : '';
    fail('FM_BUNDLE_INVALID', `${file} does not match the bundle format: ${shown}${more}`);
  }
  return value as T;
}

/** bytes per rgba32float texel */
export const TEXEL_BYTES = 16;

export function isTextureRegion(dst: Region | TextureRegion): dst is TextureRegion {
  return 'texture' in dst;
}

export function isTextureBinding(binding: Region | TextureBinding): binding is TextureBinding {
  return 'texture' in binding;
}

/** Shared memory: the key of each of a plan's buffers, its role and its ordinal within the role (the n-th 'activations' buffer of every plan is one GPU buffer). */
export function sharedBufferKeys(plan: { buffers: readonly { role: string }[] }): string[] {
  const ordinals = new Map<string, number>();
  return plan.buffers.map((buffer) => {
    const ordinal = ordinals.get(buffer.role) ?? 0;
    ordinals.set(buffer.role, ordinal + 1);
    return `${buffer.role}#${ordinal}`;
  });
}
