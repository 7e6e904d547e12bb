import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import type { ChannelDelta } from '../durable-state.js';
import {
  channelClears,
  channelKey,
  channelStateOps,
  deferredKey,
  float64s,
  type StateOp,
  StateStore,
  topicClears,
  topicKey,
  topicStateOp,
} from './state-store.js';

let dir = '';
let db: StateStore | null = null;

beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nsqd-state-'));
  db = await StateStore.open(join(dir, 'state'));
});

afterEach(async () => {
  await db?.close();
  db = null;
  await rm(dir, { recursive: true, force: true });
});

function store(): StateStore {
  return db as StateStore;
}

function delta(fields: Partial<ChannelDelta> = {}): ChannelDelta {
  return {
    changes: 1,
    cursor: 10,
    paused: false,
    settings: {},
    hot: new Float64Array(0),
    ahead: [],
    deferredPuts: [],
    deferredDeletes: [],
    floor: 10,
    ...fields,
  };
}

async function write(ops: StateOp[]): Promise<void> {
  await store().write(ops, false);
}

describe('StateStore', () => {
  it('keys: one part per name, offsets as 14 hex digits so deferred keys sort by offset', () => {
    expect(topicKey('orders')).toBe('t:orders');
    expect(channelKey('orders', 'billing')).toBe('c:orders:billing');
    expect(deferredKey('orders', 'billing', 255)).toBe('o:orders:billing:000000000000ff');
    const keys = [4096, 15, 2 ** 53 - 1, 256].map((o) => deferredKey('t', 'c', o));
    expect([...keys].sort()).toEqual([15, 256, 4096, 2 ** 53 - 1].map((o) => deferredKey('t', 'c', o)));
  });

  it('loads back what the ops wrote: topic state, channel state, hot and ahead lists, deferred messages', async () => {
    const ops: StateOp[] = [
      topicStateOp('t', { changes: 3, paused: true, settings: {}, nextOffset: 42, releaseMark: 40, skips: [[20, 25]] }),
    ];
    channelStateOps(
      't',
      'c',
      delta({
        cursor: 30,
        paused: true,
        hot: new Float64Array([12, 2, 14, 1]),
        ahead: [31, 35],
        deferredPuts: [{ offset: 16, attempts: 3, dueAtWallMs: 1_767_225_600_000 }],
      }),
      ops,
    );
    await write(ops);
    const loaded = await store().load();
    const t = loaded.get('t');
    expect(t?.known).toBe(true);
    expect(t?.state).toEqual({ paused: true, nextOffset: 42, releaseMark: 40, skips: [[20, 25]] });
    const c = t?.channels.get('c');
    expect(c?.known).toBe(true);
    expect({ paused: c?.state.paused, cursor: c?.state.cursor }).toEqual({ paused: true, cursor: 30 });
    expect([...float64s(c?.state.ahead)]).toEqual([31, 35]);
    // In-flight/requeued and deferred together, by offset; a hot message has no due time.
    expect([...(c?.outstanding ?? [])].sort((a, b) => a[0] - b[0])).toEqual([
      [12, { attempts: 2, dueAtWallMs: 0 }],
      [14, { attempts: 1, dueAtWallMs: 0 }],
      [16, { attempts: 3, dueAtWallMs: 1_767_225_600_000 }],
    ]);
  });

  it('a delta replaces the hot list whole and deletes the deferred messages it names', async () => {
    const first: StateOp[] = [];
    channelStateOps(
      't',
      'c',
      delta({
        hot: new Float64Array([1, 1, 2, 1]),
        deferredPuts: [
          { offset: 3, attempts: 1, dueAtWallMs: 5 },
          { offset: 4, attempts: 1, dueAtWallMs: 6 },
        ],
      }),
      first,
    );
    await write(first);
    const second: StateOp[] = [];
    channelStateOps('t', 'c', delta({ hot: new Float64Array([2, 2]), deferredDeletes: [3] }), second);
    await write(second);
    const c = (await store().load()).get('t')?.channels.get('c');
    expect([...(c?.outstanding.keys() ?? [])].sort()).toEqual([2, 4]);
    expect(c?.outstanding.get(2)).toEqual({ attempts: 2, dueAtWallMs: 0 });
  });

  it("clears take a channel's or a topic's keys and no one else's", async () => {
    const ops: StateOp[] = [];
    for (const [topic, channel] of [
      ['t', 'a'],
      ['t', 'ab'],
      ['tt', 'a'],
    ] as const) {
      ops.push(
        topicStateOp(topic, { changes: 0, paused: false, settings: {}, nextOffset: 0, releaseMark: 0, skips: [] }),
      );
      channelStateOps(topic, channel, delta({ deferredPuts: [{ offset: 7, attempts: 1, dueAtWallMs: 1 }] }), ops);
    }
    await write(ops);
    for (const clear of channelClears('t', 'a')) await store().clear(clear);
    let loaded = await store().load();
    expect([...(loaded.get('t')?.channels.keys() ?? [])]).toEqual(['ab']);
    expect(loaded.get('tt')?.channels.get('a')?.outstanding.size).toBe(1);
    for (const clear of topicClears('t')) await store().clear(clear);
    loaded = await store().load();
    expect([...loaded.keys()]).toEqual(['tt']);
  });

  it('a deferred key without its channel key makes an unknown channel (written before a crash)', async () => {
    const ops: StateOp[] = [];
    channelStateOps('t', 'c', delta({ deferredPuts: [{ offset: 9, attempts: 2, dueAtWallMs: 3 }] }), ops);
    await write(ops.filter((op) => op.key !== channelKey('t', 'c')));
    const t = (await store().load()).get('t');
    expect(t?.known).toBe(false);
    expect(t?.channels.get('c')?.known).toBe(false);
    expect(t?.channels.get('c')?.outstanding.get(9)).toEqual({ attempts: 2, dueAtWallMs: 3 });
  });

  it('is the data-path lock: a second open of the same path fails', async () => {
    await expect(StateStore.open(join(dir, 'state'))).rejects.toThrow(/failed to lock data-path/);
  });
});
