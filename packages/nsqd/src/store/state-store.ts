import { Level } from 'level';
import { pack, unpack } from 'msgpackr';
import type { ChannelDelta, ChannelSettings, SkipRange, TopicDelta, TopicSettings } from '../durable-state.js';

/** A topic's durable state (`t:<topic>`). */
export interface TopicState {
  paused: boolean;
  /** The log's next offset when this was written. */
  nextOffset: number;
  /** While paused: offsets at or above it were not yet released to channels. */
  releaseMark: number;
  /** Offset ranges [from, to) dropped by /topic/empty while paused, not yet passed by every channel. */
  skips: SkipRange[];
  /** Set by /topic/config; absent when nothing was set. */
  settings?: TopicSettings;
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
  /** Offsets at or past the cursor the channel already holds (DPUB fanned out), float64s. */
  ahead?: Uint8Array;
  /** Set by /channel/config; absent when nothing was set. */
  settings?: ChannelSettings;
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
  /** Its own `c:` key was found. */
  known: boolean;
}

export interface LoadedTopic {
  state: TopicState;
  /** Offsets of dead letters whose move did not commit (`x:<topic>`, see Topic.takeDeadLetters). */
  deadLetterIntent: number[];
  channels: Map<string, LoadedChannel>;
  /** Its own `t:` key was found. */
  known: boolean;
}

export type StateOp = { type: 'put'; key: string; value: Buffer } | { type: 'del'; key: string };

/** One key, or every key under a prefix (a deleted topic's or channel's). */
export type StateClear = { key: string } | { prefix: string };

// The key schema. Names never contain ':' (nsq-spec: [.a-zA-Z0-9_-] plus #ephemeral), so it
// separates key parts.
export const topicKey = (topic: string): string => `t:${topic}`;
export const channelKey = (topic: string, channel: string): string => `c:${topic}:${channel}`;
/** Dead letters a flush is appending to the topic: written before the appends, deleted with the state. */
export const deadLetterKey = (topic: string): string => `x:${topic}`;
const deferredPrefix = (topic: string, channel: string): string => `o:${topic}:${channel}:`;
/** Offsets as 14 hex digits (53 bits), so keys sort by offset. */
export const deferredKey = (topic: string, channel: string, offset: number): string =>
  `${deferredPrefix(topic, channel)}${offset.toString(16).padStart(14, '0')}`;

/** Every key of a deleted channel: by prefix, so a put of a flush under way cannot bring it back. */
export function channelClears(topic: string, channel: string): StateClear[] {
  return [{ key: channelKey(topic, channel) }, { prefix: deferredPrefix(topic, channel) }];
}

/** Every key of a deleted topic and its channels. */
export function topicClears(topic: string): StateClear[] {
  return [
    { key: topicKey(topic) },
    { key: deadLetterKey(topic) },
    { prefix: `c:${topic}:` },
    { prefix: `o:${topic}:` },
  ];
}

/** Numbers stored as raw float64s (a channel's `hot` and `ahead` lists). */
export function float64s(bytes: Uint8Array | undefined): Float64Array {
  if (bytes === undefined) return new Float64Array(0);
  return new Float64Array(bytes.buffer.slice(bytes.byteOffset, bytes.byteOffset + bytes.byteLength));
}

function putOp(key: string, value: unknown): StateOp {
  return { type: 'put', key, value: pack(value) };
}

/** The write of a topic's changed state. */
export function topicStateOp(topic: string, delta: TopicDelta): StateOp {
  const state: TopicState = {
    paused: delta.paused,
    nextOffset: delta.nextOffset,
    releaseMark: delta.releaseMark,
    skips: delta.skips as SkipRange[],
  };
  if (Object.keys(delta.settings).length > 0) state.settings = delta.settings;
  return putOp(topicKey(topic), state);
}

