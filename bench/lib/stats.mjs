export const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
/** Median and the spread as min–max, formatted. */
export const summary = (xs, digits = 1) => `${median(xs).toFixed(digits)} (${Math.min(...xs).toFixed(digits)}–${Math.max(...xs).toFixed(digits)})`;
/** Median and the spread as 25th–75th percentile, formatted: for many samples with outliers (batches, single calls on a shared machine). */
export const spread = (xs, digits = 2) => {
  const s = [...xs].sort((a, b) => a - b);
  const at = (q) => s[Math.min(s.length - 1, Math.floor(q * s.length))];
  return `${median(xs).toFixed(digits)} (${at(0.25).toFixed(digits)}–${at(0.75).toFixed(digits)})`;
};

/**
 * A 95 % interval for the median of per-round `values`, resampling whole server sets (`sets[i]`
 * is round i's): rounds of one set share its processes, so they are not independent draws, and
 * the sets are what vary most. Returns [low, high]; the seed makes a run's interval repeatable.
 */
export function medianIntervalOverSets(values, sets, resamples = 2000, seed = 1) {
  const bySet = new Map();
  values.forEach((value, i) => {
    if (!bySet.has(sets[i])) bySet.set(sets[i], []);
    bySet.get(sets[i]).push(value);
  });
  const groups = [...bySet.values()];
  let state = seed >>> 0 || 1;
  const random = () => {
    // xorshift32: enough for resampling, and the same numbers every run.
    state ^= state << 13;
    state ^= state >>> 17;
    state ^= state << 5;
    return (state >>> 0) / 2 ** 32;
  };
  const medians = [];
  for (let r = 0; r < resamples; r++) {
    const sample = [];
    for (let g = 0; g < groups.length; g++) sample.push(...groups[Math.floor(random() * groups.length)]);
    medians.push(median(sample));
  }
  medians.sort((a, b) => a - b);
  return [medians[Math.floor(0.025 * resamples)], medians[Math.ceil(0.975 * resamples) - 1]];
}
