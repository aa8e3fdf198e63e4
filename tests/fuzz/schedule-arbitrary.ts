/**
 * The parts of schedules the JSON Schema cannot generate usefully: cron expressions built field by
 * field (numbers, ranges, lists, steps, names, L and #, with or without seconds), IANA time zones
 * this runtime knows, and instants written as ISO 8601 date-times with any offset and precision.
 * Whether a combination is valid is still the oracle's call.
 */
import fc from 'fast-check';

const MONTHS = ['JAN', 'FEB', 'MAR', 'APR', 'MAY', 'JUN', 'JUL', 'AUG', 'SEP', 'OCT', 'NOV', 'DEC'];
const DAYS = ['SUN', 'MON', 'TUE', 'WED', 'THU', 'FRI', 'SAT'];

/** One cron field over [min, max]: mostly a number, else a range, a list, a step, `*` or a name. */
function cronField(min: number, max: number, names: readonly string[] = []): fc.Arbitrary<string> {
  const n = fc.integer({ min, max });
  const arbs: Array<fc.WeightedArbitrary<string>> = [
    { weight: 6, arbitrary: n.map(String) },
    { weight: 1, arbitrary: fc.tuple(n, n).map(([a, b]) => `${Math.min(a, b)}-${Math.max(a, b)}`) },
    { weight: 1, arbitrary: fc.uniqueArray(n, { minLength: 2, maxLength: 4 }).map((xs) => xs.join(',')) },
    { weight: 1, arbitrary: fc.tuple(fc.oneof(fc.constant('*'), n.map(String)), fc.integer({ min: 1, max: max - min + 1 })).map(([a, s]) => `${a}/${s}`) },
    { weight: 1, arbitrary: fc.constant('*') },
  ];
  if (names.length) arbs.push({ weight: 1, arbitrary: fc.constantFrom(...names) });
  return fc.oneof(...arbs);
}

/**
 * Cron expressions: 5 fields (minute hour day-of-month month day-of-week) or 6 (seconds first),
 * sometimes padded with spaces. No `H` (hashed) field: the API refuses it (cron-parser draws it at
 * random on every parse, so the times shown would not be those fired).
 */
export const cronExpression: fc.Arbitrary<string> = fc
  .record({
    seconds: fc.option(cronField(0, 59), { nil: undefined }),
    minute: cronField(0, 59),
    hour: cronField(0, 23),
    dom: fc.oneof({ weight: 6, arbitrary: cronField(1, 31) }, { weight: 1, arbitrary: fc.constantFrom('L', '?') }),
    month: cronField(1, 12, MONTHS),
    dow: fc.oneof(
      { weight: 6, arbitrary: fc.constant('*') },
      { weight: 3, arbitrary: cronField(0, 7, DAYS) },
      { weight: 1, arbitrary: fc.tuple(fc.integer({ min: 0, max: 6 }), fc.integer({ min: 1, max: 5 })).map(([d, k]) => `${d}#${k}`) },
      { weight: 1, arbitrary: fc.integer({ min: 0, max: 6 }).map((d) => `${d}L`) },
    ),
    gap: fc.constantFrom(' ', ' ', ' ', '  '),
    pad: fc.constantFrom('', '', '', ' ', '  '),
  })
  .map(({ seconds, minute, hour, dom, month, dow, gap, pad }) => {
    const fields = [minute, hour, dom, month, dom === '?' && dow === '?' ? '*' : dow];
    return pad + (seconds === undefined ? fields : [seconds, ...fields]).join(gap) + pad;
  });

/** IANA time zones this runtime knows (Intl's canonical list), and UTC. */
export const timeZone: fc.Arbitrary<string> = fc.constantFrom('UTC', ...Intl.supportedValuesOf('timeZone'));

const at = (iso: string) => Date.parse(iso);
const HOUR = 3_600_000;
const DAY = 24 * HOUR;
/** Far enough ahead that nothing the fuzz makes fires while it runs; far enough from 9999 for any offset. */
const FUTURE_MS = at('2090-01-01T00:00:00Z');

/** An instant (ms) in [min, max], often on a whole hour or day (where cron times fall). */
const between = (min: number, max: number): fc.Arbitrary<number> =>
  fc
    .bigInt({ min: BigInt(min), max: BigInt(max) })
    .map(Number)
    .chain((ms) => fc.constantFrom(ms, ms - (ms % HOUR), ms - (ms % DAY)));

/** An instant (ms) after 2090, mostly before 2300: a schedule that starts there does not fire during the fuzz. */
export const futureMs: fc.Arbitrary<number> = fc.oneof(
  { weight: 5, arbitrary: between(FUTURE_MS, at('2300-01-01T00:00:00Z')) },
  { weight: 1, arbitrary: between(FUTURE_MS, at('9999-12-30T00:00:00Z')) },
);
/** An instant (ms) before 2020, mostly after 1970, back to the year 0. */
export const pastMs: fc.Arbitrary<number> = fc.oneof(
  { weight: 3, arbitrary: between(0, at('2020-01-01T00:00:00Z')) },
  { weight: 1, arbitrary: between(at('0000-01-02T00:00:00Z'), 0) },
);

/** `ms` as an ISO 8601 date-time: at UTC (`Z` or `+00:00`) or another offset, with 0 to 9 fraction digits. */
export function isoDateTime(ms: number): fc.Arbitrary<string> {
  const offset = fc.oneof({ weight: 3, arbitrary: fc.constant(0) }, { weight: 2, arbitrary: fc.integer({ min: -(23 * 60 + 59), max: 23 * 60 + 59 }) });
  return fc.tuple(offset, fc.constantFrom('Z', '+00:00'), fc.constantFrom(0, 3, 3, 1, 6, 9)).map(([minutes, utc, digits]) => {
    const local = new Date(ms + minutes * 60_000).toISOString();
    const millis = local.slice(20, 23);
    // Fewer than three digits only when the dropped ones are zeros: every variant names the same instant.
    const fraction = digits === 0 ? (millis === '000' ? '' : `.${millis}`) : digits === 1 ? (millis.endsWith('00') ? `.${millis[0]}` : `.${millis}`) : `.${millis.padEnd(digits, '0')}`;
    const sign = minutes < 0 ? '-' : '+';
    const abs = Math.abs(minutes);
    const zone = minutes === 0 ? utc : `${sign}${String(Math.floor(abs / 60)).padStart(2, '0')}:${String(abs % 60).padStart(2, '0')}`;
    return `${local.slice(0, 19)}${fraction}${zone}`;
  });
}

export const futureInstant = futureMs.chain(isoDateTime);
export const anyInstant = fc.oneof({ weight: 3, arbitrary: futureMs }, { weight: 1, arbitrary: pastMs }).chain(isoDateTime);
export const pastInstant = pastMs.chain(isoDateTime);
