/**
 * The workflow run store as a state machine (fc.commands + fc.asyncModelRun) against real Redis:
 * random DAGs (diamonds included, some nodes with compensations), then any sequence of what
 * engines and agents do to a run: claim ready nodes (two engines claiming the same node included),
 * settle queued nodes in any order as done / dead, settle again (an agent or the sweep repeating a
 * step after a crash between "node done" and "dependents enqueued"), take back queued nodes of a
 * stopping run (skipped), cancel, claim and settle compensations. A model written from DESIGN.md
 * ("Workflows: DAG + saga") says after every command what each node, each compensation and the run
 * must be, and the store must agree exactly. Checked as well, from Redis alone:
 * - a node is made ready once at most, and only after all its dependencies completed;
 * - a claim hands a node out once at most;
 * - a compensation runs only after those of every completed node that depended on it settled;
 * - after the commands, an engine that keeps going (claim, settle) always brings the run to an end;
 * - the node counts the scripts keep in the meta hash (what GET /v1/workflows lists) match the states.
 */
import fc from 'fast-check';
import { describe, it } from 'vitest';
import { z } from 'zod';
import { Catalogue } from '../../src/model/catalogue.ts';
import { defineAgentType } from '../../src/model/agent-type.ts';
import { validateWorkflow } from '../../src/model/workflow-definition.ts';
import { isFinal, NODE_STATES, RunStore, type NodeState, type Outcome, type RunState, type Step, type CompensationState } from '../../src/workflow/run-store.ts';
import { expectSame, expectThat } from '../support/property-check.ts';
import { useRedisPrefix } from '../support/redis.ts';

const { prefix, redis } = useRedisPrefix('prop-workflow');
const store = new RunStore(redis, prefix);
const catalogue = new Catalogue([defineAgentType({ name: 'step', version: '1.0.0', payload: z.object({}), result: z.unknown() })]);
const T0 = 1_900_000_000_000;

interface Dag {
  /** Node i depends on deps[i] (all lower indexes, so it is acyclic); ids are `n<i>`. */
  deps: number[][];
  compensated: boolean[];
}

const dagArb: fc.Arbitrary<Dag> = fc.integer({ min: 1, max: 8 }).chain((n) =>
  fc.record({
    deps: fc.tuple(...Array.from({ length: n }, (_, i) => (i === 0 ? fc.constant<number[]>([]) : fc.uniqueArray(fc.nat(i - 1), { maxLength: Math.min(i, 3) })))),
    compensated: fc.array(fc.boolean(), { minLength: n, maxLength: n }),
  }),
);

const FINISHED_UNDO: ReadonlySet<CompensationState | undefined> = new Set(['done', 'failed', 'none']);

/** What DESIGN.md says a run does; node ids `n<i>`. */
class RunModel {
  run: RunState = 'running';
  cause: 'failure' | 'cancel' | undefined;
  readonly states = new Map<string, NodeState>();
  /** Compensation state, for the completed nodes the compensation phase has reached. */
  readonly undo = new Map<string, CompensationState>();
  undoRan = 0;
  undoFailed = 0;
  readonly log: Array<{ node: string; state: 'done' | 'failed' }> = [];
  readonly ids: string[];
  readonly deps = new Map<string, string[]>();
  readonly dependents = new Map<string, string[]>();
  readonly compensated = new Set<string>();

  constructor(readonly dag: Dag) {
    this.ids = dag.deps.map((_, i) => `n${i}`);
    dag.deps.forEach((ds, i) => {
      const id = `n${i}`;
      this.deps.set(id, ds.map((d) => `n${d}`));
      for (const d of ds) this.dependents.set(`n${d}`, [...(this.dependents.get(`n${d}`) ?? []), id]);
      this.states.set(id, ds.length === 0 ? 'ready' : 'pending');
      if (dag.compensated[i]) this.compensated.add(id);
    });
  }

  nodesIn(state: NodeState): string[] {
    return this.ids.filter((id) => this.states.get(id) === state);
  }
  undosIn(state: CompensationState): string[] {
    return this.ids.filter((id) => this.undo.get(id) === state);
  }

  claim(step: Step, ids: readonly string[]): string[] {
    if (step === 'node') {
      if (this.run !== 'running') return [];
      const claimed = ids.filter((id) => this.states.get(id) === 'ready');
      for (const id of claimed) this.states.set(id, 'queued');
      return claimed;
    }
    if (this.run !== 'compensating') return [];
    const claimed = ids.filter((id) => this.undo.get(id) === 'ready');
    for (const id of claimed) this.undo.set(id, 'queued');
    return claimed;
  }

