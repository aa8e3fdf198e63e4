/**
 * Tools a few tests need beyond what the README's set-up asks for (Node and Redis): a browser,
 * Prometheus, Python 3 (the example worker in another language). On a machine without one, its tests skip and say why; CI (`.ci/run`) installs them and sets
 * SWITCHYARD_REQUIRE_TOOLS=1, so there a missing tool fails the run instead of skipping quietly.
 */
import { accessSync, constants } from 'node:fs';

export interface OptionalTool {
  /** What the tests call it, e.g. "Chromium". */
  name: string;
  /** Where to look, first match wins; an environment variable's value (if set) is tried first. */
  candidates: string[];
  envVar?: string;
  /** How to get it, for the skip message. */
  install: string;
}

const executable = (path: string) => {
  try {
    accessSync(path, constants.X_OK);
    return true;
  } catch {
    return false;
  }
};

/** The tool's path, or undefined after printing why its tests skip (throws when CI requires it). */
export function findTool(tool: OptionalTool, testFile: string): string | undefined {
  const fromEnv = tool.envVar ? process.env[tool.envVar] : undefined;
  const candidates = fromEnv ? [fromEnv] : tool.candidates;
  const found = candidates.find(executable);
  if (found) return found;
  const missing = `no ${tool.name} found at ${candidates.join(' or ')}${tool.envVar ? ` (set ${tool.envVar} to its path)` : ''}; ${tool.install}`;
  if (process.env.SWITCHYARD_REQUIRE_TOOLS === '1') throw new Error(`${testFile}: ${missing}. SWITCHYARD_REQUIRE_TOOLS=1 (set by .ci/run) requires it.`);
  console.warn(`${testFile}: skipped, ${missing}`);
  return undefined;
}

export const CHROMIUM: OptionalTool = {
  name: 'Chromium',
  candidates: ['/usr/bin/chromium', '/usr/bin/chromium-browser', '/usr/bin/google-chrome'],
  envVar: 'CHROMIUM_PATH',
  install: 'on Debian/Ubuntu: sudo apt-get install chromium',
};

export const PROMETHEUS: OptionalTool = {
  name: 'Prometheus',
  candidates: ['/usr/bin/prometheus', '/usr/local/bin/prometheus'],
  envVar: 'PROMETHEUS_PATH',
  install: 'on Debian/Ubuntu: sudo apt-get install prometheus (it brings promtool)',
};

export const PROMTOOL: OptionalTool = {
  name: 'promtool',
  candidates: ['/usr/bin/promtool', '/usr/local/bin/promtool'],
  envVar: 'PROMTOOL_PATH',
  install: 'on Debian/Ubuntu: sudo apt-get install prometheus',
};

export const PYTHON: OptionalTool = {
  name: 'Python 3',
  candidates: ['/usr/bin/python3', '/usr/local/bin/python3'],
  envVar: 'PYTHON_PATH',
  install: 'on Debian/Ubuntu: sudo apt-get install python3 (the example worker uses its standard library only)',
};
