import { randomUUID } from 'node:crypto';
import { defineWorker, FatalError } from '../src/index.ts';
import { sendEmail } from '../queues/send-email.ts';

export default defineWorker(sendEmail, (p, ctx) => {
  // A hard bounce: retrying cannot help, so the task (and a workflow around it) fails at once.
  if (p.to.endsWith('@bounce.invalid')) throw new FatalError(`550 mailbox ${p.to} does not exist`);
  ctx.log.info({ to: p.to, template: p.template }, 'email sent');
  return { messageId: `<${randomUUID()}@switchyard.local>`, to: p.to };
});
