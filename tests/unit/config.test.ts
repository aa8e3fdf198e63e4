import { describe, expect, it } from 'vitest';
import { loadConfig } from '../../src/config/env.ts';

describe('loadConfig', () => {
  it('has sane defaults with an empty environment', () => {
    const c = loadConfig({});
    expect(c).toMatchObject({ host: '127.0.0.1', port: 3000, prefix: 'sw', apiKeys: [], logLevel: 'info', redisUrl: undefined });
    expect(c.lockMs).toBeGreaterThan(c.stalledIntervalMs);
    expect(Object.isFrozen(c)).toBe(true);
  });

  it('parses values and comma-separated keys', () => {
    const c = loadConfig({ PORT: '8080', SWITCHYARD_API_KEYS: ' a, b ,,c', REDIS_URL: 'redis://r:6379/2', LOG_LEVEL: 'debug' });
    expect(c.port).toBe(8080);
    expect(c.apiKeys).toEqual(['a', 'b', 'c']);
    expect(c.redisUrl).toBe('redis://r:6379/2');
    expect(c.logLevel).toBe('debug');
  });

  it('has no rate limit by default; a limit defaults its burst to one second of it', () => {
    expect(loadConfig({}).rateLimit.perSecond).toBe(0);
    expect(loadConfig({ SWITCHYARD_RATE_LIMIT: '2.5' }).rateLimit).toEqual({ perSecond: 2.5, burst: 3 });
    expect(loadConfig({ SWITCHYARD_RATE_LIMIT: '100', SWITCHYARD_RATE_BURST: '1000' }).rateLimit).toEqual({ perSecond: 100, burst: 1000 });
  });

  it('has connection limits and timeouts, and a list of Host names allowed without keys', () => {
    expect(loadConfig({}).connections).toEqual({ max: 4096, perAddress: 256, headersTimeoutMs: 10_000, requestTimeoutMs: 30_000, keepAliveTimeoutMs: 65_000 });
    expect(loadConfig({}).allowedHosts).toEqual([]);
    expect(loadConfig({ SWITCHYARD_ALLOWED_HOSTS: 'Switchyard.Internal, 10.0.0.5,[fd00::1],host.' }).allowedHosts).toEqual(['switchyard.internal', '10.0.0.5', 'fd00::1', 'host']);
    expect(() => loadConfig({ SWITCHYARD_HEADERS_TIMEOUT_MS: '20000', SWITCHYARD_REQUEST_TIMEOUT_MS: '10000' })).toThrow(/SWITCHYARD_REQUEST_TIMEOUT_MS=.*at least SWITCHYARD_HEADERS_TIMEOUT_MS/);
    expect(() => loadConfig({ SWITCHYARD_MAX_CONNECTIONS: '10', SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS: '20' })).toThrow(/SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS=.*at most SWITCHYARD_MAX_CONNECTIONS/);
  });

  it('treats empty strings as unset', () => {
    expect(loadConfig({ PORT: '', REDIS_URL: '' })).toMatchObject({ port: 3000, redisUrl: undefined });
  });

  it.each([
    ['PORT', 'eighty'],
    ['PORT', '70000'],
    ['REDIS_URL', 'http://example.com'],
    ['SWITCHYARD_PREFIX', 'has:colon'],
    ['LOG_LEVEL', 'loud'],
    ['SWITCHYARD_LOCK_MS', '-5'],
    ['SWITCHYARD_RATE_LIMIT', '-1'],
    ['SWITCHYARD_RATE_BURST', '0'],
    ['REDIS_URL', 'redis+cluster://h:99999'],
    ['REDIS_CLUSTER_NODES', 'a:6379,b'],
    ['REDIS_CLUSTER_NODES', 'a:70000'],
    ['SWITCHYARD_WAIT_REPLICAS', '-1'],
    ['SWITCHYARD_ALLOWED_HOSTS', 'ok.example,bad host'],
    ['SWITCHYARD_ALLOWED_HOSTS', 'app.example:8080'],
    ['SWITCHYARD_ALLOWED_HOSTS', 'http://app.example'],
    ['SWITCHYARD_MAX_CONNECTIONS', '0'],
    ['SWITCHYARD_MAX_CONNECTIONS_PER_ADDRESS', 'many'],
    ['SWITCHYARD_HEADERS_TIMEOUT_MS', '5'],
    ['SWITCHYARD_KEEP_ALIVE_TIMEOUT_MS', '-1'],
  ])('rejects %s=%s with a message naming the variable', (name, value) => {
    expect(() => loadConfig({ [name]: value })).toThrow(new RegExp(`${name}="${value.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}"`));
  });

  it('names a Redis Cluster by its seed nodes, in either form, and refuses both forms at once', () => {
    expect(loadConfig({ REDIS_CLUSTER_NODES: '10.0.0.1:6379, 10.0.0.2:6380' }).redisUrl).toBe('redis+cluster://10.0.0.1:6379,10.0.0.2:6380');
    expect(loadConfig({ REDIS_URL: 'rediss+cluster://u:p@h1:7000,h2:7001' }).redisUrl).toBe('rediss+cluster://u:p@h1:7000,h2:7001');
    expect(() => loadConfig({ REDIS_URL: 'redis://r:6379', REDIS_CLUSTER_NODES: 'a:1' })).toThrow(/REDIS_CLUSTER_NODES=.*not both/);
  });

  it('reports every bad variable at once', () => {
    try {
      loadConfig({ PORT: 'x', LOG_LEVEL: 'y' });
      expect.unreachable();
    } catch (err) {
      expect((err as Error).message).toMatch(/PORT/);
      expect((err as Error).message).toMatch(/LOG_LEVEL/);
      expect((err as { code: string }).code).toBe('CONFIG_INVALID');
    }
  });
});
