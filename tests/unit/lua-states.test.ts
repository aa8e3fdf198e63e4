/**
 * One source for a workflow's states: every quoted word in the workflow scripts is a state from
 * src/model/workflow-states.ts, a step, a field of the run's meta hash, a key suffix or a Redis
 * command, so a misspelt or unlisted state in Lua fails here; and the run states the scripts test
 * for as final are the model's (written into the include `workflow-states`).
 */
import { describe, expect, it } from 'vitest';
import { luaSource } from '../../src/redis/script.ts';
import { GENERATED_LUA, scripts } from '../../src/redis/scripts.ts';
import { RUN_KEY_SUFFIXES } from '../../src/redis/keys.ts';
import { COMPENSATION_STATES, FINAL_RUN_STATES, NODE_STATES, RUN_STATES } from '../../src/model/workflow-states.ts';

const workflowScripts = Object.values(scripts).filter((s) => s.name.startsWith('workflow-')).map((s) => s.name);
const quoted = (lua: string) => [...lua.replace(/--[^\n]*/g, '').matchAll(/'([^'\n]*)'/g)].map((m) => m[1]!);

/** The meta hash's fields that are not also a state (src/workflow/run-store.ts reads them). */
const META_FIELDS = ['state', 'cause', 'reason', 'total', 'inflight', 'undoPending', 'undoRan', 'undoFailed', 'finishedAt'];
const CAUSES = ['failure', 'cancel'];
const STEPS = ['node', 'compensation'];

describe('workflow scripts and the model', () => {
  it('quote no state the model does not list', () => {
    const known = new Set<string>([...RUN_STATES, ...NODE_STATES, ...COMPENSATION_STATES, ...META_FIELDS, ...CAUSES, ...STEPS, ...RUN_KEY_SUFFIXES]);
    expect(workflowScripts).toEqual(['workflow-settle', 'workflow-claim', 'workflow-signal', 'workflow-map-start', 'workflow-map-take', 'workflow-map-item', 'workflow-cancel']);
    for (const name of workflowScripts) {
      const unknown = quoted(luaSource(name, GENERATED_LUA)).filter((w) => !known.has(w) && !/^[A-Z]+$/.test(w) && !/^\W|^\d+$|^node $|^item $/.test(w) && w !== 'null');
      expect(unknown, name).toEqual([]);
    }
  });

  it('use every run and node state the model lists', () => {
    const all = new Set(workflowScripts.flatMap((name) => quoted(luaSource(name, GENERATED_LUA))));
    const generated = GENERATED_LUA['workflow-states'];
    expect([...RUN_STATES, ...NODE_STATES].filter((s) => !all.has(s) && !generated.includes(`${s} = true`))).toEqual([]);
  });

  it('test for the final run states the model lists, written into the include', () => {
    const cancel = luaSource('workflow-cancel', GENERATED_LUA);
    expect(cancel).toContain(`local FINAL_RUN_STATE = { ${FINAL_RUN_STATES.map((s) => `${s} = true`).join(', ')} }`);
    expect(cancel).not.toMatch(/@include/);
  });
});
