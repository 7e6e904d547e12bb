// MPUB body: [count: int32 BE] repeat count: [size: int32 BE][bytes] (on TCP after the total size).
export const MAGIC_V2: Buffer = Buffer.from('  V2', 'latin1');

export function encodeCommand(name: string, params: readonly string[] = [], body?: Buffer | string): Buffer {
  const line = params.length === 0 ? `${name}\n` : `${name} ${params.join(' ')}\n`;
  const lineBytes = Buffer.byteLength(line, 'latin1');
  if (body === undefined) return Buffer.from(line, 'latin1');
  const bodyBuf = typeof body === 'string' ? Buffer.from(body, 'utf8') : body;
  const out = Buffer.allocUnsafe(lineBytes + 4 + bodyBuf.length);
  out.write(line, 0, 'latin1');
  out.writeInt32BE(bodyBuf.length, lineBytes);
  bodyBuf.copy(out, lineBytes + 4);
  return out;
}

export function encodeMpubBody(bodies: readonly Buffer[]): Buffer {
  let total = 4;
  for (const b of bodies) total += 4 + b.length;
  const out = Buffer.allocUnsafe(total);
  out.writeInt32BE(bodies.length, 0);
  let at = 4;
  for (const b of bodies) {
    out.writeInt32BE(b.length, at);
    b.copy(out, at + 4);
    at += 4 + b.length;
  }
  return out;
}

export type MpubBodyError =
  | { kind: 'count'; count: number }
  | { kind: 'size'; index: number; size: number }
  | { kind: 'too-big'; index: number; size: number }
  | { kind: 'truncated' }
  | { kind: 'truncated-size'; index: number }
  | { kind: 'truncated-body'; index: number };

/**
 * nsqd's checks in order: count in 1..(maxBodyBytes-4)/5, each size in 1..maxMsgBytes, enough bytes.
 * Unlike nsqd (which reads messages off the socket), the messages must lie within the announced body,
 * so a body is bounded before it is buffered; bytes after the last message are ignored.
 */
export function scanMpubBody(
  body: Buffer,
  maxMsgBytes: number,
  maxBodyBytes: number,
  starts: number[],
  lengths: number[],
): number | MpubBodyError {
  if (body.length < 4) return { kind: 'truncated' };
  const count = body.readInt32BE(0);
  if (count <= 0 || count > Math.floor((maxBodyBytes - 4) / 5)) return { kind: 'count', count };
  starts.length = count;
  lengths.length = count;
  let at = 4;
  for (let i = 0; i < count; i++) {
    if (body.length - at < 4) return { kind: 'truncated-size', index: i };
    const size = body.readInt32BE(at);
    if (size <= 0) return { kind: 'size', index: i, size };
    if (size > maxMsgBytes) return { kind: 'too-big', index: i, size };
    at += 4;
    if (body.length - at < size) return { kind: 'truncated-body', index: i };
    starts[i] = at;
    lengths[i] = size;
    at += size;
  }
  return count;
}

/** Views into `body`, which the caller owns. */
export function decodeMpubBody(
  body: Buffer,
  maxMsgBytes: number,
  maxBodyBytes: number,
): { messages: Buffer[] } | { error: MpubBodyError } {
  const starts: number[] = [];
  const lengths: number[] = [];
  const count = scanMpubBody(body, maxMsgBytes, maxBodyBytes, starts, lengths);
  if (typeof count !== 'number') return { error: count };
  const messages: Buffer[] = new Array(count);
  for (let i = 0; i < count; i++) {
    const start = starts[i] as number;
    messages[i] = body.subarray(start, start + (lengths[i] as number));
  }
  return { messages };
}
