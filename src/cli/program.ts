/** The `switchyard` command's commands and options (main.ts runs it). */
import { spawn } from 'node:child_process';
import { fileURLToPath } from 'node:url';
import { Command, InvalidArgumentError, Option } from 'commander';
import { loadConfig, type Config } from '../config/env.ts';
import { TAG_PATTERN } from '../model/agent-record.ts';
import { onShutdown } from './signals.ts';
import { hashKeyCommand, newKeyCommand, type NewKeyFlags } from './keys.ts';
import { SCOPES } from '../model/api-key.ts';
import { VERSION } from '../version.ts';
import { runWorkflowFile, signalCommand } from './workflow.ts';
import { durationMs, MISFIRE_CHOICES, scheduleActionCommand, scheduleAddCommand, schedulesListCommand, type ScheduleAddFlags } from './schedules.ts';
import { agentsCommand, breakersCommand, dlqListCommand, dlqReplayCommand, enqueueCommand, EXIT, poolsCommand, taskCommand, type EnqueueFlags } from './commands.ts';

// Each command imports only what its role runs: `--help` and the client commands load no server code,
// `start` (the supervisor) no Express or BullMQ, `worker` no Express, `api` no agent runtime. Every
// process of `npm start` then holds only its own role's modules (issue 18: the fleet's memory).
const roles = {
  api: async () => ({ ...(await import('../api/server.ts')), ...(await import('../config/logger.ts')), ...(await import('./modules.ts')), ...(await import('../config/tracing.ts')) }),
  worker: async () => ({ ...(await import('../agent/agent.ts')), ...(await import('../config/logger.ts')), ...(await import('./modules.ts')), ...(await import('../config/tracing.ts')) }),
  start: async () => ({ ...(await import('./start.ts')), ...(await import('../config/logger.ts')) }),
};

const DEFAULT_REDIS = 'redis://127.0.0.1:6379';

const positiveInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1) throw new InvalidArgumentError('must be a positive integer');
  return n;
};

const nonNegativeInt = (value: string) => {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('must be an integer 0 or greater');
  return n;
};

const positiveNumber = (value: string) => {
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0) throw new InvalidArgumentError('must be a number greater than 0');
  return n;
};

const poolName = (value: string) => {
  if (!/^[a-z0-9][a-z0-9-]{0,62}$/.test(value)) throw new InvalidArgumentError('lowercase letters, digits and - (max 63)');
  return value;
};

const tagList = (value: string) => {
  const tags = value.split(',').map((t) => t.trim()).filter(Boolean);
  const bad = tags.find((t) => !TAG_PATTERN.test(t));
  if (bad) throw new InvalidArgumentError(`tag ${JSON.stringify(bad)}: letters, digits, _ . - (max 64)`);
  return tags;
};

function config(): Config {
  return loadConfig();
}

async function runApi(): Promise<void> {
  const cfg = config();
  const { createLogger, loadCatalogue, loadDashboard, startApi, startTracing, stopTracing } = await roles.api();
  const log = createLogger(cfg, { role: 'api' });
  if (await startTracing('switchyard-api')) log.info('tracing on: spans go to the OTLP endpoint of OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT');
  const catalogue = await loadCatalogue(cfg.typesModule);
  const dashboard = await loadDashboard();
  if (!dashboard) log.warn('dashboard/router.ts not found: the API serves no /dashboard');
  const api = await startApi({ config: cfg, catalogue, redisUrl: cfg.redisUrl ?? DEFAULT_REDIS, log, ...(dashboard ? { dashboard } : {}) });
  onShutdown(async () => {
    await api.close();
    await stopTracing();
  }, log, cfg.supervisorPid);
}

async function runAgent(type: string, opts: { pool?: string; concurrency?: number; weight?: number; tags?: string[] }): Promise<void> {
  const cfg = config();
  const { Agent, createLogger, loadWorker, startTracing, stopTracing } = await roles.worker();
  const log = createLogger(cfg, { role: 'agent' });
  if (await startTracing(`switchyard-agent-${type}`)) log.info('tracing on: spans go to the OTLP endpoint of OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT');
  const definition = await loadWorker(cfg.workersDir, type);
  const agent = await Agent.start({
    definition,
    redisUrl: cfg.redisUrl ?? DEFAULT_REDIS,
    config: cfg,
    log,
    pool: opts.pool ?? cfg.pool,
    concurrency: opts.concurrency ?? cfg.concurrency,
    weight: opts.weight ?? cfg.weight,
    tags: opts.tags ?? cfg.tags,
  });
  onShutdown(async () => {
    await agent.close();
    await stopTracing();
  }, log, cfg.supervisorPid);
}

