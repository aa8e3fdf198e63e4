#!/usr/bin/env node
// The `switchyard` command. It runs the compiled JavaScript in dist/ (npm install builds it; so do
// `npm start` and `npm run switchyard` when the TypeScript changed), which starts with no TypeScript
// loader. When dist/ is missing or older than the TypeScript, it runs the TypeScript through tsx
// instead (slower to start, never old code), and says so unless `switchyard start` launched it.
import { distState } from './dist.js';

// package.json engines: Node 22.12 or newer (Node 24 LTS is what CI runs); say so instead of failing obscurely.
const [major, minor] = process.versions.node.split('.').map(Number);
if (major < 22 || (major === 22 && minor < 12)) {
  process.stderr.write(`switchyard: needs Node 22.12 or newer (Node 24 LTS recommended); this is Node ${process.versions.node}. README, Development, says how to get Node 24.\n`);
  process.exit(1);
}

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
