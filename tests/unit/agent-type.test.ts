import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { Catalogue } from '../../src/model/catalogue.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import catalogue from '../../queues/index.ts';

const payload = z.object({ n: z.number().int() });
const result = z.object({ doubled: z.number() });

describe('defineAgentType', () => {
  it('fills defaults and freezes the type', () => {
    const t = defineAgentType({ name: 'double', version: '1.2.3', payload, result });
    expect(t.defaults).toEqual({ attempts: 3, backoff: { type: 'exponential', delayMs: 1000, factor: 2, maxDelayMs: 3_600_000, jitter: 0.2 }, timeoutMs: 30_000, priority: 0 });
    expect(Object.isFrozen(t)).toBe(true);
  });

  it('keeps given defaults', () => {
    const t = defineAgentType({ name: 'double', version: '1.0.0', payload, result, defaults: { attempts: 7, timeoutMs: 5 } });
    expect(t.defaults.attempts).toBe(7);
    expect(t.defaults.timeoutMs).toBe(5);
  });

  it.each([
    [{ name: 'Bad Name', version: '1.0.0' }, /name/],
    [{ name: '', version: '1.0.0' }, /name/],
    [{ name: 'ok', version: 'one' }, /version: must be a semver/],
    [{ name: 'ok', version: '1.0.0', defaults: { attempts: 0 } }, /defaults\.attempts/],
  ])('rejects %j naming the field', (input, message) => {
    expect(() => defineAgentType({ payload, result, ...input } as never)).toThrow(message);
  });
});

describe('Catalogue', () => {
  const double = defineAgentType({ name: 'double', version: '1.0.0', payload, result });

  it('finds types by name and names the known ones when a name is unknown', () => {
    const c = new Catalogue([double]);
    expect(c.get('double')).toBe(double);
    expect(() => c.get('triple')).toThrow(/unknown agent type "triple"; declared types: double/);
  });

  it('refuses a type declared twice', () => {
    expect(() => new Catalogue([double, double])).toThrow(/declared twice/);
  });

  it('describes payload and result as JSON Schema', () => {
    const [d] = new Catalogue([double]).describe();
    expect(d!.payloadSchema).toMatchObject({ type: 'object', properties: { n: { type: 'integer' } }, required: ['n'] });
    expect(d!.resultSchema).toMatchObject({ type: 'object', properties: { doubled: { type: 'number' } } });
  });

  it('holds the demo types npm start runs', () => {
    const names = new Catalogue(catalogue).names;
    expect(names).toEqual(expect.arrayContaining(['echo', 'transform', 'flaky']));
  });
});