  settle(step: Step, id: string, outcome: Outcome): boolean {
    if (step === 'compensation') {
      if (this.undo.get(id) !== 'queued') return false;
      const failed = outcome !== 'done';
      this.undo.set(id, failed ? 'failed' : 'done');
      this.undoRan++;
      if (failed) this.undoFailed++;
      this.log.push({ node: id, state: failed ? 'failed' : 'done' });
      this.#reachUndos();
      if (this.run === 'compensating' && this.#undosSettled()) this.#finish();
      return true;
    }
    if (this.states.get(id) !== 'queued') return false;
    if (outcome === 'done') {
      this.states.set(id, 'done');
      if (this.run === 'running') {
        // Late binding: a dependent is ready the moment its last dependency completes.
        for (const d of this.dependents.get(id) ?? []) {
          if (this.states.get(d) === 'pending' && this.deps.get(d)!.every((p) => this.states.get(p) === 'done')) this.states.set(d, 'ready');
        }
        if (this.ids.every((n) => this.states.get(n) === 'done')) this.run = 'completed';
      }
    } else if (outcome === 'skipped') {
      this.states.set(id, 'skipped');
    } else {
      this.states.set(id, this.run === 'cancelling' ? 'cancelled' : 'dead');
      if (this.run === 'running') {
        this.run = 'failing';
        this.cause = 'failure';
      }
    }
    this.#maybeCompensate();
    return true;
  }

  cancel(): RunState {
    const before = this.run;
    if (isFinal(before)) return before;
    this.cause = 'cancel';
    if (before === 'running' || before === 'failing') this.run = 'cancelling';
    this.#maybeCompensate();
    return before;
  }

  /** A stopping run compensates once no node runs any more: completed nodes in reverse dependency order. */
  #maybeCompensate(): void {
    if ((this.run !== 'failing' && this.run !== 'cancelling') || this.nodesIn('queued').length > 0) return;
    this.run = 'compensating';
    for (const id of this.ids) if (this.states.get(id) === 'pending' || this.states.get(id) === 'ready') this.states.set(id, 'skipped');
    this.#reachUndos();
    if (this.#undosSettled()) this.#finish();
  }

  /** A completed node's compensation may run once those of all its completed dependents settled; without one it settles at once. */
  #reachUndos(): void {
    for (let changed = true; changed; ) {
      changed = false;
      for (const id of this.nodesIn('done')) {
        if (this.undo.has(id)) continue;
        const after = (this.dependents.get(id) ?? []).filter((c) => this.states.get(c) === 'done');
        if (!after.every((c) => FINISHED_UNDO.has(this.undo.get(c)))) continue;
        this.undo.set(id, this.compensated.has(id) ? 'ready' : 'none');
        changed = true;
      }
    }
  }

  #undosSettled(): boolean {
    return this.nodesIn('done').every((id) => FINISHED_UNDO.has(this.undo.get(id)));
  }

  #finish(): void {
    this.run = this.cause === 'cancel' ? 'cancelled' : this.undoFailed > 0 ? 'compensation_failed' : this.undoRan > 0 ? 'compensated' : 'failed';
  }
}

/** The run under test, and what was seen of it so far. */
interface Real {
  runId: string;
  /** Nodes seen in a state past `ready` (they must never be ready again). */
  pastReady: Set<string>;
  /** Nodes and compensations a claim has handed out. */
  claimed: Set<string>;
}

interface Stored {
  meta: Record<string, string>;
  states: Record<string, string>;
  undo: Record<string, string>;
  ready: string[];
  undoReady: string[];
  log: Array<{ node: string; state: string }>;
}

async function readStored(runId: string): Promise<Stored> {
  const key = (s = '') => store.key(runId, s as Parameters<RunStore['key']>[1]);
  const replies = (await redis
    .pipeline()
    .hgetall(key())
    .hgetall(key(':state'))
    .hgetall(key(':undo-state'))
    .smembers(key(':ready'))
    .smembers(key(':undo-ready'))
    .lrange(key(':log'), 0, -1)
    .exec())!;
  const v = replies.map(([err, value]) => {
    if (err) throw err;
    return value;
  });
  return {
    meta: v[0] as Record<string, string>,
    states: v[1] as Record<string, string>,
    undo: v[2] as Record<string, string>,
    ready: (v[3] as string[]).sort(),
    undoReady: (v[4] as string[]).sort(),
    log: (v[5] as string[]).map((e) => {
      const { node, state } = JSON.parse(e) as { node: string; state: string };
      return { node, state };
    }),
  };
}

