import { defineWorker } from '../src/index.ts';
import { echo } from '../queues/echo.ts';

export default defineWorker(echo, (payload) => ({ echoed: payload }));
