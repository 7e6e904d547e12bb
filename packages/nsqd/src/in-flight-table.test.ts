import { describe, expect, it } from 'vitest';
import { InFlightTable } from './in-flight-table.js';
import { ChannelMessage, MessageRecord } from './message.js';

function msg(hi: number, lo: number): ChannelMessage {
  return new ChannelMessage(new MessageRecord(0, hi, lo, Buffer.from('x'), 0, 1, 0, 0), 0);
}

describe('InFlightTable', () => {
  it('finds messages by their 16-char lowercase hex ID only', () => {
    const t = new InFlightTable();
    const m = msg(0x18aa2c3a, 0xee269001);
    t.add(m);
    expect(m.record.id).toBe('18aa2c3aee269001');
    expect(t.get('18aa2c3aee269001')).toBe(m);
    expect(t.get('18AA2C3AEE269001')).toBeUndefined();
    expect(t.get('18aa2c3aee26900g')).toBeUndefined();
    expect(t.get('18aa2c3aee269002')).toBeUndefined();
    t.delete(m);
    expect(t.get('18aa2c3aee269001')).toBeUndefined();
    expect(t.size).toBe(0);
  });

  it('keeps IDs whose numeric keys collide apart (ticks 2^20 ms apart)', () => {
    const t = new InFlightTable();
    const a = msg(0x00000001, 0x12345678);
    const b = msg(0x00000401, 0x12345678);
    t.add(a);
    t.add(b);
    expect(t.size).toBe(2);
    expect(t.get(a.record.id)).toBe(a);
    expect(t.get(b.record.id)).toBe(b);
    t.delete(a);
    expect(t.get(a.record.id)).toBeUndefined();
    expect(t.get(b.record.id)).toBe(b);
    t.delete(b);
    expect(t.size).toBe(0);
    expect([...t.values()]).toEqual([]);
  });
});

describe('InFlightTable.getAt', () => {
  it('finds an ID given as bytes exactly as by its text, colliding keys included', () => {
    const t = new InFlightTable();
    const a = msg(0x00000001, 0x12345678);
    const b = msg(0x00000401, 0x12345678);
    t.add(a);
    t.add(b);
    const bytes = Buffer.from(`FIN ${a.record.id}\nFIN ${b.record.id}\nFIN 0000000112345679\n`, 'latin1');
    expect(t.getAt(bytes, 4)).toBe(a);
    expect(t.getAt(bytes, 25)).toBe(b);
    expect(t.getAt(bytes, 46)).toBeUndefined();
    expect(t.getAt(Buffer.from('0000000112345G78'), 0)).toBeUndefined();
  });
});

describe('InFlightTable: the open-addressing table', () => {
  it('keeps every entry findable through growth, deletes in any order (backward shift) and clear', () => {
    const t = new InFlightTable();
    // Keys from real-looking IDs: same tick, consecutive sequences, then other ticks.
    const all = Array.from({ length: 5000 }, (_, i) => msg(0x18aa2c3a + (i >> 12), 0xee200000 + (i & 0xfff)));
    for (const m of all) t.add(m);
    expect(t.size).toBe(5000);
    for (const m of all) expect(t.get(m.record.id)).toBe(m);
    // Delete every third, then check the rest (deletion must not cut probe chains).
    for (let i = 0; i < all.length; i += 3) t.delete(all[i] as ChannelMessage);
    for (let i = 0; i < all.length; i++) {
      const m = all[i] as ChannelMessage;
      expect(t.get(m.record.id)).toBe(i % 3 === 0 ? undefined : m);
    }
    expect([...t.values()].length).toBe(t.size);
    t.clear();
    expect(t.size).toBe(0);
    expect(t.get((all[1] as ChannelMessage).record.id)).toBeUndefined();
    t.add(all[1] as ChannelMessage);
    expect(t.get((all[1] as ChannelMessage).record.id)).toBe(all[1]);
  });

  it('matches a Map under a random mix of adds and deletes', () => {
    const t = new InFlightTable();
    const live = new Map<string, ChannelMessage>();
    let seed = 12345;
    const rand = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed;
    };
    for (let op = 0; op < 50_000; op++) {
      const r = rand();
      if (r % 3 !== 0 || live.size === 0) {
        const m = msg(rand() & 0x7ff, rand());
        if (live.has(m.record.id)) continue;
        t.add(m);
        live.set(m.record.id, m);
      } else {
        const ids = [...live.keys()];
        const id = ids[r % ids.length] as string;
        t.delete(live.get(id) as ChannelMessage);
        live.delete(id);
      }
      if (op % 5000 === 0) for (const [id, m] of live) expect(t.get(id)).toBe(m);
    }
    expect(t.size).toBe(live.size);
    for (const [id, m] of live) expect(t.get(id)).toBe(m);
  });
});

describe('InFlightTable.shrinkIfEmpty', () => {
  it('keeps a non-empty table, and an emptied one still works after giving its slots back', () => {
    const t = new InFlightTable();
    const all = Array.from({ length: 3000 }, (_, i) => msg(0x18aa2c3a, 0xee200000 + i));
    for (const m of all) t.add(m);
    t.shrinkIfEmpty();
    expect(t.get((all[2999] as ChannelMessage).record.id)).toBe(all[2999]);
    for (const m of all) t.delete(m);
    expect(t.size).toBe(0);
    t.shrinkIfEmpty();
    t.add(all[7] as ChannelMessage);
    expect(t.get((all[7] as ChannelMessage).record.id)).toBe(all[7]);
    expect(t.size).toBe(1);
  });
});
