import { readFile, rm, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { eventually } from '@nsq-ts/test-utils';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { MessageRecord } from '../message.js';
import { nodeFileSystem } from './file-system.js';
import { logOptions, readAll, record, recordingLogger, source, tempDir } from './log.test-util.js';
import { LogReader } from './log-reader.js';
import { SegmentLog } from './segment-log.js';

let dir = '';
const logs: SegmentLog[] = [];

beforeEach(async () => {
  dir = join(await tempDir(), 'topic');
});

afterEach(async () => {
  for (const log of logs.splice(0)) await log.close();
  await rm(join(dir, '..'), { recursive: true, force: true });
});

async function logWith(records: MessageRecord[], maxBytesPerFile = 1 << 20, maxBodyBytes = 1024): Promise<SegmentLog> {
  const log = SegmentLog.fresh(
    dir,
    logOptions(maxBytesPerFile, nodeFileSystem, maxBodyBytes),
    recordingLogger().logger,
  );
  logs.push(log);
  if (records.length > 0) await log.append(source(records));
  return log;
}

describe('LogReader', () => {
  it('never waits: peek starts a read and the callback says when records are there', async () => {
    const log = await logWith([record(0), record(1), record(2)]);
    let loaded = 0;
    const reader = new LogReader(log, 0, () => loaded++);
    expect(reader.peek(0)).toBeNull();
    expect(reader.exhausted).toBe(false);
    await eventually(() => expect(loaded).toBe(1));
    const first = reader.peek(0) as MessageRecord;
    expect(first.body.toString()).toBe('m0');
    reader.advance();
    const second = reader.peek(1) as MessageRecord;
    // One read brought both: their bodies are ranges of the same chunk, not copies.
    expect(second.data).toBe(first.data);
    reader.close();
  });

  it('peek(offset) passes records below the offset, across gaps and segments', async () => {
    const log = await logWith(
      [0, 1, 5, 6, 9].map((o) => record(o)),
      100,
    );
    expect(log.segments.length).toBeGreaterThan(1);
    expect((await readAll(log, 2)).map((r) => r.offset)).toEqual([5, 6, 9]);
    expect((await readAll(log, 7)).map((r) => r.offset)).toEqual([9]);
  });

  it('is exhausted at the end of what is written, and reads on once more is appended', async () => {
    const log = await logWith([record(0)]);
    let loaded = 0;
    const reader = new LogReader(log, 0, () => loaded++);
    reader.peek(0);
    await eventually(() => expect(loaded).toBe(1));
    reader.advance();
    expect(reader.peek(1)).toBeNull();
    await eventually(() => expect(reader.exhausted).toBe(true));
    await log.append(source([record(1, 'late')]));
    expect(reader.exhausted).toBe(false);
    expect(reader.peek(1)).toBeNull();
    await eventually(() => expect(reader.peek(1)?.body.toString()).toBe('late'));
    reader.close();
  });

  it('reads a record larger than its read chunk whole', async () => {
    const big = Buffer.alloc(1_500_000, 0x61);
    const huge = new MessageRecord(1, 0, 1, big, 0, big.length, 0, 0);
    const log = await logWith([record(0), huge, record(2)], 8 << 20, 2 << 20);
    const got = await readAll(log);
    expect(got.map((r) => [r.offset, r.length])).toEqual([
      [0, 2],
      [1, 1_500_000],
      [2, 2],
    ]);
    expect(got[1]?.body.equals(big)).toBe(true);
  });

  it('skips a corrupt record, counts it on the log, and resumes at the next good one', async () => {
    const log = await logWith([record(0), record(1), record(2)]);
    await log.close();
    const path = join(dir, '00000000000000000000.seg');
    const buf = await readFile(path);
    buf[42 + 40] = (buf[42 + 40] as number) ^ 0x04; // m1's body
    await writeFile(path, buf);
    const reopened = await SegmentLog.open(dir, logOptions(1 << 20), recordingLogger().logger);
    logs.push(reopened);
    expect((await readAll(reopened)).map((r) => r.body.toString())).toEqual(['m0', 'm2']);
    expect(reopened.corruptRecords).toBe(1);
  });

  it('a read that fails (segment deleted under it) ends the reader rather than hanging the channel', async () => {
    const log = await logWith([record(0), record(1)]);
    await rm(join(dir, '00000000000000000000.seg'));
    let loaded = 0;
    const reader = new LogReader(log, 0, () => loaded++);
    expect(reader.peek(0)).toBeNull();
    await eventually(() => expect(loaded).toBe(1));
    expect(reader.exhausted).toBe(true);
    expect(reader.peek(0)).toBeNull();
    reader.close();
  });

  it('a reader closed while reading never calls back', async () => {
    const log = await logWith([record(0)]);
    let loaded = 0;
    const reader = new LogReader(log, 0, () => loaded++);
    reader.peek(0);
    reader.close();
    // A second reader's callback shows that the first read has had time to finish.
    const probe = new LogReader(log, 0, () => (loaded += 10));
    probe.peek(0);
    await eventually(() => expect(loaded).toBe(10));
    probe.close();
  });
});
