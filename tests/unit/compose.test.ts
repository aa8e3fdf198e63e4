/**
 * docker-compose.yml and the Dockerfile against the code: every service runs a real CLI subcommand,
 * reaches the redis service, is configured with variables the config actually reads, and the image
 * compiles and holds what those commands load; compose builds that image once. Needs no Docker.
 */
import { execFileSync } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { posix } from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { parse } from 'yaml';
import catalogue from '../../queues/index.ts';
import { assertLoopbackListen } from '../../src/api/host-check.ts';
import { envSchema, loadConfig, type Config } from '../../src/config/env.ts';

const ROOT = new URL('../../', import.meta.url);
const rootPath = (p: string) => fileURLToPath(new URL(p, ROOT));
const read = (p: string) => readFileSync(rootPath(p), 'utf8');

// ---- docker-compose.yml ----------------------------------------------------------------------

interface Service {
  image?: string;
  build?: unknown;
  command?: string | string[];
  environment?: Record<string, string | number | boolean | null> | string[];
  ports?: (string | number | { target?: number | string; published?: number | string })[];
  volumes?: (string | { type?: string; source?: string; target?: string })[];
  depends_on?: string[] | Record<string, { condition?: string }>;
  stop_grace_period?: string;
  healthcheck?: unknown;
  restart?: string;
}

interface ComposeFile {
  services?: Record<string, Service>;
  volumes?: Record<string, unknown>;
}

// Compose merges `<<` keys (YAML 1.1 merge); the yaml package does so only when asked.
const compose = parse(read('docker-compose.yml'), { merge: true }) as ComposeFile;
const services = Object.entries(compose.services ?? {});

const isRedis = (s: Service) => typeof s.image === 'string' && /^(docker\.io\/)?(library\/)?redis(:|@|$)/.test(s.image);
const redisEntry = services.find(([, s]) => isRedis(s));
const appServices = services.filter(([, s]) => !isRedis(s));

function words(command: Service['command']): string[] {
  if (command === undefined) return [];
  return Array.isArray(command) ? command.map(String) : command.trim().split(/\s+/);
}

function envOf(s: Service): Record<string, string> {
  const env = s.environment ?? {};
  if (Array.isArray(env)) {
    return Object.fromEntries(
      env.map((line) => {
        const eq = line.indexOf('=');
        return eq < 0 ? [line, ''] : [line.slice(0, eq), line.slice(eq + 1)];
      }),
    );
  }
  return Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v === null ? '' : String(v)]));
}

/** `${VAR}`, `${VAR:-default}`, `${VAR:?message}` ... as compose would interpolate them, with a stand-in value. */
const interpolated = (env: Record<string, string>) =>
  Object.fromEntries(Object.entries(env).map(([k, v]) => [k, v.replace(/\$\{[A-Za-z_][A-Za-z0-9_]*[^}]*\}/g, 'interpolated-value')]));

/** The Config a service's process would load, throwing CONFIG_INVALID like the process would. */
const configOf = (s: Service): Config => loadConfig(interpolated(envOf(s)));

