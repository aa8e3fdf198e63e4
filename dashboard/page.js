// The dashboard's only script: polls the JSON API and redraws its tables. Cheap by design (issue 18,
// item 13): runs come as overviews with node counts (GET /v1/workflows, no nodes); the nodes of one
// run are read only while the user has it open, one bounded page; the run list is read less often
// while nothing in it can change (every shown run has ended); nothing is polled while the tab is hidden.
// Every value goes in through textContent, never as HTML.
'use strict';

const REFRESH_MS = 2000;
/** While every listed run has ended and the list did not change, it is read every this many ticks. */
const IDLE_RUN_TICKS = 5;
/** Node dots shown for the open run (one page, `nodeLimit`). */
const OPEN_RUN_NODES = 200;
/** The model's state lists (src/model/workflow-states.ts), written in by router.ts. */
const STATES = __SWITCHYARD_STATES__;
const FINAL = new Set(STATES.finalRun);
/** Node counts in this order; a state the page does not know of yet comes last. */
const SHOWN_FIRST = ['done', 'queued', 'ready', 'pending', 'dead', 'cancelled', 'skipped'];
const COUNT_ORDER = [...SHOWN_FIRST.filter((s) => STATES.node.includes(s)), ...STATES.node.filter((s) => !SHOWN_FIRST.includes(s))];

const state = { tick: 0, runs: [], runsText: '', runsIdleTicks: 0, open: undefined, openView: undefined, openError: undefined, timer: undefined, running: false };

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function badge(value) {
  const td = el('td');
  td.append(el('span', value, `state ${value}`));
  return td;
}

function bar(fraction) {
  const td = el('td');
  const outer = el('span', undefined, 'bar');
  const inner = el('span');
  inner.style.width = `${Math.round(Math.min(1, Math.max(0, fraction)) * 100)}%`;
  outer.append(inner);
  td.append(outer);
  return td;
}

/** A run's nodes by state as one stacked bar, with the counts as text beside it. */
function countsCell(run) {
  const td = el('td', undefined, 'counts');
  const stack = el('span', undefined, 'stack');
  const total = run.progress.total || 1;
  const parts = [];
  for (const s of COUNT_ORDER) {
    const n = run.nodeCounts[s];
    if (!n) continue;
    const seg = el('span', undefined, s);
    seg.style.width = `${(n / total) * 100}%`;
    seg.title = `${n} ${s}`;
    stack.append(seg);
    parts.push(`${n} ${s}`);
  }
  td.append(stack, el('span', parts.join(' · ')));
  return td;
}

function fill(tableId, rows, columns, empty) {
  const body = document.querySelector(`#${tableId} tbody`);
  body.replaceChildren();
  if (rows.length === 0) {
    const td = el('td', empty, 'empty');
    td.colSpan = columns;
    body.append(el('tr')).append(td);
    return;
  }
  for (const cells of rows) {
    const tr = el('tr');
    tr.append(...cells.map((c) => (c instanceof HTMLElement ? c : el('td', c))));
    body.append(tr);
  }
}

async function getJson(path) {
  const res = await fetch(path, { credentials: 'same-origin', headers: { accept: 'application/json' } });
  if (!res.ok) throw new Error(`${path}: ${res.status}`);
  return res.text();
}

function drawRuns() {
  fill('runs', state.runs.map((r) => {
    const open = el('button', r.id, 'link');
    open.type = 'button';
    open.addEventListener('click', () => openRun(state.open === r.id ? undefined : r.id));
    const first = el('td');
    first.append(open);
    if (state.open === r.id) first.className = 'open';
    return [first, r.name, badge(r.state), `${r.progress.done} / ${r.progress.total}`, countsCell(r), new Date(r.createdAt).toLocaleTimeString()];
  }), 6, 'no workflow runs kept');
}

