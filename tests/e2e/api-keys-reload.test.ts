/**
 * Key rotation on a running API process: keys made with `switchyard keys new` go into the keys file,
 * SIGHUP reloads it (the old key refused from then on, the new one served), a broken file sent with
 * SIGHUP changes nothing and the process keeps serving; `keys new` refuses a bad scope with exit 2.
 */
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { fastFleetEnv, runCli, startApiProcess, type ApiProcess } from '../support/processes.ts';
import { useRedisPrefix } from '../support/redis.ts';
import { waitFor } from '../support/wait.ts';

const { prefix } = useRedisPrefix('e2e-api-keys');
const file = join(mkdtempSync(join(tmpdir(), 'switchyard-keys-')), 'keys.json');
let api: ApiProcess;

/** `switchyard keys new`: the key it printed and the entry for the file. */
async function newKey(id: string, scopes: string): Promise<{ key: string; entry: unknown }> {
  const r = await runCli(['keys', 'new', '--id', id, '--scopes', scopes], 'http://127.0.0.1:1');
  expect(r.code).toBe(0);
  const key = /: (sk_\S+)/.exec(r.stdout)?.[1];
  const entry = r.stdout.trim().split('\n').at(-1);
  if (!key || !entry) throw new Error(`keys new printed: ${r.stdout}${r.stderr}`);
  expect(entry).not.toContain(key); // the file holds the hash, never the key
  return { key, entry: JSON.parse(entry) as unknown };
}

const status = (key: string) => fetch(`${api.url}/v1/pools`, { headers: { authorization: `Bearer ${key}` } }).then((r) => r.status);

let first: { key: string; entry: unknown };
beforeAll(async () => {
  first = await newKey('first', 'read');
  writeFileSync(file, JSON.stringify({ keys: [first.entry] }));
  api = await startApiProcess(fastFleetEnv(prefix, { SWITCHYARD_API_KEYS_FILE: file }));
}, 60_000);

describe('API keys on a running process', () => {
  it('rotates on SIGHUP, and keeps serving the old keys when the new file is broken', async () => {
    expect(await status(first.key)).toBe(200);
    const second = await newKey('second', 'read,produce');
    writeFileSync(file, JSON.stringify({ keys: [second.entry] }));
    api.proc.kill('SIGHUP');
    await waitFor(async () => (await status(second.key)) === 200, { what: 'the new key served after SIGHUP', timeoutMs: 10_000 });
    expect(await status(first.key)).toBe(401);
    writeFileSync(file, '{"keys": [{"id": "x"}]}');
    api.proc.kill('SIGHUP');
    await api.waitForOutput('API keys not reloaded', 10_000);
    expect(await status(second.key)).toBe(200);
    expect(api.proc.exitCode).toBeNull();
  }, 60_000);

  it('refuses a scope that does not exist, naming the choices', async () => {
    const r = await runCli(['keys', 'new', '--id', 'x', '--scopes', 'write'], 'http://127.0.0.1:1');
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/scopes\[0\].*"produce"\|"agent"\|"read"\|"admin"/);
  });
});
