/**
 * GET /metrics: the API's own counts and gauges, and the fleet's task counts, which agents publish
 * to Redis and the API sums, all in one scrape. An API and two agents (echo, flaky) in this process.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { Agent } from '../../src/agent/agent.ts';
import { Catalogue } from '../../src/model/catalogue.ts';
import { startApi, type ApiServer } from '../../src/api/server.ts';
import demoTypes from '../../queues/index.ts';
import echoWorker from '../../workers/echo.ts';
import flakyWorker from '../../workers/flaky.ts';
import { json } from '../support/http.ts';
import { REDIS_URL, useRedisPrefix } from '../support/redis.ts';
import { silentLog, testConfig } from '../support/system.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('metrics');
const config = testConfig(prefix, { port: 0 });
let api: ApiServer;
const agents: Agent[] = [];

beforeAll(async () => {
  api = await startApi({ config, catalogue: new Catalogue(demoTypes), redisUrl: REDIS_URL, log: silentLog });
  for (const definition of [echoWorker, flakyWorker]) agents.push(await Agent.start({ definition, redisUrl: REDIS_URL, config, log: silentLog, concurrency: 4 }));
  await waitFor(async () => ((await json(fetch(`${api.url}/v1/agents?health=HEALTHY`))) as unknown[]).length === 2, { what: 'both agents HEALTHY' });
});
afterAll(async () => {
  await Promise.all(agents.map((a) => a.close(0)));
  await api?.close();
});

const post = (body: unknown) => fetch(`${api.url}/v1/tasks`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) }).then(json);
const scrape = () => fetch(`${api.url}/metrics`).then((r) => r.text());
/** The value of one series, by its exact name and labels as prom-client prints them. */
const value = (text: string, series: string) => {
  const line = text.split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
};

describe('GET /metrics', () => {
  it('shows tasks enqueued, completed, failed and dead, their timings, queues, agents and HTTP requests in one scrape', async () => {
    const ids = [];
    for (let i = 0; i < 5; i++) ids.push((await post({ type: 'echo', payload: { message: `m${i}` } })).id as string);
    const bad = (await post({ type: 'flaky', payload: { failRate: 1 }, attempts: 2, backoff: { delayMs: 10, jitter: 0 } })).id as string;
    for (const id of [...ids, bad]) {
      await waitFor(async () => ['completed', 'dead'].includes((await json(fetch(`${api.url}/v1/tasks/${id}`))).state), { what: `task ${id} to finish` });
    }
    // Agents publish once a heartbeat: wait for the scrape to show their counts.
    const text = await waitFor(async () => {
      const t = await scrape();
      return value(t, 'switchyard_tasks_completed_total{type="echo",pool="default"}') === 5 && value(t, 'switchyard_tasks_dead_total{type="flaky",pool="default"}') === 1 ? t : undefined;
    }, { what: 'the agents\' counts in the scrape', timeoutMs: 10_000 });
    expect(value(text, 'switchyard_tasks_enqueued_total{type="echo",pool="default"}')).toBe(5);
    expect(value(text, 'switchyard_task_attempts_failed_total{type="flaky",pool="default"}')).toBe(2);
    expect(value(text, 'switchyard_task_run_seconds_count{type="echo",pool="default"}')).toBe(5);
    expect(value(text, 'switchyard_task_wait_seconds_count{type="echo",pool="default"}')).toBe(5);
    expect(value(text, 'switchyard_queue_tasks{type="echo",pool="default",state="completed"}')).toBe(5);
    expect(value(text, 'switchyard_queue_tasks{type="flaky",pool="default",state="dead"}')).toBe(1);
    expect(value(text, 'switchyard_agents{type="echo",pool="default",health="HEALTHY"}')).toBe(1);
    expect(value(text, 'switchyard_http_request_duration_seconds_count{method="POST",route="/v1/tasks",status="202"}')).toBe(6);
    expect(text).toMatch(/^switchyard_workflow_runs\{state="running"\} 0$/m);
    expect(text).toMatch(/^switchyard_api_process_resident_memory_bytes \d+/m);
  });
});
