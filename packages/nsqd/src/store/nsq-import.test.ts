import { mkdtemp, readdir, rm, truncate, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import {
  dataName,
  diskQueue,
  type Msg,
  metaName,
  msg,
  nsqdDat,
  record,
  serialize,
  writeMeta,
} from './nsq-fixtures.test-util.js';
import { type ImportedMessage, readNsqDataPath } from './nsq-import.js';

const MAX_MSG_SIZE = 1024 * 1024;

function expectMessages(got: ImportedMessage[], want: Msg[]): void {
  expect(
    got.map((m) => ({ id: m.id, ts: m.timestampNs, attempts: m.attempts, body: m.body.toString('latin1') })),
  ).toEqual(want.map((m) => ({ id: m.id, ts: m.ts, attempts: m.attempts, body: m.body.toString('latin1') })));
}

let dir: string;
beforeEach(async () => {
  dir = await mkdtemp(join(tmpdir(), 'nsq-import-'));
});
afterEach(async () => {
  await rm(dir, { recursive: true, force: true });
});

describe('readNsqDataPath', () => {
  it('returns null when the data path has no nsqd.dat', async () => {
    await diskQueue(dir, 't', [msg('a')]);
    expect(await readNsqDataPath(dir, MAX_MSG_SIZE)).toBeNull();
  });

  it('imports a topic with two channels, one paused, each from its own diskqueue', async () => {
    await nsqdDat(dir, {
      topics: [
        {
          name: 'orders',
          paused: false,
          channels: [
            { name: 'billing', paused: false },
            { name: 'audit', paused: true },
          ],
        },
        { name: 'idle', paused: true, channels: null },
      ],
      version: '1.3.0',
    });
    const topicMsgs = [msg('t1'), msg('t2', 3)];
    const billing = [msg('b1', 2), msg(Buffer.from([0, 255, 1, 254]))];
    const audit = [msg('a1'), msg('a2'), msg('a3', 7)];
    await diskQueue(dir, 'orders', topicMsgs);
    await diskQueue(dir, 'orders:billing', billing);
    await diskQueue(dir, 'orders:audit', audit);
    await writeMeta(dir, 'idle', 0, 0, 0, 0, 0); // closed with nothing on disk: meta only

    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.warnings).toEqual([]);
    expect(got?.topics.map((t) => [t.name, t.paused, t.channels.map((c) => [c.name, c.paused])])).toEqual([
      [
        'orders',
        false,
        [
          ['billing', false],
          ['audit', true],
        ],
      ],
      ['idle', true, []],
    ]);
    const [orders, idle] = got?.topics ?? [];
    expectMessages(orders?.messages ?? [], topicMsgs);
    expectMessages(orders?.channels[0]?.messages ?? [], billing);
    expectMessages(orders?.channels[1]?.messages ?? [], audit);
    expect(idle?.messages).toEqual([]);
    expect([...(got?.files ?? [])].sort()).toEqual((await readdir(dir)).map((f) => join(dir, f)).sort());
  });

  it('copies message bodies out of the file buffer', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: [] }] });
    const big = Buffer.alloc(64 * 1024, 0x61);
    await diskQueue(dir, 't', [msg('small'), msg(big)]);
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    const [small, large] = got?.topics[0]?.messages ?? [];
    // A view into the ~64 KiB file would share its ArrayBuffer.
    expect(small?.body.buffer.byteLength).toBeLessThan(64 * 1024);
    expect(small?.body.buffer).not.toBe(large?.body.buffer);
    expect(large?.body.equals(big)).toBe(true);
  });

  it('reads from a read position in the middle of a file', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: [{ name: 'c', paused: false }] }] });
    const msgs = [msg('m0'), msg('m1'), msg('m2'), msg('m3'), msg('m4')];
    const at = await diskQueue(dir, 't:c', msgs, { consumed: 2 });
    expect(at[2]).toEqual({ file: 0, pos: 2 * (4 + 26 + 2) });
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.warnings).toEqual([]);
    expectMessages(got?.topics[0]?.channels[0]?.messages ?? [], msgs.slice(2));
  });

  it('reads a queue spanning files, from the middle of the first to the write position of the last', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    const msgs = Array.from({ length: 8 }, (_, i) => msg(`message-${i}`));
    // 39-byte records, 100-byte files: three records per file.
    const at = await diskQueue(dir, 't', msgs, { consumed: 1, maxBytesPerFile: 120 });
    expect(at.map((a) => a.file)).toEqual([0, 0, 0, 1, 1, 1, 2, 2]);
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.warnings).toEqual([]);
    expectMessages(got?.topics[0]?.messages ?? [], msgs.slice(1));
    expect(got?.files).toContain(join(dir, dataName('t', 2)));
  });

  it('starts at a later file when the earlier ones are consumed, and leaves consumed leftovers out', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    const msgs = Array.from({ length: 6 }, (_, i) => msg(`message-${i}`));
    await diskQueue(dir, 't', msgs, { consumed: 4, maxBytesPerFile: 120 });
    // A file nsqd failed to remove after reading past it.
    await writeFile(join(dir, dataName('t', 0)), record(serialize(msg('stale'))));
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expectMessages(got?.topics[0]?.messages ?? [], msgs.slice(4));
    expect(got?.files).toContain(join(dir, dataName('t', 0)));
    expect(got?.warnings).toEqual([
      expect.stringMatching(/t\.diskqueue\.000000\.dat .*already consumed; not imported/),
    ]);
  });

  it('imports nothing from a queue whose read position reached its write position', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    await diskQueue(dir, 't', [msg('a'), msg('b')], { consumed: 2 });
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.warnings).toEqual([]);
    expect(got?.topics[0]?.messages).toEqual([]);
  });

  it('reads every data file from the start when the meta file is missing (warning)', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: [{ name: 'c', paused: false }] }] });
    const msgs = Array.from({ length: 5 }, (_, i) => msg(`message-${i}`));
    await diskQueue(dir, 't:c', msgs, { maxBytesPerFile: 120, meta: false });
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expectMessages(got?.topics[0]?.channels[0]?.messages ?? [], msgs);
    expect(got?.warnings).toEqual([expect.stringMatching(/diskqueue t:c .*no meta file; reading all of them/)]);
  });

  it('reads every data file when the meta file is unreadable or inconsistent (warning)', async () => {
    await nsqdDat(dir, {
      topics: [
        { name: 'a', paused: false, channels: null },
        { name: 'b', paused: false, channels: null },
      ],
    });
    const a = [msg('a0'), msg('a1')];
    const b = [msg('b0'), msg('b1')];
    await diskQueue(dir, 'a', a, { meta: false });
    await diskQueue(dir, 'b', b, { meta: false });
    await writeFile(join(dir, metaName('a')), 'garbage');
    await writeMeta(dir, 'b', 2, 3, 0, 1, 0); // readFileNum > writeFileNum
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expectMessages(got?.topics[0]?.messages ?? [], a);
    expectMessages(got?.topics[1]?.messages ?? [], b);
    expect(got?.warnings).toEqual([
      expect.stringMatching(/a\.diskqueue\.meta\.dat: unreadable diskqueue metadata/),
      expect.stringMatching(/b\.diskqueue\.meta\.dat: inconsistent read 3,0 \/ write 1,0/),
    ]);
  });

  it('stops a file at a corrupt record length and goes on with the next file', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    const [m0, m1, m2, m3] = [msg('m0'), msg('m1'), msg('m2'), msg('m3')];
    const good0 = record(serialize(m0 as Msg));
    const bad = Buffer.alloc(4);
    bad.writeInt32BE(25, 0); // one short of the 26-byte header
    const file0 = Buffer.concat([good0, bad, record(serialize(m1 as Msg))]);
    const file1 = Buffer.concat([record(serialize(m2 as Msg)), record(serialize(m3 as Msg))]);
    await writeFile(join(dir, dataName('t', 0)), file0);
    await writeFile(join(dir, dataName('t', 1)), file1);
    await writeMeta(dir, 't', 4, 0, 0, 1, file1.length);
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expectMessages(got?.topics[0]?.messages ?? [], [m0, m2, m3] as Msg[]);
    expect(got?.warnings).toEqual([
      `${join(dir, dataName('t', 0))}: invalid message read size (25) at position ${good0.length}, outside 26..${MAX_MSG_SIZE + 26}; rest of file skipped`,
      expect.stringMatching(/metadata depth 4, 3 message\(s\) imported/),
    ]);
  });

  it('rejects a record longer than maxMsgSize + 26', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    const m0 = msg('ok');
    const m1 = msg(Buffer.alloc(101));
    await diskQueue(dir, 't', [m0, m1]);
    const got = await readNsqDataPath(dir, 100);
    expectMessages(got?.topics[0]?.messages ?? [], [m0]);
    expect(got?.warnings[0]).toMatch(/invalid message read size \(127\) at position 32, outside 26\.\.126/);
  });

  it('drops a truncated last record with a warning naming file and position', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    const msgs = [msg('m0'), msg('m1'), msg('the last one')];
    const at = await diskQueue(dir, 't', msgs);
    const path = join(dir, dataName('t', 0));
    const full = at[2] ? at[2].pos + 4 + 26 + 12 : 0;
    await truncate(path, full - 5);
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expectMessages(got?.topics[0]?.messages ?? [], msgs.slice(0, 2));
    expect(got?.warnings).toEqual([
      `${path}: short read at position ${at[2]?.pos} (record of 38 bytes, 33 present); rest of file skipped`,
      expect.stringMatching(/short of the recorded writePos \d+; messages past the end are lost/),
      expect.stringMatching(/metadata depth 3, 2 message\(s\) imported/),
    ]);
  });

  it('drops a record length cut short', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    const m0 = msg('m0');
    const rec = record(serialize(m0));
    await writeFile(join(dir, dataName('t', 0)), Buffer.concat([rec, Buffer.from([0, 0])]));
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expectMessages(got?.topics[0]?.messages ?? [], [m0]);
    expect(got?.warnings).toContain(
      `${join(dir, dataName('t', 0))}: short read at position ${rec.length} (2 byte(s) of a record length); rest of file skipped`,
    );
  });

  it('salvages records past a stale writePos, and files past the recorded write file', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    const msgs = [msg('m0'), msg('m1'), msg('m2'), msg('m3')];
    const recs = msgs.map((m) => record(serialize(m)));
    await writeFile(join(dir, dataName('t', 0)), Buffer.concat(recs.slice(0, 3)));
    await writeFile(join(dir, dataName('t', 1)), recs[3] as Buffer);
    // Last synced after the first record: nsqd stopped without syncing the rest.
    await writeMeta(dir, 't', 1, 0, 0, 0, recs[0]?.length ?? 0);
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expectMessages(got?.topics[0]?.messages ?? [], msgs);
    expect(got?.warnings).toEqual([
      expect.stringMatching(/t\.diskqueue\.000000\.dat .*: 96 bytes, past the recorded writePos 32 .*read to the end/),
      expect.stringMatching(/t\.diskqueue\.000001\.dat .*past the recorded write file 0 .*read/),
      expect.stringMatching(/metadata depth 1, 4 message\(s\) imported/),
    ]);
  });

  it('warns about a missing data file between the read and write files', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    const msgs = Array.from({ length: 7 }, (_, i) => msg(`message-${i}`));
    await diskQueue(dir, 't', msgs, { maxBytesPerFile: 120 });
    await rm(join(dir, dataName('t', 1)));
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expectMessages(got?.topics[0]?.messages ?? [], [...msgs.slice(0, 3), ...msgs.slice(6)]);
    expect(got?.warnings).toEqual([
      expect.stringMatching(/t\.diskqueue\.000001\.dat .*missing, its messages are lost/),
      expect.stringMatching(/metadata depth 7, 4 message\(s\) imported/),
    ]);
  });

  it('expects no write file when nothing was written to it, and names a missing range once', async () => {
    await nsqdDat(dir, {
      topics: [
        { name: 'a', paused: false, channels: null },
        { name: 'b', paused: false, channels: null },
      ],
    });
    await writeMeta(dir, 'a', 0, 1, 0, 1, 0); // rolled to file 1, nothing written yet
    const b = [msg('b0')];
    await diskQueue(dir, 'b', b, { meta: false });
    await writeMeta(dir, 'b', 1, 0, 0, 999_999_999, 40); // corrupt: a far-away write file
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.topics[0]?.messages).toEqual([]);
    expectMessages(got?.topics[1]?.messages ?? [], b);
    expect(got?.warnings).toEqual([
      expect.stringMatching(/b\.diskqueue\.000001\.dat\.\.999999999 in .*: missing, its messages are lost/),
    ]);
  });

  it('skips ephemeral topics and channels', async () => {
    await nsqdDat(dir, {
      topics: [
        {
          name: 't',
          paused: false,
          channels: [
            { name: 'tail123456#ephemeral', paused: false },
            { name: 'c', paused: false },
          ],
        },
        { name: 'e#ephemeral', paused: false, channels: [{ name: 'c', paused: false }] },
      ],
    });
    await diskQueue(dir, 't:tail123456#ephemeral', [msg('x')]);
    await diskQueue(dir, 'e#ephemeral', [msg('y')]);
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.topics.map((t) => [t.name, t.channels.map((c) => c.name)])).toEqual([['t', ['c']]]);
    expect(got?.files).toEqual([join(dir, 'nsqd.dat')]);
    expect(got?.warnings).toHaveLength(4);
    expect(got?.warnings.every((w) => /ephemeral/.test(w))).toBe(true);
  });

  it('skips invalid topic and channel names with a warning', async () => {
    await nsqdDat(dir, {
      topics: [
        { name: 'bad topic', paused: false, channels: null },
        {
          name: 't',
          paused: false,
          channels: [
            { name: 'x'.repeat(65), paused: false },
            { name: 'ok', paused: true },
          ],
        },
        { paused: false },
      ],
    });
    await diskQueue(dir, 'b$d', [msg('x')]);
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.topics.map((t) => [t.name, t.channels.map((c) => [c.name, c.paused])])).toEqual([
      ['t', [['ok', true]]],
    ]);
    expect(got?.warnings).toEqual([
      expect.stringMatching(/skipping invalid topic name "bad topic"/),
      expect.stringMatching(/skipping invalid channel name "x{65}" of topic t/),
      expect.stringMatching(/topic entry without a string "name"/),
      expect.stringMatching(/diskqueue b\$d .*not a valid topic or topic:channel name, skipped/),
    ]);
  });

  it('accepts "topics": null and "channels": null', async () => {
    await nsqdDat(dir, '{"topics":null,"version":"1.3.0"}');
    let got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got).toEqual({ topics: [], files: [join(dir, 'nsqd.dat')], warnings: [] });

    await nsqdDat(dir, '{"topics":[{"name":"t","paused":false,"channels":null}],"version":"1.3.0"}');
    got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.topics).toEqual([{ name: 't', paused: false, messages: [], channels: [] }]);
    expect(got?.warnings).toEqual([]);
  });

  it('imports queues on disk for topics and channels nsqd.dat does not list (warning)', async () => {
    await nsqdDat(dir, { topics: [{ name: 'known', paused: true, channels: null }] });
    const k = [msg('k')];
    const u = [msg('u0'), msg('u1')];
    const uc = [msg('uc')];
    await diskQueue(dir, 'known:extra', k);
    await diskQueue(dir, 'unlisted', u);
    await diskQueue(dir, 'unlisted:ch', uc);
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.topics.map((t) => [t.name, t.paused, t.channels.map((c) => c.name)])).toEqual([
      ['known', true, ['extra']],
      ['unlisted', false, ['ch']],
    ]);
    expectMessages(got?.topics[0]?.channels[0]?.messages ?? [], k);
    expectMessages(got?.topics[1]?.messages ?? [], u);
    expectMessages(got?.topics[1]?.channels[0]?.messages ?? [], uc);
    expect(got?.warnings).toEqual([
      expect.stringMatching(/channel known\/extra has a diskqueue .* not listed in nsqd\.dat; imported/),
      expect.stringMatching(/topic unlisted has a diskqueue .* not listed in nsqd\.dat; imported/),
      expect.stringMatching(/channel unlisted\/ch has a diskqueue .* not listed in nsqd\.dat; imported/),
    ]);
  });

  it('ignores files that are not diskqueue data or meta files (.bad, .tmp)', async () => {
    await nsqdDat(dir, { topics: [{ name: 't', paused: false, channels: null }] });
    const msgs = [msg('a')];
    await diskQueue(dir, 't', msgs);
    await writeFile(join(dir, `${dataName('t', 0)}.bad`), 'junk');
    await writeFile(join(dir, `${metaName('t')}.123.tmp`), 'junk');
    await writeFile(join(dir, 'nsqd.dat.456.tmp'), 'junk');
    const got = await readNsqDataPath(dir, MAX_MSG_SIZE);
    expect(got?.warnings).toEqual([]);
    expectMessages(got?.topics[0]?.messages ?? [], msgs);
    expect(got?.files).toHaveLength(3);
  });

  it('throws on an nsqd.dat that is not JSON, as nsqd refuses to start on it', async () => {
    await nsqdDat(dir, '{"topics":[');
    await expect(readNsqDataPath(dir, MAX_MSG_SIZE)).rejects.toThrow(/nsqd\.dat: failed to parse metadata/);
  });
});
