#!/usr/bin/env node
// The `switchyard` command. It runs the compiled JavaScript in dist/ (npm install builds it; so do
// `npm start` and `npm run switchyard` when the TypeScript changed), which starts with no TypeScript
// loader. When dist/ is missing or older than the TypeScript, it runs the TypeScript through tsx
// instead (slower to start, never old code), and says so unless `switchyard start` launched it.
import { distState } from './dist.js';

const state = distState();
if (state === 'fresh') {
  await import('../dist/src/cli/main.js');
} else {
  if (!process.env.SWITCHYARD_SUPERVISOR_PID) {
    process.stderr.write(
      `switchyard: ${state === 'missing' ? 'dist/ is not built' : 'the TypeScript changed since dist/ was built'}; running it through tsx (slower start). \`npm run build\` compiles it.\n`,
    );
  }
  const { register } = await import('tsx/esm/api');
  register();
  await import('../src/cli/main.ts');
}
