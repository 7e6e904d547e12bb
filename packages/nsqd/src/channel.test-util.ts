import type { Channel, ChannelContext } from './channel.js';
import { ManualClock } from './clock.test-util.js';
import type { Consumer } from './consumer.js';
import type { SkipRange } from './durable-state.js';
import { MemoryTail } from './log/memory-tail.js';
import { createLogger } from './logger.js';
import type { ChannelMessage, MessageRecord } from './message.js';
import { defaultNsqdOptions, type NsqdOptions } from './options.js';
import type { TopicLog } from './topic-log.js';

/** A topic log in memory only: what a channel reads, and nothing else. */
export class FakeTopicLog implements TopicLog {
  readonly name = 't';
  readonly tail = new MemoryTail();
  readonly log = null;
  skips: SkipRange[] = [];
  /** Where reading stops when set (a paused topic's release mark); else the log's end. */
  limit: number | null = null;
  trims = 0;
  messageTtlMs = 0;
  expired = 0;

  constructor(private readonly clock: ManualClock) {}

  get readLimit(): number {
    return this.limit ?? this.tail.end;
  }

  skippedBetween(from: number, to: number): number {
    let n = 0;
    for (const [a, b] of this.skips) n += Math.max(0, Math.min(b, to) - Math.max(a, from));
    return n;
  }

  trim(): void {
    this.trims++;
  }

  noteDiskRead(): void {}

  noteExpired(): void {
    this.expired++;
  }

  /** Appends messages with bodies as given; `deferMs` makes them DPUBs due that much later. */
  publish(bodies: string[], deferMs = 0): number[] {
    return bodies.map((b) => {
      const data = Buffer.from(b);
      const offset = this.tail.end;
      const due = deferMs > 0 ? this.clock.monotonicMs() + deferMs : 0;
      return this.tail.append(data, 0, data.length, 1, offset + 1, this.clock.wallMs(), due);
    });
  }
}

/** What a channel gets from its topic, with the pumps run by the test. */
export class FakeChannelContext implements ChannelContext {
  readonly clock = new ManualClock();
  readonly logger = createLogger('', 'fatal');
  readonly options: NsqdOptions;
  flushRequests = 0;
  idle: Channel[] = [];
  /** Dead letters as [topic, body]. */
  readonly deadLetters: [string, string][] = [];
  private pending: Channel[] = [];

  constructor(options: Partial<NsqdOptions> = {}) {
    this.options = { ...defaultNsqdOptions(), ...options };
  }

  schedulePump(channel: Channel): void {
    this.pending.push(channel);
  }

  requestFlush(): void {
    this.flushRequests++;
  }

  onIdle(channel: Channel): void {
    this.idle.push(channel);
  }

  deadLetter(topic: string, record: MessageRecord): void {
    this.deadLetters.push([topic, record.body.toString()]);
  }

  /** Runs scheduled pumps, as the broker's tick would, until none is left. */
  runPumps(): void {
    for (let i = 0; i < 100 && this.pending.length > 0; i++) {
      const due = this.pending.splice(0);
      for (const channel of due) channel.pump();
    }
  }
}

/** A connection as a channel sees it, with RDY and in-flight counts kept as ClientV2 keeps them. */
export class FakeConsumer implements Consumer {
  readonly got: ChannelMessage[] = [];
  inFlight = 0;
  released = 0;
  closed = false;
  sampleRate = 0;

  constructor(
    readonly label: string,
    public rdy: number,
    readonly msgTimeoutMs = 60_000,
  ) {}

  canReceive(): boolean {
    return !this.closed && this.inFlight < this.rdy;
  }

  deliver(msg: ChannelMessage): void {
    this.got.push(msg);
    this.inFlight++;
  }

  releaseInFlight(): void {
    this.inFlight--;
    this.released++;
  }

  closeForChannelDelete(): void {
    this.closed = true;
  }

  /** FIN as ClientV2 sends it: the in-flight count goes down when the channel accepts it. */
  fin(channel: Channel, msg: ChannelMessage): string | null {
    const err = channel.finish(msg.record.id, this);
    if (err === null) this.inFlight--;
    return err;
  }

  req(channel: Channel, msg: ChannelMessage, delayMs: number): string | null {
    const err = channel.requeue(msg.record.id, this, delayMs);
    if (err === null) this.inFlight--;
    return err;
  }
}
