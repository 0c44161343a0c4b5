import { describe, expect, it } from 'vitest';
// The bench's statistics: the targets table's verdicts and intervals are read from these.
import { median, medianIntervalOverSets, spread, summary } from '../../bench/lib/stats.mjs';

describe('median', () => {
  it('takes the middle value, or the mean of the two middle ones, without reordering its input', () => {
    const values = [3, 1, 2];
    expect(median(values)).toBe(2);
    expect(values).toEqual([3, 1, 2]);
    expect(median([4, 1, 3, 2])).toBe(2.5);
    expect(median([10, 2, 33])).toBe(10); // numerically, not as text
  });

  it('formats the median with its spread', () => {
    expect(summary([0.9, 1.1, 1.0, 0.95], 3)).toBe('0.975 (0.900–1.100)');
    expect(spread([1, 2, 3, 4, 5, 6, 7, 8], 1)).toBe('4.5 (3.0–7.0)');
  });
});

describe('medianIntervalOverSets', () => {
  // Eight server sets of four rounds each, the sets apart by up to 10 %.
  const sets: number[] = [];
  const values: number[] = [];
  for (let set = 0; set < 8; set++) {
    for (let round = 0; round < 4; round++) {
      sets.push(set);
      values.push(0.9 + set * 0.0125 + round * 0.001);
    }
  }

  it('gives the same interval for the same series and seed, and holds the median', () => {
    const [low, high] = medianIntervalOverSets(values, sets);
    expect(medianIntervalOverSets(values, sets)).toEqual([low, high]);
    expect(low).toBeLessThan(median(values));
    expect(high).toBeGreaterThan(median(values));
    expect(low).toBeGreaterThan(Math.min(...values));
    expect(high).toBeLessThan(Math.max(...values));
  });

  it('is a single point when every set reads the same', () => {
    expect(medianIntervalOverSets([0.97, 0.97, 0.97, 0.97], [0, 0, 1, 1])).toEqual([0.97, 0.97]);
  });

  it('resamples whole sets, so rounds of one set do not count as independent draws', () => {
    // One set of 25 rounds at 0.8 and seven sets of one round at 1.0. Resampled whole, a third of
    // the draws of eight sets miss the big set, and their median is 1.0; rounds resampled one by
    // one would almost never draw fewer than 16 of the 25, and the interval would be 0.8 alone.
    const lopsidedSets = [...Array(25).fill(0), 1, 2, 3, 4, 5, 6, 7];
    const lopsidedValues = [...Array(25).fill(0.8), ...Array(7).fill(1.0)];
    expect(medianIntervalOverSets(lopsidedValues, lopsidedSets)).toEqual([0.8, 1.0]);
  });

  it('widens with the spread between sets, not with the number of rounds in one set', () => {
    const width = ([low, high]: number[]) => high - low;
    const close = values.map((v, i) => 0.95 + (v - 0.95) / 4 + (i % 4) * 0.001);
    expect(width(medianIntervalOverSets(close, sets))).toBeLessThan(width(medianIntervalOverSets(values, sets)));
    // Each set measured four times as long: the same sets, so the same interval (resampling rounds
    // one by one would narrow it, as if the sets had become more alike).
    const longer = values.flatMap((v) => [v, v, v, v]);
    const longerSets = sets.flatMap((s) => [s, s, s, s]);
    expect(medianIntervalOverSets(longer, longerSets)).toEqual(medianIntervalOverSets(values, sets));
  });

  it('narrows with more sets drawn alike', () => {
    const width = ([low, high]: number[]) => high - low;
    // Sixteen sets at the eight sets' levels, each level twice: the same spread, twice the draws.
    const more = [...values, ...values];
    const moreSets = [...sets, ...sets.map((s) => s + 8)];
    expect(width(medianIntervalOverSets(more, moreSets))).toBeLessThan(width(medianIntervalOverSets(values, sets)));
  });
});
