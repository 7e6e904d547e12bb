import { readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { FaultyFileSystem } from './file-system.test-util.js';
import { logOptions, readAll, record, recordBytes, recordingLogger, source, tempDir } from './log.test-util.js';
import { SegmentLog } from './segment-log.js';

let dir = '';

beforeEach(async () => {
  dir = join(await tempDir(), 'topic');
});

afterEach(async () => {
  await rm(join(dir, '..'), { recursive: true, force: true });
});

/** Records [from, to) with bodies `m<offset>`. */
function range(from: number, to: number) {
  return Array.from({ length: to - from }, (_, i) => record(from + i));
}

const offsets = (records: { offset: number }[]) => records.map((r) => r.offset);

/** 10 records of 42 bytes (bodies m10…m19), 4 to a 200-byte segment. */
async function threeSegments(): Promise<SegmentLog> {
  const { logger } = recordingLogger();
  const log = SegmentLog.fresh(dir, logOptions(200), logger);
  await log.append(source(range(10, 20)));
  await log.close();
  return log;
}

describe('SegmentLog', () => {
  it('rolls into segments named by their first offset, and reopens at the same end', async () => {
    const log = await threeSegments();
    expect(recordBytes('m10')).toBe(43);
    expect(await readdir(dir)).toEqual([
      '00000000000000000010.seg',
      '00000000000000000014.seg',
      '00000000000000000018.seg',
    ]);
    expect(log.endOffset).toBe(20);
    const again = await SegmentLog.open(dir, logOptions(200), recordingLogger().logger);
    expect(again.endOffset).toBe(20);
    expect(again.segments.map((s) => [s.firstOffset, s.size])).toEqual([
      [10, 172],
      [14, 172],
      [18, 86],
    ]);
    expect(offsets(await readAll(again, 10))).toEqual(offsets(range(10, 20)));
    expect(offsets(await readAll(again, 15))).toEqual(offsets(range(15, 20)));
  });

  it('a record torn at a segment boundary is skipped and counted; the next segment is read on', async () => {
    await threeSegments();
    // The first segment loses the second half of its last record (m13).
    await truncate(join(dir, '00000000000000000010.seg'), 172 - 20);
    const { logger, lines } = recordingLogger();
    const log = await SegmentLog.open(dir, logOptions(200), logger);
    expect(log.endOffset).toBe(20);
    const got = await readAll(log, 10);
    expect(offsets(got)).toEqual([10, 11, 12, 14, 15, 16, 17, 18, 19]);
    expect(got.map((r) => r.body.toString())).toEqual(['m10', 'm11', 'm12', 'm14', 'm15', 'm16', 'm17', 'm18', 'm19']);
    expect(log.corruptRecords).toBe(1);
    expect(lines.some((l) => l.includes('corrupt record') && l.includes('00000000000000000010.seg:129'))).toBe(true);
    // Counted once, however many readers pass it.
    await readAll(log, 10);
    expect(log.corruptRecords).toBe(1);
  });

  it('a torn tail of the last segment is truncated at the last good record, and appends go on there', async () => {
    await threeSegments();
    const last = join(dir, '00000000000000000018.seg');
    await truncate(last, 86 - 3);
    const { logger, lines } = recordingLogger();
    const log = await SegmentLog.open(dir, logOptions(200), logger);
    expect(log.endOffset).toBe(19);
    expect((await stat(last)).size).toBe(43);
    expect(lines.some((l) => l.includes('truncating 40 torn byte(s)'))).toBe(true);
    await log.append(source([record(19, 'again')]));
    await log.close();
    const again = await SegmentLog.open(dir, logOptions(200), recordingLogger().logger);
    const got = await readAll(again, 18);
    expect(got.map((r) => [r.offset, r.body.toString()])).toEqual([
      [18, 'm18'],
      [19, 'again'],
    ]);
    expect(again.corruptRecords).toBe(0);
  });

  it('a segment whose only record is torn is emptied; the log ends where the segment starts', async () => {
    await threeSegments();
    const last = join(dir, '00000000000000000018.seg');
    await truncate(last, 20);
    const log = await SegmentLog.open(dir, logOptions(200), recordingLogger().logger);
    expect(log.endOffset).toBe(18);
    expect((await stat(last)).size).toBe(0);
    // The empty segment takes the next record, whatever its offset.
    await log.append(source([record(18, 'new')]));
    expect(await readdir(dir)).toHaveLength(3);
    expect((await readAll(log, 17)).map((r) => r.body.toString())).toEqual(['m17', 'new']);
  });

  it('a corrupt record followed by good ones is counted and left for readers to skip, never truncated', async () => {
    await threeSegments();
    const last = join(dir, '00000000000000000018.seg');
    const buf = await readFile(last);
    buf[43 + 5] = (buf[43 + 5] as number) ^ 0xff; // m19's CRC
    await writeFile(last, buf);
    const log = await SegmentLog.open(dir, logOptions(200), recordingLogger().logger);
    // m19 is the last record: a bad last record is a torn tail, cut off.
    expect(log.endOffset).toBe(19);
    await log.append(source([record(19, 'x'), record(20, 'y')]));
    await log.close();
    const buf2 = await readFile(last);
    buf2[8] = (buf2[8] as number) ^ 0x01; // m18's offset, inside the CRC
    await writeFile(last, buf2);
    const reopened = await SegmentLog.open(dir, logOptions(200), recordingLogger().logger);
    expect(reopened.corruptRecords).toBe(1);
    expect(reopened.endOffset).toBe(21);
    expect((await stat(last)).size).toBe(buf2.length);
    expect((await readAll(reopened, 18)).map((r) => r.body.toString())).toEqual(['x', 'y']);
  });

  it('a failed write is cut back to the last good size, so a retry writes the same place', async () => {
    const fs = new FaultyFileSystem();
    const log = SegmentLog.fresh(dir, logOptions(1 << 20, fs), recordingLogger().logger);
    await log.append(source(range(0, 3)));
    fs.failWrites = 1;
    await expect(log.append(source(range(3, 6)))).rejects.toThrow(/EIO/);
    expect(log.endOffset).toBe(3);
    await log.append(source(range(3, 6)));
    await log.sync();
    expect(offsets(await readAll(log))).toEqual([0, 1, 2, 3, 4, 5]);
    expect((await stat(join(dir, '00000000000000000000.seg'))).size).toBe(6 * 42);
    await log.close();
  });

  it('deletes the segments wholly below an offset, the one being written too once all is below', async () => {
    const log = await threeSegments();
    await log.deleteBelow(17);
    expect(log.segments.map((s) => s.firstOffset)).toEqual([14, 18]);
    await log.deleteBelow(19);
    expect(log.segments.map((s) => s.firstOffset)).toEqual([18]);
    await log.deleteBelow(20);
    expect(await readdir(dir)).toEqual([]);
    expect(log.firstOffset).toBe(20);
  });

  it('truncateFrom drops the records at and above an offset, whole segments too; appends go on from there', async () => {
    const log = await threeSegments();
    await log.truncateFrom(25);
    expect(log.endOffset).toBe(20);
    await log.truncateFrom(16);
    expect(await readdir(dir)).toEqual(['00000000000000000010.seg', '00000000000000000014.seg']);
    expect(log.endOffset).toBe(16);
    await log.append(source([record(16, 'new')]));
    await log.close();
    const again = await SegmentLog.open(dir, logOptions(200), recordingLogger().logger);
    const all = await readAll(again, 10);
    expect(offsets(all)).toEqual([10, 11, 12, 13, 14, 15, 16]);
    expect(all.at(-1)?.body.toString()).toBe('new');
    // At a segment's first offset: that segment goes whole.
    await again.truncateFrom(14);
    expect(await readdir(dir)).toEqual(['00000000000000000010.seg']);
    expect(offsets(await readAll(again, 10))).toEqual([10, 11, 12, 13]);
  });

  it('clear drops every segment and goes on at the given offset; destroy removes the directory', async () => {
    const log = await threeSegments();
    await log.clear(25);
    expect(await readdir(dir)).toEqual([]);
    expect(log.endOffset).toBe(25);
    await log.append(source([record(25)]));
    expect(await readdir(dir)).toEqual(['00000000000000000025.seg']);
    await log.destroy();
    await expect(readdir(dir)).rejects.toThrow(/ENOENT/);
    // Nothing left to sync for a destroyed log.
    await log.sync();
  });

  it('lets the event loop run while it encodes a large write, not only between writes', async () => {
    const options = { ...logOptions(64 * 1024 * 1024, undefined, 4096), yieldWhileEncoding: true };
    const log = SegmentLog.fresh(dir, options, recordingLogger().logger);
    const records = range(0, 400).map((r) => record(r.offset, 'x'.repeat(1000)));
    let turns = 0;
    let ticking = true;
    const tick = (): void => {
      turns++;
      if (ticking) setImmediate(tick);
    };
    setImmediate(tick);
    const seen: number[] = [];
    const plain = source(records);
    const encodeAt = (i: number, out: Buffer, pos: number): number => {
      seen.push(turns);
      return plain.encodeAt(i, out, pos);
    };
    await log.append({ ...plain, encodeAt });
    ticking = false;
    // 400 records of ~1 KiB are one 512 KiB write; the loop turned while it was being encoded.
    expect(log.appends).toBe(1);
    expect(seen[399]).toBeGreaterThan(seen[0] as number);
    expect(offsets(await readAll(log))).toEqual(offsets(records));
    await log.close();
  });
});