/** The writes of a channel's changed state, appended to `ops`. */
export function channelStateOps(topic: string, channel: string, delta: ChannelDelta, ops: StateOp[]): void {
  const state: ChannelState = { paused: delta.paused, cursor: delta.cursor };
  if (delta.hot.length > 0) state.hot = new Uint8Array(delta.hot.buffer, delta.hot.byteOffset, delta.hot.byteLength);
  if (delta.ahead.length > 0) state.ahead = new Uint8Array(new Float64Array(delta.ahead).buffer);
  if (delta.settings.maxAttempts !== undefined || delta.settings.deadLetterTopic !== undefined)
    state.settings = delta.settings;
  ops.push(putOp(channelKey(topic, channel), state));
  for (const entry of delta.deferredPuts) {
    const value: OutstandingState = { attempts: entry.attempts, dueAtWallMs: entry.dueAtWallMs };
    ops.push(putOp(deferredKey(topic, channel, entry.offset), value));
  }
  for (const offset of delta.deferredDeletes) ops.push({ type: 'del', key: deferredKey(topic, channel, offset) });
}

/** The intent of a flush that appends dead letters to `topic`, and its deletion for the state write. */
export function deadLetterOps(topic: string, offsets: readonly number[]): { intent: StateOp; done: StateOp } {
  const key = deadLetterKey(topic);
  return { intent: putOp(key, new Uint8Array(new Float64Array(offsets).buffer)), done: { type: 'del', key } };
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
        t = emptyLoadedTopic();
        topics.set(name, t);
      }
      return t;
    };
    const channelOf = (topic: string, name: string): LoadedChannel => {
      const t = topicOf(topic);
      let c = t.channels.get(name);
      if (c === undefined) {
        c = { state: { paused: false, cursor: 0 }, outstanding: new Map(), known: false };
        t.channels.set(name, c);
      }
      return c;
    };
    for await (const [key, value] of this.db.iterator()) {
      const parts = key.split(':');
      const kind = parts[0];
      if (kind === 't' && parts.length === 2) {
        const t = topicOf(parts[1] as string);
        t.state = unpack(value) as TopicState;
        t.known = true;
      } else if (kind === 'c' && parts.length === 3) {
        const c = channelOf(parts[1] as string, parts[2] as string);
        c.state = unpack(value) as ChannelState;
        c.known = true;
        const pairs = float64s(c.state.hot);
        for (let i = 0; i + 1 < pairs.length; i += 2) {
          c.outstanding.set(pairs[i] as number, { attempts: pairs[i + 1] as number, dueAtWallMs: 0 });
        }
      } else if (kind === 'x' && parts.length === 2) {
        topicOf(parts[1] as string).deadLetterIntent = [...float64s(unpack(value) as Uint8Array)];
      } else if (kind === 'o' && parts.length === 4) {
        const offset = Number.parseInt(parts[3] as string, 16);
        channelOf(parts[1] as string, parts[2] as string).outstanding.set(offset, unpack(value) as OutstandingState);
      }
    }
    return topics;
  }

  async clear(what: StateClear): Promise<void> {
    if ('key' in what) await this.db.del(what.key);
    else await this.db.clear({ gte: what.prefix, lt: `${what.prefix}\xff` });
  }

  /** Every key and value, in key order (replication's full copy). */
  entries(): AsyncIterable<[string, Buffer]> {
    return this.db.iterator();
  }

  /** One key's value (replication reads its position so), undefined when absent. */
  get(key: string): Promise<Buffer | undefined> {
    return this.db.get(key);
  }

  write(ops: StateOp[], sync: boolean): Promise<void> {
    return this.db.batch(ops, { sync });
  }

  close(): Promise<void> {
    return this.db.close();
  }
}

export function emptyLoadedTopic(): LoadedTopic {
  return {
    state: { paused: false, nextOffset: 0, releaseMark: 0, skips: [] },
    deadLetterIntent: [],
    channels: new Map(),
    known: false,
  };
}
