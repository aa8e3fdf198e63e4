/**
 * The API keys a process accepts: SWITCHYARD_API_KEYS (each a key, or its `sha256:<hex>` hash; every
 * one with every scope) and the keys file SWITCHYARD_API_KEYS_FILE (JSON `{keys: [{id, hash, scopes,
 * types?}]}`, hashes only: src/model/api-key.ts). The file is read at start (a bad one stops the
 * start, naming the field) and again on reload (SIGHUP): a bad file, or one that would leave a keyed
 * API with no key, is refused and the keys in use are kept.
 */
import { readFileSync } from 'node:fs';
import { apiKeyEntrySchema, hashKey, KEY_HASH, keysFileSchema, toPrincipal, type Principal } from '../model/api-key.ts';
import { SwitchyardError } from '../model/errors.ts';
import { summarize, toFieldIssues } from '../model/validation.ts';

export interface KeySources {
  apiKeys: readonly string[];
  apiKeysFile?: string | undefined;
}

export class KeyRing {
  #byHash: ReadonlyMap<string, Principal>;
  /** Whether the API started with keys (false: protected mode, loopback clients only). Fixed at start: a reload never turns protected mode on or off. */
  readonly keyed: boolean;

  constructor(private readonly sources: KeySources) {
    this.#byHash = read(sources);
    this.keyed = this.#byHash.size > 0;
  }

  /** The principal of a presented key, or undefined for a key not accepted. */
  lookup(key: string): Principal | undefined {
    return this.#byHash.get(hashKey(key));
  }

  /** Reads the keys again; throws CONFIG_INVALID (the keys in use kept) when the file is bad or would leave none. Returns how many keys it holds now. */
  reload(): number {
    const next = read(this.sources);
    if (next.size === 0 && this.keyed) {
      throw new SwitchyardError('CONFIG_INVALID', `${this.sources.apiKeysFile ?? 'the keys'} would leave no API key: an API started with keys keeps serving with keys (the old ones kept)`);
    }
    this.#byHash = next;
    return next.size;
  }
}

function read(s: KeySources): Map<string, Principal> {
  const byHash = new Map<string, Principal>();
  s.apiKeys.forEach((key, i) => {
    const hash = KEY_HASH.test(key) ? key : hashKey(key);
    byHash.set(hash, toPrincipal(apiKeyEntrySchema.parse({ id: `env-${i + 1}`, hash, scopes: ['admin'] })));
  });
  if (s.apiKeysFile === undefined) return byHash;
  let text: string;
  try {
    text = readFileSync(s.apiKeysFile, 'utf8');
  } catch (err) {
    throw new SwitchyardError('CONFIG_INVALID', `SWITCHYARD_API_KEYS_FILE=${s.apiKeysFile} cannot be read: ${err instanceof Error ? err.message : String(err)}`);
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (err) {
    throw new SwitchyardError('CONFIG_INVALID', `SWITCHYARD_API_KEYS_FILE=${s.apiKeysFile} is not JSON: ${err instanceof Error ? err.message : String(err)}`);
  }
  const parsed = keysFileSchema.safeParse(json);
  if (!parsed.success) throw new SwitchyardError('CONFIG_INVALID', `SWITCHYARD_API_KEYS_FILE=${s.apiKeysFile}: ${summarize(toFieldIssues(parsed.error))}`);
  for (const entry of parsed.data.keys) {
    if (byHash.has(entry.hash)) throw new SwitchyardError('CONFIG_INVALID', `SWITCHYARD_API_KEYS_FILE=${s.apiKeysFile}: the key of ${entry.id} is also in SWITCHYARD_API_KEYS`);
    byHash.set(entry.hash, toPrincipal(entry));
  }
  return byHash;
}
