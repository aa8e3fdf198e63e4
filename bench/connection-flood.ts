/**
 * Idle-connection flood against one API process (issue 18, item 14), with the default connection
 * settings: opens N sockets that never send a byte, from one loopback address (or, with `spread`, from
 * many), then times GET /healthz from another address and counts the API's file descriptors.
 * `npx tsx bench/connection-flood.ts 18000` (one host), `npx tsx bench/connection-flood.ts 6000 spread`.
 * The figures are in the README's operations section. Linux only (/proc, 127.0.0.0/8 source addresses).
 */
import { fork } from 'node:child_process';
import { readdirSync } from 'node:fs';
import { request } from 'node:http';
import { connect, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';

async function serve(): Promise<void> {
  const [{ Catalogue }, { startApi }, { loadConfig }, { createLogger }, types] = await Promise.all([
    import('../src/index.ts'),
    import('../src/index.ts'),
    import('../src/index.ts'),
    import('../src/index.ts'),
    import('../queues/index.ts'),
  ]);
  const config = loadConfig();
  const log = createLogger({ logLevel: 'error', logPretty: false });
  const api = await startApi({ config, catalogue: new Catalogue(types.default), redisUrl: config.redisUrl ?? 'redis://127.0.0.1:6379', log });
  process.send?.({ port: api.port });
  process.once('SIGTERM', () => void api.close().then(() => process.exit(0)));
}

async function flood(n: number, spread: boolean): Promise<void> {
  const child = fork(fileURLToPath(import.meta.url), ['--serve'], {
    execArgv: ['--import', 'tsx'],
    env: { ...process.env, PORT: '0', SWITCHYARD_PREFIX: `flood-${process.pid}`, LOG_LEVEL: 'error' },
  });
  const port = await new Promise<number>((resolve) => child.once('message', (m: { port: number }) => resolve(m.port)));
  const fds = () => readdirSync(`/proc/${child.pid}/fd`).length;
  const healthz = () =>
    new Promise<string>((resolve) => {
      const t0 = performance.now();
      const req = request({ host: '127.0.0.1', port, path: '/healthz', agent: false, timeout: 5000 }, (res) => {
        res.resume();
        res.on('end', () => resolve(`${res.statusCode} in ${(performance.now() - t0).toFixed(1)} ms`));
      });
      req.on('error', (e) => resolve(`failed (${e.message})`));
      req.on('timeout', () => req.destroy(new Error('no answer in 5 s')));
      req.end();
    });
  const baseline = fds();
  console.log(`API file descriptors before: ${baseline}; /healthz: ${await healthz()}`);
  const sockets: Socket[] = [];
  let closed = 0;
  const t0 = Date.now();
  for (let i = 0; i < n; i++) {
    const localAddress = spread ? `127.0.${2 + Math.floor(i / 200)}.${(i % 200) + 1}` : '127.0.0.2';
    const s = connect({ host: '127.0.0.1', port, localAddress });
    s.on('error', () => undefined);
    s.on('close', () => closed++);
    s.resume(); // read what the API answers, so its close is seen
    sockets.push(s);
    if (i % 500 === 499) await new Promise((r) => setTimeout(r, 20));
  }
  await new Promise((r) => setTimeout(r, 2000));
  console.log(
    `${n} idle sockets from ${spread ? `${Math.ceil(n / 200)} addresses` : 'one address'} in ${Date.now() - t0} ms; 2 s later the API holds ${fds() - baseline} ` +
      `(file descriptors: ${fds()}), ${closed} were closed by it; /healthz from 127.0.0.1: ${await healthz()}`,
  );
  // Counted on the API's side: sockets the kernel's accept queue dropped stay in SYN retry on ours.
  while (fds() > baseline && Date.now() - t0 < 120_000) await new Promise((r) => setTimeout(r, 100));
  console.log(`the API held none of them ${((Date.now() - t0) / 1000).toFixed(1)} s after the first opened; API file descriptors: ${fds()}`);
  for (const s of sockets) s.destroy();
  child.kill('SIGTERM');
  await new Promise((r) => child.once('exit', r));
}

if (process.argv[2] === '--serve') await serve();
else await flood(Number(process.argv[2] ?? 5000), process.argv[3] === 'spread');
