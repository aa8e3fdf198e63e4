/** Bull Board at /admin/queues, showing workflow runs and every pool queue; pools created later appear as they are found. */
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import type { Queue } from 'bullmq';
import type { Router } from 'express';
import { poolLabel, queueLabel, type PoolRef } from '../redis/keys.ts';
import type { PoolQueues } from '../task/pool-queues.ts';

export const BOARD_PATH = '/admin/queues';

/** `extra`: queues that are not pools, shown under their own name (the workflow runs). */
export function boardRouter(queues: PoolQueues, extra: readonly Queue[] = []): Router {
  const serverAdapter = new ExpressAdapter();
  serverAdapter.setBasePath(BOARD_PATH);
  const board = createBullBoard({
    queues: [],
    serverAdapter,
    options: { uiConfig: { boardTitle: 'Switchyard', miscLinks: [{ text: 'Fleet dashboard', url: '/dashboard' }, { text: 'API docs', url: '/docs' }] } },
  });
  const add = (queue: Queue, ref: PoolRef) => board.addQueue(new BullMQAdapter(queue, { displayName: poolLabel(ref) }));
  for (const queue of extra) board.addQueue(new BullMQAdapter(queue, { displayName: queueLabel(queue.name) }));
  for (const { queue, ref } of queues.all()) add(queue, ref);
  queues.on('added', add);
  return serverAdapter.getRouter() as Router;
}
