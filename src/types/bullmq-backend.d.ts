/** BullMQ's reader of a fetched job (Redis reply → JobJson), not exported by its package root; its ESM build cannot be imported by Node (extensionless imports), so its CommonJS one is. tests/unit/bullmq-pin.test.ts checks it is there. */
declare module 'bullmq/dist/cjs/classes/redis-queue-backend.js' {
  export function raw2NextJobData(raw: unknown[]): unknown[];
}

/** BullMQ's short names of job options as stored (its optsAsJSON), not exported by its package root. */
declare module 'bullmq/dist/cjs/utils/index.js' {
  export const optsEncodeMap: Readonly<Record<string, string>>;
}
