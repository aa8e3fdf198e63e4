/**
 * `switchyard keys new --id <name> --scopes <list> [--types <list>]`: a new random API key, printed once,
 * and the entry to add to SWITCHYARD_API_KEYS_FILE (its hash, never the key); `switchyard keys hash
 * <key>`: the hash of a key you already have. Nothing is sent anywhere: the API reads the file on SIGHUP.
 */
import { randomBytes } from 'node:crypto';
import { apiKeyEntrySchema, hashKey, type ApiKeyEntry } from '../model/api-key.ts';
import { summarize, toFieldIssues } from '../model/validation.ts';

export interface NewKeyFlags {
  id: string;
  scopes: string;
  types?: string;
}

const items = (s: string | undefined) => (s ?? '').split(',').map((x) => x.trim()).filter(Boolean);

/** Prints a new key and its file entry; 2 when the flags do not make a valid entry. */
export function newKeyCommand(o: NewKeyFlags, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`), err: (line: string) => void = (l) => process.stderr.write(`${l}\n`)): number {
  const key = `sk_${randomBytes(24).toString('base64url')}`;
  const parsed = apiKeyEntrySchema.safeParse({ id: o.id, hash: hashKey(key), scopes: items(o.scopes), ...(o.types ? { types: items(o.types) } : {}) });
  if (!parsed.success) {
    err(`switchyard keys new: ${summarize(toFieldIssues(parsed.error))}`);
    return 2;
  }
  const entry: ApiKeyEntry = parsed.data;
  out(`key (shown once; give it to the client, keep it nowhere else): ${key}`);
  out(`entry for SWITCHYARD_API_KEYS_FILE's "keys" list (then send the API SIGHUP):`);
  out(JSON.stringify(entry));
  return 0;
}

export function hashKeyCommand(key: string, out: (line: string) => void = (l) => process.stdout.write(`${l}\n`)): number {
  out(hashKey(key));
  return 0;
}
