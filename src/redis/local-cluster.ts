/**
 * A Redis Cluster on loopback from the installed `redis-server` and `redis-cli` (no Docker): N
 * masters (1 or more), optionally one replica each (3 masters or more), every node a spawnRedis process in its own directory.
 * For tests, the cluster benchmark and trying Switchyard on a cluster locally
 * (`npx tsx src/redis/local-cluster.ts [masters] [replicas]` prints the nodes and runs until Ctrl-C).
 */
import { execFile } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { promisify } from 'node:util';
import { spawnRedis } from './embedded.ts';

const run = promisify(execFile);

export interface LocalCluster {
  /** host:port of every node, masters first. */
  nodes: string[];
  /** The processes, to kill one (a failover test) or stop them all. */
  servers: Array<Awaited<ReturnType<typeof spawnRedis>>>;
  /** Starts a killed node again, on its port and with its data: it rejoins (a failed-over master as a replica). */
  restart(port: number): Promise<void>;
  stop(): Promise<void>;
}

export async function startLocalCluster(o: { masters?: number; replicas?: 0 | 1; dataDir?: string } = {}): Promise<LocalCluster> {
  const masters = o.masters ?? 3;
  const replicas = o.replicas ?? 0;
  const root = o.dataDir ?? mkdtempSync(join(tmpdir(), 'switchyard-cluster-'));
  const count = masters * (1 + replicas);
  if (masters < 1 || (masters < 3 && replicas > 0)) throw new RangeError(`a local cluster has 1 master or more, and 3 or more to have replicas (asked: ${masters} with ${replicas} replica each)`);
  // Announced, so that a lone node lists itself in CLUSTER SLOTS as 127.0.0.1, not "".
  const args = ['--cluster-enabled', 'yes', '--cluster-config-file', 'nodes.conf', '--cluster-node-timeout', '2000', '--cluster-announce-ip', '127.0.0.1'];
  const node = (i: number, port?: number) => spawnRedis({ dataDir: join(root, `node-${i}`), ...(port ? { port } : {}), args });
  const servers = await Promise.all(Array.from({ length: count }, (_, i) => node(i)));
  const stop = async () => void (await Promise.all(servers.map((s) => s.stop())));
  const restart = async (port: number) => {
    const i = servers.findIndex((s) => s.port === port);
    if (i < 0) throw new Error(`no cluster node on port ${port}`);
    await servers[i]!.stop();
    servers[i] = await node(i, port);
  };
  try {
    const nodes = servers.map((s) => `127.0.0.1:${s.port}`);
    if (masters >= 3) {
      await run('redis-cli', ['--cluster', 'create', ...nodes, '--cluster-replicas', String(replicas), '--cluster-yes']);
    } else {
      // redis-cli --cluster create wants 3 masters: give 1 or 2 their share of the slots by hand.
      for (const [i, s] of servers.entries()) {
        const [from, to] = [Math.round((i * 16_384) / masters), Math.round(((i + 1) * 16_384) / masters) - 1];
        await run('redis-cli', ['-p', String(s.port), 'cluster', 'addslotsrange', String(from), String(to)]);
      }
      for (const s of servers.slice(1)) await run('redis-cli', ['-p', String(servers[0]!.port), 'cluster', 'meet', '127.0.0.1', String(s.port)]);
    }
    // Every node agrees the cluster is ok (all slots served) before anyone uses it.
    const deadline = Date.now() + 20_000;
    for (const s of servers) {
      for (;;) {
        const { stdout } = await run('redis-cli', ['-p', String(s.port), 'cluster', 'info']);
        if (stdout.includes('cluster_state:ok') && stdout.includes(`cluster_known_nodes:${count}`)) break;
        if (Date.now() > deadline) throw new Error(`cluster node ${s.port} is not ok after 20 s:\n${stdout}`);
        await new Promise((r) => setTimeout(r, 100));
      }
    }
    return { nodes, servers, restart, stop };
  } catch (err) {
    await stop();
    throw err;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const cluster = await startLocalCluster({ masters: Number(process.argv[2] ?? 3), replicas: process.argv[3] === '1' ? 1 : 0 });
  process.stdout.write(`Redis Cluster running: ${cluster.nodes.join(' ')}\nREDIS_CLUSTER_NODES=${cluster.nodes.join(',')}\nCtrl-C stops it.\n`);
  const stop = () => void cluster.stop().then(() => process.exit(0));
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
