import { afterEach, describe, expect, it, vi } from 'vitest';
import { inFlightKey, MESSAGE_ID_LAYOUT, MessageIdGenerator } from './message-id.js';

/** NSQ subtracts this from (now_ns >> 20) (nsq-spec §2.4). */
const EPOCH = 1288834974288n;
const NS_PER_TICK_MS = 1.048576; // 2^20 ns in ms

interface ParsedId {
  tick: bigint;
  node: number;
  seq: number;
}

function parse(id: string): ParsedId {
  const v = BigInt(`0x${id}`);
  return { tick: v >> 22n, node: Number((v >> 12n) & 0x3ffn), seq: Number(v & 0xfffn) };
}

function nowTick(): bigint {
  // (now_ns >> 20) - EPOCH, from a sub-ms clock: ms * 1e6 exactly via BigInt on µs.
  const us = BigInt(Math.floor((performance.timeOrigin + performance.now()) * 1000));
  return ((us * 1000n) >> 20n) - EPOCH;
}

describe('MessageIdGenerator', () => {
  afterEach(() => {
    vi.restoreAllMocks();
  });

  it('IDs are 16 lowercase hex chars', () => {
    const gen = new MessageIdGenerator(1023);
    for (let i = 0; i < 10_000; i++) {
      const id = gen.next();
      if (!/^[0-9a-f]{16}$/.test(id)) expect(id).toMatch(/^[0-9a-f]{16}$/);
    }
  });

  it('100k IDs are unique and strictly increasing as strings', () => {
    const gen = new MessageIdGenerator(7);
    const seen = new Set<string>();
    let prev = '';
    for (let i = 0; i < 100_000; i++) {
      const id = gen.next();
      if (!(id > prev)) expect(id > prev, `${prev} then ${id} at ${i}`).toBe(true);
      prev = id;
      seen.add(id);
    }
    expect(seen.size).toBe(100_000);
  });

  it('increasing as strings means increasing as 64-bit numbers', () => {
    const gen = new MessageIdGenerator(300);
    let prev = -1n;
    for (let i = 0; i < 20_000; i++) {
      const v = BigInt(`0x${gen.next()}`);
      if (v <= prev) expect(v > prev, `at ${i}`).toBe(true);
      prev = v;
    }
  });

  for (const node of [0, 1, 2, 341, 511, 512, 682, 1022, 1023]) {
    it(`node id ${node} sits in bits 21..12`, () => {
      const gen = new MessageIdGenerator(node);
      for (let i = 0; i < 5000; i++) {
        const p = parse(gen.next());
        if (p.node !== node) expect(p.node, `id #${i}`).toBe(node);
      }
    });
  }

  it('the top bits are (now_ns >> 20) - 1288834974288', () => {
    const before = nowTick();
    const id = new MessageIdGenerator(5).next();
    const after = nowTick();
    const { tick, seq } = parse(id);
    expect(tick).toBeGreaterThanOrEqual(before - 1n);
    expect(tick).toBeLessThanOrEqual(after + 1n);
    expect(seq).toBe(0);
  });

  it('generators with different node ids never collide, even in the same tick', () => {
    const a = new MessageIdGenerator(1);
    const b = new MessageIdGenerator(2);
    const ids = new Set<string>();
    for (let i = 0; i < 20_000; i++) {
      ids.add(a.next());
      ids.add(b.next());
    }
    expect(ids.size).toBe(40_000);
  });

  describe('with a controlled clock', () => {
    const base = BigInt(Math.floor(((performance.timeOrigin + performance.now()) * 1e6) / 2 ** 20)) + 1000n;

    /** Sets the clock to the middle of absolute tick `base + n`. */
    function at(n: number) {
      const ms = (Number(base) + n + 0.5) * NS_PER_TICK_MS - performance.timeOrigin;
      vi.spyOn(performance, 'now').mockReturnValue(ms);
    }

    const tickOf = (n: number) => base + BigInt(n) - EPOCH;

    it('counts the sequence within a tick and restarts it at 0 in a new tick', () => {
      const gen = new MessageIdGenerator(9);
      at(0);
      expect([gen.next(), gen.next(), gen.next()].map(parse)).toEqual([
        { tick: tickOf(0), node: 9, seq: 0 },
        { tick: tickOf(0), node: 9, seq: 1 },
        { tick: tickOf(0), node: 9, seq: 2 },
      ]);
      at(3);
      expect(parse(gen.next())).toEqual({ tick: tickOf(3), node: 9, seq: 0 });
      expect(parse(gen.next())).toEqual({ tick: tickOf(3), node: 9, seq: 1 });
    });

    it('stays monotonic when the wall clock steps back', () => {
      const gen = new MessageIdGenerator(9);
      at(10);
      const a = gen.next();
      at(5);
      const b = gen.next();
      const c = gen.next();
      expect(b > a && c > b).toBe(true);
      expect(parse(b)).toEqual({ tick: tickOf(10), node: 9, seq: 1 });
      expect(parse(c)).toEqual({ tick: tickOf(10), node: 9, seq: 2 });
    });

    it('borrows the next tick when 4096 IDs were issued in one tick, and never repeats', () => {
      const gen = new MessageIdGenerator(1023);
      at(20);
      const ids: string[] = [];
      for (let i = 0; i < 4096; i++) ids.push(gen.next());
      expect(parse(ids[0])).toEqual({ tick: tickOf(20), node: 1023, seq: 0 });
      expect(parse(ids[4095])).toEqual({ tick: tickOf(20), node: 1023, seq: 4095 });
      const next = gen.next();
      expect(parse(next)).toEqual({ tick: tickOf(21), node: 1023, seq: 0 });
      // The real clock is still in tick 20: keep counting in the borrowed tick.
      expect(parse(gen.next())).toEqual({ tick: tickOf(21), node: 1023, seq: 1 });
      at(22);
      expect(parse(gen.next())).toEqual({ tick: tickOf(22), node: 1023, seq: 0 });
      expect(new Set(ids).size).toBe(4096);
      expect(next > ids[4095]).toBe(true);
    });

    it('gives IDs fewer than 2^20 ticks apart different in-flight keys, and IDs 2^20 apart the same', () => {
      const key = (n: number) => {
        at(n);
        const gen = new MessageIdGenerator(3);
        return inFlightKey(gen.nextHi(), gen.lo);
      };
      const first = key(0);
      const keys = new Set([first]);
      for (const n of [1, 1023, 1024, 1025, 2 ** 19, 2 ** 20 - 1]) keys.add(key(n));
      expect(keys.size).toBe(7);
      expect(key(2 ** 20)).toBe(first);
    });

    it('encodes tick bits that straddle the two 32-bit halves correctly', () => {
      // The tick's low 10 bits live in the low half; check all of them and a carry into the high half.
      const gen = new MessageIdGenerator(513);
      const start = 1024 - Number(tickOf(0) % 1024n) - 3; // three ticks before a multiple of 1024
      const lowBits: number[] = [];
      for (let n = start; n < start + 8; n++) {
        at(n);
        const id = gen.next();
        expect(parse(id), id).toEqual({ tick: tickOf(n), node: 513, seq: 0 });
        lowBits.push(Number(tickOf(n) % 1024n));
      }
      expect(lowBits).toEqual([1021, 1022, 1023, 0, 1, 2, 3, 4]);
    });
  });

  describe('the in-flight key', () => {
    it("is the layout the generator writes: the tick's low 20 bits and the sequence, no node bits", () => {
      expect(MESSAGE_ID_LAYOUT.tickShift).toBe(MESSAGE_ID_LAYOUT.sequenceBits + MESSAGE_ID_LAYOUT.nodeBits);
      expect(MESSAGE_ID_LAYOUT.tickBitsInLo).toBe(32 - MESSAGE_ID_LAYOUT.tickShift);
      for (const node of [0, 513, 1023]) {
        const gen = new MessageIdGenerator(node);
        for (let i = 0; i < 5000; i++) {
          const hi = gen.nextHi();
          const { tick, seq } = parse(`${hi.toString(16).padStart(8, '0')}${gen.lo.toString(16).padStart(8, '0')}`);
          const want = (Number(tick % 2n ** 20n) << 12) | seq;
          const key = inFlightKey(hi, gen.lo);
          if (key !== want) expect(key, `node ${node}, id #${i}`).toBe(want);
        }
      }
    });

    it('covers more ticks than the default --max-msg-timeout (15 min) lasts', () => {
      expect(2 ** MESSAGE_ID_LAYOUT.keyTickBits * NS_PER_TICK_MS).toBeGreaterThan(15 * 60_000);
    });
  });

  it('the constructor accepts node ids 0 and 1023', () => {
    expect(() => new MessageIdGenerator(0)).not.toThrow();
    expect(() => new MessageIdGenerator(1023)).not.toThrow();
  });

  it('the constructor refuses node ids outside [0,1024)', () => {
    for (const node of [-1, 1024, 1025, 2 ** 31, -0.5, 1.5, 1023.999, Number.NaN, Number.POSITIVE_INFINITY]) {
      expect(() => new MessageIdGenerator(node), String(node)).toThrow(RangeError);
    }
  });
});
