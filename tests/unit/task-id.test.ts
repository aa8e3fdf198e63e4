import { describe, expect, it } from 'vitest';
import { newTaskId, typeOfTaskId, taskLogFields } from '../../src/model/task-id.ts';

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

describe('taskLogFields', () => {
  it('names the run and node of a workflow node, and only the task id otherwise', () => {
    expect(taskLogFields('echo~abc123')).toEqual({ taskId: 'echo~abc123' });
    expect(taskLogFields('wf_abc.load')).toEqual({ taskId: 'wf_abc.load', runId: 'wf_abc', node: 'load' });
    expect(taskLogFields('wf_abc.charge.undo')).toEqual({ taskId: 'wf_abc.charge.undo', runId: 'wf_abc', node: 'charge (compensation)' });
  });
});
