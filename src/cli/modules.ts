/**
 * Loads the deployment's own code: the agent-type catalogue (SWITCHYARD_TYPES) and worker
 * entrypoints (SWITCHYARD_WORKERS_DIR/<type>.ts). src/ never imports queues/ or workers/ statically.
 */
import { existsSync, readdirSync } from 'node:fs';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { Catalogue } from '../agent-type/catalogue.ts';
import type { AgentType } from '../agent-type/define.ts';
import type { WorkerDefinition } from '../agent/worker-definition.ts';
import { SwitchyardError } from '../errors.ts';

const isAgentType = (v: unknown): v is AgentType =>
  typeof v === 'object' && v !== null && typeof (v as AgentType).name === 'string' && 'payload' in v && 'result' in v;

export async function loadCatalogue(modulePath: string): Promise<Catalogue> {
  const file = resolve(modulePath);
  if (!existsSync(file)) {
    throw new SwitchyardError('CONFIG_INVALID', `agent-type catalogue ${file} not found; set SWITCHYARD_TYPES to the module that lists your types`);
  }
  const mod = (await import(pathToFileURL(file).href)) as { default?: unknown };
  if (!Array.isArray(mod.default) || !mod.default.every(isAgentType)) {
    throw new SwitchyardError('CONFIG_INVALID', `${file} must export default an array of agent types made with defineAgentType()`);
  }
  return new Catalogue(mod.default);
}

export function workerFile(dir: string, type: string): string {
  return resolve(dir, `${type}.ts`);
}

export function listWorkers(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((f) => f.endsWith('.ts'))
    .map((f) => f.slice(0, -3));
}

export async function loadWorker(dir: string, type: string): Promise<WorkerDefinition> {
  const file = workerFile(dir, type);
  if (!existsSync(file)) {
    throw new SwitchyardError(
      'CONFIG_INVALID',
      `no worker for agent type ${JSON.stringify(type)}: ${file} does not exist (workers here: ${listWorkers(dir).join(', ') || 'none'})`,
    );
  }
  const mod = (await import(pathToFileURL(file).href)) as { default?: Partial<WorkerDefinition> };
  const def = mod.default;
  if (!def || !isAgentType(def.type) || typeof def.handler !== 'function') {
    throw new SwitchyardError('CONFIG_INVALID', `${file} must export default defineWorker(type, handler)`);
  }
  if (def.type.name !== type) {
    throw new SwitchyardError('CONFIG_INVALID', `${file} defines a worker for ${def.type.name}, not ${type}`);
  }
  return def as WorkerDefinition;
}
