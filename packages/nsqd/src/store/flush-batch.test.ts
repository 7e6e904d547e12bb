import { mkdir, readdir, readFile, rm } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultyFileSystem } from '../log/file-system.test-util.js';
import { logOptions, readAll, record, recordingLogger, source, tempDir } from '../log/log.test-util.js';
import { EncodedRecords, type RecordSource } from '../log/record-codec.js';
import { SegmentLog } from '../log/segment-log.js';
import { recordBytes } from '../replication/wire.js';
import { type FlushBatch, finishBatch, NO_RECORDS, type TopicBatch, writeBatch } from './flush-batch.js';
import { sampleState as state } from './state.test-util.js';
import { channelClears, StateStore } from './state-store.js';

let root = '';
const opened: { db: StateStore; logs: SegmentLog[] }[] = [];

beforeEach(async () => {
  root = await tempDir();
});

afterEach(async () => {
  for (const o of opened.splice(0)) {
    for (const log of o.logs) await log.close().catch(() => undefined);
    await o.db.close();
  }
  await rm(root, { recursive: true, force: true });
});

/** A data path of its own: a state store and topic `t`'s log. */
async function node(name: string, fs = new FaultyFileSystem()) {
  const path = join(root, name);
  await mkdir(path, { recursive: true });
  const db = await StateStore.open(join(path, 'state'));
  const log = SegmentLog.fresh(join(path, 'topics', 't'), logOptions(100, fs), recordingLogger().logger);
  opened.push({ db, logs: [log] });
  return { path, db, log, fs };
}

function batch(log: SegmentLog, records: RecordSource, extra: Partial<TopicBatch> = {}): FlushBatch {
  return {
    clears: channelClears('t', 'gone'),
    intents: [],
    topics: [{ topic: 't', log, ops: [], records, deleteBelow: -1, ...extra }],
    state: state(4),
    sync: true,
  };
}

async function segmentFiles(path: string): Promise<Map<string, string>> {
  const dir = join(path, 'topics', 't');
  const out = new Map<string, string>();
  for (const name of (await readdir(dir)).sort()) out.set(name, (await readFile(join(dir, name))).toString('hex'));
  return out;
}

describe('FlushBatch', () => {
  it('applied from its plain data on another data path, it stores exactly what the first stored', async () => {
    const leader = await node('leader');
    const follower = await node('follower');
    const records = source([0, 1, 2, 4, 5].map((o) => record(o)));
    await writeBatch(batch(leader.log, records), leader.db);
    const wire = recordBytes(records);
    await writeBatch(batch(follower.log, new EncodedRecords(wire)), follower.db);
    expect(await segmentFiles(follower.path)).toEqual(await segmentFiles(leader.path));
    expect((await segmentFiles(leader.path)).size).toBeGreaterThan(1);
    expect(await follower.db.load()).toEqual(await leader.db.load());
    expect((await readAll(follower.log)).map((r) => r.offset)).toEqual([0, 1, 2, 4, 5]);
    // A log operation is data too: the same clear on both.
    for (const n of [leader, follower]) {
      await writeBatch(
        {
          clears: [],
          intents: [],
          topics: [
            { topic: 't', log: n.log, ops: [{ kind: 'clear', nextOffset: 6 }], records: NO_RECORDS, deleteBelow: -1 },
          ],
          state: [],
          sync: false,
        },
        n.db,
      );
      expect(n.log.endOffset).toBe(6);
    }
    expect(await segmentFiles(follower.path)).toEqual(new Map());
  });

  it('a failed write leaves exactly the work that did not run; a retry finishes it', async () => {
    const n = await node('n');
    await writeBatch(batch(n.log, source([record(0)])), n.db);
    const b = batch(n.log, source([record(1), record(2)]), { ops: [{ kind: 'clear', nextOffset: 1 }] });
    b.state.splice(0, b.state.length, ...state(9));
    n.fs.failWrites = 1;
    await expect(writeBatch(b, n.db)).rejects.toThrow(/EIO/);
    // The clears and the log op ran; the append failed, so the state was not written.
    expect([b.clears.length, b.topics[0]?.ops.length]).toEqual([0, 0]);
    expect((await n.db.load()).get('t')?.channels.get('c')?.state.cursor).toBe(4);
    await writeBatch(b, n.db);
    expect((await n.db.load()).get('t')?.channels.get('c')?.state.cursor).toBe(9);
    expect((await readAll(n.log)).map((r) => r.offset)).toEqual([1, 2]);
  });

  it('finishBatch deletes the finished segments once the state is stored', async () => {
    const n = await node('n');
    const b = batch(n.log, source([0, 1, 2, 3, 4, 5].map((o) => record(o))), { deleteBelow: 4 });
    await writeBatch(b, n.db);
    expect(n.log.segments.map((s) => s.firstOffset)).toEqual([0, 2, 4]);
    await finishBatch(b);
    expect(n.log.segments.map((s) => s.firstOffset)).toEqual([4]);
    expect((await readAll(n.log, 4)).map((r) => r.offset)).toEqual([4, 5]);
  });
});
