/**
 * The reference for HTTP ingestion: the smallest honest HTTP front for bare BullMQ — Express with
 * its JSON parser and one `queue.add` per request, answering 202 with the job id; no validation,
 * routing or auth. Configured by REDIS_URL, BENCH_PREFIX, PORT; prints "ready".
 */
import express from 'express';
import { Queue } from 'bullmq';
import { Redis } from 'ioredis';

const connection = new Redis(process.env.REDIS_URL ?? 'redis://127.0.0.1:6379', { maxRetriesPerRequest: null });
const queue = new Queue('echo', { connection, prefix: process.env.BENCH_PREFIX ?? 'bare' });
const app = express();
app.post('/v1/tasks', express.json(), async (req, res) => {
  const body = req.body as { type?: string; payload?: unknown };
  const job = await queue.add(body.type ?? 'echo', body.payload ?? {}, { attempts: 3, removeOnComplete: { age: 86_400, count: 100_000 } });
  res.status(202).json({ id: job.id, state: 'waiting' });
});
const server = app.listen(Number(process.env.PORT ?? 0), '127.0.0.1', () => process.stdout.write('ready\n'));
const stop = () => server.close(() => void queue.close().then(() => process.exit(0)));
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
