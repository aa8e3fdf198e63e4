// The dashboard's only script: polls the JSON API and redraws its tables. Cheap by design (issue 18,
// item 13): runs come as overviews with node counts (GET /v1/workflows, no nodes); the nodes of one
// run are read only while the user has it open, one bounded page; the run list is read less often
// while nothing in it can change (every shown run has ended); schedules (issue 20), which change rarely,
// are read every SCHEDULE_TICKS ticks, the first SCHEDULE_LIMIT of them, while their relative times are
// redrawn from what was read; the one task opened (by id, or a task node of the open run) is read each
// tick until it ends, with its progress (issue 22); nothing is polled while the tab is hidden.
// Every value goes in through textContent, never as HTML.
'use strict';

const REFRESH_MS = 2000;
/** While every listed run has ended and the list did not change, it is read every this many ticks. */
const IDLE_RUN_TICKS = 5;
/** Node dots shown for the open run (one page, `nodeLimit`). */
const OPEN_RUN_NODES = 200;
/** Schedules are read every this many ticks (10 s), one page of this many. */
const SCHEDULE_TICKS = 5;
const SCHEDULE_LIMIT = 100;
/** The model's state lists (src/model/workflow-states.ts), written in by router.ts. */
const STATES = __SWITCHYARD_STATES__;
const FINAL = new Set(STATES.finalRun);
/** Node counts in this order; a state the page does not know of yet comes last. */
const SHOWN_FIRST = ['done', 'queued', 'ready', 'pending', 'dead', 'cancelled', 'skipped'];
const COUNT_ORDER = [...SHOWN_FIRST.filter((s) => STATES.node.includes(s)), ...STATES.node.filter((s) => !SHOWN_FIRST.includes(s))];

const state = {
  tick: 0, runs: [], runsText: '', runsIdleTicks: 0, open: undefined, openView: undefined, openError: undefined, timer: undefined, running: false,
  /** The last page of schedules read, and the tick it was read at (-Infinity: read at the next tick). */
  schedules: undefined, schedulesTick: -Infinity, scheduleRows: [],
  /** The task shown (GET /v1/tasks/:id), its last view, and why it could not be read. */
  task: undefined, taskView: undefined, taskError: undefined,
};
const FINAL_TASK = new Set(['completed', 'dead', 'cancelled']);

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

/** A duration as people say it: 42 s, 5 min, 3 h, 2 d (whole units, rounded down; seconds up to two minutes). */
function duration(ms) {
  const s = Math.floor(Math.abs(ms) / 1000);
  if (s < 120) return `${s} s`;
  if (s < 7200) return `${Math.floor(s / 60)} min`;
  if (s < 172_800) return `${Math.floor(s / 3600)} h`;
  return `${Math.floor(s / 86_400)} d`;
}

const relative = (ms, now) => (ms >= now ? `in ${duration(ms - now)}` : `${duration(now - ms)} ago`);

/** An interval in the largest unit it is a whole number of (every 1 h, every 90 s, every 1.5 s). */
function every(ms) {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['min', 60_000]]) if (ms % size === 0) return `every ${ms / size} ${unit}`;
  return `every ${ms / 1000} s`;
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


/** What a waiting node waits for: a sleep's wake time, a signal's name and timeout; a map's items so far. */
function waitingFor(n) {
  if (n.kind === 'map' && n.items) return ` ${n.items.done}/${n.items.total} items done${n.items.failed ? `, ${n.items.failed} failed` : ''}${n.state === 'queued' ? `, ${n.items.running} running` : ''}`;
  if (n.state !== 'queued') return '';
  if (n.kind === 'sleep' && n.wakeAt) return ` sleeping until ${new Date(n.wakeAt).toLocaleString()}`;
  if (n.kind === 'signal') return ` waiting for signal ${n.name}${n.timeoutAt ? ` until ${new Date(n.timeoutAt).toLocaleString()}` : ''}`;
  return '';
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
    dot.title = `${n.id}: ${n.state}${n.pool ? ` (${n.pool})` : ''}${waitingFor(n)}${n.error ? ` ${n.error}` : ''}`;
    // A task node's job id is `<run>.<node>`: a click shows the task (its attempts, progress, result).
    if (n.type && !n.kind && n.state !== 'pending' && n.state !== 'ready' && n.state !== 'skipped') {
      dot.classList.add('task');
      dot.dataset.node = n.id;
      dot.addEventListener('click', () => showTask(`${v.id}.${n.id}`));
    }
    nodes.append(dot);
  }
  const shown = Math.min(v.nodes.length, OPEN_RUN_NODES);
  document.getElementById('run-note').textContent =
    shown < v.progress.total ? `the first ${shown} of ${v.progress.total} nodes (GET /v1/workflows/${v.id}?nodeOffset=${shown} reads on)` : `${v.progress.total} nodes`;
}

