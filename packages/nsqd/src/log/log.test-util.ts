import { mkdtemp } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '../clock.js';
import { ManualClock } from '../clock.test-util.js';
import { createLogger, type Logger } from '../logger.js';
import { MessageRecord } from '../message.js';
import { type FileSystem, nodeFileSystem } from './file-system.js';
import { forEachRecord } from './log-reader.js';
import { encodeRecord, RECORD_HEADER_BYTES, type RecordSource } from './record-codec.js';
import type { SegmentLog, SegmentLogOptions } from './segment-log.js';

export const testClock: Clock = new ManualClock();

/** A record at `offset` whose body is `body` (by default `m<offset>`). */
export function record(offset: number, body = `m${offset}`): MessageRecord {
  const data = Buffer.from(body);
  return new MessageRecord(offset, 0, offset, data, 0, data.length, 1_000 + offset, 0);
}

/** Bytes a record with this body takes in a segment. */
export function recordBytes(body: string): number {
  return RECORD_HEADER_BYTES + Buffer.byteLength(body);
}

export function source(records: readonly MessageRecord[]): RecordSource {
  return {
    count: records.length,
    offsetAt: (i) => (records[i] as MessageRecord).offset,
    bodyLengthAt: (i) => (records[i] as MessageRecord).length,
    encodeAt: (i, out, pos) => encodeRecord(records[i] as MessageRecord, out, pos, testClock),
  };
}

/** A logger that keeps its lines. */
export function recordingLogger(): { logger: Logger; lines: string[] } {
  const lines: string[] = [];
  return { logger: createLogger('', 'debug', (line) => lines.push(line)), lines };
}

export function logOptions(
  maxBytesPerFile: number,
  fs: FileSystem = nodeFileSystem,
  maxBodyBytes = 1024,
): SegmentLogOptions {
  return { maxBytesPerFile, maxBodyBytes, clock: testClock, fs };
}

export function tempDir(): Promise<string> {
  return mkdtemp(join(tmpdir(), 'nsqd-log-'));
}

/** Every record a reader finds from `from` on (what a channel would read). */
export async function readAll(log: SegmentLog, from = 0): Promise<MessageRecord[]> {
  const out: MessageRecord[] = [];
  await forEachRecord(log, from, Number.POSITIVE_INFINITY, (r) => out.push(r));
  return out;
}
