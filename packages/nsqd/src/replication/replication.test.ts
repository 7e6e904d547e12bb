import { existsSync } from 'node:fs';
import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { createServer, type Server, type Socket } from 'node:net';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { logOptions, readAll, record, recordingLogger, source, tempDir } from '../log/log.test-util.js';
import { SegmentLog } from '../log/segment-log.js';
import { type FlushBatch, writeBatch } from '../store/flush-batch.js';
import { sampleState } from '../store/state.test-util.js';
import { StateStore } from '../store/state-store.js';
import { FollowerStream } from './follower-stream.js';
import { HaCounters } from './ha-counters.js';
import { positionOp, ReplicaStore } from './replica-store.js';
import {
  decodeBatch,
  decodeCopyEnd,
  decodeCopyFile,
  encodeBatch,
  encodeCopyFile,
  FrameReader,
  FrameType,
  frame,
  groupSettings,
  type Position,
  settingsMismatch,
} from './wire.js';

let root = '';
const cleanup: (() => Promise<unknown> | undefined)[] = [];

beforeEach(async () => {
  root = await tempDir();
});

afterEach(async () => {
  for (const c of cleanup.splice(0).reverse()) await c();
  await rm(root, { recursive: true, force: true });
});

function leaderBatch(log: SegmentLog, at: Position, offsets: number[], cursor: number): FlushBatch {
  const state = sampleState(cursor);
  state.push(positionOp(at));
  return {
    clears: [],
    intents: [],
    topics: [{ topic: 't', log, ops: [], records: source(offsets.map((o) => record(o))), deleteBelow: -1 }],
    state,
    sync: false,
  };
}

async function files(dir: string): Promise<Map<string, string>> {
  const out = new Map<string, string>();
  for (const name of (await readdir(dir)).sort()) out.set(name, (await readFile(join(dir, name))).toString('hex'));
  return out;
}

async function replica(name: string): Promise<ReplicaStore> {
  const store = await ReplicaStore.open({
    dataPath: join(root, name),
    log: logOptions(120),
    logger: recordingLogger().logger,
  });
  cleanup.push(() => store.close().catch(() => undefined));
  return store;
}

/** A leader's data path written by writeBatch, and each batch as the stream carries it. */
async function leader(
  batches: { at: Position; offsets: number[]; cursor: number }[],
): Promise<{ frames: Buffer[]; db: StateStore; log: SegmentLog }> {
  await mkdir(join(root, 'leader'), { recursive: true });
  const db = await StateStore.open(join(root, 'leader', 'state'));
  const log = SegmentLog.fresh(join(root, 'leader', 'topics', 't'), logOptions(120), recordingLogger().logger);
  cleanup.push(async () => {
    await log.close();
    await db.close();
  });
  const frames: Buffer[] = [];
  for (const b of batches) {
    const batch = leaderBatch(log, b.at, b.offsets, b.cursor);
    frames.push(encodeBatch(b.at, batch));
    await writeBatch(batch, db);
  }
  return { frames, db, log };
}

async function entries(db: StateStore): Promise<[string, string][]> {
  const out: [string, string][] = [];
  for await (const [k, v] of db.entries()) out.push([k, v.toString('hex')]);
  return out;
}

function decodeAll(frames: Buffer[]) {
  const out: ReturnType<typeof decodeBatch>[] = [];
  const reader = new FrameReader((type, header, payload) => {
    expect(type).toBe(FrameType.batch);
    out.push(decodeBatch(header, payload));
  }, 1 << 20);
  // Split across chunk boundaries, as a socket delivers it.
  const all = Buffer.concat(frames);
  for (let i = 0; i < all.length; i += 7) reader.push(all.subarray(i, i + 7));
  return out;
}

