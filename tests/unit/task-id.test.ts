import { describe, expect, it } from 'vitest';
import { newTaskId, typeOfTaskId } from '../../src/task/id.ts';

describe('task ids', () => {
  it('carry their type and are unique', () => {
    const ids = new Set(Array.from({ length: 10_000 }, () => newTaskId('send-email')));
    expect(ids.size).toBe(10_000);
    for (const id of [...ids].slice(0, 10)) {
      expect(typeOfTaskId(id)).toBe('send-email');
      expect(id).not.toContain(':'); // BullMQ rejects ':' in custom job ids
    }
  });

  it.each(['', 'nope', '~abc', 'Echo~abc', 'echo~', 'echo~a:b', 'echo~../x'])('rejects %j', (id) => {
    expect(typeOfTaskId(id)).toBeUndefined();
  });
});