/** The store must hold what the model says, and what Redis holds must make sense on its own. */
async function expectAgree(m: RunModel, r: Real, after: string): Promise<void> {
  const s = await readStored(r.runId);
  const at = `after ${after}`;
  expectSame(s.states, Object.fromEntries(m.states), () => `${at}: node states`);
  expectSame(s.undo, Object.fromEntries(m.undo), () => `${at}: compensation states`);
  expectSame(
    { state: s.meta.state, cause: s.meta.cause, done: Number(s.meta.done), inflight: Number(s.meta.inflight), undoRan: Number(s.meta.undoRan ?? 0), undoFailed: Number(s.meta.undoFailed ?? 0) },
    { state: m.run, cause: m.cause, done: m.nodesIn('done').length, inflight: m.nodesIn('queued').length, undoRan: m.undoRan, undoFailed: m.undoFailed },
    () => `${at}: run`,
  );
  // Counts as stored (not as RunStore.meta would recompute them for an old run), and as the API reads
  // them: a count never written is 0 (a run's meta hash leaves out the counts that start at 0).
  const modelCounts = Object.fromEntries(NODE_STATES.map((st) => [st, m.nodesIn(st).length]));
  const storedCounts = Object.fromEntries(NODE_STATES.map((st) => [st, Number(s.meta[st === 'queued' ? 'inflight' : st] ?? 0)]));
  expectSame(storedCounts, modelCounts, () => `${at}: node counts in the meta hash`);
  expectSame((await store.meta(r.runId))?.counts, modelCounts, () => `${at}: node counts read by the store`);
  expectSame(s.ready, m.nodesIn('ready').sort(), () => `${at}: ready set`);
  expectSame(s.undoReady, m.undosIn('ready').sort(), () => `${at}: compensations ready`);
  expectSame(s.log, m.log, () => `${at}: compensation log`);

  // From Redis alone.
  for (const [id, state] of Object.entries(s.states)) {
    if (state === 'pending' || state === 'skipped') continue;
    const missing = m.deps.get(id)!.filter((d) => s.states[d] !== 'done');
    expectThat(missing.length === 0, () => `${at}: ${id} is ${state} before its dependencies ${missing.join(', ')} completed`);
    if (state === 'ready') expectThat(!r.pastReady.has(id), () => `${at}: ${id} made ready a second time`);
    else r.pastReady.add(id);
  }
  for (const [id, state] of Object.entries(s.undo)) {
    if (state === 'none') continue;
    const waiting = (m.dependents.get(id) ?? []).filter((c) => s.states[c] === 'done' && !FINISHED_UNDO.has(s.undo[c] as CompensationState));
    expectThat(waiting.length === 0, () => `${at}: compensation of ${id} is ${state} before those of its completed dependents ${waiting.join(', ')}`);
  }
  const states = Object.values(s.states);
  if (s.meta.state === 'completed') expectThat(states.every((x) => x === 'done'), () => `${at}: completed with unfinished nodes`);
  if (isFinal(s.meta.state ?? '') && s.meta.state !== 'completed') {
    expectThat(!states.some((x) => x === 'pending' || x === 'ready' || x === 'queued'), () => `${at}: ended with nodes still to run`);
  }
}

type Cmd = fc.AsyncCommand<RunModel, Real, false>;

/** Which nodes a command names: all of them, or some by index. */
type Pick = 'all' | number[];
const pickArb: fc.Arbitrary<Pick> = fc.oneof(fc.constant<Pick>('all'), fc.uniqueArray(fc.nat(7), { minLength: 1, maxLength: 4 }));
const picked = (m: RunModel, p: Pick) => (p === 'all' ? m.ids : [...new Set(p.map((i) => m.ids[i % m.ids.length]!))]);

class Claim implements Cmd {
  constructor(
    readonly step: Step,
    readonly pick: Pick,
  ) {}
  check = () => true;
  async run(m: RunModel, r: Real): Promise<void> {
    const ids = picked(m, this.pick);
    const got = await store.claim(r.runId, this.step, new Map(ids.map((id) => [id, { pool: 'default' }])));
    expectSame(got, m.claim(this.step, ids), () => this.toString());
    for (const id of got) {
      expectThat(!r.claimed.has(`${this.step}:${id}`), () => `${this}: ${id} handed out twice`);
      r.claimed.add(`${this.step}:${id}`);
    }
    await expectAgree(m, r, this.toString());
  }
  toString = () => `claim ${this.step} ${JSON.stringify(this.pick)}`;
}

/**
 * Settles a node or a compensation: `queued` picks one that is out (what an agent reports), else any
 * node (a repeat after a crash, or a report nobody expects: it must change nothing).
 */