describe('the replication stream', () => {
  it('a follower applying the encoded batches stores exactly what the leader stored, each batch once', async () => {
    const { frames, db } = await leader([
      { at: { seq: 1, epoch: 1 }, offsets: [0, 1, 2], cursor: 1 },
      { at: { seq: 2, epoch: 1 }, offsets: [3, 5], cursor: 4 },
    ]);
    const store = await replica('follower');
    for (const b of decodeAll(frames)) await store.apply(b);
    // Resent after a reconnect: already stored, not appended twice.
    await store.apply(decodeAll(frames)[1] as ReturnType<typeof decodeBatch>);
    expect(store.position).toEqual({ seq: 2, epoch: 1 });
    await store.close();
    cleanup.pop();
    expect(await files(join(root, 'follower', 'topics', 't'))).toEqual(
      await files(join(root, 'leader', 'topics', 't')),
    );
    const f = await StateStore.open(join(root, 'follower', 'state'));
    cleanup.push(() => f.close());
    expect(await entries(f)).toEqual(await entries(db));
    expect((await f.load()).get('t')?.channels.get('c')?.state.cursor).toBe(4);
    const log = await SegmentLog.open(join(root, 'follower', 'topics', 't'), logOptions(120), recordingLogger().logger);
    cleanup.push(() => log.close());
    expect((await readAll(log)).map((r) => r.offset)).toEqual([0, 1, 2, 3, 5]);
    // Reopened, it knows where it stands.
    await f.close();
    cleanup.pop();
    const again = await replica('follower');
    expect(again.position).toEqual({ seq: 2, epoch: 1 });
  });

  it('a follower drops records no batch it stored holds (a write that failed after its append) before the next', async () => {
    const { frames } = await leader([
      { at: { seq: 1, epoch: 1 }, offsets: [0, 1, 2], cursor: 1 },
      { at: { seq: 2, epoch: 1 }, offsets: [3, 5], cursor: 4 },
    ]);
    const [b1, b2] = decodeAll(frames) as [ReturnType<typeof decodeBatch>, ReturnType<typeof decodeBatch>];
    const store = await replica('follower');
    await store.apply(b1);
    await store.close();
    cleanup.pop();
    const dir = join(root, 'follower', 'topics', 't');
    const stale = await SegmentLog.open(dir, logOptions(120), recordingLogger().logger);
    await stale.append(source([record(3, 'stale'), record(4, 'stale')]));
    await stale.close();
    const { logger, lines } = recordingLogger();
    const again = await ReplicaStore.open({ dataPath: join(root, 'follower'), log: logOptions(120), logger });
    cleanup.push(() => again.close());
    expect(again.position).toEqual({ seq: 1, epoch: 1 });
    await again.apply(b2);
    await again.close();
    cleanup.pop();
    expect(lines.join('\n')).toMatch(/dropping records 3–4 of t that no stored batch holds/);
    const log = await SegmentLog.open(dir, logOptions(120), recordingLogger().logger);
    cleanup.push(() => log.close());
    const got = await readAll(log);
    expect(got.map((r) => [r.offset, r.body.toString()])).toEqual([
      [0, 'm0'],
      [1, 'm1'],
      [2, 'm2'],
      [3, 'm3'],
      [5, 'm5'],
    ]);
  });

  it("records sent again in the next batch (the leader's own write of them failed) are stored once", async () => {
    // The leader ships a batch while it writes it; its disk refused seq 1, so seq 2 carries the same records again.
    const { frames } = await leader([
      { at: { seq: 1, epoch: 1 }, offsets: [0, 1, 2], cursor: 0 },
      { at: { seq: 2, epoch: 1 }, offsets: [3], cursor: 0 },
    ]);
    const [b1] = decodeAll(frames) as [ReturnType<typeof decodeBatch>];
    const scratch = SegmentLog.fresh(join(root, 'scratch'), logOptions(120), recordingLogger().logger);
    cleanup.push(() => scratch.close());
    const resent = decodeAll([
      encodeBatch({ seq: 2, epoch: 1 }, leaderBatch(scratch, { seq: 2, epoch: 1 }, [0, 1, 2, 3], 1)),
    ]);
    const store = await replica('follower');
    await store.apply(b1);
    await store.apply(resent[0] as ReturnType<typeof decodeBatch>);
    expect(store.position).toEqual({ seq: 2, epoch: 1 });
    await store.close();
    cleanup.pop();
    const log = await SegmentLog.open(join(root, 'follower', 'topics', 't'), logOptions(120), recordingLogger().logger);
    cleanup.push(() => log.close());
    expect((await readAll(log)).map((r) => [r.offset, r.body.toString()])).toEqual([
      [0, 'm0'],
      [1, 'm1'],
      [2, 'm2'],
      [3, 'm3'],
    ]);
  });

  it('a follower refuses a batch from an epoch older than the one it has seen, and applies a current one', async () => {
    const [stale, current] = (
      await leader([
        { at: { seq: 1, epoch: 1 }, offsets: [0], cursor: 0 },
        { at: { seq: 1, epoch: 3 }, offsets: [0], cursor: 0 },
      ])
    ).frames;
    const hellos: unknown[] = [];
    const acks: number[] = [];
    let send = stale as Buffer;
    const sockets: Socket[] = [];
    const server: Server = createServer((socket) => {
      sockets.push(socket);
      socket.on('error', () => undefined);
      const reader = new FrameReader((type, header) => {
        if (type === FrameType.hello) {
          hellos.push(header);
          socket.write(frame(FrameType.welcome, { epoch: 3, seq: 1 }));
          socket.write(send);
          send = current as Buffer;
        } else if (type === FrameType.ack) acks.push((header as { seq: number }).seq);
      }, 1 << 20);
      socket.on('data', (c: Buffer) => reader.push(c));
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    cleanup.push(() => new Promise((r) => server.close(r)));
    cleanup.push(async () => {
      for (const s of sockets) s.destroy();
    });
    const store = await replica('follower');
    const { port } = server.address() as { port: number };
    const { logger, lines } = recordingLogger();
    logger.level = 'debug';
    const follower = new FollowerStream(
      {
        memberId: 'b',
        leaderId: 'a',
        address: `127.0.0.1:${port}`,
        epoch: () => 2,
        maxFrameBytes: 1 << 20,
        settings: { max_bytes_per_file: 1024, max_msg_size: 512 },
        counters: new HaCounters(),
      },
      store,
      logger,
    );
    cleanup.push(async () => follower.close());
    const deadline = Date.now() + 10_000;
    while (acks.length === 0 && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20));
    // The first connection got epoch 1's batch: dropped unapplied; the second, epoch 3's: stored and acknowledged.
    const settings = { max_bytes_per_file: 1024, max_msg_size: 512 };
    expect(hellos).toEqual([
      { member_id: 'b', epoch: 2, position: { seq: 0, epoch: 0 }, settings },
      { member_id: 'b', epoch: 2, position: { seq: 0, epoch: 0 }, settings },
    ]);
    expect(lines.join('\n')).toMatch(/a batch of epoch 1, older than 2/);
    expect(acks).toEqual([1]);
    expect(store.position).toEqual({ seq: 1, epoch: 3 });
  });

  it("a hello is checked against the leader's settings: each difference is named", () => {
    const ours = groupSettings({ maxBytesPerFile: 1024, maxMsgSize: 512 });
    expect(settingsMismatch(ours, { max_bytes_per_file: 1024, max_msg_size: 512 })).toBeNull();
    expect(settingsMismatch(ours, { max_bytes_per_file: 2048, max_msg_size: 100 })).toBe(
      "settings differ from the leader's: --max-bytes-per-file=2048 (the leader has 1024), --max-msg-size=100 (the leader has 512)",
    );
    expect(settingsMismatch(ours, undefined)).toMatch(/sent no settings/);
  });

  it('a full copy names only files under topics/', () => {
    expect(() => decodeCopyFile({ path: 'topics/t/../../etc/x', offset: 0 }, Buffer.alloc(0))).toThrow(
      /bad copied path/,
    );
    expect(() => decodeCopyFile({ path: 'state/CURRENT', offset: 0 }, Buffer.alloc(0))).toThrow(/bad copied path/);
    expect(() => decodeCopyFile({ path: 'topics/t/0.log', offset: -1 }, Buffer.alloc(0))).toThrow(/bad copy offset/);
    expect(() => decodeCopyEnd({ position: { seq: 1, epoch: 1 }, files: [{ path: '../x', size: 1 }] })).toThrow(
      /bad copied path/,
    );
    const piece = decodeCopyFile({ path: 'topics/t/00000000000000000000.log', offset: 4 }, Buffer.from('ab'));
    expect([piece.offset, piece.bytes.toString()]).toEqual([4, 'ab']);
  });

  it('a frame that comes in many chunks is decoded once whole, with the frames around it', () => {
    const big = encodeCopyFile('topics/t/0.log', 0, Buffer.alloc(3 * 65_536 + 5, 7));
    const small = frame(FrameType.ack, { seq: 9 });
    const got: [number, number][] = [];
    const reader = new FrameReader((type, _header, payload) => got.push([type, payload.length]), 1 << 20);
    const all = Buffer.concat([small, big, small]);
    for (let i = 0; i < all.length; i += 4_096) reader.push(all.subarray(i, i + 4_096));
    expect(got).toEqual([
      [FrameType.ack, 0],
      [FrameType.copyFile, 3 * 65_536 + 5],
      [FrameType.ack, 0],
    ]);
  });

  it('a full copy replaces the data path only when whole; batches that come meanwhile are stored after it', async () => {
    const {
      frames,
      db,
      log: leaderLog,
    } = await leader([
      { at: { seq: 1, epoch: 1 }, offsets: [0, 1, 2], cursor: 1 },
      { at: { seq: 2, epoch: 1 }, offsets: [3, 5], cursor: 4 },
    ]);
    const [b1, b2] = decodeAll(frames) as [ReturnType<typeof decodeBatch>, ReturnType<typeof decodeBatch>];
    // The copy is of the leader at seq 2; batch 3 is written after it, batch 2 comes (again) during the copy.
    const copied = await files(join(root, 'leader', 'topics', 't'));
    const state: { type: 'put'; key: string; value: Buffer }[] = [];
    for await (const [key, value] of db.entries()) state.push({ type: 'put', key, value });
    const third = leaderBatch(leaderLog, { seq: 3, epoch: 1 }, [6], 6);
    const b3 = decodeAll([encodeBatch({ seq: 3, epoch: 1 }, third)])[0] as ReturnType<typeof decodeBatch>;
    await writeBatch(third, db);
    const sizes = [...copied].map(([name, hex]) => ({ path: `topics/t/${name}`, size: hex.length / 2 }));
    const sendFiles = async (store: ReplicaStore, during: () => void): Promise<void> => {
      for (const [name, hex] of copied) {
        const bytes = Buffer.from(hex, 'hex');
        for (let o = 0; o < bytes.length; o += 5) {
          await store.copyFile({ path: `topics/t/${name}`, offset: o, bytes: bytes.subarray(o, o + 5) });
          during();
        }
      }
    };

    const store = await replica('follower');
    await store.apply(b1);
    await store.beginCopy({ seq: 2, epoch: 1 });
    let held: Promise<void> | null = null;
    await sendFiles(store, () => {
      held ??= store.apply(b3);
    });
    await expect(store.copyFile({ path: 'topics/t/x.log', offset: 3, bytes: Buffer.from('z') })).rejects.toThrow(
      /at 3, but 0 bytes came before/,
    );
    store.abandonCopy(new Error('cut'));
    await expect(held).rejects.toThrow(/cut/);
    // Cut short: the data path is what it was, nothing of the copy is left.
    expect(store.position).toEqual({ seq: 1, epoch: 1 });
    await store.close();
    cleanup.pop();
    expect(existsSync(join(root, 'follower', 'copy-incoming'))).toBe(false);

    const again = await replica('follower');
    expect(again.position).toEqual({ seq: 1, epoch: 1 });
    await again.beginCopy({ seq: 2, epoch: 1 });
    const during: Promise<void>[] = [];
    await sendFiles(again, () => {
      if (during.length === 0) during.push(again.apply(b2), again.apply(b3));
    });
    await again.copyState(state);
    await again.endCopy({ position: { seq: 2, epoch: 1 }, files: sizes });
    await Promise.all(during);
    expect(again.position).toEqual({ seq: 3, epoch: 1 });
    await again.close();
    cleanup.pop();
    expect(existsSync(join(root, 'follower', 'copy-incoming'))).toBe(false);
    const f = await StateStore.open(join(root, 'follower', 'state'));
    cleanup.push(() => f.close());
    expect((await f.load()).get('t')?.channels.get('c')?.state.cursor).toBe(6);
    const log = await SegmentLog.open(join(root, 'follower', 'topics', 't'), logOptions(120), recordingLogger().logger);
    cleanup.push(() => log.close());
    // Batch 2, already in the copy, is skipped; batch 3 follows the copied records.
    expect((await readAll(log)).map((r) => r.offset)).toEqual([0, 1, 2, 3, 5, 6]);
  });

  it("a copy whose files do not match the leader's list is refused and leaves the data path as it was", async () => {
    const store = await replica('follower');
    await store.beginCopy({ seq: 3, epoch: 1 });
    await store.copyFile({ path: 'topics/t/0.log', offset: 0, bytes: Buffer.from('abc') });
    await expect(
      store.endCopy({ position: { seq: 3, epoch: 1 }, files: [{ path: 'topics/t/0.log', size: 4 }] }),
    ).rejects.toThrow(/incomplete/);
    expect(store.position).toEqual({ seq: 0, epoch: 0 });
    expect(existsSync(join(root, 'follower', 'topics', 't', '0.log'))).toBe(false);
  });
});
