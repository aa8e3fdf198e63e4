/**
 * The map node kind, in the engine (its request shape: src/model/map-node.ts). When a map is ready,
 * its items are read from its dependency's result and checked against its type's schema (a map over
 * something that is not an array, or an item that is not a payload, fails the node with the reason),
 * then written to the run's slot, and its first items (up to its concurrency) are added as tasks
 * `<runId>.<node>.<index>` to the pools routed for each (late binding, as a task node). An agent
 * settles each item (RunStore.settleItem, workflow-map-item.lua), which starts the next item in the
 * slot it freed, and adds that item to its own pool's queue (src/agent/map-items.ts): one round trip
 * from an item's end to the next one's start. The last item settles the node with the results in
 * order. A stopping run takes back the items that have not started; the sweep re-adds
 * an item whose job went missing and settles one whose settle was lost.
 */
import { z } from 'zod';
import { keys } from '../redis/keys.ts';
import { mapItems, mapNode as definition, type MapNodeSpec } from '../model/map-node.ts';
import { itemJobId } from '../model/task-id.ts';
import type { CancelMessage } from '../task/cancel.ts';
import type { PreparedTask } from '../task/producer.ts';
import type { NodeContext, NodeKind, NodeProgress } from './node-kind.ts';
import type { MapItems, RunRecord, StoredNode } from './run-store.ts';
import { addTasks, NOT_STARTED } from './task-node.ts';

const asMap = (def: StoredNode) => def as unknown as MapNodeSpec;

export const mapKind: NodeKind = {
  ...definition,

  async start(ctx, runId, step, nodes) {
    if (step !== 'node') return { claimed: [] }; // a map has no compensation
    const claimed: string[] = [];
    for (const [id, def] of nodes) {
      const took = await ctx.store.mapTake(runId, id);
      const items = took === 'ready' ? await begin(ctx, runId, id, asMap(def)) : took;
      if (!items) continue;
      claimed.push(id);
      await addItems(ctx, runId, id, asMap(def), items);
    }
    return { claimed };
  },

  async takeBack(ctx, rec, id, abort) {
    const runId = rec.meta.id;
    let running = 0;
    for (const index of (await ctx.store.mapOpen(runId, id)).keys()) {
      const job = await ctx.queues.find(asMap(rec.nodes.get(id)!).type, itemJobId(runId, id, index));
      const state = job ? await job.getState() : 'missing';
      if (state === 'missing' || (NOT_STARTED.has(state) && (await job!.remove().then(() => true, () => false)))) {
        await ctx.store.settleItem(runId, id, index, 'skipped', '');
      } else if (state === 'active') {
        running++;
        if (abort) await ctx.redis.publish(keys(ctx.prefix).taskEvents, JSON.stringify({ kind: 'cancel', taskId: job!.id!, reason: 'workflow cancelled' } satisfies CancelMessage));
      }
    }
    // The last item taken back settled the map already (skipped); with none running and none open, it is the engine's to settle.
    return running === 0;
  },

  async inspect(ctx, rec, id): Promise<NodeProgress> {
    const runId = rec.meta.id;
    let missing = 0;
    for (const index of (await ctx.store.mapOpen(runId, id)).keys()) {
      const job = await ctx.queues.find(asMap(rec.nodes.get(id)!).type, itemJobId(runId, id, index));
      if (!job) missing++;
      else if (job.finishedOn) {
        // Its work ended but its settle was lost (the agent died between the two): settled now, and the items started in its place added.
        const completed = (await job.getState()) === 'completed';
        const { next } = await ctx.store.settleItem(runId, id, index, completed ? 'done' : 'dead', completed ? JSON.stringify(job.returnvalue ?? null) : job.failedReason || 'failed');
        if (next) await addItems(ctx, runId, id, asMap(rec.nodes.get(id)!), next);
      }
    }
    return missing > 0 ? { state: 'missing' } : { state: 'running' };
  },

  async restart(ctx, rec, id) {
    const runId = rec.meta.id;
    const def = asMap(rec.nodes.get(id)!);
    const open = await ctx.store.mapOpen(runId, id);
    const lost: Array<[number, string]> = [];
    for (const [index, payload] of open) if (!(await ctx.queues.find(def.type, itemJobId(runId, id, index)))) lost.push([index, payload]);
    for (const [index, payload] of lost) await addItems(ctx, runId, id, def, { first: index, payloads: [payload] });
  },

  viewSchema: z.strictObject({
    type: z.string(),
    concurrency: z.number().int(),
    items: z.strictObject({ total: z.number().int(), done: z.number().int(), failed: z.number().int(), running: z.number().int() }).optional(),
  }),

  view(def, info) {
    const map = asMap(def);
    const items = info.items;
    return { type: map.type, concurrency: map.concurrency, ...(items ? { items: { total: items.total, done: items.done, failed: items.failed, running: items.running } } : {}) };
  },
};

/** A ready map: reads and checks its items, claims it and starts its first items; a map that cannot run is claimed and fails with the reason. */
async function begin(ctx: NodeContext, runId: string, id: string, def: MapNodeSpec): Promise<MapItems | undefined> {
  const source = def.over.split('.')[0]!;
  const result = (await ctx.store.results(runId, [source]))[source];
  const items = mapItems(def, ctx.catalogue.find(def.type), result);
  if ('problem' in items) {
    const claimed = await ctx.store.claim(runId, 'node', new Map([[id, {}]]));
    if (claimed.length > 0) await ctx.store.settle(runId, 'node', id, 'dead', items.problem, {});
    return undefined;
  }
  const started = await ctx.store.mapStart(runId, id, def.concurrency, def.tolerateFailures, items.payloads);
  if (started && items.payloads.length === 0) await ctx.store.settle(runId, 'node', id, 'done', '[]', { items: { total: 0, done: 0, failed: 0, running: 0 } });
  return started;
}

/** Adds items as tasks, each routed now (a type no longer declared: each item fails with the reason). */
async function addItems(ctx: NodeContext, runId: string, id: string, def: MapNodeSpec, items: MapItems): Promise<void> {
  if (items.payloads.length === 0) return;
  const type = ctx.catalogue.find(def.type);
  if (!type) {
    // Each fails, and may start the next in its place (tolerated failures): those fail too, until none is left.
    const queue = [items];
    for (let batch = queue.pop(); batch; batch = queue.pop()) {
      for (let i = 0; i < batch.payloads.length; i++) {
        const { next } = await ctx.store.settleItem(runId, id, batch.first + i, 'dead', `agent type ${def.type} is not declared any more`);
        if (next) queue.push(next);
      }
    }
    return;
  }
  const trace = await ctx.runTrace(runId);
  const tasks: PreparedTask[] = items.payloads.map((payload, i) => {
    const index = items.first + i;
    const task = ctx.producer.build(def, type, JSON.parse(payload) as unknown, itemJobId(runId, id, index));
    task.envelope.workflow = { run: runId, node: id, item: index };
    if (trace) task.envelope.trace = trace;
    return task;
  });
  await addTasks(ctx, tasks);
}
