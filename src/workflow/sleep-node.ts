/**
 * The sleep node kind, in the engine. A ready sleep node is claimed with its wake time and added to
 * one sorted set of sleeping nodes (`{workflows}:_sleeps`, member "<run>\t<node>", score: when it
 * wakes); nothing else holds it. Every API process's engine runs a DueLoop over that set: it claims
 * the nodes due (each for one process, for a lease) and settles each `done` with `{ wokeAt }`, which
 * moves its run on. Kill -9 of every process and a Redis restart (AOF) lose nothing: the set is in
 * Redis, a wake cut short is claimed again when its lease ends, settling twice is a no-op, and the
 * sweep puts back a claimed node whose entry went missing (a start cut off between claim and add).
 */
import { z } from 'zod';
import { DueLoop, type DueSource } from '../housekeeping/due-loop.ts';
import { sleepNode as definition, wakeAt, type SleepNodeSpec } from '../model/sleep-node.ts';
import { keys } from '../redis/keys.ts';
import { scripts } from '../redis/scripts.ts';
import type { NodeContext, NodeKind } from './node-kind.ts';
import type { NodeInfo } from './run-store.ts';

/** How long a claimed wake is one process's before another may claim it again. */
const WAKE_LEASE_MS = 10_000;

const member = (runId: string, nodeId: string) => `${runId}\t${nodeId}`;
const iso = (ms: number) => new Date(ms).toISOString();

/** The due loop of each engine (its context), to wake it when a node's sleep is short. */
const loops = new WeakMap<NodeContext, DueLoop<{ member: string; wakeAt: number }>>();

const sleepsKey = (ctx: NodeContext) => keys(ctx.prefix).workflow.sleeps;

export const sleepKind: NodeKind = {
  ...definition,

  async start(ctx, runId, step, nodes) {
    if (step !== 'node') return []; // a sleep has no compensation
    const now = Date.now();
    const info = new Map<string, NodeInfo>();
    for (const [id, def] of nodes) info.set(id, { wakeAt: wakeAt(def as unknown as SleepNodeSpec, now), startedAt: now });
    const claimed = await ctx.store.claim(runId, step, info);
    if (claimed.length === 0) return claimed;
    await ctx.redis.zadd(sleepsKey(ctx), ...claimed.flatMap((id) => [info.get(id)!.wakeAt!, member(runId, id)]));
    const soonest = Math.min(...claimed.map((id) => info.get(id)!.wakeAt!));
    if (soonest - Date.now() < 1000) loops.get(ctx)?.kick();
    return claimed;
  },

  async takeBack(ctx, rec, id) {
    return (await ctx.redis.zrem(sleepsKey(ctx), member(rec.meta.id, id))) === 1;
  },

  async inspect(ctx, rec, id) {
    const at = await ctx.redis.zscore(sleepsKey(ctx), member(rec.meta.id, id));
    // Asleep in Redis: nothing about it can need a repair before it wakes.
    return at === null ? { state: 'missing' } : { state: 'running', quietUntil: Number(at) };
  },

  async restart(ctx, rec, id) {
    await ctx.redis.zadd(sleepsKey(ctx), rec.info.get(id)?.wakeAt ?? Date.now(), member(rec.meta.id, id));
  },

  viewSchema: z.strictObject({ wakeAt: z.iso.datetime().optional() }),

  view(_def, info) {
    return info.wakeAt !== undefined ? { wakeAt: iso(info.wakeAt) } : {};
  },

  async open(ctx) {
    const key = sleepsKey(ctx);
    const source: DueSource<{ member: string; wakeAt: number }> = {
      async claim(now, leaseMs, batch) {
        const flat = await scripts.sleepClaim.run(ctx.redis, [key], [now, leaseMs, batch]);
        const out: Array<{ member: string; wakeAt: number }> = [];
        for (let i = 0; i < flat.length; i += 2) out.push({ member: flat[i]!, wakeAt: Number(flat[i + 1]) });
        return out;
      },
      async earliest() {
        const [, score] = await ctx.redis.zrange(key, '0', '0', 'WITHSCORES');
        return score === undefined ? undefined : Number(score);
      },
    };
    const loop = new DueLoop({
      name: 'workflow sleeps',
      source,
      leaseMs: WAKE_LEASE_MS,
      log: ctx.log,
      handle: async ({ member: m, wakeAt: at }) => {
        const [runId, nodeId] = m.split('\t') as [string, string];
        const now = Date.now();
        // What the claim recorded (when it fell asleep) stays in the node's info.
        const claimed = JSON.parse((await ctx.redis.hget(ctx.store.key(runId, ':info'), nodeId)) ?? '{}') as NodeInfo;
        await ctx.store.settle(runId, 'node', nodeId, 'done', JSON.stringify({ wokeAt: iso(now) }), { wakeAt: at, ...claimed });
        await ctx.redis.zrem(key, m);
      },
    });
    loops.set(ctx, loop);
    loop.start();
    return async () => {
      loops.delete(ctx);
      await loop.stop();
    };
  },
};
