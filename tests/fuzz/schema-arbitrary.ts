/**
 * fast-check arbitraries from JSON Schema (the subset z.toJSONSchema writes for our request and
 * payload schemas), so the fuzz is driven by the published schemas: GET /v1/agent-types today,
 * the OpenAPI document later. What JSON Schema cannot say (zod refinements such as "a semver
 * range") is supplied by `overrides`; callers filter the result through the zod schema itself.
 */
import fc from 'fast-check';

export interface JsonSchema {
  type?: string | string[];
  properties?: Record<string, JsonSchema>;
  required?: string[];
  additionalProperties?: boolean | JsonSchema;
  items?: JsonSchema;
  enum?: unknown[];
  const?: unknown;
  anyOf?: JsonSchema[];
  oneOf?: JsonSchema[];
  minLength?: number;
  maxLength?: number;
  pattern?: string;
  format?: string;
  minimum?: number;
  maximum?: number;
  exclusiveMinimum?: number;
  exclusiveMaximum?: number;
  minItems?: number;
  maxItems?: number;
}

export interface SchemaArbitraryOptions {
  /** Arbitraries for properties by name, wherever they occur (for what JSON Schema cannot express). */
  overrides?: Readonly<Record<string, fc.Arbitrary<unknown>>>;
  /** Longest string and array generated when the schema allows more (large values are fuzzed separately). */
  maxStringLength?: number;
  maxItems?: number;
}

/** One UTF-16 code unit per character (so lengths mean what zod's .max means), mostly ASCII, some of the BMP and some troublemakers. */
export const char: fc.Arbitrary<string> = fc.oneof(
  { weight: 8, arbitrary: fc.integer({ min: 0x20, max: 0x7e }).map((c) => String.fromCharCode(c)) },
  { weight: 2, arbitrary: fc.integer({ min: 0xa0, max: 0xd7ff }).map((c) => String.fromCharCode(c)) },
  { weight: 1, arbitrary: fc.constantFrom('\u0000', '\n', '\t', '"', '\\', '/', '\u2028', '\u200b', '\ufeff', '\uffff', '{', '}', ':', '*') },
);

export const text = (minLength = 0, maxLength = 40): fc.Arbitrary<string> => fc.string({ unit: char, minLength, maxLength });

/** Keys JS treats specially: a server that copies them naively pollutes prototypes. */
export const PROTO_KEYS = ['__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty', 'valueOf', '__defineGetter__'] as const;

function integer(min: number, max: number): fc.Arbitrary<number> {
  if (min >= -0x80000000 && max <= 0x7fffffff) return fc.integer({ min, max });
  return fc.bigInt({ min: BigInt(min), max: BigInt(max) }).map(Number);
}

const emailAddress = fc
  .tuple(fc.stringMatching(/^[a-z0-9][a-z0-9._+-]{0,15}$/), fc.stringMatching(/^[a-z0-9]{1,12}$/), fc.constantFrom('com', 'org', 'example', 'io', 'invalid'))
  .map(([local, domain, tld]) => `${local.replace(/[._+-]+$/, '')}x@${domain}.${tld}`);

const dateTime = fc.date({ min: new Date('1970-01-01T00:00:00Z'), max: new Date('2100-01-01T00:00:00Z'), noInvalidDate: true }).map((d) => d.toISOString());

export function arbitraryOf(schema: JsonSchema, opts: SchemaArbitraryOptions = {}): fc.Arbitrary<unknown> {
  const maxString = opts.maxStringLength ?? 40;
  const maxItems = opts.maxItems ?? 4;
  if (schema.const !== undefined) return fc.constant(schema.const);
  if (schema.enum) return fc.constantFrom(...schema.enum);
  const alternatives = schema.anyOf ?? schema.oneOf;
  if (alternatives) return fc.oneof(...alternatives.map((s) => arbitraryOf(s, opts)));
  if (Array.isArray(schema.type)) return fc.oneof(...schema.type.map((type) => arbitraryOf({ ...schema, type }, opts)));

  switch (schema.type) {
    case undefined:
      return fc.jsonValue({ maxDepth: 2 });
    case 'null':
      return fc.constant(null);
    case 'boolean':
      return fc.boolean();
    case 'integer': {
      const min = schema.exclusiveMinimum !== undefined ? Math.floor(schema.exclusiveMinimum) + 1 : (schema.minimum ?? -1_000_000);
      const max = schema.exclusiveMaximum !== undefined ? Math.ceil(schema.exclusiveMaximum) - 1 : (schema.maximum ?? 1_000_000);
      return integer(Math.ceil(min), Math.floor(max));
    }
    case 'number':
      return fc.double({
        min: schema.exclusiveMinimum ?? schema.minimum ?? -1e9,
        max: schema.exclusiveMaximum ?? schema.maximum ?? 1e9,
        minExcluded: schema.exclusiveMinimum !== undefined,
        maxExcluded: schema.exclusiveMaximum !== undefined,
        noNaN: true,
        noDefaultInfinity: true,
      });
    case 'string':
      if (schema.format === 'email') return emailAddress;
      if (schema.format === 'date-time') return dateTime;
      if (schema.pattern) return fc.stringMatching(new RegExp(schema.pattern));
      return text(schema.minLength ?? 0, Math.max(schema.minLength ?? 0, Math.min(schema.maxLength ?? maxString, maxString)));
    case 'array': {
      const minLength = schema.minItems ?? 0;
      return fc.array(schema.items ? arbitraryOf(schema.items, opts) : fc.jsonValue({ maxDepth: 1 }), {
        minLength,
        maxLength: Math.max(minLength, Math.min(schema.maxItems ?? maxItems, maxItems)),
      });
    }
    case 'object': {
      const props = schema.properties ?? {};
      const model: Record<string, fc.Arbitrary<unknown>> = {};
      for (const [key, sub] of Object.entries(props)) model[key] = opts.overrides?.[key] ?? arbitraryOf(sub, opts);
      const known = fc.record(model, { requiredKeys: (schema.required ?? []).filter((k) => k in props), noNullPrototype: true });
      const extra = schema.additionalProperties;
      if (extra === undefined || extra === false) return known;
      // Open objects (a catchall) also get keys of their own, the awkward ones included.
      const key = fc.oneof(text(0, 12), fc.constantFrom(...PROTO_KEYS)).filter((k) => !(k in props));
      const value = extra === true ? fc.jsonValue({ maxDepth: 2 }) : arbitraryOf(extra, opts);
      return fc.tuple(known, fc.dictionary(key, value, { maxKeys: 3, noNullPrototype: true })).map(([k, e]) => ({ ...e, ...k }));
    }
    default:
      throw new Error(`schema-arbitrary: JSON Schema type ${JSON.stringify(schema.type)} is not supported`);
  }
}
