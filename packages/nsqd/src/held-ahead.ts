/**
 * The offsets past a channel's cursor that it holds already — DPUBs fanned out to it at publish
 * time and kept as deferred messages — so the cursor passes them instead of delivering them a
 * second time. Almost always empty: the set exists only while it holds one.
 */
export class HeldAhead {
  private offsets: Set<number> | null = null;

  get size(): number {
    return this.offsets?.size ?? 0;
  }

  has(offset: number): boolean {
    return this.offsets?.has(offset) === true;
  }

  add(offset: number): void {
    this.offsets ??= new Set();
    this.offsets.add(offset);
  }

  /** The cursor reached `offset`: true if it was held (and no longer is). */
  take(offset: number): boolean {
    const offsets = this.offsets;
    if (offsets === null || !offsets.delete(offset)) return false;
    if (offsets.size === 0) this.offsets = null;
    return true;
  }

  countBelow(offset: number): number {
    if (this.offsets === null) return 0;
    let n = 0;
    for (const o of this.offsets) if (o < offset) n++;
    return n;
  }

  /** The cursor jumped to `offset`: what lies below is held still, but no longer ahead of it. */
  forgetBelow(offset: number): void {
    if (this.offsets === null) return;
    for (const o of this.offsets) if (o < offset) this.offsets.delete(o);
    if (this.offsets.size === 0) this.offsets = null;
  }

  clear(): void {
    this.offsets = null;
  }

  list(): number[] | null {
    return this.offsets === null ? null : [...this.offsets];
  }
}
