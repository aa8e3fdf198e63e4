// The dashboard's only script: polls the JSON API every second and redraws three tables.
// Every value goes in through textContent, never as HTML.
'use strict';

const REFRESH_MS = 1000;

function el(tag, text, className) {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = String(text);
  if (className) e.className = className;
  return e;
}

function badge(state) {
  const td = el('td');
  td.append(el('span', state, `state ${state}`));
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
  return res.json();
}

async function refresh() {
  const [pools, agents, { runs }] = await Promise.all([getJson('/v1/pools'), getJson('/v1/agents'), getJson('/v1/workflows?limit=10')]);
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
  fill('runs', runs.map((r) => {
    const nodes = el('td', undefined, 'nodes');
    for (const n of r.nodes.slice(0, 60)) {
      const dot = el('span', undefined, n.state);
      dot.title = `${n.id}: ${n.state}`;
      nodes.append(dot);
    }
    return [r.id, r.name, badge(r.state), `${r.progress.done} / ${r.progress.total}`, nodes, new Date(r.createdAt).toLocaleTimeString()];
  }), 6, 'no workflow runs kept');
  document.getElementById('status').textContent = `updated ${new Date().toLocaleTimeString()} · ${agents.length} agents · ${pools.length} pools`;
}

async function loop() {
  try {
    await refresh();
  } catch (err) {
    document.getElementById('status').textContent = `cannot reach the API (${err.message}); retrying`;
  }
  setTimeout(loop, REFRESH_MS);
}
loop();