/** Compose durations: 20s, 1m30s, 500ms, 1h. */
function durationMs(d: string): number {
  const units: Record<string, number> = { us: 0.001, ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const parts = [...d.matchAll(/(\d+(?:\.\d+)?)(us|ms|s|m|h)/g)];
  if (parts.length === 0 || parts.map((p) => p[0]).join('') !== d) throw new Error(`not a compose duration: ${JSON.stringify(d)}`);
  return parts.reduce((ms, p) => ms + Number(p[1]) * units[p[2]!]!, 0);
}

/** Container ports a service publishes. */
function containerPorts(s: Service): number[] {
  return (s.ports ?? []).map((p) => {
    if (typeof p === 'object') return Number(p.target);
    const spec = String(p).replace(/\/(tcp|udp)$/, '');
    return Number(spec.split(':').at(-1));
  });
}

function volumeTargets(s: Service): { source: string | undefined; target: string }[] {
  return (s.volumes ?? []).map((v) => {
    if (typeof v === 'object') return { source: v.source, target: v.target ?? '' };
    const [first, second] = v.split(':');
    return second === undefined ? { source: undefined, target: first! } : { source: first, target: second };
  });
}

// ---- the CLI ---------------------------------------------------------------------------------

/** Subcommands listed under "Commands:" in `switchyard --help` (each term line starts with two spaces). */
function cliSubcommands(): string[] {
  const env: NodeJS.ProcessEnv = { ...process.env, LOG_PRETTY: 'false' };
  delete env.REDIS_URL;
  const help = execFileSync(process.execPath, [rootPath('bin/switchyard.js'), '--help'], {
    cwd: rootPath('.'),
    env,
    encoding: 'utf8',
    timeout: 20_000,
  });
  const section = help.split(/^Commands:\s*$/m)[1] ?? '';
  return [...section.matchAll(/^ {2}([a-z][\w-]*)/gm)].map((m) => m[1]!).filter((c) => c !== 'help');
}

// ---- the Dockerfile --------------------------------------------------------------------------

interface Instruction {
  op: string;
  args: string;
}

function dockerInstructions(text: string): Instruction[] {
  const out: Instruction[] = [];
  let pending = '';
  for (const raw of text.split('\n')) {
    const line = raw.trimEnd();
    if (!pending && (/^\s*#/.test(line) || line.trim() === '')) continue;
    if (pending && /^\s*#/.test(line)) continue; // comments inside a continued instruction
    if (line.endsWith('\\')) {
      pending += `${line.slice(0, -1)} `;
      continue;
    }
    const full = (pending + line).trim();
    pending = '';
    const m = /^(\w+)\s+([\s\S]*)$/.exec(full);
    if (m) out.push({ op: m[1]!.toUpperCase(), args: m[2]!.trim() });
  }
  return out;
}

/** The exec (JSON) form of ENTRYPOINT/CMD; the shell form would not pass compose's `command` as arguments. */
const execForm = (args: string): string[] | undefined => {
  try {
    const v: unknown = JSON.parse(args);
    return Array.isArray(v) && v.every((x) => typeof x === 'string') ? v : undefined;
  } catch {
    return undefined;
  }
};

interface Copy {
  sources: string[];
  dest: string;
  workdir: string;
  /** The stage it copies from (--from=NAME), or undefined for the build context. */
  from: string | undefined;
}

interface Stage {
  name: string | undefined;
  workdir: string;
  copies: Copy[];
  runs: string[];
}

/** The Dockerfile's stages (FROM ... [AS name]) with their COPYs, RUNs and final WORKDIR. */
function stages(instructions: Instruction[]): Stage[] {
  const out: Stage[] = [];
  for (const { op, args } of instructions) {
    if (op === 'FROM') {
      out.push({ name: /\sAS\s+(\S+)\s*$/i.exec(args)?.[1], workdir: '/', copies: [], runs: [] });
      continue;
    }
    const stage = out.at(-1);
    if (!stage) continue;
    if (op === 'WORKDIR') stage.workdir = posix.resolve(stage.workdir, args);
    if (op === 'RUN') stage.runs.push(args);
    if (op !== 'COPY' && op !== 'ADD') continue;
    const json = execForm(args);
    const tokens = json ?? args.split(/\s+/);
    const from = tokens.find((t) => t.startsWith('--from='))?.slice('--from='.length);
    const paths = tokens.filter((t) => !t.startsWith('--'));
    stage.copies.push({ sources: paths.slice(0, -1), dest: paths.at(-1) ?? '', workdir: stage.workdir, from });
  }
  return out;
}

const normalizeSource = (s: string) => posix.normalize(s).replace(/^\.\//, '').replace(/\/+$/, '');

// ---- the tests -------------------------------------------------------------------------------

describe('docker-compose.yml', () => {
  it('has a redis service, with AOF on and fsynced before each reply, noeviction and its data on a volume', () => {
    expect(redisEntry, 'no service runs a redis image (image: redis:...)').toBeDefined();
    const [name, redis] = redisEntry!;
    const cmd = words(redis.command);
    const flag = (f: string) => {
      const i = cmd.indexOf(`--${f}`);
      return i < 0 ? undefined : cmd[i + 1];
    };
    expect(cmd[0], `${name}.command must start redis-server, got ${JSON.stringify(cmd)}`).toBe('redis-server');
    expect(flag('appendonly'), `${name}.command must have --appendonly yes (tasks must survive a Redis restart)`).toBe('yes');
    expect(flag('appendfsync'), `${name}.command must have --appendfsync always (everysec loses acknowledged tasks on a crash: docs/reliability.md)`).toBe('always');
    expect(
      flag('maxmemory-policy'),
      `${name}.command must have --maxmemory-policy noeviction (BullMQ breaks when Redis evicts its keys)`,
    ).toBe('noeviction');
    const data = volumeTargets(redis).find((v) => v.target === '/data');
    expect(data, `${name} must mount a volume on /data, where redis:7 keeps its AOF; volumes: ${JSON.stringify(redis.volumes)}`).toBeDefined();
    if (data?.source && !data.source.startsWith('.') && !data.source.startsWith('/')) {
      expect(Object.keys(compose.volumes ?? {}), `${name} mounts the named volume ${data.source}, which the top-level volumes: does not declare`).toContain(
        data.source,
      );
    }
    const port = flag('port');
    expect(port ?? '6379', `${name} must listen on 6379, the port every REDIS_URL uses`).toBe('6379');
  });

  it('points every other service at the redis service on 6379 and starts it after redis is healthy', () => {
    const redisName = redisEntry?.[0];
    expect(redisName, 'no redis service').toBeDefined();
    expect(redisEntry![1].healthcheck, `${redisName} needs a healthcheck (redis-cli ping) for condition: service_healthy`).toBeDefined();
    expect(appServices.length, 'no Switchyard services besides redis').toBeGreaterThan(0);
    for (const [name, s] of appServices) {
      const raw = envOf(s).REDIS_URL;
      expect(raw, `${name} does not set REDIS_URL, so it would look for Redis on its own 127.0.0.1`).toBeDefined();
      const url = new URL(raw!);
      expect(url.protocol, `${name}: REDIS_URL=${raw} must be redis://`).toBe('redis:');
      expect(url.hostname, `${name}: REDIS_URL=${raw} must point at the ${redisName} service`).toBe(redisName);
      expect(url.port || '6379', `${name}: REDIS_URL=${raw} must use port 6379`).toBe('6379');
      const deps = s.depends_on;
      const condition = Array.isArray(deps) ? undefined : deps?.[redisName!]?.condition;
      expect(condition, `${name} must depend on ${redisName} with condition: service_healthy`).toBe('service_healthy');
    }
  });

  it('sets only variables the config reads, with values it accepts', () => {
    const known = new Set<string>([...Object.keys(envSchema.shape), 'NODE_ENV']);
    for (const [name, s] of appServices) {
      for (const key of Object.keys(envOf(s))) {
        expect(known.has(key), `${name} sets ${key}, which src/config/env.ts does not read (a typo?)`).toBe(true);
      }
      expect(() => configOf(s), `${name}'s environment does not pass src/config/env.ts`).not.toThrow();
    }
  });

  it('runs the API on 0.0.0.0, publishing its PORT, with API keys from the environment', async () => {
    const apis = appServices.filter(([, s]) => words(s.command)[0] === 'api');
    expect(apis.map(([n]) => n), 'exactly one service must run command ["api"]').toHaveLength(1);
    const [name, api] = apis[0]!;
    expect(words(api.command), `${name}.command`).toEqual(['api']);
    const env = envOf(api);
    const cfg = configOf(api);
    expect(env.HOST, `${name} must set HOST=0.0.0.0; the default 127.0.0.1 is unreachable from outside the container`).toBe('0.0.0.0');
    expect(containerPorts(api), `${name} must publish its PORT (${cfg.port}); ports: ${JSON.stringify(api.ports)}`).toContain(cfg.port);
    expect(env.SWITCHYARD_API_KEYS, `${name} must take SWITCHYARD_API_KEYS from the environment (or .env)`).toMatch(/^\$\{SWITCHYARD_API_KEYS(:-[^}]*)?\}$/);
    // Compose interpolates the whole file for every command: a required variable would make `down` need the keys too.
    const required = [...read('docker-compose.yml').split('\n').filter((l) => !l.trim().startsWith('#')).join('\n').matchAll(/\$\{\w+:?\?[^}]*\}/g)].map((m) => m[0]);
    expect(required, 'no ${VAR:?...} in docker-compose.yml: `docker compose down` would require it').toEqual([]);
    // Without keys it fails closed: the API refuses to start on 0.0.0.0 (src/api/host-check.ts).
    await expect(assertLoopbackListen(env.HOST!)).rejects.toThrow(/SWITCHYARD_API_KEYS/);
  });

  it('builds the image once: one service has build:, every Switchyard service runs the same image', () => {
    const builders = appServices.filter(([, s]) => s.build !== undefined).map(([n]) => n);
    expect(builders, 'exactly one service should build the image; the others run it by name').toHaveLength(1);
    const images = new Set(appServices.map(([, s]) => s.image));
    expect([...images], 'every Switchyard service must name the same image, so they run what the one build tagged').toHaveLength(1);
    expect([...images][0], 'the built image needs a name (image:) for the other services to run it').toMatch(/^[a-z0-9][\w./-]*(:[\w.-]+)?$/);
  });

  it('runs exactly one agent per agent type in the catalogue, each with its worker file', () => {
    const types = catalogue.map((t) => t.name);
    const workers = appServices.filter(([, s]) => words(s.command)[0] === 'agent');
    const served = workers.map(([, s]) => words(s.command)[1] ?? '(none)');
    expect(
      [...served].sort(),
      `agent services (${workers.map(([n]) => n).join(', ')}) must run each agent type of queues/index.ts exactly once`,
    ).toEqual([...types].sort());
    for (const [name, s] of workers) {
      const cmd = words(s.command);
      const type = cmd[1]!;
      expect(cmd, `${name}.command must be exactly ["agent", "${type}"]`).toEqual(['agent', type]);
      expect(name, `the service running agent type ${type} should be called agent-${type}`).toBe(`agent-${type}`);
      const file = posix.join(configOf(s).workersDir, `${type}.ts`);
      expect(existsSync(rootPath(file)), `${name} runs agent type ${type}, but ${file} does not exist`).toBe(true);
    }
  });

  it('gives each agent longer than its shutdown grace before SIGKILL', () => {
    for (const [name, s] of appServices.filter(([, s]) => words(s.command)[0] === 'agent')) {
      const grace = configOf(s).shutdownGraceMs;
      const stop = s.stop_grace_period;
      expect(stop, `${name} needs stop_grace_period above SWITCHYARD_SHUTDOWN_GRACE_MS (${grace} ms); Docker's default is 10s`).toBeDefined();
      expect(durationMs(stop!), `${name}: stop_grace_period ${stop} must exceed SWITCHYARD_SHUTDOWN_GRACE_MS (${grace} ms)`).toBeGreaterThan(grace);
    }
  });

  it('runs only subcommands the CLI defines', () => {
    const subcommands = cliSubcommands();
    expect(subcommands, '`switchyard --help` lists no commands; has its output changed?').toContain('api');
    for (const [name, s] of appServices) {
      const first = words(s.command)[0];
      expect(first, `${name} has no command; the image's default CMD would run instead`).toBeDefined();
      expect(subcommands, `${name} runs "${first}", which is not a switchyard subcommand (${subcommands.join(', ')})`).toContain(first);
    }
  });
});

describe('Dockerfile', () => {
  const instructions = dockerInstructions(read('Dockerfile'));
  const last = (op: string) => instructions.filter((i) => i.op === op).at(-1);

  it('runs bin/switchyard.js with node, as the ENTRYPOINT in exec form', () => {
    const entry = last('ENTRYPOINT');
    expect(entry, 'the Dockerfile has no ENTRYPOINT; compose commands are CLI arguments').toBeDefined();
    const argv = execForm(entry!.args);
    expect(argv, `ENTRYPOINT must use the exec (JSON) form so compose's command is appended, got ${entry!.args}`).toBeDefined();
    expect(argv![0], 'ENTRYPOINT must start node').toBe('node');
    expect(argv!.map(normalizeSource), 'ENTRYPOINT must run bin/switchyard.js').toContain('bin/switchyard.js');
    const cmd = last('CMD');
    expect(cmd && execForm(cmd.args), 'the default CMD should be ["api"]').toEqual(['api']);
  });

  it('compiles the code in a build stage and runs it from the final stage with bin/ and dist/ only', () => {
    const all = stages(instructions);
    expect(all.length, 'the Dockerfile should have a build stage and a final stage').toBeGreaterThanOrEqual(2);
    const final = all.at(-1)!;
    const landsIn = (c: Copy, dir: string) => posix.resolve(c.workdir, c.dest) === posix.join(final.workdir, dir);

    // The final stage: the entry from the context, dist/ from the build stage, both in the final WORKDIR.
    const entryScript = execForm(last('ENTRYPOINT')?.args ?? '')?.find((a) => a.endsWith('.js')) ?? 'bin/switchyard.js';
    expect(normalizeSource(entryScript).split('/')[0]).toBe('bin');
    const bin = final.copies.find((c) => !c.from && c.sources.map(normalizeSource).includes('bin'));
    expect(bin && landsIn(bin, 'bin'), `the final stage must COPY bin/ to ${final.workdir}/bin`).toBe(true);
    const dist = final.copies.find((c) => c.from);
    expect(dist, 'the final stage must COPY --from=<build stage> the compiled dist/').toBeDefined();
    const build = all.find((st) => st.name === dist!.from);
    expect(build, `COPY --from=${dist!.from}: no stage is named ${dist!.from}`).toBeDefined();
    expect(dist!.sources.map((p) => posix.resolve(build!.workdir, p).replace(/\/+$/, '')), 'the final stage must copy the build stage\'s dist/').toEqual([
      posix.join(build!.workdir, 'dist'),
    ]);
    expect(landsIn(dist!, 'dist'), `dist/ must land in ${final.workdir}/dist, beside bin/ (bin/dist.js looks there)`).toBe(true);

    // The build stage: everything scripts/build.js compiles or reads, then the build.
    const cfg = loadConfig({});
    const topDir = (p: string) => normalizeSource(p).split('/')[0]!;
    const built = build!.copies.filter((c) => !c.from).flatMap((c) => c.sources.map(normalizeSource));
    for (const needed of new Set(['bin', 'scripts', 'src', 'dashboard', topDir(cfg.typesModule), topDir(cfg.workersDir), 'tsconfig.json', 'tsconfig.build.json'])) {
      expect(built, `the build stage must copy ${needed}, which the build compiles or reads`).toContain(needed);
    }
    expect(build!.runs.some((r) => /npm run build\b|node scripts\/build\.js/.test(r)), 'the build stage must run npm run build').toBe(true);
    for (const st of [build!, final]) {
      const files = st.copies.flatMap((c) => c.sources.map(normalizeSource));
      for (const f of ['package.json', 'package-lock.json']) expect(files, `each stage must copy ${f} for npm ci`).toContain(f);
    }
  });

  it('installs production dependencies only, runs as a non-root user, exposes the API port', () => {
    const finalRuns = stages(instructions).at(-1)?.runs ?? [];
    expect(finalRuns.some((r) => /npm ci\b.*--omit=dev/.test(r)), 'the final stage must run npm ci --omit=dev').toBe(true);
    const user = last('USER')?.args;
    expect(user, 'the image must switch to a non-root USER').toBeDefined();
    expect(['root', '0'], `USER ${user} is root`).not.toContain(user!.split(':')[0]);
    const api = appServices.find(([, s]) => words(s.command)[0] === 'api');
    const port = api ? configOf(api[1]).port : 3000;
    const exposed = instructions.filter((i) => i.op === 'EXPOSE').flatMap((i) => i.args.split(/\s+/).map((p) => Number(p.split('/')[0])));
    expect(exposed, `the Dockerfile must EXPOSE the API port ${port}`).toContain(port);
  });

  it('runs every stage on the Node major that CI tests (.ci/run NODE_24), which package.json engines allows', () => {
    const ciMajor = Number(/^NODE_24=(\d+)\./m.exec(read('.ci/run'))?.[1]);
    const majors = instructions.filter((i) => i.op === 'FROM').map((i) => Number(/^node:(\d+)[-.]/.exec(i.args)?.[1]));
    expect(majors.length).toBeGreaterThan(0);
    for (const m of majors) expect(m, 'every stage FROM node:<major>-..., the major CI runs').toBe(ciMajor);
    const engines = (JSON.parse(read('package.json')) as { engines: { node: string } }).engines.node;
    const oldest = Number(/^>=(\d+)/.exec(engines)?.[1]);
    expect(oldest).toBeGreaterThanOrEqual(22);
    expect(ciMajor).toBeGreaterThanOrEqual(oldest);
  });

  it('.dockerignore keeps node_modules out and every copied folder in', () => {
    const ignore = read('.dockerignore')
      .split('\n')
      .map((l) => l.trim())
      .filter((l) => l && !l.startsWith('#'));
    expect(ignore, '.dockerignore must exclude node_modules (host builds of native modules must not reach the image)').toContain('node_modules');
    for (const dir of ['bin', 'scripts', 'src', 'queues', 'workers', 'dashboard']) {
      const hit = ignore.find((p) => !p.startsWith('!') && [dir, `${dir}/`, `/${dir}`, `/${dir}/`, `${dir}/**`, `${dir}*`].includes(p));
      expect(hit, `.dockerignore excludes ${dir}/ (pattern ${hit}), which the Dockerfile copies`).toBeUndefined();
    }
  });
});
