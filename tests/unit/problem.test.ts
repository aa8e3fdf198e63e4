import { describe, expect, it } from 'vitest';
import { problemOf } from '../../src/api/problem.ts';
import { RedisUnavailableError, SwitchyardError, ValidationError } from '../../src/model/errors.ts';

describe('problemOf', () => {
  it('maps a validation error to 400 with its field issues', () => {
    const { reply } = problemOf(new ValidationError('bad', [{ path: 'payload.n', message: 'expected number' }]));
    expect(reply.status).toBe(400);
    expect(reply.headers!['content-type']).toMatch(/^application\/problem\+json/);
    expect(reply.body).toMatchObject({ status: 400, title: 'Invalid request', errors: [{ path: 'payload.n', message: 'expected number' }] });
  });

  it.each([
    [new SwitchyardError('UNKNOWN_AGENT_TYPE', 'x'), 404],
    [new SwitchyardError('TASK_NOT_FOUND', 'x'), 404],
    [new SwitchyardError('UNSUPPORTED_MEDIA_TYPE', 'x'), 415],
    [Object.assign(new Error('Unexpected token'), { type: 'entity.parse.failed' }), 400],
    [Object.assign(new Error('too big'), { type: 'entity.too.large' }), 413],
  ])('maps %s to %i', (err, status) => {
    const { reply, unexpected } = problemOf(err);
    expect(reply.status).toBe(status);
    expect(unexpected).toBe(false);
  });

  it.each([new RedisUnavailableError(), new Error('connect ECONNREFUSED 127.0.0.1:1'), new Error("Stream isn't writeable and enableOfflineQueue options is false")])(
    'maps Redis outages to 503 with Retry-After (%s)',
    (err) => {
      const { reply } = problemOf(err);
      expect(reply.status).toBe(503);
      expect(reply.headers!['retry-after']).toBe('5');
    },
  );

  it('treats anything else as an unexpected 500 without leaking its message', () => {
    const { reply, unexpected } = problemOf(new TypeError('secret internals'));
    expect(reply.status).toBe(500);
    expect(unexpected).toBe(true);
    expect(JSON.stringify(reply.body)).not.toContain('secret');
  });
});
