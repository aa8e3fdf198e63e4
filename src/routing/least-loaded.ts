/**
 * The pool with the lowest (waiting + active) / live concurrency. Backlogs come from a snapshot a
 * few hundred ms old, so each pick also counts locally until the next snapshot: a burst spreads
 * over the pools instead of piling onto the one that looked idle.
 */
import type { Candidate, Picker } from '../model/candidate.ts';

export class LeastLoadedPicker implements Picker {
  readonly #sent = new Map<string, number>();

  /** Called when a new snapshot arrives: its backlogs include what was sent so far. */
  reset(): void {
    this.#sent.clear();
  }

  pick(key: string, candidates: readonly Candidate[]): Candidate {
    let best = candidates[0]!;
    let bestLoad = Infinity;
    for (const c of candidates) {
      const sent = this.#sent.get(`${key}\0${c.pool}`) ?? 0;
      const load = (c.backlog + sent) / Math.max(c.concurrency, 1);
      if (load < bestLoad) {
        bestLoad = load;
        best = c;
      }
    }
    const k = `${key}\0${best.pool}`;
    this.#sent.set(k, (this.#sent.get(k) ?? 0) + 1);
    return best;
  }
}
