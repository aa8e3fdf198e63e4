/** Switchyard's version, from package.json (the CLI's --version, the OpenAPI document). */
import { readFileSync } from 'node:fs';

export const VERSION = (JSON.parse(readFileSync(new URL('../package.json', import.meta.url), 'utf8')) as { version: string }).version;
