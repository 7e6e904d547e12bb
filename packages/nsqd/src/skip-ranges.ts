import type { SkipRange } from './durable-state.js';

/** Offsets in [from, to) that lie in `skips`. */
export function skippedBetween(skips: readonly SkipRange[], from: number, to: number): number {
  let n = 0;
  for (const [a, b] of skips) n += Math.max(0, Math.min(b, to) - Math.max(a, from));
  return n;
}

/** The range of `skips` that holds `offset`. */
export function skipAt(skips: readonly SkipRange[], offset: number): SkipRange | undefined {
  return skips.find(([a, b]) => a <= offset && b > offset);
}

/** Skips [from, to), joined to the last range when they touch. */
export function addSkip(skips: SkipRange[], from: number, to: number): void {
  const last = skips[skips.length - 1];
  if (last !== undefined && last[1] === from) last[1] = to;
  else skips.push([from, to]);
}