class Settle implements Cmd {
  constructor(
    readonly step: Step,
    readonly queued: boolean,
    readonly index: number,
    readonly outcome: Outcome,
  ) {}
  #targets(m: Readonly<RunModel>): string[] {
    if (!this.queued) return m.ids;
    return this.step === 'node' ? m.nodesIn('queued') : m.undosIn('queued');
  }
  // The engine takes a queued node back (skipped) only from a stopping run.
  check = (m: Readonly<RunModel>) => this.#targets(m).length > 0 && !(this.outcome === 'skipped' && (this.step === 'compensation' || m.run === 'running'));
  async run(m: RunModel, r: Real): Promise<void> {
    const targets = this.#targets(m);
    const id = targets[this.index % targets.length]!;
    const changed = await store.settle(r.runId, this.step, id, this.outcome, this.outcome === 'done' ? JSON.stringify({ id }) : 'failed', {}, T0);
    expectSame(changed, m.settle(this.step, id, this.outcome), () => `${this} (${id})`);
    await expectAgree(m, r, `${this} (${id})`);
  }
  toString = () => `settle ${this.step} ${this.queued ? 'queued' : 'any'}#${this.index} ${this.outcome}`;
}

class Cancel implements Cmd {
  check = () => true;
  async run(m: RunModel, r: Real): Promise<void> {
    expectSame(await store.cancel(r.runId, 'cancelled by the property', T0), m.cancel(), 'cancel');
    await expectAgree(m, r, 'cancel');
  }
  toString = () => 'cancel';
}

const outcomeArb = fc.oneof({ weight: 5, arbitrary: fc.constant<Outcome>('done') }, { weight: 1, arbitrary: fc.constant<Outcome>('dead') }, { weight: 1, arbitrary: fc.constant<Outcome>('skipped') });
const commandArbs: Array<fc.Arbitrary<Cmd>> = [
  pickArb.map((p) => new Claim('node', p)),
  pickArb.map((p) => new Claim('node', p)),
  fc.tuple(fc.nat(), outcomeArb).map(([i, o]) => new Settle('node', true, i, o)),
  fc.tuple(fc.nat(), outcomeArb).map(([i, o]) => new Settle('node', true, i, o)),
  fc.tuple(fc.nat(), outcomeArb).map(([i, o]) => new Settle('node', false, i, o)),
  fc.integer({ min: 1, max: 8 }).map((k) => (k === 1 ? new Cancel() : new Claim('node', 'all'))),
  pickArb.map((p) => new Claim('compensation', p)),
  fc.tuple(fc.nat(), fc.boolean()).map(([i, ok]) => new Settle('compensation', true, i, ok ? 'done' : 'dead')),
  fc.tuple(fc.nat(), fc.boolean()).map(([i, ok]) => new Settle('compensation', false, i, ok ? 'done' : 'dead')),
];

/** An engine that keeps going: claims what is ready, its agents finish it (compensations fail as `undoFails` says), until the run ends. */
async function finishRun(m: RunModel, r: Real, undoFails: readonly boolean[]): Promise<void> {
  let undos = 0;
  for (let round = 0; !isFinal(m.run); round++) {
    expectThat(round < 4 * m.ids.length + 4, () => `run ${r.runId} did not end: ${m.run}, nodes ${JSON.stringify(Object.fromEntries(m.states))}`);
    const step: Step = m.run === 'compensating' ? 'compensation' : 'node';
    await new Claim(step, 'all').run(m, r);
    const out = step === 'node' ? m.nodesIn('queued') : m.undosIn('queued');
    for (let i = 0; i < out.length; i++) {
      const outcome: Outcome = step === 'compensation' ? (undoFails[undos++ % undoFails.length] ? 'dead' : 'done') : m.run === 'running' ? 'done' : 'skipped';
      await new Settle(step, true, 0, outcome).run(m, r);
    }
  }
}

let runs = 0;

describe('workflow run store: model-based', () => {
  it('agrees with the DAG + saga model under any order of claims, settles, repeats and cancels, and always finishes', async () => {
    await fc.assert(
      fc.asyncProperty(dagArb, fc.commands(commandArbs, { maxCommands: 40, size: 'max' }), fc.array(fc.boolean(), { minLength: 1, maxLength: 4 }), async (dag, cmds, undoFails) => {
        const runId = `wf_prop${++runs}`;
        const spec = validateWorkflow(
          { nodes: dag.deps.map((ds, i) => ({ id: `n${i}`, type: 'step', payload: {}, dependsOn: ds.map((d) => `n${d}`), ...(dag.compensated[i] ? { compensate: {} } : {}) })) },
          catalogue,
          100,
        );
        await store.create(runId, spec, T0);
        const model = new RunModel(dag);
        const real: Real = { runId, pastReady: new Set(), claimed: new Set() };
        await expectAgree(model, real, 'create');
        await fc.asyncModelRun(() => ({ model, real }), cmds);
        await finishRun(model, real, undoFails);
      }),
      { numRuns: 1000, seed: 0x3f10 },
    );
  }, 60_000);
});
