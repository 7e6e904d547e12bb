import { Level } from 'level';
import { pack, unpack } from 'msgpackr';

/** A topic's durable state (`t:<topic>`). */
export interface TopicState {
  paused: boolean;
  /** The log's next offset when this was written. */
  nextOffset: number;
  /** While paused: offsets at or above it were not yet released to channels. */
  releaseMark: number;
  /** Offset ranges [from, to) dropped by /topic/empty while paused, not yet passed by every channel. */
  skips: [number, number][];
}

/**
 * A channel's durable state (`c:<topic>:<channel>`). `hot` holds the messages in flight or
 * requeued as (offset, attempts) float64 pairs: they change with every delivery, so they are
 * written as one value per flush rather than one key each (a LevelDB write per message would
 * cap consumption at LevelDB's ~150k ops/s).
 */
export interface ChannelState {
  paused: boolean;
  cursor: number;
  hot?: Uint8Array;
}

/**
 * A message that left the log but is not FINished: in flight or requeued (from a channel's
 * `hot` list, `dueAtWallMs` 0) or deferred (`o:<topic>:<channel>:<offset>`, one key each:
 * they change rarely and may be many).
 */
export interface OutstandingState {
  attempts: number;
  dueAtWallMs: number;
}

export interface LoadedChannel {
  state: ChannelState;
  outstanding: Map<number, OutstandingState>;
}

export interface LoadedTopic {
  state: TopicState;
  channels: Map<string, LoadedChannel>;
}

export type StateOp = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

// Names never contain ':' (nsq-spec: [.a-zA-Z0-9_-] plus #ephemeral), so it separates key parts.
export const topicKey = (topic: string): string => `t:${topic}`;
export const channelKey = (topic: string, channel: string): string => `c:${topic}:${channel}`;
/** Offsets as 14 hex digits (53 bits), so keys sort by offset. */
export const outstandingKey = (topic: string, channel: string, offset: number): string =>
  `o:${topic}:${channel}:${offset.toString(16).padStart(14, '0')}`;

export function putOp(key: string, value: unknown): StateOp {
  return { type: 'put', key, value: pack(value) };
}

/**
 * The node's durable channel state and topic/channel registry in LevelDB (DESIGN §2), values
 * in MessagePack. LevelDB's own LOCK file is the data-path lock: a second nsqd on the same
 * data path fails to open it (nsq-spec §5.6).
 */
export class StateStore {
  private readonly db: Level<string, Buffer>;

  private constructor(db: Level<string, Buffer>) {
    this.db = db;
  }

  static async open(path: string): Promise<StateStore> {
    const db = new Level<string, Buffer>(path, { keyEncoding: 'utf8', valueEncoding: 'buffer' });
    try {
      await db.open();
    } catch (err) {
      const cause = (err as { cause?: Error }).cause ?? (err as Error);
      if (/lock/i.test(cause.message)) throw new Error(`failed to lock data-path: ${cause.message}`);
      throw err;
    }
    return new StateStore(db);
  }

  async load(): Promise<Map<string, LoadedTopic>> {
    const topics = new Map<string, LoadedTopic>();
    const topicOf = (name: string): LoadedTopic => {
      let t = topics.get(name);
      if (t === undefined) {
        t = { state: { paused: false, nextOffset: 0, releaseMark: 0, skips: [] }, channels: new Map() };
        topics.set(name, t);
      }
      return t;
    };
    const channelOf = (topic: string, name: string): LoadedChannel => {
      const t = topicOf(topic);
      let c = t.channels.get(name);
      if (c === undefined) {
        c = { state: { paused: false, cursor: 0 }, outstanding: new Map() };
        t.channels.set(name, c);
      }
      return c;
    };
    for await (const [key, value] of this.db.iterator()) {
      const parts = key.split(':');
      const kind = parts[0];
      if (kind === 't' && parts.length === 2) {
        topicOf(parts[1] as string).state = unpack(value) as TopicState;
      } else if (kind === 'c' && parts.length === 3) {
        const c = channelOf(parts[1] as string, parts[2] as string);
        c.state = unpack(value) as ChannelState;
        const hot = c.state.hot;
        if (hot !== undefined) {
          const pairs = new Float64Array(hot.buffer.slice(hot.byteOffset, hot.byteOffset + hot.byteLength));
          for (let i = 0; i + 1 < pairs.length; i += 2) {
            c.outstanding.set(pairs[i] as number, { attempts: pairs[i + 1] as number, dueAtWallMs: 0 });
          }
        }
      } else if (kind === 'o' && parts.length === 4) {
        const offset = Number.parseInt(parts[3] as string, 16);
        channelOf(parts[1] as string, parts[2] as string).outstanding.set(offset, unpack(value) as OutstandingState);
      }
    }
    return topics;
  }

  write(ops: StateOp[], sync: boolean): Promise<void> {
    return this.db.batch(ops, { sync });
  }

  close(): Promise<void> {
    return this.db.close();
  }
}
