/**
 * The batched fetch and completion (src/task/job-batch.ts, src/agent/batched-worker.ts) are written
 * against one BullMQ: they include its Lua functions, mirror two of its scripts, and override or call
 * parts of its Worker. This fails when a BullMQ upgrade changes any of that, so the upgrade re-reads
 * them (and tests/integration/batched-worker.test.ts compares their effects with BullMQ's own path).
 */
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { join } from 'node:path';
import { Job, QueueKeys, Worker } from 'bullmq';
import { describe, expect, it } from 'vitest';
import { BULLMQ_COMMANDS, luaSource } from '../../src/redis/script.ts';

const require = createRequire(import.meta.url);
const PINNED = '6.7.0';

/** Files included by our scripts (expanded into them as they are). */
const INCLUDED: Record<string, string> = {
  'includes/addBaseMarkerIfNeeded': 'bbdfb3922acec0e812a1f99988160bb7faab8099bf402d3cfc2dc96f81b6c00f',
  'includes/addJobInTargetList': '356385ce8c4ba1841de955ac76af5381f3b2074628133e870c2035c3d64a62a2',
  'includes/addJobWithPriority': 'b01312aa67e05384933c9a8d0f5ca752e6fb6a10d23cfb1da6988d566758dfc7',
  'includes/batches': '4f60fd74f44041e353e19b95509b1910d085f2a7c357a8606cf0e6e86fd0e424',
  'includes/collectMetrics': '317a3d95a1c60055b78869bffc80b9802319cb08291a41404ec9fd3023c6e33c',
  'includes/destructureJobKey': 'c5d4d00b305cd60f4c8449c4aa8e928135a1f7ab3e70afb00cfac774385fdb20',
  'includes/getNextDelayedTimestamp': 'b2e7b56676668f78ea01270f3daab3667ab68ea963671b3468e2018af75eb6e4',
  'includes/getOrSetMaxEvents': 'ec9e059a7d303cff34329453cc4747be9f20bc4824abcb397ca4847c52bac8c4',
  'includes/getPriorityScore': '2543a3e682c15d9d8466b633aeb3a6d54a813ec23b5aa7aaf636457d62610206',
  'includes/getQueueMetadata': '10799ec741d9845f4a6ec9317cd22f30daabfa4c55159b2b3a14e8330c2c1298',
  'includes/getRateLimitTTL': 'c11ca472bd6817b0e24311f65571b1a665ca668ea1ec08cfa0cf7e356d372ce6',
  'includes/isQueuePausedOrMaxed': 'b347fdeb087c7a7c6fda41e845f56f6ab8a34999238cff57fc33efcf63e9bee3',
  'includes/promoteDelayedJobs': '589b54b638e2c7f81b3815c40ac7b4f509b4d842f0823dcfea4c3346920bc3c4',
  'includes/removeDeduplicationKeyIfNeededOnRemoval': 'cf3fe8a640a44fd8637f96afe5b28f2e8a619fa7f986416f243f050815d13399',
  'includes/removeJob': 'b7c6655ea027d9d70fd70de52582fed4299f5ce8d5ec15a08a23233909c1e658',
  'includes/removeJobKeys': '3ef7537779443d1f580acce3352f3d57050b9dbbac952c62911ca36d4201ad67',
  'includes/removeJobsByMaxAge': '0472931a0b4cfe5f490e09d543b2806cf2c69c5426691109422b68d72307fc69',
  'includes/removeJobsByMaxCount': '2f51a4bd01105138cf32f5f1a72616cb63f6fdb2c7d0b138d0006c2d6966c2c4',
  'includes/removeParentDependencyKey': '2a97d866674d7c98ad82fec7a897c24cd46e22ab12ce6a305480414005b66633',
  'includes/storeJob': '34bf9c99ad762cae3fa0a1a5a265e8ff63b598b5b9d7d0ebbfa8f56091b30dc1',
  'includes/trimEvents': '47d17832c79d57c1e950cf7e3eeaddd4c70f1483c89bc4d14c458af51796d493',
};