/** A fresh `switchyard` program; nothing runs until it is parsed. */
export function buildProgram(): Command {
  const program = new Command('switchyard')
    .description('Job processing for fleets of worker agents, on BullMQ and Redis')
    .version(VERSION);
  addProcessCommands(program);
  addWorkflowCommands(program);
  addClientCommands(program);
  addScheduleCommands(program);
  addKeyCommands(program);
  addBenchCommand(program);
  return program;
}

/** API keys for SWITCHYARD_API_KEYS_FILE: made and hashed here, read by the API on SIGHUP. */
function addKeyCommands(program: Command): void {
  const keys = program.command('keys').description('make API keys for SWITCHYARD_API_KEYS_FILE (scoped, stored hashed)');
  keys
    .command('new')
    .description('print a new random key (once) and its entry for the keys file')
    .requiredOption('--id <name>', 'a name for the key (logs and the rate limit use it)')
    .requiredOption('--scopes <list>', `comma-separated: ${SCOPES.join(', ')}`)
    .option('--types <list>', 'comma-separated agent types the key may produce or work for (default: any)')
    .action((o: NewKeyFlags) => void (process.exitCode = newKeyCommand(o)));
  keys
    .command('hash <key>')
    .description('print the sha256:<hex> hash of a key, as the keys file stores it')
    .action((key: string) => void (process.exitCode = hashKeyCommand(key)));
}

const apiUrl = () => process.env.SWITCHYARD_URL ?? `http://127.0.0.1:${process.env.PORT ?? 3000}`;

/** Options every client command takes. */
const clientOptions = (c: Command) =>
  c
    .option('--json', 'print JSON instead of text')
    .option('--url <url>', 'API base URL (default: SWITCHYARD_URL or http://127.0.0.1:$PORT)')
    .option('--api-key <key>', 'API key (default: SWITCHYARD_API_KEY)');
type ClientFlags = { json?: boolean; url?: string; apiKey?: string };
const connect = (o: ClientFlags) => {
  const apiKey = o.apiKey ?? process.env.SWITCHYARD_API_KEY;
  return { url: o.url ?? apiUrl(), ...(apiKey ? { apiKey } : {}), ...(o.json ? { json: true } : {}) };
};
/** The filters a list command was given, without the connection flags. */
const filters = (o: Record<string, unknown>) =>
  Object.fromEntries(Object.entries(o).filter(([k, v]) => !['json', 'url', 'apiKey', 'all'].includes(k) && typeof v === 'string')) as Record<string, string>;
const exit = (code: Promise<number>) => code.then((c) => void (process.exitCode = c));

/** The commands that run Switchyard's processes: start, api, agent. */
function addProcessCommands(program: Command): void {
  program
    .command('start')
    .description('run everything locally: Redis (found or spawned), the API, one agent per agent type')
    .action(async () => {
      const cfg = config();
      const { createLogger, runStart } = await roles.start();
      await runStart(cfg, createLogger(cfg, { role: 'start' }));
    });

  program.command('api').description('serve the HTTP API and Bull Board').action(runApi);

  program
    .command('agent <type>')
    .alias('worker')
    .description("run an agent: the process that runs one agent type's tasks (its handler in workers/), pulling from one pool")
    .option('--pool <name>', 'pool to join (default: SWITCHYARD_POOL or "default")', poolName)
    .option('--concurrency <n>', 'tasks run at once (default: SWITCHYARD_CONCURRENCY or 10)', positiveInt)
    .option('--weight <w>', 'share of routed work relative to other agents (default: SWITCHYARD_WEIGHT or 1)', positiveNumber)
    .option('--tags <a,b>', 'tags routing and queries can select (default: SWITCHYARD_TAGS)', tagList)
    .action(runAgent);
}

