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