function drawOpenRun() {
  const section = document.getElementById('run');
  const v = state.openView;
  section.hidden = !state.open;
  if (!state.open) return;
  document.getElementById('run-title').textContent = v
    ? `${v.name} ${v.id}: ${v.state}${v.reason ? ` (${v.reason})` : ''}`
    : `${state.open}: ${state.openError ?? 'loading…'}`;
  const nodes = document.getElementById('run-nodes');
  nodes.replaceChildren();
  document.getElementById('run-note').textContent = '';
  if (!v) return;
  for (const n of v.nodes.slice(0, OPEN_RUN_NODES)) {
    const dot = el('span', undefined, n.state);
    dot.title = `${n.id}: ${n.state}${n.pool ? ` (${n.pool})` : ''}${n.error ? ` ${n.error}` : ''}`;
    nodes.append(dot);
  }
  const shown = Math.min(v.nodes.length, OPEN_RUN_NODES);
  document.getElementById('run-note').textContent =
    shown < v.progress.total ? `the first ${shown} of ${v.progress.total} nodes (GET /v1/workflows/${v.id}?nodeOffset=${shown} reads on)` : `${v.progress.total} nodes`;
}

async function refreshOpenRun() {
  const id = state.open;
  if (!id || (state.openView && state.openView.id === id && FINAL.has(state.openView.state))) return;
  try {
    const view = JSON.parse(await getJson(`/v1/workflows/${encodeURIComponent(id)}?nodeLimit=${OPEN_RUN_NODES}`));
    if (state.open === id) [state.openView, state.openError] = [view, undefined];
  } catch (err) {
    if (state.open === id) state.openError = `cannot read it (${err.message})`;
  }
}

function openRun(id) {
  state.open = id;
  state.openView = undefined;
  state.openError = undefined;
  drawRuns();
  drawOpenRun();
  if (id) void refreshOpenRun().then(drawOpenRun);
}

async function refresh() {
  const readRuns = state.runsIdleTicks === 0 || state.tick % IDLE_RUN_TICKS === 0;
  const [pools, agents, runsText] = await Promise.all([
    getJson('/v1/pools').then(JSON.parse),
    getJson('/v1/agents').then(JSON.parse),
    readRuns ? getJson('/v1/workflows?limit=10') : Promise.resolve(state.runsText),
    refreshOpenRun(),
  ]);
  fill('pools', pools.map((p) => [
    p.name, `${p.agents.HEALTHY + p.agents.DEGRADED} of ${p.agents.total} serving`, p.weight, `${p.running} / ${p.concurrency}`,
    p.backlog.waiting, p.backlog.dead, badge(p.breaker), p.eligible ? 'yes' : `no: ${p.reasons.join('; ')}`,
  ]), 8, 'no pools yet: start an agent');
  fill('agents', agents.map((a) => {
    const row = [a.id, a.pool, badge(a.health), bar(a.load), a.weight, new Date(a.lastHeartbeat).toLocaleTimeString()];
    row[0] = el('td', a.id);
    row[0].dataset.agent = a.id;
    return row;
  }), 6, 'no live agents');
  if (readRuns) {
    const changed = runsText !== state.runsText;
    state.runsText = runsText;
    state.runs = JSON.parse(runsText).runs;
    // Slow down only while nothing listed can change on its own: every run has ended and the list is as it was.
    state.runsIdleTicks = !changed && state.runs.every((r) => FINAL.has(r.state)) ? state.runsIdleTicks + 1 : 0;
    drawRuns();
  }
  drawOpenRun();
  document.getElementById('status').textContent = `updated ${new Date().toLocaleTimeString()} · ${agents.length} agents · ${pools.length} pools`;
}

async function loop() {
  state.timer = undefined;
  state.running = true;
  try {
    await refresh();
  } catch (err) {
    document.getElementById('status').textContent = `cannot reach the API (${err.message}); retrying`;
  }
  state.running = false;
  state.tick++;
  // A hidden tab polls nothing; it catches up as soon as it is shown again.
  if (!document.hidden) state.timer = setTimeout(loop, REFRESH_MS);
}

document.addEventListener('visibilitychange', () => {
  if (!document.hidden && state.timer === undefined && !state.running) {
    state.runsIdleTicks = 0;
    void loop();
  }
});
void loop();
