/** The Lua sources: every script loads, includes expand once, and each header names its KEYS. */
import { readdirSync, readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';
import { luaSource } from '../../src/redis/script.ts';
import { scripts } from '../../src/redis/scripts.ts';

const dir = new URL('../../src/redis/lua/', import.meta.url);
const files = readdirSync(dir).filter((f) => f.endsWith('.lua'));

describe('Lua scripts', () => {
  it('are all .lua files that open with their KEYS or what they hold, and every one is used', () => {
    for (const f of files) expect(readFileSync(new URL(f, dir), 'utf8'), f).toMatch(/^-- (KEYS|Shared)/);
    const used = new Set(Object.values(scripts).map((s) => s.name));
    const libs = files.map((f) => f.slice(0, -4)).filter((n) => !used.has(n));
    expect(libs).toEqual(['gcra-lib', 'key-slots-lib', 'workflow-lib', 'workflow-map-lib']);
  });

  it('expand their includes in place, once, with nothing left to include', () => {
    const settle = luaSource('workflow-settle');
    expect(settle).not.toMatch(/@include/);
    expect(settle.match(/local rcall = redis\.call/g)).toHaveLength(1);
    // The whole library, byte for byte (it holds `$'`, which a string replacement would have expanded).
    expect(settle).toContain(readFileSync(new URL('workflow-lib.lua', dir), 'utf8'));
  });
});
