/** Exact rotation over the eligible pools, in name order. */
import type { Candidate, Picker } from '../model/candidate.ts';

export class RoundRobinPicker implements Picker {
  readonly #next = new Map<string, number>();

  pick(key: string, candidates: readonly Candidate[]): Candidate {
    const i = this.#next.get(key) ?? 0;
    this.#next.set(key, (i + 1) % Number.MAX_SAFE_INTEGER);
    return candidates[i % candidates.length]!;
  }
}
