/** The set of declared agent types, looked up by name; also describes them as JSON Schema. */
import { jsonSchemaOf } from './validation.ts';
import { SwitchyardError } from './errors.ts';
import type { AgentType, TaskDefaults, TypeLimits } from './agent-type.ts';
import { BREAKER_PRESETS, type BreakerPolicy } from './breaker-policy.ts';
import type { Strategy } from './routing.ts';

export interface AgentTypeDescription {
  name: string;
  version: string;
  description?: string;
  defaults: TaskDefaults;
  breaker: BreakerPolicy;
  strategy: Strategy;
  limits: TypeLimits;
  payloadSchema: unknown;
  resultSchema: unknown;
}

export class UnknownAgentTypeError extends SwitchyardError {
  constructor(name: string, known: readonly string[]) {
    super('UNKNOWN_AGENT_TYPE', `unknown agent type ${JSON.stringify(name)}; declared types: ${known.join(', ') || '(none)'}`, {
      nonRetryable: true,
    });
    this.name = 'UnknownAgentTypeError';
  }
}

export class Catalogue {
  readonly #types = new Map<string, AgentType>();

  constructor(types: Iterable<AgentType>) {
    for (const t of types) {
      if (this.#types.has(t.name)) throw new SwitchyardError('CONFIG_INVALID', `agent type ${t.name} is declared twice`);
      this.#types.set(t.name, t);
    }
  }

  get names(): string[] {
    return [...this.#types.keys()];
  }

  list(): AgentType[] {
    return [...this.#types.values()];
  }

  find(name: string): AgentType | undefined {
    return this.#types.get(name);
  }

  get(name: string): AgentType {
    const t = this.#types.get(name);
    if (!t) throw new UnknownAgentTypeError(name, this.names);
    return t;
  }

  describe(): AgentTypeDescription[] {
    return this.list().map((t) => ({
      name: t.name,
      version: t.version,
      ...(t.description ? { description: t.description } : {}),
      defaults: t.defaults,
      breaker: t.breaker,
      strategy: t.strategy,
      limits: t.limits,
      payloadSchema: jsonSchemaOf(t.payload, 'input'),
      resultSchema: jsonSchemaOf(t.result, 'output'),
    }));
  }
}

/** A breaker's policy by name: its type's for pool breakers (`pool:<type>.<pool>`), else the batch preset. */
export function policyOf(catalogue: Catalogue, name: string): BreakerPolicy {
  const type = /^pool:([a-z][a-z0-9-]*)\./.exec(name)?.[1];
  return (type && catalogue.find(type)?.breaker) || BREAKER_PRESETS.batch;
}
