/**
 * Reads the data path a real NSQ v1.3.0 nsqd left behind (DESIGN §2 "Import"), so our nsqd can take
 * its topics, channels and queued messages over on first start. Read-only: nothing is renamed or
 * deleted here; `files` lists what the caller may move aside after a successful import.
 *
 * Formats (nsq-spec §5.2, §5.6; checked against nsqio/nsq v1.3.0 and nsqio/go-diskqueue v1.1.0,
 * the version v1.3.0's go.mod pins):
 * - `nsqd.dat`: JSON `{"topics":[{"name","paused","channels":[{"name","paused"}]|null}]|null,
 *   "version"}` (nsqd.go Metadata / LoadMetadata).
 * - One go-diskqueue per topic (`<topic>`) and per channel (`<topic>:<channel>`, `;` on Windows,
 *   dqname.go / dqname_windows.go): data files `<name>.diskqueue.%06d.dat` holding records of a
 *   4-byte big-endian int32 length plus the message, and `<name>.diskqueue.meta.dat` holding
 *   `depth\nreadFileNum,readPos\nwriteFileNum,writePos\n` (persistMetaData / retrieveMetaData).
 * - A message: int64 BE timestamp (ns), uint16 BE attempts, 16 ASCII bytes of ID, body
 *   (message.go WriteTo / decodeMessage); valid record lengths are 26..maxMsgSize+26 (topic.go and
 *   channel.go pass minValidMsgLength and MaxMsgSize+minValidMsgLength to diskqueue.New).
 *
 * Reading follows go-diskqueue: from (readFileNum, readPos) on; a file before the write file is read
 * to its end; a bad length or a short read abandons the rest of that file and goes on with the next
 * (handleReadError, minus the rename to `.bad`). Like retrieveMetaData, a write file longer than the
 * recorded writePos (metadata not synced before an unclean shutdown) is read to its real end, and so
 * are data files past writeFileNum (written after the skip to a new write file, before the next
 * metadata sync): at-least-once, a duplicate rather than a lost message.
 */
import { readdir, readFile } from 'node:fs/promises';
import { join } from 'node:path';
import {
  decodeMessage,
  isEphemeralName,
  isValidChannelName,
  isValidTopicName,
  MESSAGE_HEADER_BYTES,
} from '@nsq-ts/protocol';

export interface ImportedMessage {
  /** The 16 ID bytes as stored (normally lowercase hex), read as latin1. */
  id: string;
  timestampNs: bigint;
  attempts: number;
  body: Buffer;
}

export interface ImportedChannel {
  name: string;
  paused: boolean;
  messages: ImportedMessage[];
}

export interface ImportedTopic {
  name: string;
  paused: boolean;
  /** The topic's own diskqueue, in order (not yet copied to its channels). */
  messages: ImportedMessage[];
  channels: ImportedChannel[];
}

export interface NsqImport {
  /** Topics listed in nsqd.dat in its order, then topics found only on disk, by name. */
  topics: ImportedTopic[];
  /** Every NSQ file read, plus data files passed over as consumed, to rename after a successful import. */
  files: string[];
  warnings: string[];
}

export const NSQD_METADATA_FILE = 'nsqd.dat';

const META_FILE_RE = /^(.+)\.diskqueue\.meta\.dat$/;
const DATA_FILE_RE = /^(.+)\.diskqueue\.(\d{6,})\.dat$/;
/** persistMetaData's `%d\n%d,%d\n%d,%d\n` (read with Fscanf, which tolerates spaces). */
const META_TEXT_RE = /^\s*(-?\d+)\s*\n\s*(-?\d+),(-?\d+)\s*\n\s*(-?\d+),(-?\d+)\s*(\n|$)/;
/** getBackendName: `:` joins topic and channel, `;` on Windows; names never contain either. */
const BACKEND_SEPARATOR_RE = /[:;]/;
const RECORD_LENGTH_BYTES = 4;

interface ListedChannel {
  paused: boolean;
}

interface ListedTopic {
  paused: boolean;
  channels: Map<string, ListedChannel>;
}

interface DiskQueue {
  hasMeta: boolean;
  data: Map<number, string>;
}

interface Positions {
  depth: number;
  readFileNum: number;
  readPos: number;
  writeFileNum: number;
  writePos: number;
}