/** Scripts whose effects ours reproduce (add: addStandardJob, addPrioritizedJob; take: moveToActive; complete: moveToFinished), or that act on the jobs they leave. */
const MIRRORED: Record<string, string> = {
  'moveToActive-11': 'a097cd12b152a4bae61dc5f84508fd6c9315555ef0f828bed58dbb8684decaf0',
  'moveToFinished-14': 'd7336f45303f7f0f0c78cbf62ac4839b6b805f2610eb918d8cfe19a25451fa5a',
  'includes/prepareJobForProcessing': 'b1cc78fa3446e8ec3f52585f67a42fe40faf4d3f0328216bf8b6ed58106b4668',
  'includes/moveJobFromPrioritizedToActive': '7ff9813350e337debb58b0eaf6f83680e51adb9196d8f4dc184eae0990517bce',
  'includes/removeLock': 'b88f066760e53683fd27727b086d7dcd0e792a0d0a65e12e1f3e829339d808ba',
  'moveStalledJobsToWait-9': '3bfdcfcf90882a81fb77e6cc4317f9f9e9453e3361f64b0c0e11b7c162d923a1',
  'moveJobFromActiveToWait-9': '959ec2b87e4b820f6eaea75fcaab882392cea0ccf99c63193e4881330f86d9c6',
  'addStandardJob-9': 'f0e90070a042c5eedf0b730c3988f377ba28cbdfff4313b45562bd20c6b09314',
  'addPrioritizedJob-9': '3988fbf4422ad75531f1bada198146ec1f041e7831ba8d65f7d303d3c25fad05',
  'includes/handleDuplicatedJob': 'b45318c5a45558cd28e2eb5404d68656b086ec25b979ed4126d709cc4ec7e856',
};

const sha256 = (path: string) => createHash('sha256').update(readFileSync(join(BULLMQ_COMMANDS, `${path}.lua`))).digest('hex');

describe('the BullMQ the batch scripts are written against', () => {
  it(`is ${PINNED}, pinned exactly in package.json`, () => {
    expect((require('bullmq/package.json') as { version: string }).version).toBe(PINNED);
    const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as { dependencies: Record<string, string> };
    expect(pkg.dependencies.bullmq).toBe(PINNED);
  });

  it('has the Lua files our scripts include, unchanged, and no others are included', () => {
    const included = new Set<string>();
    for (const name of ['job-batch-add', 'job-batch-take', 'job-batch-complete']) luaSource(name, {}, included);
    expect([...included].filter((n) => n.startsWith('bullmq:')).map((n) => n.slice('bullmq:'.length)).sort()).toEqual(Object.keys(INCLUDED).sort());
    for (const [path, hash] of Object.entries(INCLUDED)) expect(sha256(path), path).toBe(hash);
  });

  it('has the scripts ours mirror unchanged', () => {
    for (const [path, hash] of Object.entries(MIRRORED)) expect(sha256(path), path).toBe(hash);
  });

  it('names the queue keys the scripts take as it did', () => {
    const k = new QueueKeys('p').getKeys('q');
    for (const name of ['wait', 'active', 'prioritized', 'events', 'stalled', 'limiter', 'delayed', 'paused', 'meta', 'pc', 'marker', 'completed']) {
      expect(k[name], name).toBe(`p:q:${name}`);
    }
    expect(k['']).toBe('p:q:');
  });

  it('has the Worker, Job and backend parts BatchedWorker overrides or calls', () => {
    const worker = Worker.prototype as unknown as Record<string, unknown>;
    for (const method of ['moveToActive', 'nextJobFromJobData', 'handleCompleted', 'handleFailed', 'updateDelays', 'createJob', 'pause', 'resume', 'close', 'mainLoop']) {
      expect(typeof worker[method], `Worker.${method}`).toBe('function');
    }
    for (const method of ['moveToWait', 'moveToDelayed', 'asJSON', 'validateOptions']) expect(typeof (Job.prototype as unknown as Record<string, unknown>)[method], `Job.${method}`).toBe('function');
    const backend = require('bullmq/dist/cjs/classes/redis-queue-backend.js') as Record<string, unknown>;
    expect(typeof backend.raw2NextJobData).toBe('function');
    expect(typeof (backend.RedisQueueBackend as { prototype: Record<string, unknown> }).prototype.finishedErrors).toBe('function');
    const utils = require('bullmq/dist/cjs/utils/index.js') as { optsEncodeMap: Record<string, string> };
    expect(utils.optsEncodeMap).toMatchObject({ deduplication: 'de', keepLogs: 'kl' });
    const locks = require('bullmq/dist/cjs/classes/lock-manager.js') as { LockManager: { prototype: Record<string, unknown> } };
    for (const method of ['trackJob', 'untrackJob']) expect(typeof locks.LockManager.prototype[method], `LockManager.${method}`).toBe('function');
  });
});
