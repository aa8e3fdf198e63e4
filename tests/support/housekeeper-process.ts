/** A housekeeper in a process of its own, for tests that kill it: argv = redis url, lock key, owner, lease ms. */
import { Housekeeper } from '../../src/housekeeping/housekeeper.ts';
import { createLogger } from '../../src/config/logger.ts';
import { createRedis } from '../../src/redis/connection.ts';

const [url, lockKey, owner, leaseMs] = process.argv.slice(2);
const redis = createRedis(url!, 'blocking');
new Housekeeper({
  redis,
  lockKey: lockKey!,
  owner: owner!,
  intervalMs: 50,
  leaseMs: Number(leaseMs),
  chores: [],
  log: createLogger({ logLevel: 'silent', logPretty: false }),
}).start();
