import { type Codec, describeValue } from './codecs.js';
import { ClientError, ClientErrorCode } from './errors.js';
import type { Negotiated } from './identify.js';

export interface PublishRequest {
  header: Buffer;
  body: Buffer;
  /** The command (PUB, MPUB, DPUB) and its largest message, checked against each nsqd's limits. */
  command: string;
  largestMessage: number;
  resolve: () => void;
  reject: (error: Error) => void;
  sends: number;
  deadline: number;
  sentAt: number;
}

export function header(name: string, topic: string, delayMs: number | null, bodyLength: number): Buffer {
  const line = delayMs === null ? `${name} ${topic}\n` : `${name} ${topic} ${delayMs}\n`;
  const out = Buffer.allocUnsafe(line.length + 4);
  out.write(line, 0, 'latin1');
  out.writeInt32BE(bodyLength, line.length);
  return out;
}

/** Only a non-empty Buffer reaches the socket: nsqd's refusal would be fatal to the whole connection. */
export function encodeBody<T>(codec: Codec<T>, body: T, which: string): Buffer {
  let bytes: unknown;
  try {
    bytes = codec.encode(body);
  } catch (err) {
    const reason = err instanceof Error ? err.message : String(err);
    throw new ClientError(ClientErrorCode.InvalidArgument, `body${which}: codec ${codec.name} failed: ${reason}`, {
      cause: err,
    });
  }
  if (!(bytes instanceof Uint8Array)) {
    throw new ClientError(
      ClientErrorCode.InvalidArgument,
      `body${which}: codec ${codec.name} returned ${describeValue(bytes)}, not a Buffer`,
    );
  }
  if (bytes.length === 0) throw new ClientError(ClientErrorCode.InvalidArgument, `body${which}: empty message body`);
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** A body over the limits an nsqd reported at IDENTIFY (nsq-ts nsqd; others report none). */
export function oversize(req: PublishRequest, limits: Negotiated, address: string): ClientError | null {
  const { maxMsgSize, maxBodySize } = limits;
  let what = '';
  if (maxMsgSize > 0 && req.largestMessage > maxMsgSize) {
    what = `message too big: ${req.largestMessage} bytes > --max-msg-size ${maxMsgSize}`;
  } else if (req.command === 'MPUB' && maxBodySize > 0 && req.body.length > maxBodySize) {
    what = `MPUB body too big: ${req.body.length} bytes > --max-body-size ${maxBodySize}`;
  }
  if (what === '') return null;
  return new ClientError(ClientErrorCode.InvalidArgument, `${req.command} ${what} of nsqd ${address}`);
}
