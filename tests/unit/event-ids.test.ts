/** Event ids: `<stream entry id>.<index>`, ordered by entry then index; an entry id alone stands for its whole entry. */
import { describe, expect, it } from 'vitest';
import { EVENT_ID, eventIdParts, idAfter, parseEntries } from '../../src/events/event-log.ts';

describe('event ids', () => {
  it('order by entry (milliseconds, then sequence), then index', () => {
    expect(idAfter('2-0.0', '1-9.5')).toBe(true);
    expect(idAfter('1-10.0', '1-9.7')).toBe(true);
    expect(idAfter('1-9.3', '1-9.2')).toBe(true);
    expect(idAfter('1-9.2', '1-9.2')).toBe(false);
    expect(idAfter('1-9.2', '1-9')).toBe(false);
    expect(idAfter('1-10.0', '1-9')).toBe(true);
    expect(eventIdParts('5-1.7')).toEqual({ entry: '5-1', index: 7 });
    expect(eventIdParts('5-1')).toEqual({ entry: '5-1' });
    for (const good of ['1796316309021-0', '1796316309021-0.12']) expect(EVENT_ID.test(good), good).toBe(true);
    for (const bad of ['yesterday', '1-', '1-0.', '1.5', '-1-0']) expect(EVENT_ID.test(bad), bad).toBe(false);
  });

  it('number the events of an entry, one event or a batch, and skip what is not ours', () => {
    const events = parseEntries([
      ['1-0', ['e', JSON.stringify([{ kind: 'run', run: 'a', state: 'running', at: 1 }, { kind: 'run', run: 'b', state: 'running', at: 1 }])]],
      ['2-0', ['e', JSON.stringify({ kind: 'run', run: 'c', state: 'running', at: 2 })]],
      ['3-0', ['x', 'y']],
      ['4-0', ['e', '{not json']],
    ]);
    expect(events.map((e) => `${e.id}:${e.event.kind === 'run' ? e.event.run : ''}`)).toEqual(['1-0.0:a', '1-0.1:b', '2-0.0:c']);
  });
});
