// Seeded random inputs for the fuzz test: JSON guided by a JSON schema (OpenAPI
// request bodies and the protocol's TypeBox schemas are both JSON Schema),
// mutations of valid values and of bytes, and plain noise. One seed gives the
// same sequence of inputs, so a failure reproduces with LINESIGHT_FUZZ_SEED.

/** A small, fast, seeded PRNG (mulberry32). */
export class Rng {
  #state: number;

  constructor(seed: number) {
    this.#state = seed >>> 0;
  }

  /** A float in [0, 1). */
  next(): number {
    this.#state = (this.#state + 0x6d2b79f5) >>> 0;
    let t = this.#state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  }

  /** An integer in [min, max]. */
  int(min: number, max: number): number {
    return min + Math.floor(this.next() * (max - min + 1));
  }

  /** True with probability `p`. */
  chance(p: number): boolean {
    return this.next() < p;
  }

  /** One element of a non-empty list. */
  pick<T>(list: readonly T[]): T {
    if (list.length === 0) throw new Error('pick from an empty list');
    return list[this.int(0, list.length - 1)] as T;
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    const out = Buffer.allocUnsafe(n);
    for (let i = 0; i < n; i++) out[i] = this.int(0, 255);
    return out;
  }
}

/** Strings that break naive code: empty, huge, control characters, paths, unicode, numbers as text. */
export function nastyString(rng: Rng): string {
  switch (rng.int(0, 11)) {
    case 0:
      return '';
    case 1:
      return 'x'.repeat(rng.pick([256, 4096, 70_000, 1_100_000]));
    case 2:
      return '../../../../etc/passwd';
    case 3:
      return '\u0000\u0001\u001f\u007f';
    case 4:
      return '💥'.repeat(rng.int(1, 300));
    case 5:
      return '\ud800';
    case 6:
      return String(rng.pick([-1, 0, 1e308, Number.MAX_SAFE_INTEGER + 2]));
    case 7:
      return '%00%2e%2e%2f';
    case 8:
      return '<script>alert(1)</script>';
    case 9:
      return "' OR 1=1; --";
    case 10:
      return '1.0.0-..';
    default:
      return rng.bytes(rng.int(1, 64)).toString('latin1');
  }
}

/** A random JSON value, up to `depth` levels deep. */
export function randomJson(rng: Rng, depth = 3): unknown {
  const kind = rng.int(0, depth > 0 ? 8 : 5);
  switch (kind) {
    case 0:
      return null;
    case 1:
      return rng.chance(0.5);
    case 2:
      return rng.pick([0, -1, 1.5, 1e308, -1e308, 2 ** 53 + 1, rng.int(-1000, 1000)]);
    case 3:
      return nastyString(rng);
    case 4:
      return 'a'.repeat(rng.int(0, 20));
    case 5:
      return rng.int(0, 1e6);
    case 6:
    case 7: {
      const out: Record<string, unknown> = {};
      const n = rng.int(0, 6);
      for (let i = 0; i < n; i++)
        out[rng.chance(0.2) ? nastyString(rng) : `k${rng.int(0, 9)}`] = randomJson(rng, depth - 1);
      // As own keys, so JSON.stringify writes them: prototype pollution attempts.
      if (rng.chance(0.1))
        Object.defineProperty(out, '__proto__', {
          value: { polluted: true },
          enumerable: true,
          writable: true,
          configurable: true,
        });
      if (rng.chance(0.1)) out['constructor'] = { prototype: { polluted: true } };
      return out;
    }
    default:
      return Array.from({ length: rng.int(0, 6) }, () => randomJson(rng, depth - 1));
  }
}

/** A JSON schema node, as much as the generator reads of one. */
export interface SchemaNode {
  $ref?: string;
  type?: string | string[];
  const?: unknown;
  enum?: unknown[];
  anyOf?: SchemaNode[];
  oneOf?: SchemaNode[];
  allOf?: SchemaNode[];
  properties?: Record<string, SchemaNode>;
  required?: string[];
  additionalProperties?: boolean | SchemaNode;
  patternProperties?: Record<string, SchemaNode>;
  items?: SchemaNode;
  minItems?: number;
  maxItems?: number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number | boolean;
  exclusiveMaximum?: number | boolean;
  format?: string;
  pattern?: string;
}

/** Resolves `#/components/schemas/X`-style references against a root document. */
export type RefResolver = (ref: string) => SchemaNode | undefined;

/** A resolver for local JSON pointers into `root`. */
export function refResolver(root: unknown): RefResolver {
  return (ref) => {
    if (!ref.startsWith('#/')) return undefined;
    let node: unknown = root;
    for (const part of ref.slice(2).split('/')) {
      if (node === null || typeof node !== 'object') return undefined;
      node = (node as Record<string, unknown>)[part.replace(/~1/g, '/').replace(/~0/g, '~')];
    }
    return node as SchemaNode | undefined;
  };
}

/**
 * A value that satisfies `schema` as far as this generator understands it
 * (types, const, enum, ranges, lengths, required properties, date-time). Patterns are
 * not followed, so a string with a pattern is usually invalid: that is fine for a fuzzer.
 */
export function fromSchema(
  schema: SchemaNode | undefined,
  rng: Rng,
  resolve: RefResolver = () => undefined,
  depth = 6,
): unknown {
  if (schema === undefined || depth < 0) return null;
  if (schema.$ref !== undefined) return fromSchema(resolve(schema.$ref), rng, resolve, depth - 1);
  if ('const' in schema) return schema.const;
  if (schema.enum !== undefined && schema.enum.length > 0) return rng.pick(schema.enum);
  const union = schema.anyOf ?? schema.oneOf;
  if (union !== undefined && union.length > 0)
    return fromSchema(rng.pick(union), rng, resolve, depth - 1);
  if (schema.allOf !== undefined && schema.allOf.length > 0) {
    const merged: Record<string, unknown> = {};
    for (const part of schema.allOf) {
      const v = fromSchema(part, rng, resolve, depth - 1);
      if (v !== null && typeof v === 'object' && !Array.isArray(v)) Object.assign(merged, v);
    }
    return merged;
  }
  const type = Array.isArray(schema.type) ? rng.pick(schema.type) : schema.type;
  switch (type) {
    case 'object': {
      const out: Record<string, unknown> = {};
      const required = new Set(schema.required ?? []);
      for (const [key, prop] of Object.entries(schema.properties ?? {}))
        if (required.has(key) || rng.chance(0.5))
          out[key] = fromSchema(prop, rng, resolve, depth - 1);
      if (typeof schema.additionalProperties === 'object' && rng.chance(0.5))
        out[`k${rng.int(0, 99)}`] = fromSchema(
          schema.additionalProperties,
          rng,
          resolve,
          depth - 1,
        );
      return out;
    }
    case 'array': {
      const min = schema.minItems ?? 0;
      const max = Math.min(schema.maxItems ?? min + 3, min + 3);
      return Array.from({ length: rng.int(min, max) }, () =>
        fromSchema(schema.items, rng, resolve, depth - 1),
      );
    }
    case 'string': {
      if (schema.format === 'date-time') return new Date(rng.int(0, 2e12)).toISOString();
      const min = schema.minLength ?? 0;
      const max = Math.min(schema.maxLength ?? min + 12, min + 12);
      return Array.from({ length: rng.int(Math.max(min, 1), Math.max(max, 1)) }, () =>
        rng.pick([...'abcdefghijklmnopqrstuvwxyz0123456789-.']),
      )
        .join('')
        .slice(0, Math.max(max, min));
    }
    case 'integer':
    case 'number': {
      const lo =
        schema.minimum ??
        (typeof schema.exclusiveMinimum === 'number' ? schema.exclusiveMinimum + 1 : 0);
      const hi =
        schema.maximum ??
        (typeof schema.exclusiveMaximum === 'number' ? schema.exclusiveMaximum - 1 : lo + 1000);
      const v = lo + rng.next() * Math.max(0, hi - lo);
      return type === 'integer' ? Math.floor(v) : v;
    }
    case 'boolean':
      return rng.chance(0.5);
    case 'null':
      return null;
    default:
      return randomJson(rng, 2);
  }
}

/**
 * A mutation of a JSON value: one field somewhere gets the wrong type, a nasty
 * string, an extreme number, or is removed; or a field is added; or the value is
 * replaced whole.
 */
export function mutateJson(value: unknown, rng: Rng): unknown {
  if (rng.chance(0.1)) return randomJson(rng);
  const copy: unknown = structuredClone(value);
  const containers: (Record<string, unknown> | unknown[])[] = [];
  const walk = (v: unknown) => {
    if (v !== null && typeof v === 'object') {
      containers.push(v as Record<string, unknown>);
      for (const child of Object.values(v)) walk(child);
    }
  };
  walk(copy);
  if (containers.length === 0) return randomJson(rng);
  const target = rng.pick(containers);
  const keys = Array.isArray(target) ? target.map((_, i) => String(i)) : Object.keys(target);
  const obj = target as Record<string, unknown>;
  const op = rng.int(0, 4);
  if (op === 0 || keys.length === 0) {
    obj[rng.chance(0.5) ? `extra${rng.int(0, 9)}` : nastyString(rng).slice(0, 40)] = randomJson(
      rng,
      1,
    );
  } else if (op === 1 && !Array.isArray(target)) {
    delete obj[rng.pick(keys)];
  } else {
    obj[rng.pick(keys)] = rng.pick<() => unknown>([
      () => randomJson(rng, 1),
      () => nastyString(rng),
      () => rng.pick([-1, 1e308, -0, 0.5, 2 ** 31, '1', true, null, [], {}]),
    ])();
  }
  return copy;
}

/** A mutation of bytes: truncate, flip bits, overwrite a run, duplicate a slice, or append noise. */
export function mutateBytes(bytes: Uint8Array, rng: Rng): Buffer {
  const src = Buffer.from(bytes);
  if (src.length === 0) return rng.bytes(rng.int(1, 64));
  switch (rng.int(0, 5)) {
    case 0:
      return src.subarray(0, rng.int(0, src.length - 1));
    case 1: {
      const out = Buffer.from(src);
      for (let i = rng.int(1, 16); i > 0; i--) {
        const at = rng.int(0, out.length - 1);
        out[at] = (out[at] ?? 0) ^ (1 << rng.int(0, 7));
      }
      return out;
    }
    case 2: {
      const out = Buffer.from(src);
      const at = rng.int(0, out.length - 1);
      rng.bytes(Math.min(rng.int(1, 512), out.length - at)).copy(out, at);
      return out;
    }
    case 3: {
      const at = rng.int(0, src.length - 1);
      const slice = src.subarray(at, at + rng.int(1, 4096));
      return Buffer.concat([src.subarray(0, at), slice, slice, src.subarray(at)]);
    }
    case 4:
      return Buffer.concat([src, rng.bytes(rng.int(1, 1024))]);
    default: {
      // Zero the tail, as a power loss mid-write leaves a file.
      const out = Buffer.from(src);
      out.fill(0, rng.int(0, out.length - 1));
      return out;
    }
  }
}
