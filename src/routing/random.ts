/** Uniformly random among the eligible pools. */
import type { Candidate, Picker } from '../model/candidate.ts';

export class RandomPicker implements Picker {
  constructor(private readonly random: () => number = Math.random) {}

  pick(_key: string, candidates: readonly Candidate[]): Candidate {
    return candidates[Math.floor(this.random() * candidates.length)]!;
  }
}
