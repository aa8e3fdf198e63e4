/**
 * Loads the code src/ never imports statically: the deployment's agent-type catalogue
 * (SWITCHYARD_TYPES), its worker entrypoints (SWITCHYARD_WORKERS_DIR/<type>.ts), and the project's
 * dashboard page (dashboard/router.ts), which the API is handed.
 *
 * When this runs compiled (dist/, see scripts/build.js), a module of the project is imported from its
 * compiled copy in dist/ (the bin only runs dist/ while no source is newer), so it shares this
 * process's modules and needs no loader; an image may ship only dist/. A TypeScript module with no
 * compiled copy (one outside the project) is loaded through tsx.
 */
import { existsSync, readdirSync } from 'node:fs';
import { dirname, isAbsolute, join, relative, resolve } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { RequestHandler } from 'express';
import { Catalogue } from '../model/catalogue.ts';
import type { AgentType } from '../model/agent-type.ts';
import type { WorkerDefinition } from '../agent/worker-definition.ts';
import { SwitchyardError } from '../model/errors.ts';

const here = fileURLToPath(import.meta.url);
/** True when this file is dist/src/cli/modules.js rather than src/cli/modules.ts. */
const compiled = here.endsWith('.js');
/** The build this file belongs to (dist/, or another --out-dir of scripts/build.js), and the project it was built from. */
const BUILD = resolve(dirname(here), '../..');
const ROOT = compiled ? dirname(BUILD) : BUILD;

/** Where the build puts `file` in dist/, when this process runs compiled and `file` is part of the project. */
function compiledPath(file: string): string | undefined {
  if (!compiled || !file.endsWith('.ts')) return undefined;
  const rel = relative(ROOT, file);
  return rel.startsWith('..') || isAbsolute(rel) ? undefined : join(BUILD, `${rel.slice(0, -3)}.js`);
}

function compiledCopy(file: string): string | undefined {
  const js = compiledPath(file);
  return js && existsSync(js) ? js : undefined;
}

/** The file to import for `file`, or undefined when there is neither it nor its compiled copy. */
const runnable = (file: string): string | undefined => compiledCopy(file) ?? (existsSync(file) ? file : undefined);

let tsxRegistered = false;
async function importModule(file: string): Promise<unknown> {
  if (compiled && /\.[cm]?ts$/.test(file) && !tsxRegistered) {
    const { register } = await import('tsx/esm/api');
    register();
    tsxRegistered = true;
  }
  return import(pathToFileURL(file).href);
}

const isAgentType = (v: unknown): v is AgentType =>
  typeof v === 'object' && v !== null && typeof (v as AgentType).name === 'string' && 'payload' in v && 'result' in v;

export async function loadCatalogue(modulePath: string): Promise<Catalogue> {
  const file = resolve(modulePath);
  const module = runnable(file);
  if (!module) {
    throw new SwitchyardError('CONFIG_INVALID', `agent-type catalogue ${file} not found; set SWITCHYARD_TYPES to the module that lists your types`);
  }
  const mod = (await importModule(module)) as { default?: unknown };
  if (!Array.isArray(mod.default) || !mod.default.every(isAgentType)) {
    throw new SwitchyardError('CONFIG_INVALID', `${file} must export default an array of agent types made with defineAgentType()`);
  }
  return new Catalogue(mod.default);
}

export function workerFile(dir: string, type: string): string {
  return resolve(dir, `${type}.ts`);
}

/** Agent types with a worker entrypoint in `dir` (<type>.ts), or only in its compiled copy (<type>.js). */
export function listWorkers(dir: string): string[] {
  const names = (d: string, ext: string) => (existsSync(d) ? readdirSync(d).filter((f) => f.endsWith(ext)).map((f) => f.slice(0, -ext.length)) : []);
  const copy = compiledPath(join(resolve(dir), 'x.ts'));
  return [...new Set([...names(resolve(dir), '.ts'), ...(copy ? names(dirname(copy), '.js') : [])])];
}

export async function loadWorker(dir: string, type: string): Promise<WorkerDefinition> {
  const file = workerFile(dir, type);
  const module = runnable(file);
  if (!module) {
    throw new SwitchyardError(
      'CONFIG_INVALID',
      `no worker for agent type ${JSON.stringify(type)}: ${file} does not exist (workers here: ${listWorkers(dir).join(', ') || 'none'})`,
    );
  }
  const mod = (await importModule(module)) as { default?: Partial<WorkerDefinition> };
  const def = mod.default;
  if (!def || !isAgentType(def.type) || typeof def.handler !== 'function') {
    throw new SwitchyardError('CONFIG_INVALID', `${file} must export default defineWorker(type, handler)`);
  }
  if (def.type.name !== type) {
    throw new SwitchyardError('CONFIG_INVALID', `${file} defines a worker for ${def.type.name}, not ${type}`);
  }
  return def as WorkerDefinition;
}

/** The /dashboard page's router (dashboard/router.ts of this project), or undefined when it is not there. */
export async function loadDashboard(): Promise<RequestHandler | undefined> {
  const module = runnable(join(ROOT, 'dashboard', 'router.ts'));
  if (!module) return undefined;
  const mod = (await importModule(module)) as { dashboardRouter?: () => RequestHandler };
  if (typeof mod.dashboardRouter !== 'function') throw new SwitchyardError('CONFIG_INVALID', `${module} must export dashboardRouter()`);
  return mod.dashboardRouter();
}