/**
 * A schedule's next fire still ahead of `now` (the page read may be up to 10 s old): the first of its
 * next fire times that is, or for an interval the one after its last shown time that is.
 */
function nextFire(s, now) {
  if (s.paused) return { text: '—' };
  const times = s.nextFires.map(Date.parse);
  let at = times.find((t) => t > now);
  if (at === undefined && s.everyMs !== undefined && times.length > 0) {
    at = times[times.length - 1] + Math.ceil((now - times[times.length - 1] + 1) / s.everyMs) * s.everyMs;
    if (s.endAt && at > Date.parse(s.endAt)) at = undefined;
  }
  if (at !== undefined) return { text: relative(at, now), title: new Date(at).toLocaleString() };
  return { text: s.endAt && Date.parse(s.endAt) <= now ? 'ended' : times.length > 0 ? 'due' : '—' };
}

function setNext(td, s, now) {
  const next = nextFire(s, now);
  if (td.textContent !== next.text) td.textContent = next.text;
  td.title = next.title ?? '';
}

/** Rebuilds the schedule table from the last page read (after each read). */
function drawSchedules() {
  const page = state.schedules;
  const now = Date.now();
  state.scheduleRows = [];
  fill('schedules', page.schedules.map((s) => {
    const first = el('td', s.id);
    first.dataset.schedule = s.id;
    const when = el('td', s.cron !== undefined ? `cron ${s.cron} (${s.timeZone ?? 'UTC'})` : every(s.everyMs));
    const span = [s.startAt && `from ${new Date(s.startAt).toLocaleString()}`, s.endAt && `until ${new Date(s.endAt).toLocaleString()}`].filter(Boolean);
    if (span.length) when.title = span.join(' ');
    const starts = s.task ? `task ${s.task.type}` : `workflow ${s.workflow?.name ?? ''}`.trim();
    const next = el('td', undefined, 'next');
    setNext(next, s, now);
    const last = lastFireCell(s.lastFire, now);
    state.scheduleRows.push({ s, next, last });
    return [first, s.name ?? '', when, starts, badge(s.paused ? 'paused' : 'active'), next, last];
  }), 7, 'no schedules');
  document.getElementById('schedules-note').textContent = page.schedules.length < page.total
    ? `the first ${page.schedules.length} of ${page.total} schedules (GET /v1/schedules?offset=${page.schedules.length} reads on)`
    : '';
}

/** Between reads only the relative times move: they are updated in place (a hovered title stays up). */
function ageSchedules() {
  const now = Date.now();
  for (const { s, next, last } of state.scheduleRows) {
    setNext(next, s, now);
    if (s.lastFire) last.title = lastFireTitle(s.lastFire, now);
  }
}

/** How the last tick went: its outcome, the task or run it started (a run opens below the run list), when, and why not. */
function lastFireCell(fire, now) {
  const td = el('td', undefined, 'last');
  if (!fire) {
    td.textContent = 'not yet';
    return td;
  }
  td.append(el('span', fire.outcome, `state ${fire.outcome}`));
  if (fire.id && fire.id.startsWith('wf_')) {
    const open = el('button', fire.id, 'link');
    open.type = 'button';
    open.addEventListener('click', () => {
      openRun(state.open === fire.id ? undefined : fire.id);
      if (state.open) document.getElementById('run').scrollIntoView({ block: 'nearest' });
    });
    td.append(open);
  } else if (fire.id) {
    td.append(el('span', fire.id));
  } else if (fire.reason) {
    td.append(el('span', fire.reason.length > 60 ? `${fire.reason.slice(0, 59)}…` : fire.reason));
  }
  td.title = lastFireTitle(fire, now);
  return td;
}

const lastFireTitle = (fire, now) => `tick ${new Date(fire.tick).toLocaleString()}, ${fire.outcome} ${relative(Date.parse(fire.at), now)}${fire.reason ? `: ${fire.reason}` : ''}`;

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

/** What a handler last reported: a percentage as a bar with its number, anything else as its JSON. */
function progressCell(progress) {
  if (typeof progress === 'number' && progress >= 0 && progress <= 100) {
    const td = bar(progress / 100);
    td.append(` ${progress} %`);
    return td;
  }
  return el('td', JSON.stringify(progress));
}

