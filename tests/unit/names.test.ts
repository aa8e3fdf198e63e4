/** The model's names and limits, against what BullMQ and the key builder expect of them. */
import { PRIORITY_LIMIT as BULLMQ_PRIORITY_LIMIT } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { parseQueueName, PARKED_POOL, poolBreakerName, queueName } from '../../src/model/names.ts';
import { PRIORITY_LIMIT } from '../../src/model/task-request.ts';

describe('model names', () => {
  it('allows the priorities BullMQ allows (the model does not import BullMQ)', () => {
    expect(PRIORITY_LIMIT).toBe(BULLMQ_PRIORITY_LIMIT);
  });
  it('names a pool queue with its hash tag and reads it back', () => {
    expect(queueName({ type: 'transform', pool: 'premium' })).toBe('{transform.premium}');
    expect(parseQueueName('{transform.premium}')).toEqual({ type: 'transform', pool: 'premium' });
    expect(parseQueueName(queueName({ type: 'echo', pool: PARKED_POOL }))).toEqual({ type: 'echo', pool: PARKED_POOL });
    expect(parseQueueName('{workflows}')).toBeUndefined();
    expect(poolBreakerName({ type: 'echo', pool: 'default' })).toBe('pool:echo.default');
  });
});
