#!/usr/bin/env node
// Compiles src/, queues/, workers/ and the dashboard's router to dist/ (tsc with tsconfig.build.json:
// types stripped, `.ts` imports rewritten to `.js`, no type check: `npm run typecheck` does that), so
// the `switchyard` bin and every process `switchyard start` runs start without a TypeScript loader.
//   node scripts/build.js              build dist/ (`npm run build`; `npm install` / `npm ci` run it as prepare)
//   node scripts/build.js --if-stale   only when a source is newer than dist/ (`npm start`, `npm run switchyard`)
//   node scripts/build.js --out-dir D  build into D instead (tests)
import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, readFileSync, renameSync, rmSync, utimesSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join, resolve } from 'node:path';
import { DIST, distState, ROOT, SOURCE_DIRS, STAMP_NAME } from '../bin/dist.js';

const flag = (name) => process.argv.indexOf(name);
const out = flag('--out-dir') > 0 ? resolve(process.argv[flag('--out-dir') + 1] ?? '') : DIST;
if (flag('--if-stale') > 0 && out === DIST && distState() === 'fresh') process.exit(0);

let tsc;
try {
  tsc = join(dirname(createRequire(import.meta.url).resolve('typescript/package.json')), 'bin', 'tsc');
} catch {
  // A production install (npm ci --omit=dev) has no compiler: the bin runs the TypeScript through tsx.
  console.warn('switchyard build: typescript is not installed (a production install?); dist/ left as it is');
  process.exit(0);
}

const began = new Date();
// Built beside it and swapped in whole, so a process starting meanwhile runs the old build or the new one.
const next = `${out}.tmp-${process.pid}`;
rmSync(next, { recursive: true, force: true });
const run = spawnSync(process.execPath, [tsc, '-p', join(ROOT, 'tsconfig.build.json'), '--outDir', next], { stdio: 'inherit' });
if (run.status !== 0) {
  rmSync(next, { recursive: true, force: true });
  console.error(`switchyard build: tsc failed (exit ${run.status ?? run.signal}); ${out} left as it was`);
  process.exit(1);
}
// What the compiled code reads beside itself: the dashboard's page and script (dashboard/router.ts),
// and the package's version (src/version.ts reads ../package.json, which from dist/src/ is this one).
for (const dir of SOURCE_DIRS) {
  if (existsSync(join(ROOT, dir))) cpSync(join(ROOT, dir), join(next, dir), { recursive: true, filter: (src) => !/\.(ts|md)$/.test(src) });
}
const { version } = JSON.parse(readFileSync(join(ROOT, 'package.json'), 'utf8'));
writeFileSync(join(next, 'package.json'), `${JSON.stringify({ private: true, version, type: 'module' }, null, 2)}\n`);
// Its mtime is when the build began: a source edited meanwhile counts as newer (bin/dist.js).
const stamp = join(next, STAMP_NAME);
writeFileSync(stamp, `built from the sources as of ${began.toISOString()}\n`);
utimesSync(stamp, began, began);

const old = `${out}.old-${process.pid}`;
if (existsSync(out)) renameSync(out, old);
renameSync(next, out);
rmSync(old, { recursive: true, force: true });
process.stderr.write(`switchyard build: ${out === DIST ? 'dist/' : out} in ${Date.now() - began.getTime()} ms\n`);
