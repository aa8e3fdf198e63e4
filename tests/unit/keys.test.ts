/**
 * Switchyard's own keys never coincide with a BullMQ key of the queues that share their slot (the
 * workflow queues share `{workflows}` with the sweep's index; a pool queue shares nothing).
 */
import { QueueKeys } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { keys } from '../../src/redis/keys.ts';
import { GATE_QUEUE, WORKFLOW_QUEUE } from '../../src/model/names.ts';

describe('key names', () => {
  it('no Switchyard key is a key BullMQ uses for the workflow queues', () => {
    const k = keys('sw');
    const ours = [k.workflow.active, k.workflow.idempotency('x'), k.queueCatalogue, k.dispatcher, k.breaker.index, k.taskEvents, k.workflow.events];
    const bullmq = [WORKFLOW_QUEUE, GATE_QUEUE].flatMap((q) => Object.values(new QueueKeys('sw').getKeys(q)));
    expect(bullmq).toContain('sw:{workflows}:active');
    for (const key of ours) expect(bullmq).not.toContain(key);
    // Job hashes are `<prefix>:<queue>:<job id>`, and run ids start with `wf_`.
    expect(k.workflow.active).not.toMatch(/^sw:\{workflows\}:wf_/);
  });
});
