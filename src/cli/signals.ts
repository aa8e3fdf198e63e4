/**
 * SIGINT/SIGTERM run `stop` once; a signal repeated later exits at once. A process started by
 * `switchyard start` also stops when that supervisor dies, even by SIGKILL (which it cannot pass
 * on): it notices that its parent changed.
 *
 * One Ctrl-C arrives several times: the terminal sends SIGINT to every process of its group, npm
 * passes it on to its script again, and `switchyard start` passes it on to its children as SIGTERM.
 * So signals within MERGE_MS of the first are one request, and a child of `switchyard start` leaves
 * SIGINT to its supervisor (which sends SIGTERM once, and again when the user insists); taking those
 * copies for a second request left running tasks `active`, to run again after the next start.
 */
export const MERGE_MS = 1000;

/** True in a process `switchyard start` started, while that supervisor is its parent. */
export const supervised = (): boolean => process.env.SWITCHYARD_SUPERVISOR_PID === String(process.ppid);

const ignoreGroupInterrupt = () => undefined;
// From the first line of the program on, not only once onShutdown is installed: a Ctrl-C while an
// agent is still starting must not kill it either (its supervisor stops it with SIGTERM).
if (supervised()) process.on('SIGINT', ignoreGroupInterrupt);

export function onShutdown(
  stop: () => Promise<void>,
  log: { error(obj: object, msg: string): void; warn?(obj: object, msg: string): void },
  supervisorPid?: number,
  /** Called before exiting at once on a repeated signal (the supervisor passes the insistence on). */
  force?: () => void,
): void {
  let firstAt: number | undefined;
  const handler = (signal: NodeJS.Signals | 'orphaned') => {
    if (signal === 'SIGINT' && supervised()) return;
    if (firstAt !== undefined) {
      if (signal !== 'orphaned' && Date.now() - firstAt < MERGE_MS) return;
      log.warn?.({ signal }, 'signalled again while stopping: exiting now');
      force?.();
      process.exit(130);
    }
    firstAt = Date.now();
    stop().then(
      () => process.exit(0),
      (err: unknown) => {
        log.error({ err, signal }, 'error while stopping');
        process.exit(1);
      },
    );
  };
  process.on('SIGINT', handler);
  process.on('SIGTERM', handler);
  if (supervisorPid !== undefined) {
    const watch = setInterval(() => {
      if (process.ppid === supervisorPid) return;
      clearInterval(watch);
      log.warn?.({ supervisorPid }, 'switchyard start is gone; stopping');
      handler('orphaned');
    }, 1000);
    watch.unref();
  }
}
