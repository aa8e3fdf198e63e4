import { describe, expect, it } from 'vitest';
import { z } from 'zod';
import { taskRequestSchema } from '../../src/model/task-request.ts';
import { formatPath, parseOrThrow } from '../../src/model/validation.ts';

describe('validation paths', () => {
  it('formats paths like a person writes them', () => {
    expect(formatPath(['tasks', 3, 'payload', 'amount'])).toBe('tasks[3].payload.amount');
    expect(formatPath([0, 'a'], 'nodes')).toBe('nodes[0].a');
    expect(formatPath([], 'payload')).toBe('payload');
  });

  it('roots issues at the given base and summarises them', () => {
    const schema = z.object({ amount: z.number(), items: z.array(z.string()) });
    try {
      parseOrThrow(schema, { amount: 'x', items: [1] }, 'payload of pay', 'tasks[2].payload');
      expect.unreachable();
    } catch (err) {
      const e = err as { issues: Array<{ path: string }>; message: string };
      expect(e.issues.map((i) => i.path)).toEqual(['tasks[2].payload.amount', 'tasks[2].payload.items[0]']);
      expect(e.message).toMatch(/^payload of pay is invalid: tasks\[2\]\.payload\.amount: /);
    }
  });

  it('says a missing field is required, not "expected nonoptional, received undefined"', () => {
    try {
      parseOrThrow(taskRequestSchema, { type: 'echo' }, 'task request');
      expect.unreachable();
    } catch (err) {
      const e = err as { issues: Array<{ path: string; message: string }>; message: string };
      expect(e.issues).toEqual([{ path: 'payload', message: 'payload is required' }]);
      expect(e.message).toBe('task request is invalid: payload is required');
    }
  });
});
