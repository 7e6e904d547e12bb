import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type HeapEntry, MinHeap } from './min-heap.js';

class Entry implements HeapEntry {
  heapIndex = -1;
  constructor(
    public heapKey: number,
    readonly name = '',
  ) {}
}

/** Every parent's key is at most its children's, and each entry knows its own position. */
function checkInvariant(heap: MinHeap<Entry>): void {
  const items = heap.entries();
  for (let i = 0; i < items.length; i++) {
    const e = items[i] as Entry;
    expect(e.heapIndex).toBe(i);
    if (i > 0) expect((items[(i - 1) >> 1] as Entry).heapKey).toBeLessThanOrEqual(e.heapKey);
  }
}

function popAll(heap: MinHeap<Entry>): number[] {
  const out: number[] = [];
  for (let e = heap.pop(); e !== undefined; e = heap.pop()) out.push(e.heapKey);
  return out;
}

describe('MinHeap', () => {
  it('pops in key order and marks popped entries as out of the heap', () => {
    const heap = new MinHeap<Entry>();
    const entries = [5, 3, 8, 1, 9, 2].map((k) => new Entry(k));
    for (const e of entries) heap.push(e);
    checkInvariant(heap);
    expect(heap.peek()?.heapKey).toBe(1);
    expect(popAll(heap)).toEqual([1, 2, 3, 5, 8, 9]);
    expect(entries.every((e) => e.heapIndex === -1)).toBe(true);
    expect(heap.pop()).toBeUndefined();
  });

  it('removes the root: the next smallest takes its place', () => {
    const heap = new MinHeap<Entry>();
    const entries = [4, 1, 7, 3, 6].map((k) => new Entry(k));
    for (const e of entries) heap.push(e);
    const root = heap.peek() as Entry;
    heap.remove(root);
    expect(root.heapIndex).toBe(-1);
    checkInvariant(heap);
    expect(popAll(heap)).toEqual([3, 4, 6, 7]);
  });

  it('removes an arbitrary entry, the last one, and the only one', () => {
    const heap = new MinHeap<Entry>();
    const entries = [10, 20, 30, 40, 50, 60, 70].map((k) => new Entry(k));
    for (const e of entries) heap.push(e);
    heap.remove(entries[2] as Entry);
    checkInvariant(heap);
    heap.remove(heap.entries()[heap.size - 1] as Entry);
    checkInvariant(heap);
    expect(heap.size).toBe(5);
    const solo = new MinHeap<Entry>();
    const only = new Entry(1);
    solo.push(only);
    solo.remove(only);
    expect(solo.size).toBe(0);
    expect(only.heapIndex).toBe(-1);
  });

  it('a removal whose replacement must move up keeps the order', () => {
    // Pushed in this order the array is the heap [1, 10, 2, 11, 12, 3, 4]: removing 11 puts the
    // last entry (4) under 10, so it must move up.
    const heap = new MinHeap<Entry>();
    const keys = [1, 10, 2, 11, 12, 3, 4];
    const entries = keys.map((k) => new Entry(k));
    for (const e of entries) heap.push(e);
    expect(heap.entries().map((e) => e.heapKey)).toEqual(keys);
    heap.remove(entries[3] as Entry);
    checkInvariant(heap);
    expect(popAll(heap)).toEqual([1, 2, 3, 4, 10, 12]);
  });

  it('ignores the removal of an entry that is not in it (twice, or from another heap)', () => {
    const a = new MinHeap<Entry>();
    const b = new MinHeap<Entry>();
    const x = new Entry(1);
    const y = new Entry(2);
    a.push(x);
    b.push(y);
    a.remove(y); // y.heapIndex is 0, but a's root is x
    expect(a.peek()).toBe(x);
    a.remove(x);
    a.remove(x);
    expect(a.size).toBe(0);
    expect(b.peek()).toBe(y);
  });

  it('re-keys an entry up and down', () => {
    const heap = new MinHeap<Entry>();
    const entries = [10, 20, 30, 40].map((k) => new Entry(k));
    for (const e of entries) heap.push(e);
    heap.update(entries[3] as Entry, 5);
    expect(heap.peek()).toBe(entries[3]);
    heap.update(entries[3] as Entry, 35);
    checkInvariant(heap);
    expect(popAll(heap)).toEqual([10, 20, 30, 35]);
  });

  it('drain empties it and leaves every entry outside', () => {
    const heap = new MinHeap<Entry>();
    const entries = [3, 1, 2].map((k) => new Entry(k));
    for (const e of entries) heap.push(e);
    expect(heap.drain().length).toBe(3);
    expect(heap.size).toBe(0);
    expect(entries.every((e) => e.heapIndex === -1)).toBe(true);
  });

  it('matches a sorted list under any sequence of pushes, pops, removals and updates', () => {
    const op = fc.oneof(
      fc.record({ kind: fc.constant('push' as const), key: fc.integer({ min: 0, max: 50 }) }),
      fc.record({ kind: fc.constant('pop' as const) }),
      fc.record({ kind: fc.constant('remove' as const), at: fc.nat() }),
      fc.record({ kind: fc.constant('update' as const), at: fc.nat(), key: fc.integer({ min: 0, max: 50 }) }),
    );
    fc.assert(
      fc.property(fc.array(op, { maxLength: 200 }), (ops) => {
        const heap = new MinHeap<Entry>();
        const model: Entry[] = [];
        for (const o of ops) {
          if (o.kind === 'push') {
            const e = new Entry(o.key);
            heap.push(e);
            model.push(e);
          } else if (o.kind === 'pop') {
            const min = model.reduce<number | undefined>(
              (m, e) => (m === undefined || e.heapKey < m ? e.heapKey : m),
              undefined,
            );
            const popped = heap.pop();
            expect(popped?.heapKey).toBe(min);
            if (popped !== undefined) model.splice(model.indexOf(popped), 1);
          } else if (model.length > 0) {
            const e = model[o.at % model.length] as Entry;
            if (o.kind === 'remove') {
              heap.remove(e);
              model.splice(model.indexOf(e), 1);
            } else {
              heap.update(e, o.key);
            }
          }
          checkInvariant(heap);
        }
        expect(popAll(heap)).toEqual(model.map((e) => e.heapKey).sort((a, b) => a - b));
      }),
      { numRuns: 300 },
    );
  });
});
