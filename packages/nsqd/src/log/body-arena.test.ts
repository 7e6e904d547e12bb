import { describe, expect, it } from 'vitest';
import { MessageRecord } from '../message.js';
import { BodyArena } from './body-arena.js';

describe('BodyArena', () => {
  it('carves consecutive mid-size bodies out of one growing block, never overlapping', () => {
    const arena = new BodyArena();
    const bodies = Array.from({ length: 40 }, (_, i) => {
      const b = arena.alloc(10_000);
      b.fill(i);
      return b;
    });
    const blocks = new Set(bodies.map((b) => b.buffer));
    // At least 8 bodies a block (8, then 13 in 128 KiB), then 256 KiB for the other 19.
    expect([...blocks].map((b) => b.byteLength)).toEqual([80_000, 131_072, 262_144]);
    bodies.forEach((b, i) => {
      expect(b.length).toBe(10_000);
      expect(b.every((x) => x === i)).toBe(true);
    });
  });

  it('leaves small bodies to Node’s pool and large ones to an allocation of their own', () => {
    const arena = new BodyArena();
    expect(arena.alloc(200).buffer.byteLength).toBe(Buffer.poolSize);
    const large = arena.alloc(200_000);
    expect(large.buffer.byteLength).toBe(200_000);
  });

  it('a record kept long gets a copy of its body instead of pinning the arena block', () => {
    const arena = new BodyArena();
    const data = arena.alloc(4_500); // a small body itself, but in a 64 KiB block
    data.fill(7);
    const record = new MessageRecord(1, 2, 3, data, 100, 200, 0, 0);
    const kept = record.compact();
    expect(kept).not.toBe(record);
    expect(kept.data.buffer.byteLength).toBeLessThan(data.buffer.byteLength);
    expect(kept.body.equals(record.body)).toBe(true);
  });
});
