// Weighted destination pick for traffic splits (route.weightedClusters): a cumulative table built once at
// compile time, then one random number and a short scan per request (splits have a handful of entries).

export interface WeightedTable<T> {
  readonly items: readonly T[];
  /** cumulative[i] = sum of weights[0..i]; strictly increasing over items with weight > 0. */
  readonly cumulative: Float64Array;
  readonly total: number;
}

export function buildWeightedTable<T>(entries: readonly { item: T; weight: number }[]): WeightedTable<T> {
  const kept = entries.filter((e) => e.weight > 0);
  if (kept.length === 0) throw new Error('weighted table needs at least one weight above 0');
  const cumulative = new Float64Array(kept.length);
  let total = 0;
  kept.forEach((e, i) => {
    total += e.weight;
    cumulative[i] = total;
  });
  return { items: kept.map((e) => e.item), cumulative, total };
}

/** `r` in [0, 1). */
export function pickWeighted<T>(table: WeightedTable<T>, r: number): T {
  const target = r * table.total;
  const c = table.cumulative;
  for (let i = 0; i < c.length; i++) if (target < c[i]) return table.items[i];
  return table.items[table.items.length - 1];
}