/** workflow run, workflow signal. */
function addWorkflowCommands(program: Command): void {
  const workflow = program.command('workflow').description('run and watch workflows (DAGs of tasks)');
  workflow
    .command('run <file>')
    .description('start the workflow in a JSON file ({name?, nodes: [...]}); exit 0 when accepted, or with --wait when it completed')
    .option('--wait', 'wait for the run to end, with a progress bar; exit 4 if it ended other than completed')
    .option('--timeout <s>', 'with --wait: give up after this many seconds (exit 5)', positiveNumber)
    .option('--json', 'print the run as JSON instead of text')
    .option('--url <url>', 'API base URL (default: SWITCHYARD_URL or http://127.0.0.1:$PORT)')
    .option('--api-key <key>', 'API key (default: SWITCHYARD_API_KEY)')
    .action(async (file: string, opts: { wait?: boolean; timeout?: number; json?: boolean; url?: string; apiKey?: string }) => {
      const apiKey = opts.apiKey ?? process.env.SWITCHYARD_API_KEY;
      process.exitCode = await runWorkflowFile(file, { ...opts, url: opts.url ?? apiUrl(), ...(apiKey ? { apiKey } : {}) });
    });
  clientOptions(
    workflow
      .command('signal <run> <name> <payload>')
      .description("send a signal to a run's signal node; <payload> is JSON or @file.json (an object or an array); exit 0 delivered or kept, 1 refused"),
  ).action((run: string, name: string, payload: string, o: ClientFlags) => exit(signalCommand(run, name, payload, connect(o))));
}

/** The commands that talk to a running API. */
function addClientCommands(program: Command): void {
  clientOptions(
    program
      .command('enqueue <type> <payload>')
      .description("enqueue a task; <payload> is JSON ('{\"text\":\"hi\"}') or @file.json; exit 0 accepted (with --wait: completed), 4 ended otherwise, 5 timed out")
      .option('--pool <name>', 'send it to this pool', poolName)
      .option('--key <idempotencyKey>', 'idempotency key: resending with the same key enqueues nothing new')
      .option('--concurrency-key <key>', 'a tenant, a customer: tasks take turns between keys, and run at most --concurrency-limit at once per key')
      .option('--concurrency-limit <n>', "tasks of the key running at once (default: the type's limits.concurrencyPerKey)", positiveInt)
      .option('--many', '<payload> is a JSON array of payloads: enqueue them all, in batches, with a progress bar')
      .option('--wait', 'wait until it is completed, dead or cancelled, and print it')
      .option('--timeout <s>', 'with --wait: give up after this many seconds (exit 5)', positiveNumber),
  ).action((type: string, payload: string, o: ClientFlags & EnqueueFlags & { key?: string; wait?: boolean; timeout?: number; many?: boolean }) => {
    const { pool, concurrencyKey, concurrencyLimit, key, wait, timeout, many } = o;
    const flags = { pool, concurrencyKey, concurrencyLimit, key, timeout, ...(wait ? { wait } : {}), ...(many ? { many } : {}) };
    return exit(enqueueCommand(type, payload, { ...connect(o), ...(Object.fromEntries(Object.entries(flags).filter(([, v]) => v !== undefined)) as typeof flags) }));
  },
  );
  clientOptions(program.command('task <id>').description('show a task: state, attempts, result or error')).action((id: string, o: ClientFlags) => exit(taskCommand(id, connect(o))));
  clientOptions(
    program
      .command('agents')
      .description('list live agents')
      .option('--type <type>', 'only agents of this agent type')
      .option('--pool <pool>', 'only agents of this pool')
      .option('--health <states>', 'only agents in these health states, e.g. HEALTHY,DEGRADED')
      .option('--tag <tags>', 'all of these tags, e.g. ml,python')
      .option('--capability <cap>', 'e.g. transform@^1.2'),
  ).action((o: ClientFlags & Record<string, string>) => exit(agentsCommand(filters(o), connect(o))));
  clientOptions(program.command('pools').description('list pools: agents, weight, backlog, breaker, eligibility').option('--type <type>', 'only pools of this agent type')).action((o: ClientFlags & { type?: string }) =>
    exit(poolsCommand(o.type, connect(o))),
  );
  clientOptions(program.command('breakers').description('list circuit breakers')).action((o: ClientFlags) => exit(breakersCommand(connect(o))));
  const dlq = program.command('dlq').description('dead letters: tasks out of attempts, or failed fatally');
  const dlqFilters = (c: Command) =>
    c
      .option('--type <type>', 'only tasks of this agent type')
      .option('--pool <pool>', 'only tasks that died in this pool')
      .option('--error <text>', 'text the last error contains')
      .option('--since <iso>', 'died at or after this time (ISO 8601, e.g. 2026-12-01T00:00:00Z)')
      .option('--until <iso>', 'died before this time (ISO 8601)');
  clientOptions(dlqFilters(dlq.command('list').description('list dead tasks, newest first').option('--limit <n>', 'at most this many (default 100)'))).action((o: ClientFlags & Record<string, string>) => exit(dlqListCommand(filters(o), connect(o))));
  clientOptions(dlqFilters(dlq.command('replay [id]').description('replay one dead task by id, or with --all every one matching the filters (progress bar)').option('--all', 'replay every dead task matching the filters'))).action(
    (id: string | undefined, o: ClientFlags & Record<string, string> & { all?: boolean }) => {
      if (!id && !o.all) {
        process.stderr.write('switchyard: give a task id, or --all (with filters) to replay every match\n');
        process.exitCode = EXIT.error;
        return;
      }
      return exit(dlqReplayCommand(id, filters(o), connect(o)));
    },
  );
}

