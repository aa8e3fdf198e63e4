/** zod issues -> FieldIssue[] with paths a person can read: `tasks[3].payload.amount`. */
import { z } from 'zod';
import { ValidationError, type FieldIssue } from './errors.ts';

export function formatPath(path: readonly PropertyKey[], base = ''): string {
  let out = base;
  for (const seg of path) {
    if (typeof seg === 'number') out += `[${seg}]`;
    else out += out === '' ? String(seg) : `.${String(seg)}`;
  }
  return out;
}

export function toFieldIssues(error: z.ZodError, base = ''): FieldIssue[] {
  return error.issues.map((i) => {
    const path = formatPath(i.path, base);
    // zod says "Invalid input: expected nonoptional, received undefined" for a missing field: say what a person means.
    if (i.code === 'invalid_type' && i.message.endsWith('received undefined')) return { path, message: `${path || 'a value'} is required` };
    return { path, message: i.message };
  });
}

/**
 * An integer in a query string, written in decimal digits: `0x10`, `1e2` or ` 5` are refused, though
 * Number() would take them, so the route accepts exactly what the OpenAPI document calls an integer.
 */
export const queryInteger = (n: z.ZodNumber) => z.string().regex(/^[0-9]{1,9}$/, 'an integer').transform(Number).pipe(n);

/** Parses `value` with `schema` or throws a ValidationError whose issues are rooted at `base`. */
export function parseOrThrow<S extends z.ZodType>(schema: S, value: unknown, what: string, base = ''): z.output<S> {
  const result = schema.safeParse(value);
  if (result.success) return result.data;
  const issues = toFieldIssues(result.error, base);
  throw new ValidationError(`${what} is invalid: ${summarize(issues)}`, issues);
}

export function summarize(issues: readonly FieldIssue[], max = 3): string {
  const shown = issues.slice(0, max).map((i) => (i.path && !i.message.startsWith(i.path) ? `${i.path}: ${i.message}` : i.message));
  return shown.join('; ') + (issues.length > max ? `; and ${issues.length - max} more` : '');
}

/** zod -> JSON Schema (2020-12): what the API publishes of a schema (agent types, the OpenAPI document). */
export function jsonSchemaOf(schema: z.ZodType, io: 'input' | 'output'): Record<string, unknown> {
  return z.toJSONSchema(schema, { io, unrepresentable: 'any' }) as Record<string, unknown>;
}
