import { writeFile } from 'node:fs/promises';
import { join } from 'node:path';

// ---- fixtures written byte by byte the way nsqd v1.3.0 / go-diskqueue v1.1.0 would ----

export interface Msg {
  id: string;
  ts: bigint;
  attempts: number;
  body: Buffer;
}

let seq = 0;
export function msg(body: string | Buffer, attempts = 1): Msg {
  seq++;
  return {
    id: `0a1b2c3d4e5f${seq.toString(16).padStart(4, '0')}`,
    ts: 1_700_000_000_000_000_000n + BigInt(seq),
    attempts,
    body: typeof body === 'string' ? Buffer.from(body) : body,
  };
}

/** message.go WriteTo: int64 BE timestamp, uint16 BE attempts, 16 ASCII ID bytes, body. */
export function serialize(m: Msg): Buffer {
  const header = Buffer.alloc(26);
  header.writeBigInt64BE(m.ts, 0);
  header.writeUInt16BE(m.attempts, 8);
  header.write(m.id, 10, 16, 'latin1');
  return Buffer.concat([header, m.body]);
}

/** diskqueue writeOne: 4-byte BE int32 length, then the data. */
export function record(data: Buffer): Buffer {
  const len = Buffer.alloc(4);
  len.writeInt32BE(data.length, 0);
  return Buffer.concat([len, data]);
}

export const dataName = (queue: string, num: number): string =>
  `${queue}.diskqueue.${String(num).padStart(6, '0')}.dat`;
export const metaName = (queue: string): string => `${queue}.diskqueue.meta.dat`;

/** persistMetaData's "%d\n%d,%d\n%d,%d\n". */
export async function writeMeta(
  dir: string,
  queue: string,
  depth: number,
  r: number,
  rp: number,
  w: number,
  wp: number,
) {
  await writeFile(join(dir, metaName(queue)), `${depth}\n${r},${rp}\n${w},${wp}\n`);
}

/**
 * Writes `msgs` as go-diskqueue v1.1.0 would (a new file when a record would push a non-empty file
 * past maxBytesPerFile), then consumes `consumed` of them (moveForward deletes finished files), and
 * persists the metadata. Returns the record offsets for assertions.
 */
export async function diskQueue(
  dir: string,
  queue: string,
  msgs: Msg[],
  opts: { consumed?: number; maxBytesPerFile?: number; meta?: boolean } = {},
): Promise<{ file: number; pos: number }[]> {
  const maxBytesPerFile = opts.maxBytesPerFile ?? 100 * 1024 * 1024;
  const consumed = opts.consumed ?? 0;
  const files: Buffer[][] = [[]];
  const at: { file: number; pos: number }[] = [];
  let writeFileNum = 0;
  let writePos = 0;
  for (const m of msgs) {
    const rec = record(serialize(m));
    if (writePos > 0 && writePos + rec.length > maxBytesPerFile) {
      writeFileNum++;
      writePos = 0;
      files.push([]);
    }
    at.push({ file: writeFileNum, pos: writePos });
    files[writeFileNum]?.push(rec);
    writePos += rec.length;
  }
  const read = consumed < msgs.length ? at[consumed] : { file: writeFileNum, pos: writePos };
  for (let n = read?.file ?? 0; n < files.length; n++) {
    await writeFile(join(dir, dataName(queue, n)), Buffer.concat(files[n] ?? []));
  }
  if (opts.meta !== false) {
    await writeMeta(dir, queue, msgs.length - consumed, read?.file ?? 0, read?.pos ?? 0, writeFileNum, writePos);
  }
  return at;
}

export async function nsqdDat(dir: string, doc: unknown): Promise<void> {
  await writeFile(join(dir, 'nsqd.dat'), typeof doc === 'string' ? doc : JSON.stringify(doc));
}
