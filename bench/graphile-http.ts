/**
 * graphile-worker behind an HTTP front, for the `peers` scenario's "behind HTTP" shape, as Switchyard's
 * API and agent run: two processes. `front`: Express with its JSON parser, `POST /v1/tasks/batch`
 * ({ tasks: [{ payload }] }) adding the batch with WorkerUtils.addJobs, answering 202. `worker`:
 * graphile-worker's run() with one no-op task at GRAPHILE_CONCURRENCY and the preset in GRAPHILE_PRESET
 * (JSON). Both read DATABASE_URL and GRAPHILE_SCHEMA; the front PORT. Each prints "ready".
 */
import express from 'express';
import { Logger, makeWorkerUtils, run } from 'graphile-worker';

const connectionString = process.env.DATABASE_URL!;
const schema = process.env.GRAPHILE_SCHEMA!;
const logger = new Logger(() => () => undefined);

if (process.argv[2] === 'front') {
  const utils = await makeWorkerUtils({ connectionString, schema, logger });
  await utils.migrate();
  const app = express();
  app.post('/v1/tasks/batch', express.json({ limit: '10mb' }), async (req, res) => {
    const { tasks } = req.body as { tasks: Array<{ payload: unknown }> };
    await utils.addJobs(tasks.map((t) => ({ identifier: 'noop', payload: t.payload as Record<string, unknown> })));
    res.status(202).json({ accepted: tasks.length });
  });
  const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.stdout.write('ready\n'));
  process.on('SIGTERM', () => server.close(() => void Promise.resolve(utils.release()).then(() => process.exit(0))));
} else {
  const runner = await run({
    connectionString, schema, logger, noHandleSignals: true,
    concurrency: Number(process.env.GRAPHILE_CONCURRENCY ?? 50),
    taskList: { noop: async (payload) => void (payload as { i: number }).i },
    preset: { worker: JSON.parse(process.env.GRAPHILE_PRESET ?? '{}') as object },
  });
  process.stdout.write('ready\n');
  process.on('SIGTERM', () => void runner.stop().then(() => process.exit(0)));
}