/** null when `dataPath` has no nsqd.dat. */
export async function readNsqDataPath(dataPath: string, maxMsgSize: number): Promise<NsqImport | null> {
  const metadataPath = join(dataPath, NSQD_METADATA_FILE);
  let raw: Buffer;
  try {
    raw = await readFile(metadataPath);
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT') return null;
    throw err;
  }
  const warnings: string[] = [];
  const files: string[] = [metadataPath];
  const topics = parseNsqdDat(raw, metadataPath, warnings);
  const queues = await findDiskQueues(dataPath);

  // Which disk queues hold each topic's and channel's messages (normally exactly one each).
  const topicQueues = new Map<string, string[]>();
  const channelQueues = new Map<string, string[]>();
  const addQueue = (map: Map<string, string[]>, key: string, queue: string): void => {
    const list = map.get(key);
    if (list) list.push(queue);
    else map.set(key, [queue]);
  };
  const diskOnly: string[] = [];
  for (const queue of [...queues.keys()].sort()) {
    const sep = BACKEND_SEPARATOR_RE.exec(queue);
    const topicName = sep ? queue.slice(0, sep.index) : queue;
    const channelName = sep ? queue.slice(sep.index + 1) : null;
    if (!isValidTopicName(topicName) || (channelName !== null && !isValidChannelName(channelName))) {
      warnings.push(`diskqueue ${queue} in ${dataPath}: not a valid topic or topic:channel name, skipped`);
      continue;
    }
    if (isEphemeralName(topicName) || (channelName !== null && isEphemeralName(channelName))) {
      warnings.push(`diskqueue ${queue} in ${dataPath}: ephemeral, skipped (nsqd never writes those)`);
      continue;
    }
    let topic = topics.get(topicName);
    if (!topic) {
      topic = { paused: false, channels: new Map() };
      topics.set(topicName, topic);
      diskOnly.push(`topic ${topicName}`);
    }
    if (channelName === null) {
      addQueue(topicQueues, topicName, queue);
    } else {
      if (!topic.channels.has(channelName)) {
        topic.channels.set(channelName, { paused: false });
        diskOnly.push(`channel ${topicName}/${channelName}`);
      }
      addQueue(channelQueues, `${topicName}:${channelName}`, queue);
    }
  }
  for (const what of diskOnly) {
    warnings.push(`${what} has a diskqueue in ${dataPath} but is not listed in ${NSQD_METADATA_FILE}; imported`);
  }

  const readQueues = async (names: string[] | undefined): Promise<ImportedMessage[]> => {
    const messages: ImportedMessage[] = [];
    for (const name of names ?? []) {
      await readDiskQueue(dataPath, name, queues.get(name) as DiskQueue, maxMsgSize, messages, files, warnings);
    }
    return messages;
  };
  const result: ImportedTopic[] = [];
  for (const [topicName, topic] of topics) {
    const channels: ImportedChannel[] = [];
    for (const [channelName, channel] of topic.channels) {
      const messages = await readQueues(channelQueues.get(`${topicName}:${channelName}`));
      channels.push({ name: channelName, paused: channel.paused, messages });
    }
    result.push({
      name: topicName,
      paused: topic.paused,
      messages: await readQueues(topicQueues.get(topicName)),
      channels,
    });
  }
  return { topics: result, files, warnings };
}

