import { writeMessageIdHex } from './message-id.js';

// [size: int32 BE][type: int32 BE][data]   size = 4 + data.length (nsq-spec §2.3)
// message data: [timestamp: int64 BE, Unix ns][attempts: uint16 BE][id: 16 ASCII hex][body]
export const FrameType = {
  Response: 0,
  Error: 1,
  Message: 2,
} as const;
export type FrameType = (typeof FrameType)[keyof typeof FrameType];

export const FRAME_HEADER_BYTES = 8;
export const MESSAGE_HEADER_BYTES = 26;
export const HEARTBEAT = '_heartbeat_';
export const OK = 'OK';
export const CLOSE_WAIT = 'CLOSE_WAIT';

export function encodeFrame(type: FrameType, data: Buffer | string): Buffer {
  const len = typeof data === 'string' ? Buffer.byteLength(data, 'latin1') : data.length;
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + len);
  out.writeInt32BE(4 + len, 0);
  out.writeInt32BE(type, 4);
  if (typeof data === 'string') out.write(data, FRAME_HEADER_BYTES, 'latin1');
  else data.copy(out, FRAME_HEADER_BYTES);
  return out;
}

/** Text is written as latin1, so echoed names round-trip. */
export function encodeResponse(text: string | Buffer): Buffer {
  return encodeFrame(FrameType.Response, text);
}

export function encodeErrorFrame(code: string, description: string): Buffer {
  return encodeFrame(FrameType.Error, `${code} ${description}`);
}

export const OK_FRAME: Buffer = encodeResponse(OK);
export const HEARTBEAT_FRAME: Buffer = encodeResponse(HEARTBEAT);
export const CLOSE_WAIT_FRAME: Buffer = encodeResponse(CLOSE_WAIT);

const TWO_POW_32 = 0x1_0000_0000;

/** Without BigInt: ms * 1e6 exceeds 2^53, so the ms are split before multiplying. */
export interface NsTimestamp {
  hi: number;
  lo: number;
}

export function nsTimestampFromMs(ms: number): NsTimestamp {
  const whole = Math.floor(ms);
  const subNs = Math.round((ms - whole) * 1e6); // < 1e6
  const msHi = Math.floor(whole / TWO_POW_32);
  const msLo = whole % TWO_POW_32;
  const lowProduct = msLo * 1e6 + subNs; // < 2^52: exact
  const carry = Math.floor(lowProduct / TWO_POW_32);
  return { hi: msHi * 1e6 + carry, lo: lowProduct % TWO_POW_32 };
}

export function nsTimestampToMs(ts: NsTimestamp): number {
  return (ts.hi * TWO_POW_32 + ts.lo) / 1e6;
}

export function writeNsTimestamp(out: Buffer, offset: number, ms: number): void {
  const whole = Math.floor(ms);
  const subNs = Math.round((ms - whole) * 1e6);
  const msHi = Math.floor(whole / TWO_POW_32);
  const lowProduct = (whole % TWO_POW_32) * 1e6 + subNs;
  const carry = Math.floor(lowProduct / TWO_POW_32);
  out.writeUInt32BE(msHi * 1e6 + carry, offset);
  out.writeUInt32BE(lowProduct % TWO_POW_32, offset + 4);
}

function writeMessagePrefix(out: Buffer, offset: number, bodyLength: number, attempts: number): number {
  out.writeInt32BE(4 + MESSAGE_HEADER_BYTES + bodyLength, offset);
  out.writeInt32BE(FrameType.Message, offset + 4);
  out.writeUInt16BE(attempts, offset + 16);
  return offset + FRAME_HEADER_BYTES + MESSAGE_HEADER_BYTES;
}

/** Returns the offset where the body goes. */
export function writeMessageHeader(
  out: Buffer,
  offset: number,
  bodyLength: number,
  tsHi: number,
  tsLo: number,
  attempts: number,
  id: string,
): number {
  out.writeUInt32BE(tsHi, offset + 8);
  out.writeUInt32BE(tsLo, offset + 12);
  out.write(id, offset + 18, 16, 'latin1');
  return writeMessagePrefix(out, offset, bodyLength, attempts);
}

/** Publish time in Unix ms and the ID as two 32-bit halves: allocates nothing. */
export function writeMessageHeaderRaw(
  out: Buffer,
  offset: number,
  bodyLength: number,
  timestampMs: number,
  attempts: number,
  idHi: number,
  idLo: number,
): number {
  writeNsTimestamp(out, offset + 8, timestampMs);
  writeMessageIdHex(out, offset + 18, idHi, idLo);
  return writeMessagePrefix(out, offset, bodyLength, attempts);
}

export function encodeMessageFrame(msg: {
  timestamp: NsTimestamp;
  attempts: number;
  id: string;
  body: Buffer;
}): Buffer {
  const out = Buffer.allocUnsafe(FRAME_HEADER_BYTES + MESSAGE_HEADER_BYTES + msg.body.length);
  const at = writeMessageHeader(out, 0, msg.body.length, msg.timestamp.hi, msg.timestamp.lo, msg.attempts, msg.id);
  msg.body.copy(out, at);
  return out;
}

export interface DecodedMessage {
  timestamp: bigint;
  attempts: number;
  /** 16 ASCII hex characters, echoed verbatim in FIN/REQ/TOUCH. */
  id: string;
  body: Buffer;
}

export function decodeMessage(data: Buffer): DecodedMessage {
  if (data.length < MESSAGE_HEADER_BYTES) {
    throw new RangeError(`message frame of ${data.length} bytes is shorter than ${MESSAGE_HEADER_BYTES}`);
  }
  return {
    timestamp: data.readBigInt64BE(0),
    attempts: data.readUInt16BE(8),
    id: data.toString('latin1', 10, 26),
    body: data.subarray(MESSAGE_HEADER_BYTES),
  };
}
