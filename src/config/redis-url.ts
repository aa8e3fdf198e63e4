/** Redis settings as the configuration reads them: cluster URLs and the replica wait. Pure. */
/**
 * A cluster is named by a URL whose scheme ends in `+cluster` and whose host part lists seed
 * nodes: `redis+cluster://10.0.0.1:6379,10.0.0.2:6379` (`rediss+cluster://` for TLS; a user and
 * password apply to every node). Any seed will do: the client learns the rest from CLUSTER SLOTS.
 */
export const CLUSTER_URL = /^(rediss?)\+cluster:\/\/(?:([^:@/]*)(?::([^@/]*))?@)?([^/?#]+)\/?$/;

export interface ClusterTarget {
  nodes: Array<{ host: string; port: number }>;
  tls: boolean;
  username?: string;
  password?: string;
}

/** The seed nodes of a `redis+cluster://` URL, or undefined for a plain `redis://` URL. */
export function parseClusterUrl(url: string): ClusterTarget | undefined {
  const m = CLUSTER_URL.exec(url);
  if (!m) return undefined;
  const nodes = m[4]!.split(',').map((hp) => {
    const i = hp.lastIndexOf(':');
    const host = i > 0 ? hp.slice(0, i) : hp;
    const port = i > 0 ? Number(hp.slice(i + 1)) : 6379;
    if (!host || !Number.isInteger(port) || port < 1 || port > 65535) throw new TypeError(`cluster node ${JSON.stringify(hp)} is not host:port with a port from 1 to 65535`);
    return { host, port };
  });
  return {
    nodes,
    tls: m[1] === 'rediss',
    ...(m[2] ? { username: decodeURIComponent(m[2]) } : {}),
    ...(m[3] ? { password: decodeURIComponent(m[3]) } : {}),
  };
}

/** The `redis+cluster://` URL of a list of `host:port` seeds (REDIS_CLUSTER_NODES). */
export const clusterUrl = (nodes: readonly string[]): string => `redis+cluster://${nodes.join(',')}`;

export interface ReplicaWait {
  /** Replicas that must confirm each write before it is acknowledged; 0: do not wait. */
  count: number;
  timeoutMs: number;
}