/** nsqd.dat's valid non-ephemeral topics and channels, duplicates merged; bad JSON throws, as nsqd refuses it. */
function parseNsqdDat(raw: Buffer, path: string, warnings: string[]): Map<string, ListedTopic> {
  let doc: unknown;
  try {
    doc = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new Error(`${path}: failed to parse metadata - ${(err as Error).message}`);
  }
  if (!isRecord(doc)) throw new Error(`${path}: failed to parse metadata - not a JSON object`);
  const topics = new Map<string, ListedTopic>();
  for (const entry of listOf(doc.topics, `${path}: "topics"`)) {
    const name = entryName(entry, `${path}: topic entry`, warnings);
    if (name === null) continue;
    if (!isValidTopicName(name)) {
      warnings.push(`${path}: skipping invalid topic name ${JSON.stringify(name)}`);
      continue;
    }
    if (isEphemeralName(name)) {
      warnings.push(`${path}: skipping ephemeral topic ${name} (nsqd never persists those)`);
      continue;
    }
    const record = entry as Record<string, unknown>;
    let topic = topics.get(name);
    if (!topic) {
      topic = { paused: false, channels: new Map() };
      topics.set(name, topic);
    }
    topic.paused ||= record.paused === true;
    for (const channelEntry of listOf(record.channels, `${path}: "channels" of topic ${name}`)) {
      const channelName = entryName(channelEntry, `${path}: channel entry of topic ${name}`, warnings);
      if (channelName === null) continue;
      if (!isValidChannelName(channelName)) {
        warnings.push(`${path}: skipping invalid channel name ${JSON.stringify(channelName)} of topic ${name}`);
        continue;
      }
      if (isEphemeralName(channelName)) {
        warnings.push(`${path}: skipping ephemeral channel ${name}/${channelName} (nsqd never persists those)`);
        continue;
      }
      const paused = (channelEntry as Record<string, unknown>).paused === true;
      const channel = topic.channels.get(channelName);
      if (channel) channel.paused ||= paused;
      else topic.channels.set(channelName, { paused });
    }
  }
  return topics;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** A JSON list that nsqd writes as `null` when empty (a nil Go slice). */
function listOf(value: unknown, what: string): unknown[] {
  if (value === null || value === undefined) return [];
  if (!Array.isArray(value)) throw new Error(`${what} is neither a list nor null`);
  return value;
}

function entryName(entry: unknown, what: string, warnings: string[]): string | null {
  if (isRecord(entry) && typeof entry.name === 'string') return entry.name;
  warnings.push(`${what} without a string "name", skipped: ${JSON.stringify(entry)}`);
  return null;
}

async function findDiskQueues(dataPath: string): Promise<Map<string, DiskQueue>> {
  const queues = new Map<string, DiskQueue>();
  const queue = (name: string): DiskQueue => {
    let q = queues.get(name);
    if (!q) {
      q = { hasMeta: false, data: new Map() };
      queues.set(name, q);
    }
    return q;
  };
  for (const entry of await readdir(dataPath, { withFileTypes: true })) {
    if (!entry.isFile()) continue;
    const meta = META_FILE_RE.exec(entry.name);
    if (meta) {
      queue(meta[1] as string).hasMeta = true;
      continue;
    }
    const data = DATA_FILE_RE.exec(entry.name);
    if (data) {
      const num = Number(data[2]);
      // Only names go-diskqueue's `%06d` would produce (no extra leading zeros).
      if (Number.isSafeInteger(num) && dataFileName(data[1] as string, num) === entry.name) {
        queue(data[1] as string).data.set(num, entry.name);
      }
    }
  }
  return queues;
}

function dataFileName(queue: string, num: number): string {
  return `${queue}.diskqueue.${String(num).padStart(6, '0')}.dat`;
}

async function readDiskQueue(
  dataPath: string,
  name: string,
  queue: DiskQueue,
  maxMsgSize: number,
  out: ImportedMessage[],
  files: string[],
  warnings: string[],
): Promise<void> {
  const nums = [...queue.data.keys()].sort((a, b) => a - b);
  const readDataFile = async (num: number, from: number): Promise<number> => {
    const path = join(dataPath, queue.data.get(num) as string);
    const buf = await readFile(path);
    files.push(path);
    if (from > buf.length) {
      warnings.push(`${path}: read position ${from} is past the end of the file (${buf.length} bytes); nothing read`);
    } else {
      readRecords(buf, from, path, maxMsgSize, out, warnings);
    }
    return buf.length;
  };

  let positions: Positions | null = null;
  if (queue.hasMeta) {
    const metaPath = join(dataPath, `${name}.diskqueue.meta.dat`);
    const text = await readFile(metaPath, 'utf8');
    files.push(metaPath);
    positions = parseMeta(text);
    if (!positions) {
      warnings.push(`${metaPath}: unreadable diskqueue metadata ${JSON.stringify(text)}; reading all its data files`);
    } else if (!consistent(positions)) {
      const { readFileNum, readPos, writeFileNum, writePos } = positions;
      warnings.push(
        `${metaPath}: inconsistent read ${readFileNum},${readPos} / write ${writeFileNum},${writePos}; reading all its data files`,
      );
      positions = null;
    }
  } else if (nums.length > 0) {
    warnings.push(
      `diskqueue ${name} in ${dataPath} has data files but no meta file; reading all of them from the start`,
    );
  }

  if (!positions) {
    for (const num of nums) await readDataFile(num, 0);
    return;
  }

  const { depth, readFileNum, readPos, writeFileNum, writePos } = positions;
  const before = out.length;
  for (const num of nums) {
    if (num >= readFileNum) break;
    files.push(join(dataPath, queue.data.get(num) as string));
    warnings.push(
      `${queue.data.get(num)} in ${dataPath}: before the read position (file ${readFileNum}), already consumed; not imported`,
    );
  }
  // Files readFileNum..writeFileNum, walking the files present (a corrupt meta may name huge numbers).
  const writeFileNeeded = writePos > (readFileNum === writeFileNum ? readPos : 0);
  const lastNeeded = writeFileNeeded ? writeFileNum : writeFileNum - 1;
  let expected = readFileNum;
  const reportMissing = (upTo: number): void => {
    if (upTo < expected) return;
    const range = upTo === expected ? dataFileName(name, expected) : `${dataFileName(name, expected)}..${upTo}`;
    warnings.push(`${range} in ${dataPath}: missing, its messages are lost`);
  };
  for (const num of nums) {
    if (num < readFileNum || num > writeFileNum) continue;
    reportMissing(num - 1);
    expected = num + 1;
    const size = await readDataFile(num, num === readFileNum ? readPos : 0);
    if (num === writeFileNum && size !== writePos) {
      const file = `${queue.data.get(num)} in ${dataPath}`;
      warnings.push(
        size > writePos
          ? `${file}: ${size} bytes, past the recorded writePos ${writePos} (metadata not synced before nsqd stopped); read to the end`
          : `${file}: ${size} bytes, short of the recorded writePos ${writePos}; messages past the end are lost`,
      );
    }
  }
  // The write file need not exist yet when nothing was written to it.
  reportMissing(lastNeeded);
  for (const num of nums) {
    if (num <= writeFileNum) continue;
    warnings.push(
      `${queue.data.get(num)} in ${dataPath}: past the recorded write file ${writeFileNum} (metadata not synced before nsqd stopped); read`,
    );
    await readDataFile(num, 0);
  }
  const imported = out.length - before;
  if (imported !== depth) {
    warnings.push(`diskqueue ${name} in ${dataPath}: metadata depth ${depth}, ${imported} message(s) imported`);
  }
}

function parseMeta(text: string): Positions | null {
  const m = META_TEXT_RE.exec(text);
  if (!m) return null;
  const [depth, readFileNum, readPos, writeFileNum, writePos] = m.slice(1, 6).map(Number) as [
    number,
    number,
    number,
    number,
    number,
  ];
  return { depth, readFileNum, readPos, writeFileNum, writePos };
}

function consistent(p: Positions): boolean {
  const values = [p.readFileNum, p.readPos, p.writeFileNum, p.writePos];
  if (!values.every((v) => Number.isSafeInteger(v) && v >= 0)) return false;
  return p.readFileNum < p.writeFileNum || (p.readFileNum === p.writeFileNum && p.readPos <= p.writePos);
}

/** A length outside 26..maxMsgSize+26 or a record cut short ends the file, with a warning (go-diskqueue readOne). */
function readRecords(
  buf: Buffer,
  from: number,
  path: string,
  maxMsgSize: number,
  out: ImportedMessage[],
  warnings: string[],
): void {
  const maxLength = maxMsgSize + MESSAGE_HEADER_BYTES;
  let pos = from;
  while (pos < buf.length) {
    if (buf.length - pos < RECORD_LENGTH_BYTES) {
      warnings.push(
        `${path}: short read at position ${pos} (${buf.length - pos} byte(s) of a record length); rest of file skipped`,
      );
      return;
    }
    const length = buf.readInt32BE(pos);
    if (length < MESSAGE_HEADER_BYTES || length > maxLength) {
      warnings.push(
        `${path}: invalid message read size (${length}) at position ${pos}, outside ${MESSAGE_HEADER_BYTES}..${maxLength}; rest of file skipped`,
      );
      return;
    }
    const start = pos + RECORD_LENGTH_BYTES;
    const end = start + length;
    if (end > buf.length) {
      warnings.push(
        `${path}: short read at position ${pos} (record of ${length} bytes, ${buf.length - start} present); rest of file skipped`,
      );
      return;
    }
    const msg = decodeMessage(buf.subarray(start, end));
    // A copy, so no message keeps the whole file's buffer alive.
    out.push({ id: msg.id, timestampNs: msg.timestamp, attempts: msg.attempts, body: Buffer.from(msg.body) });
    pos = end;
  }
}
