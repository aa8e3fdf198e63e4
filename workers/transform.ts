import { createHash } from 'node:crypto';
import { setImmediate as yieldToLoop } from 'node:timers/promises';
import { defineWorker } from '../src/index.ts';
import { transform } from '../queues/transform.ts';

const ops = {
  upper: (s: string) => s.toUpperCase(),
  lower: (s: string) => s.toLowerCase(),
  reverse: (s: string) => [...s].reverse().join(''),
  trim: (s: string) => s.trim(),
  words: (s: string) => s,
} as const;

/** Rounds between yields to the event loop, so lock renewal and aborts still run during long CPU work. */
const SLICE = 5_000;

export default defineWorker(transform, async ({ text, ops: steps, rounds }, ctx) => {
  const out = steps.reduce((acc, op) => ops[op](acc), text);
  let digest: string | undefined;
  if (rounds > 0) {
    let h = Buffer.from(out);
    for (let i = 0; i < rounds; i++) {
      h = createHash('sha256').update(h).digest();
      if (i % SLICE === SLICE - 1) {
        await yieldToLoop();
        ctx.signal.throwIfAborted();
      }
    }
    digest = h.toString('hex');
  }
  return {
    text: out,
    ...(steps.includes('words') ? { words: out.split(/\s+/).filter(Boolean).length } : {}),
    ...(digest ? { digest } : {}),
  };
});
