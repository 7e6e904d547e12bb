/**
 * A binary min-heap over objects that carry their own key and position, so an entry can be
 * removed or re-keyed in O(log n) without a search (in-flight deadlines change on TOUCH and
 * entries leave on FIN). Keys are monotonic-clock milliseconds.
 */
export interface HeapEntry {
  heapKey: number;
  /** Position in the heap; -1 when not in one. */
  heapIndex: number;
}

export class MinHeap<T extends HeapEntry> {
  private readonly items: T[] = [];

  get size(): number {
    return this.items.length;
  }

  /** The entries in heap order (not sorted); do not modify. */
  entries(): readonly T[] {
    return this.items;
  }

  peek(): T | undefined {
    return this.items[0];
  }

  push(entry: T): void {
    entry.heapIndex = this.items.length;
    this.items.push(entry);
    this.up(entry.heapIndex);
  }

  pop(): T | undefined {
    const top = this.items[0];
    if (top !== undefined) this.removeAt(0);
    return top;
  }

  remove(entry: T): void {
    if (entry.heapIndex >= 0 && this.items[entry.heapIndex] === entry) this.removeAt(entry.heapIndex);
  }

  update(entry: T, key: number): void {
    const older = entry.heapKey;
    entry.heapKey = key;
    if (key < older) this.up(entry.heapIndex);
    else this.down(entry.heapIndex);
  }

  /** Removes every entry and returns them (unordered). */
  drain(): T[] {
    const all = this.items.splice(0);
    for (const e of all) e.heapIndex = -1;
    return all;
  }

  private removeAt(i: number): void {
    const items = this.items;
    const removed = items[i] as T;
    const last = items.pop() as T;
    removed.heapIndex = -1;
    if (i < items.length) {
      items[i] = last;
      last.heapIndex = i;
      this.down(i);
      this.up(last.heapIndex);
    }
  }

  private up(i: number): void {
    const items = this.items;
    const entry = items[i] as T;
    while (i > 0) {
      const parentIndex = (i - 1) >> 1;
      const parent = items[parentIndex] as T;
      if (parent.heapKey <= entry.heapKey) break;
      items[i] = parent;
      parent.heapIndex = i;
      i = parentIndex;
    }
    items[i] = entry;
    entry.heapIndex = i;
  }

  private down(i: number): void {
    const items = this.items;
    const n = items.length;
    const entry = items[i] as T;
    for (;;) {
      const left = 2 * i + 1;
      if (left >= n) break;
      const right = left + 1;
      let child = left;
      if (right < n && (items[right] as T).heapKey < (items[left] as T).heapKey) child = right;
      const c = items[child] as T;
      if (c.heapKey >= entry.heapKey) break;
      items[i] = c;
      c.heapIndex = i;
      i = child;
    }
    items[i] = entry;
    entry.heapIndex = i;
  }
}
