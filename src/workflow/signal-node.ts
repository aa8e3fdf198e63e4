/**
 * The signal node kind, in the engine. A ready signal node is claimed (its info records when it
 * times out) and then takes a payload kept for it (sent before it was reached), settling `done` with
 * it; otherwise it waits, holding nothing but a node timer when it has a timeout. A signal that
 * arrives while it waits settles it (WorkflowRuns.signal: the settle script lets one through, so a
 * second signal gets 409). On its timer it fails, or with `onTimeout: "continue"` is done with null.
 * The sweep settles a node whose kept payload was not taken (a start cut off after the claim) and
 * puts back a missing timer; otherwise it leaves a waiting run alone until its timeout.
 */
import { z } from 'zod';
import { signalNode as definition, type SignalNodeSpec } from '../model/signal-node.ts';
import type { NodeKind } from './node-kind.ts';
import type { NodeInfo } from './run-store.ts';

/** How far ahead the sweep may leave a run alone whose signal has no timeout. */
const QUIET_WITHOUT_TIMEOUT_MS = 3_600_000;

const iso = (ms: number) => new Date(ms).toISOString();
const spec = (def: unknown) => def as SignalNodeSpec;

export const signalKind: NodeKind = {
  ...definition,

  async start(ctx, runId, step, nodes) {
    if (step !== 'node') return { claimed: [] }; // a signal has no compensation
    const now = Date.now();
    const info = new Map<string, NodeInfo>();
    for (const [id, def] of nodes) {
      const { timeoutMs } = spec(def);
      info.set(id, { startedAt: now, ...(timeoutMs !== undefined ? { timeoutAt: now + timeoutMs } : {}) });
    }
    const claimed = await ctx.store.claim(runId, step, info);
    if (claimed.length === 0) return { claimed };
    // A payload sent before the node was reached is its result now; the others wait (for their timeout).
    const kept = await ctx.store.inbox(runId, claimed.map((id) => spec(nodes.get(id)).name));
    const timers: Array<readonly [string, number]> = [];
    await Promise.all(
      claimed.map(async (id, i) => {
        const payload = kept[i];
        if (payload !== null && payload !== undefined) return void (await ctx.store.settle(runId, 'node', id, 'done', payload, info.get(id)!));
        const at = info.get(id)!.timeoutAt;
        if (at !== undefined) timers.push([id, at]);
      }),
    );
    await ctx.timers.set(runId, timers);
    // Waiting for a signal, a node needs no look before its timeout (an hour at most without one).
    const waiting = claimed.filter((_, i) => kept[i] === null || kept[i] === undefined);
    if (waiting.length < claimed.length) return { claimed };
    return { claimed, quietUntil: Math.min(...waiting.map((id) => info.get(id)!.timeoutAt ?? now + QUIET_WITHOUT_TIMEOUT_MS)) };
  },

  async takeBack(ctx, rec, id) {
    await ctx.timers.clear(rec.meta.id, id);
    return true; // nothing runs for it: it is skipped (a signal arriving now finds it settled)
  },

  async inspect(ctx, rec, id) {
    const def = spec(rec.nodes.get(id));
    const [kept] = await ctx.store.inbox(rec.meta.id, [def.name]);
    if (kept !== null && kept !== undefined) return { state: 'ended', outcome: 'done', payload: kept, info: rec.info.get(id) ?? {} };
    if (def.timeoutMs === undefined) return { state: 'running', quietUntil: Date.now() + QUIET_WITHOUT_TIMEOUT_MS };
    const at = await ctx.timers.dueAt(rec.meta.id, id);
    return at === undefined ? { state: 'missing' } : { state: 'running', quietUntil: at };
  },

  async restart(ctx, rec, id) {
    const at = rec.info.get(id)?.timeoutAt;
    if (at !== undefined) await ctx.timers.set(rec.meta.id, [[id, at]]);
  },

  async onTimer(ctx, runId, id, def) {
    const node = spec(def);
    const info = await ctx.store.nodeInfo(runId, id);
    if (node.onTimeout === 'continue') await ctx.store.settle(runId, 'node', id, 'done', 'null', info);
    else await ctx.store.settle(runId, 'node', id, 'dead', `no signal ${JSON.stringify(node.name)} within ${node.timeoutMs} ms`, info);
  },

  viewSchema: z.strictObject({ name: z.string(), timeoutAt: z.iso.datetime().optional() }),

  view(def, info) {
    return { name: spec(def).name, ...(info.timeoutAt !== undefined ? { timeoutAt: iso(info.timeoutAt) } : {}) };
  },
};
