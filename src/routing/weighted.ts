/**
 * Smooth weighted round-robin (as in nginx): every pick adds each pool's weight to its current
 * score, takes the highest, and subtracts the total from it. Over N picks each pool gets its exact
 * share, spread out rather than in bursts (10:1 gives 10 A, 1 B in every 11, interleaved).
 */
import type { Candidate, Picker } from '../model/candidate.ts';

export class WeightedPicker implements Picker {
  readonly #current = new Map<string, Map<string, number>>();

  pick(key: string, candidates: readonly Candidate[]): Candidate {
    let scores = this.#current.get(key);
    if (!scores) this.#current.set(key, (scores = new Map()));
    let total = 0;
    let best: Candidate | undefined;
    let bestScore = -Infinity;
    for (const c of candidates) {
      const score = (scores.get(c.pool) ?? 0) + c.weight;
      scores.set(c.pool, score);
      total += c.weight;
      if (score > bestScore) {
        bestScore = score;
        best = c;
      }
    }
    scores.set(best!.pool, bestScore - total);
    return best!;
  }
}
