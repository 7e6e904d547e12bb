import { type BackoffOptions, jitteredDelayMs } from './backoff.js';

export interface RdyConnection {
  readonly rdy: number;
  readonly rdyChangedAtMs: number;
  readonly inFlight: number;
  /** nsqd's `max_rdy_count` for it: no RDY above it is sent. */
  readonly maxRdyCount: number;
}

export interface RdyCommand<C> {
  readonly conn: C;
  readonly count: number;
}

export interface RdyPlan<C> {
  /** RDY commands, in sending order; each also resets its connection's `rdyChangedAtMs` to now. */
  readonly rdy: readonly RdyCommand<C>[];
  /** Backoff started or continued: after `delayMs`, call {@link RdyPolicy.backoffElapsed}. */
  readonly backoff: { readonly level: number; readonly delayMs: number } | null;
  readonly resumed: boolean;
  /** Whether the rotation timer ({@link RdyPolicy.rotate} every interval) should be running. */
  readonly rotating: boolean;
}

export interface RdyPolicyOptions {
  maxInFlight: number;
  /** With more connections than `maxInFlight`: how long one keeps its RDY 1 before it moves on. */
  rotateIntervalMs: number;
  backoff: BackoffOptions;
  /** Source of the jitter and of the probe's choice (0 ≤ x < 1); default Math.random. */
  random?: () => number;
}

/** How a message was answered: 1 finished, -1 failed (backoff), 0 neutral. */
export type Outcome = -1 | 0 | 1;

const UNCHANGED: RdyPlan<never> = { rdy: [], backoff: null, resumed: false, rotating: false };
const UNCHANGED_ROTATING: RdyPlan<never> = { ...UNCHANGED, rotating: true };

interface Slot<C> {
  readonly conn: C;
  readonly inFlight: number;
  readonly maxRdyCount: number;
  rdy: number;
  changedAtMs: number;
}

class Draft<C extends RdyConnection> {
  readonly slots: Slot<C>[];
  readonly sent: RdyCommand<C>[] = [];
  private readonly nowMs: number;

  constructor(conns: readonly C[], nowMs: number) {
    this.nowMs = nowMs;
    this.slots = conns.map((conn) => ({
      conn,
      inFlight: conn.inFlight,
      maxRdyCount: conn.maxRdyCount,
      rdy: conn.rdy,
      changedAtMs: conn.rdyChangedAtMs,
    }));
  }

  set(slot: Slot<C>, count: number): void {
    const n = Math.min(count, slot.maxRdyCount);
    if (slot.rdy === n) return;
    slot.rdy = n;
    slot.changedAtMs = this.nowMs;
    this.sent.push({ conn: slot.conn, count: n });
  }
}

/**
 * go-nsq's RDY spreading and backoff, as decisions without I/O. Up to `maxInFlight` connections share
 * the window evenly; beyond that at most `maxInFlight` hold RDY 1, each handing it after
 * `rotateIntervalMs` to the one waiting longest. A failure raises the backoff level: RDY 0 everywhere
 * for an exponential delay, then RDY 1 on one random connection as a probe whose outcome moves the
 * level; signals during a delay are ignored.
 */
export class RdyPolicy {
  private readonly maxInFlight: number;
  private readonly rotateIntervalMs: number;
  private readonly backoffOptions: BackoffOptions;
  private readonly random: () => number;
  /** The level at which the delay reaches `backoff.maxMs`: failures beyond it do not deepen it. */
  private readonly maxLevel: number;
  private level = 0;
  private delaying = false;
  private rotating = false;

  constructor(options: RdyPolicyOptions) {
    this.maxInFlight = options.maxInFlight;
    this.rotateIntervalMs = options.rotateIntervalMs;
    this.backoffOptions = options.backoff;
    this.random = options.random ?? Math.random;
    const { minMs, maxMs } = options.backoff;
    this.maxLevel = Math.max(1, Math.ceil(Math.log2(maxMs / minMs)) + 1);
  }

  get backoffLevel(): number {
    return this.level;
  }

  connectionsChanged<C extends RdyConnection>(conns: readonly C[], nowMs: number): RdyPlan<C> {
    const draft = new Draft(conns, nowMs);
    this.spread(draft);
    return this.plan(draft, null, false);
  }

