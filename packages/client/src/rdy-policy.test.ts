import { describe, expect, it } from 'vitest';
import { type RdyPlan, RdyPolicy, type RdyPolicyOptions } from './rdy-policy.js';

/** A connection as the consumer keeps it: the policy reads it, `apply` changes it. */
interface FakeConn {
  name: string;
  rdy: number;
  rdyChangedAtMs: number;
  inFlight: number;
  maxRdyCount: number;
}

function conns(...names: string[]): FakeConn[] {
  return names.map((name) => ({ name, rdy: 0, rdyChangedAtMs: 0, inFlight: 0, maxRdyCount: 2500 }));
}

/** What the consumer does with a plan: set each RDY and note when. */
function apply(plan: RdyPlan<FakeConn>, nowMs: number): RdyPlan<FakeConn> {
  for (const { conn, count } of plan.rdy) {
    conn.rdy = count;
    conn.rdyChangedAtMs = nowMs;
  }
  return plan;
}

const rdyOf = (cs: FakeConn[]): number[] => cs.map((c) => c.rdy);
const sent = (plan: RdyPlan<FakeConn>): string[] => plan.rdy.map((r) => `${r.conn.name}=${r.count}`);

function policy(options: Partial<RdyPolicyOptions> = {}): RdyPolicy {
  return new RdyPolicy({
    maxInFlight: 10,
    rotateIntervalMs: 1_000,
    backoff: { minMs: 1_000, maxMs: 8_000 },
    random: () => 0,
    ...options,
  });
}

describe('RdyPolicy: spreading maxInFlight', () => {
  it('splits the window evenly, the remainder to the first connections', () => {
    const p = policy();
    const cs = conns('a', 'b', 'c');
    const plan = apply(p.connectionsChanged(cs, 0), 0);
    expect(rdyOf(cs)).toEqual([4, 3, 3]);
    expect(plan.rotating).toBe(false);
    expect(plan.backoff).toBeNull();
  });

  it("never sends more than a connection's max_rdy_count", () => {
    const p = policy({ maxInFlight: 100 });
    const cs = conns('a');
    cs[0].maxRdyCount = 30;
    apply(p.connectionsChanged(cs, 0), 0);
    expect(rdyOf(cs)).toEqual([30]);
  });

  it('re-spreads when a connection is added and when one is removed, sending only changes', () => {
    const p = policy();
    const [a, b] = conns('a', 'b');
    apply(p.connectionsChanged([a], 0), 0);
    expect(a.rdy).toBe(10);
    expect(sent(apply(p.connectionsChanged([a, b], 5), 5))).toEqual(['a=5', 'b=5']);
    expect(sent(apply(p.connectionsChanged([a], 9), 9))).toEqual(['a=10']);
    expect(p.connectionsChanged([a], 10).rdy).toEqual([]);
  });

  it('with no connection there is nothing to send', () => {
    expect(policy().connectionsChanged([], 0).rdy).toEqual([]);
  });
});

describe('RdyPolicy: more connections than maxInFlight', () => {
  it('gives RDY 1 to at most maxInFlight connections and asks for the rotation timer', () => {
    const p = policy({ maxInFlight: 2 });
    const cs = conns('a', 'b', 'c', 'd', 'e');
    const plan = apply(p.connectionsChanged(cs, 0), 0);
    expect(rdyOf(cs)).toEqual([1, 1, 0, 0, 0]);
    expect(plan.rotating).toBe(true);
  });

  it('a connection joining a full window takes RDY from nobody: counts above 1 drop to 1, extras to 0', () => {
    const p = policy({ maxInFlight: 2 });
    const cs = conns('a', 'b');
    apply(p.connectionsChanged(cs, 0), 0);
    expect(rdyOf(cs)).toEqual([1, 1]);
    const wide = policy({ maxInFlight: 3 });
    const ws = conns('a', 'b', 'c', 'd');
    ws[0].rdy = 2;
    ws[1].rdy = 1;
    ws[2].rdy = 1;
    ws[3].rdy = 1;
    apply(wide.connectionsChanged(ws, 7), 7);
    expect(rdyOf(ws)).toEqual([1, 1, 1, 0]);
  });

  it('rotates RDY like go-nsq: held for an interval, it moves to the longest-waiting, and none starves', () => {
    const p = policy({ maxInFlight: 2, rotateIntervalMs: 1_000 });
    const cs = conns('a', 'b', 'c', 'd', 'e');
    apply(p.connectionsChanged(cs, 0), 0);
    // Before a whole interval has passed nobody gives up RDY.
    expect(p.rotate(cs, 999).rdy).toEqual([]);
    const holders: string[][] = [];
    for (let tick = 1; tick <= 3; tick++) {
      apply(p.rotate(cs, tick * 1_000), tick * 1_000);
      holders.push(cs.filter((c) => c.rdy > 0).map((c) => c.name));
    }
    expect(holders).toEqual([
      ['c', 'd'],
      ['a', 'e'],
      ['b', 'c'],
    ]);
  });

  it('a connection still busy with messages waits, and its messages count against the window', () => {
    const p = policy({ maxInFlight: 2 });
    const cs = conns('a', 'b', 'c');
    apply(p.connectionsChanged(cs, 0), 0);
    cs[0].inFlight = 1;
    apply(p.rotate(cs, 1_000), 1_000);
    // a and b gave up RDY; a's message uses one slot, so only c (waiting longest) gets the other.
    expect(rdyOf(cs)).toEqual([0, 0, 1]);
    apply(p.rotate(cs, 2_000), 2_000);
    // a has waited as long as b but is still busy: b gets the slot c gave up.
    expect(rdyOf(cs)).toEqual([0, 1, 0]);
  });

  it('a neutral answer frees a slot that goes to a waiting connection at once', () => {
    const p = policy({ maxInFlight: 1 });
    const cs = conns('a', 'b');
    apply(p.connectionsChanged(cs, 0), 0);
    cs[0].inFlight = 1;
    apply(p.rotate(cs, 1_000), 1_000);
    expect(rdyOf(cs)).toEqual([0, 0]);
    cs[0].inFlight = 0;
    expect(sent(apply(p.settled(cs, 0, 1_100), 1_100))).toEqual(['b=1']);
  });

  it('stops rotating once connections fit the window again', () => {
    const p = policy({ maxInFlight: 2 });
    const cs = conns('a', 'b', 'c');
    expect(apply(p.connectionsChanged(cs, 0), 0).rotating).toBe(true);
    const plan = apply(p.rotate(cs.slice(0, 2), 1_000), 1_000);
    expect(plan.rotating).toBe(false);
    expect(rdyOf(cs.slice(0, 2))).toEqual([1, 1]);
  });
});

