/**
 * SIGINT/SIGTERM run `stop` once; a second signal exits at once. A process started by
 * `switchyard start` also stops when that supervisor dies, even by SIGKILL (which it cannot pass
 * on): it notices that its parent changed.
 */
export function onShutdown(stop: () => Promise<void>, log: { error(obj: object, msg: string): void; warn?(obj: object, msg: string): void }, supervisorPid?: number): void {
  let stopping = false;
  const handler = (signal: NodeJS.Signals | 'orphaned') => {
    if (stopping) process.exit(130);
    stopping = true;
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
