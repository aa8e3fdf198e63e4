// Where the compiled JavaScript lives (dist/, written by scripts/build.js) and whether it is current:
// the `switchyard` bin runs it only when no TypeScript it was built from is newer, so an edit is never
// answered by old code. Plain JavaScript, run before anything is compiled.
import { existsSync, readdirSync, statSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../', import.meta.url));
export const DIST = join(ROOT, 'dist');
/** Written last by the build; its mtime is when the build began, so an edit made meanwhile counts as newer. */
export const STAMP_NAME = '.built';
export const STAMP = join(DIST, STAMP_NAME);
/** What the build compiles (tsconfig.build.json) or copies, and the settings it compiles with. */
export const SOURCE_DIRS = ['src', 'queues', 'workers', 'dashboard'];
export const SOURCE_FILES = ['package.json', 'tsconfig.json', 'tsconfig.build.json'];

/** The newest mtime (ms) among the sources present. */
function newestSource() {
  let newest = 0;
  const consider = (file) => {
    try {
      newest = Math.max(newest, statSync(file).mtimeMs);
    } catch {
      // removed meanwhile
    }
  };
  for (const f of SOURCE_FILES) consider(join(ROOT, f));
  for (const d of SOURCE_DIRS) {
    const dir = join(ROOT, d);
    if (!existsSync(dir)) continue;
    consider(dir); // a file removed changes only its folder
    for (const e of readdirSync(dir, { recursive: true, withFileTypes: true })) consider(join(e.parentPath ?? e.path, e.name));
  }
  return newest;
}

/** 'fresh': dist/ is built from the sources as they are; 'stale': a source changed since; 'missing': never built. */
export function distState() {
  if (!existsSync(STAMP)) return 'missing';
  // An install that ships dist/ without the TypeScript (the Docker image) has nothing else to run.
  if (!existsSync(join(ROOT, 'src'))) return 'fresh';
  return newestSource() > statSync(STAMP).mtimeMs ? 'stale' : 'fresh';
}
