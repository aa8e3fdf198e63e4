/** pino everywhere: JSON lines in production, pretty output when attached to a terminal. */
import { pino, type Logger } from 'pino';
import type { Config } from './env.ts';

export type { Logger };

export function createLogger(config: Pick<Config, 'logLevel' | 'logPretty'>, bindings: Record<string, unknown> = {}): Logger {
  return pino({
    level: config.logLevel,
    base: { pid: process.pid, ...bindings },
    ...(config.logPretty
      ? { transport: { target: 'pino-pretty', options: { colorize: true, ignore: 'pid,hostname' } } }
      : {}),
  });
}
