import { describe, expect, it } from 'vitest';
import { systemClock } from '../clock.js';
import { MemoryTail } from './memory-tail.js';
import { decodeAt } from './record-codec.js';

function body(n: number): Buffer {
  return Buffer.from(`m${n}`);
}

function appendRange(tail: MemoryTail, from: number, to: number): void {
  for (let n = from; n < to; n++) {
    const b = body(n);
    expect(tail.append(b, 0, b.length, n, 0x8000_0000 + n, 1_700_000_000_000 + n, 0)).toBe(n);
  }
}

describe('MemoryTail', () => {
  it('keeps records across growth and wrap-around, addressed by offset', () => {
    const tail = new MemoryTail();
    appendRange(tail, 0, 1500);
    tail.trimTo(1000);
    appendRange(tail, 1500, 5000); // wraps the 2,048 ring, then grows it
    expect(tail.start).toBe(1000);
    expect(tail.end).toBe(5000);
    expect(tail.get(999)).toBeUndefined();
    expect(tail.get(5000)).toBeUndefined();
    for (const o of [1000, 2047, 2048, 4999]) {
      const r = tail.get(o);
      expect(r?.offset).toBe(o);
      expect(r?.idHi).toBe(o);
      expect(r?.idLo).toBe(0x8000_0000 + o);
      expect(r?.publishedAtMs).toBe(1_700_000_000_000 + o);
      expect(r?.body.toString()).toBe(`m${o}`);
    }
  });

  it('a pinned range stays encodable after a trim, and its slots are not reused until unpinned', () => {
    const tail = new MemoryTail();
    appendRange(tail, 0, 1000);
    tail.pin(200);
    tail.clear(); // readers see nothing any more
    expect(tail.length).toBe(0);
    expect(tail.get(500)).toBeUndefined();
    appendRange(tail, 1000, 2000); // would overwrite slots 0..975 of a 1,024 ring if they were free
    const out = Buffer.alloc(64);
    tail.encodeAt(500, out, 0, systemClock);
    const r = decodeAt(out, 0, out.length, 1024, systemClock);
    expect(typeof r).not.toBe('number');
    expect(r).toMatchObject({ offset: 500, idHi: 500, idLo: 0x8000_0000 + 500 });
    expect((r as { body: Buffer }).body.toString()).toBe('m500');
    tail.unpin();
    expect(tail.get(1500)?.body.toString()).toBe('m1500');
  });

  it('gives its columns back when asked while empty, and grows again from there', () => {
    const tail = new MemoryTail();
    expect(tail.slots).toBe(0);
    appendRange(tail, 0, 100_000);
    expect(tail.slots).toBe(131_072);
    tail.shrinkIfEmpty(); // not empty: keeps everything
    expect(tail.get(5)?.body.toString()).toBe('m5');
    tail.trimTo(100_000);
    expect(tail.slots).toBe(131_072); // emptied, but kept until the timer asks
    tail.shrinkIfEmpty();
    expect(tail.slots).toBe(0);
    appendRange(tail, 100_000, 100_010);
    expect(tail.slots).toBe(256);
    expect(tail.get(100_005)?.body.toString()).toBe('m100005');
    expect(tail.length).toBe(10);
  });

  it('keeps deferral times through growth and wrap-around, and reads 0 for the plain publishes around them', () => {
    const tail = new MemoryTail();
    appendRange(tail, 0, 300);
    const b = body(300);
    tail.append(b, 0, b.length, 300, 0x8000_0000 + 300, 1_700_000_000_300, 12_345.5);
    appendRange(tail, 301, 700); // grows 256 → 512 → 1,024 with the deferred slot kept
    expect(tail.get(300)?.deliverAfter).toBe(12_345.5);
    for (const o of [0, 299, 301, 699]) expect(tail.get(o)?.deliverAfter).toBe(0);
    tail.trimTo(700);
    appendRange(tail, 700, 1500); // reuses the deferred slot's index with a plain publish
    expect(tail.get(300 + 1024)?.deliverAfter).toBe(0);
  });
});