  settled<C extends RdyConnection>(conns: readonly C[], outcome: Outcome, nowMs: number): RdyPlan<C> {
    if (outcome < 0) return this.signal(conns, true, nowMs);
    if (outcome > 0 && this.level > 0) return this.signal(conns, false, nowMs);
    // The common case, once per message: nothing to change, nothing to allocate.
    if (conns.length <= this.maxInFlight || this.level > 0) return this.rotating ? UNCHANGED_ROTATING : UNCHANGED;
    const draft = new Draft(conns, nowMs);
    this.fillScarce(draft);
    return this.plan(draft, null, false);
  }

  /** The rotation timer fired: RDY held for a whole interval moves to waiting connections. */
  rotate<C extends RdyConnection>(conns: readonly C[], nowMs: number): RdyPlan<C> {
    const draft = new Draft(conns, nowMs);
    if (conns.length <= this.maxInFlight) {
      this.spread(draft);
    } else if (this.level === 0) {
      if (draft.slots.some((s) => s.rdy === 0)) {
        for (const s of draft.slots) if (s.rdy > 0 && nowMs - s.changedAtMs >= this.rotateIntervalMs) draft.set(s, 0);
      }
      this.fillScarce(draft);
    }
    return this.plan(draft, null, false);
  }

  /** The backoff delay is over: RDY 1 on one random connection, whose outcome decides what follows. */
  backoffElapsed<C extends RdyConnection>(conns: readonly C[], nowMs: number): RdyPlan<C> {
    this.delaying = false;
    const draft = new Draft(conns, nowMs);
    const choice = draft.slots[Math.floor(this.random() * draft.slots.length)];
    if (choice !== undefined) draft.set(choice, 1);
    return this.plan(draft, null, false);
  }

  private plan<C extends RdyConnection>(draft: Draft<C>, backoff: RdyPlan<C>['backoff'], resumed: boolean): RdyPlan<C> {
    return { rdy: draft.sent, backoff, resumed, rotating: this.rotating };
  }

  private signal<C extends RdyConnection>(conns: readonly C[], failure: boolean, nowMs: number): RdyPlan<C> {
    const draft = new Draft(conns, nowMs);
    if (this.delaying) return this.plan(draft, null, false);
    if (failure) this.level = Math.min(this.level + 1, this.maxLevel);
    else if (this.level > 0) this.level--;
    else return this.plan(draft, null, false);
    if (this.level === 0) {
      this.spread(draft);
      return this.plan(draft, null, true);
    }
    const delayMs = jitteredDelayMs(this.level, this.backoffOptions, this.random);
    this.rotating = false;
    this.delaying = true;
    for (const s of draft.slots) draft.set(s, 0);
    return this.plan(draft, { level: this.level, delayMs }, false);
  }

  private spread<C extends RdyConnection>(draft: Draft<C>): void {
    const slots = draft.slots;
    if (slots.length === 0) return;
    if (this.level > 0) {
      // Backing off: connections stay at RDY 0 during the delay; the probe hands out RDY 1.
      if (this.delaying) for (const s of slots) draft.set(s, 0);
      return;
    }
    if (slots.length <= this.maxInFlight) {
      this.rotating = false;
      const per = Math.floor(this.maxInFlight / slots.length);
      const extra = this.maxInFlight % slots.length;
      slots.forEach((s, i) => {
        draft.set(s, per + (i < extra ? 1 : 0));
      });
      return;
    }
    for (const s of slots) if (s.rdy > 1) draft.set(s, 1);
    const granted = slots.filter((s) => s.rdy > 0);
    for (const s of granted.slice(this.maxInFlight)) draft.set(s, 0);
    this.fillScarce(draft);
    this.rotating = true;
  }

  /** Longest-waiting first; a connection still busy with messages is passed over. */
  private fillScarce<C extends RdyConnection>(draft: Draft<C>): void {
    if (this.level > 0) return;
    let used = 0;
    for (const s of draft.slots) used += Math.max(s.rdy, s.inFlight);
    if (used >= this.maxInFlight) return;
    const waiting = draft.slots.filter((s) => s.rdy === 0).sort((a, b) => a.changedAtMs - b.changedAtMs);
    for (const s of waiting) {
      if (used >= this.maxInFlight) break;
      if (s.inFlight > 0) continue;
      draft.set(s, 1);
      used++;
    }
  }
}