describe('RdyPolicy: backoff', () => {
  it('a failure stops delivery everywhere for the minimum delay, and signals during it are ignored', () => {
    const p = policy();
    const cs = conns('a', 'b');
    apply(p.connectionsChanged(cs, 0), 0);
    const plan = apply(p.settled(cs, -1, 10), 10);
    expect(plan.backoff).toEqual({ level: 1, delayMs: 1_000 });
    expect(rdyOf(cs)).toEqual([0, 0]);
    expect(p.backoffLevel).toBe(1);
    const ignored = p.settled(cs, -1, 20);
    expect([ignored.backoff, ignored.rdy, p.backoffLevel]).toEqual([null, [], 1]);
    expect(p.settled(cs, 1, 30).resumed).toBe(false);
  });

  it('after the delay one random connection probes with RDY 1; its success restores the full window', () => {
    const p = policy({ random: () => 0.6 });
    const cs = conns('a', 'b');
    apply(p.connectionsChanged(cs, 0), 0);
    apply(p.settled(cs, -1, 0), 0);
    expect(sent(apply(p.backoffElapsed(cs, 1_000), 1_000))).toEqual(['b=1']);
    const plan = apply(p.settled(cs, 1, 1_100), 1_100);
    expect(plan.resumed).toBe(true);
    expect(p.backoffLevel).toBe(0);
    expect(rdyOf(cs)).toEqual([5, 5]);
  });

  it('failed probes deepen the backoff up to the maximum delay; successes climb back one level each', () => {
    const p = policy({ backoff: { minMs: 1_000, maxMs: 8_000 } });
    const cs = conns('a');
    apply(p.connectionsChanged(cs, 0), 0);
    const delays: number[] = [];
    for (let i = 0; i < 6; i++) {
      delays.push(apply(p.settled(cs, -1, 0), 0).backoff?.delayMs ?? -1);
      apply(p.backoffElapsed(cs, 0), 0);
    }
    expect(delays).toEqual([1_000, 2_000, 4_000, 8_000, 8_000, 8_000]);
    const levels: number[] = [];
    for (;;) {
      const plan = apply(p.settled(cs, 1, 0), 0);
      levels.push(p.backoffLevel);
      if (plan.resumed) break;
      // Still backing off: RDY 0 again until the next probe.
      expect(cs[0].rdy).toBe(0);
      apply(p.backoffElapsed(cs, 0), 0);
    }
    expect(levels).toEqual([3, 2, 1, 0]);
    expect(cs[0].rdy).toBe(10);
  });

  it('jitter adds up to half the delay, never past the maximum', () => {
    const p = policy({ backoff: { minMs: 1_000, maxMs: 1_200 }, random: () => 0.999 });
    const cs = conns('a');
    expect(p.settled(cs, -1, 0).backoff?.delayMs).toBe(1_200);
  });

  it('a connection added during the delay stays at RDY 0; one added while probing is left alone', () => {
    const p = policy();
    const [a, b, c] = conns('a', 'b', 'c');
    apply(p.connectionsChanged([a], 0), 0);
    apply(p.settled([a], -1, 0), 0);
    b.rdy = 3; // whatever it had, the delay takes it
    expect(sent(apply(p.connectionsChanged([a, b], 10), 10))).toEqual(['b=0']);
    apply(p.backoffElapsed([a, b], 1_000), 1_000);
    expect(p.connectionsChanged([a, b, c], 1_010).rdy).toEqual([]);
  });

  it('with more connections than the window: no rotation while backing off, rotation again after', () => {
    const p = policy({ maxInFlight: 1 });
    const cs = conns('a', 'b');
    apply(p.connectionsChanged(cs, 0), 0);
    const failed = apply(p.settled(cs, -1, 0), 0);
    expect(failed.rotating).toBe(false);
    expect(p.rotate(cs, 5_000).rdy).toEqual([]);
    apply(p.backoffElapsed(cs, 1_000), 1_000);
    const resumed = apply(p.settled(cs, 1, 1_100), 1_100);
    expect([resumed.resumed, resumed.rotating]).toEqual([true, true]);
    expect(cs.filter((c) => c.rdy === 1)).toHaveLength(1);
  });

  it('a delay that ends with no connection left probes nothing', () => {
    const p = policy();
    apply(p.settled([], -1, 0), 0);
    expect(p.backoffElapsed([], 1_000).rdy).toEqual([]);
  });
});