function drawTask() {
  const table = document.getElementById('task');
  table.hidden = !state.task;
  if (!state.task) return;
  const v = state.taskView;
  const rows = [['task', `${state.task}${v ? '' : `: ${state.taskError ?? 'loading…'}`}`]];
  if (v) {
    rows.push(['state', badge(v.state)], ['type', `${v.type} in ${v.pool}`], ['attempts', `${v.attempts.made} of ${v.attempts.max} ended, ${v.attempts.started} started`]);
    if (v.progress !== undefined) rows.push(['progress', progressCell(v.progress)]);
    if (v.startedAt) rows.push(['started', new Date(v.startedAt).toLocaleTimeString()]);
    if (v.finishedAt) rows.push(['finished', new Date(v.finishedAt).toLocaleTimeString()]);
    if (v.note) rows.push(['note', v.note]);
    if (v.error) rows.push(['error', v.error]);
    if (v.result !== undefined) rows.push(['result', JSON.stringify(v.result).slice(0, 500)]);
  }
  const body = table.tBodies[0];
  body.replaceChildren(...rows.map(([name, value]) => {
    const tr = el('tr');
    const th = el('th', name);
    const td = value instanceof HTMLElement && value.tagName === 'TD' ? value : el('td');
    if (td !== value) td.append(value);
    td.dataset.field = name;
    tr.append(th, td);
    return tr;
  }));
}

async function refreshTask() {
  const id = state.task;
  if (!id || (state.taskView && FINAL_TASK.has(state.taskView.state))) return;
  try {
    const view = JSON.parse(await getJson(`/v1/tasks/${encodeURIComponent(id)}`));
    if (state.task === id) [state.taskView, state.taskError] = [view, undefined];
  } catch (err) {
    if (state.task === id) state.taskError = `cannot read it (${err.message})`;
  }
}

function showTask(id) {
  state.task = id || undefined;
  state.taskView = undefined;
  state.taskError = undefined;
  document.getElementById('task-id').value = id ?? '';
  drawTask();
  if (state.task) void refreshTask().then(drawTask);
}

document.getElementById('task-form').addEventListener('submit', (e) => {
  e.preventDefault();
  showTask(document.getElementById('task-id').value.trim());
});

/** A pool's flow limits in a few words: its type's rates and limit per key, and what holds it now. */
function limitsText(p) {
  const l = p.limits ?? {};
  const rate = (r) => `${r.max}/${r.perMs === 1000 ? 's' : `${r.perMs} ms`}`;
  const parts = [];
  if (l.ratePerPool) parts.push(`${rate(l.ratePerPool)} per pool`);
  if (l.ratePerType) parts.push(`${rate(l.ratePerType)} per type`);
  if (l.ratePerKey) parts.push(`${rate(l.ratePerKey)} per key`);
  if (l.concurrencyPerKey) parts.push(`${l.concurrencyPerKey} running per key`);
  if (p.rateLimit?.limitedForMs) parts.push(`at its rate: next in ${p.rateLimit.limitedForMs} ms`);
  if (p.heldForMs) parts.push(`held ${(p.heldForMs / 1000).toFixed(1)} s (retry-after)`);
  return parts.length ? parts.join('; ') : '—';
}

async function refresh() {
  const readRuns = state.runsIdleTicks === 0 || state.tick % IDLE_RUN_TICKS === 0;
  const readSchedules = state.tick - state.schedulesTick >= SCHEDULE_TICKS;
  const [pools, agents, runsText, schedules] = await Promise.all([
    getJson('/v1/pools').then(JSON.parse),
    getJson('/v1/agents').then(JSON.parse),
    readRuns ? getJson('/v1/workflows?limit=10') : Promise.resolve(state.runsText),
    readSchedules ? getJson(`/v1/schedules?limit=${SCHEDULE_LIMIT}`).then(JSON.parse) : Promise.resolve(state.schedules),
    refreshOpenRun(),
    refreshTask(),
  ]);
  fill('pools', pools.map((p) => [
    p.name, `${p.agents.HEALTHY + p.agents.DEGRADED} of ${p.agents.total} serving`, p.weight, `${p.running} / ${p.concurrency}`,
    p.backlog.waiting, p.backlog.dead, badge(p.breaker), limitsText(p), p.eligible ? 'yes' : `no: ${p.reasons.join('; ')}`,
  ]), 9, 'no pools yet: start an agent');
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
  drawTask();
  if (readSchedules) {
    [state.schedules, state.schedulesTick] = [schedules, state.tick];
    drawSchedules();
  } else {
    ageSchedules();
  }
  document.getElementById('status').textContent =
    `updated ${new Date().toLocaleTimeString()} · ${agents.length} agents · ${pools.length} pools · ${state.schedules.total} schedules`;
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
    state.schedulesTick = -Infinity;
    void loop();
  }
});
void loop();