/** schedules list|add|pause|resume|rm. */
function addScheduleCommands(program: Command): void {
  const schedules = program.command('schedules').alias('schedule').description('tasks and workflows started on a cron expression or an interval');
  clientOptions(schedules.command('list').alias('ls').description('list schedules: when, what, paused, next fire, last fire')).action((o: ClientFlags) => exit(schedulesListCommand(connect(o))));
  clientOptions(
    schedules
      .command('add')
      .description('create a schedule: --cron or --every, and --task <type> (--payload ...) or --workflow <file>; prints its id and next fire times; exit 1 if refused')
      .option('--cron <expr>', "cron expression: 5 fields (minute hour day month weekday) or 6 (seconds first), e.g. '0 3 * * *'")
      .option('--tz <zone>', 'with --cron: the IANA time zone it is read in, e.g. Europe/Berlin (default UTC)')
      .option('--every <duration>', 'fire at this interval instead: 30s, 5m, 1h, 2d, or milliseconds (at least 1s)', durationMs)
      .option('--id <id>', 'the schedule id: letters, digits and - (default: generated)')
      .option('--name <name>', 'a name to show')
      .option('--start <iso>', 'no fire before this time (ISO 8601 with a zone, e.g. 2027-01-01T00:00:00Z)')
      .option('--end <iso>', 'no fire after this time (ISO 8601 with a zone)')
      .addOption(new Option('--misfire <policy>', 'a fire found late (API down at its time): skip it, or run it once (default once)').choices(MISFIRE_CHOICES))
      .option('--paused', 'create it paused (`schedules resume <id>` starts it)')
      .option('--task <type>', 'each fire enqueues a task of this agent type')
      .option('--payload <json>', "with --task: the payload, JSON ('{\"text\":\"hi\"}') or @file.json (default {})")
      .option('--pool <name>', 'with --task: send it to this pool', poolName)
      .option('--priority <n>', 'with --task: its priority', nonNegativeInt)
      .option('--attempts <n>', 'with --task: its attempts', positiveInt)
      .option('--tags <a,b>', 'with --task: only agents with all of these tags', tagList)
      .option('--workflow <file>', 'each fire starts this workflow instead: a JSON file ({name?, nodes: [...]}), @file.json, or inline JSON'),
  ).action((o: ClientFlags & ScheduleAddFlags) => exit(scheduleAddCommand(o, connect(o))));
  const actions = [['pause', 'pause a schedule: nothing fires until it is resumed'], ['resume', 'resume a paused schedule'], ['rm', 'delete a schedule']] as const;
  for (const [action, description] of actions) {
    const c = schedules.command(`${action} <id>`).description(description);
    if (action === 'rm') c.alias('remove');
    clientOptions(c).action((id: string, o: ClientFlags) => exit(scheduleActionCommand(action, id, connect(o))));
  }
}

/** bench: the benchmarks, run from the TypeScript in bench/. */
function addBenchCommand(program: Command): void {
  program
    .command('bench')
    .description('run the benchmarks against bare BullMQ (all options of `npm run bench`; `switchyard bench -- --help` lists them)')
    .allowUnknownOption()
    .allowExcessArguments()
    .helpOption(false)
    .action((_o: unknown, cmd: Command) => {
      // bench/ stays TypeScript, at the project root: two folders up from src/cli/, three from dist/src/cli/.
      const run = new URL(import.meta.url.endsWith('.js') ? '../../../bench/run.ts' : '../../bench/run.ts', import.meta.url);
      const child = spawn(process.execPath, ['--import', 'tsx', fileURLToPath(run), ...cmd.args], { stdio: 'inherit' });
      child.on('exit', (code) => (process.exitCode = code ?? 1));
    });
}
