/**
 * The sleep node kind, in the engine. A ready sleep node is claimed with its wake time and given a
 * node timer (node-timers.ts: one entry in a sorted set; nothing else holds it); when the timer is
 * due, the node settles `done` with `{ wokeAt }`, which moves its run on. The sweep puts back a timer
 * whose entry went missing (a start cut off between claim and timer) and leaves a sleeping run alone
 * until it is about to wake.
 */
import { z } from 'zod';
import { sleepNode as definition, wakeAt, type SleepNodeSpec } from '../model/sleep-node.ts';
import type { NodeKind } from './node-kind.ts';
import type { NodeInfo } from './run-store.ts';

const iso = (ms: number) => new Date(ms).toISOString();

export const sleepKind: NodeKind = {
  ...definition,

  async start(ctx, runId, step, nodes) {
    if (step !== 'node') return { claimed: [] }; // a sleep has no compensation
    const now = Date.now();
    const info = new Map<string, NodeInfo>();
    for (const [id, def] of nodes) info.set(id, { wakeAt: wakeAt(def as unknown as SleepNodeSpec, now), startedAt: now });
    const claimed = await ctx.store.claim(runId, step, info);
    await ctx.timers.set(runId, claimed.map((id) => [id, info.get(id)!.wakeAt!] as const));
    return { claimed, quietUntil: Math.min(...claimed.map((id) => info.get(id)!.wakeAt!)) };
  },

  takeBack: (ctx, rec, id) => ctx.timers.clear(rec.meta.id, id),

  async inspect(ctx, rec, id) {
    const at = await ctx.timers.dueAt(rec.meta.id, id);
    // Asleep in Redis: nothing about it can need a repair before it wakes.
    return at === undefined ? { state: 'missing' } : { state: 'running', quietUntil: at };
  },

  async restart(ctx, rec, id) {
    await ctx.timers.set(rec.meta.id, [[id, rec.info.get(id)?.wakeAt ?? Date.now()]]);
  },

  async onTimer(ctx, runId, id, _def, at) {
    // What the claim recorded (when it fell asleep, when it wakes) stays in the node's info.
    const claimed = await ctx.store.nodeInfo(runId, id);
    await ctx.store.settle(runId, 'node', id, 'done', JSON.stringify({ wokeAt: iso(Date.now()) }), { wakeAt: at, ...claimed });
  },

  viewSchema: z.strictObject({ wakeAt: z.iso.datetime().optional() }),

  view(_def, info) {
    return info.wakeAt !== undefined ? { wakeAt: iso(info.wakeAt) } : {};
  },
};
