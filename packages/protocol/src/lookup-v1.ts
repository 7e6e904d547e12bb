/**
 * nsqlookupd's TCP V1 (nsq-spec §4.1): `  V1`, then `IDENTIFY\n` [int32 BE size][JSON],
 * `REGISTER|UNREGISTER <topic> [<channel>]\n`, `PING\n`. Each is answered `[uint32 BE size][data]`
 * (no frame type); after an `E_CODE text` reply the server closes.
 */
export const MAGIC_V1: Buffer = Buffer.from('  V1', 'latin1');

export interface LookupIdentifyBody {
  broadcast_address: string;
  hostname: string;
  tcp_port: number;
  http_port: number;
  version: string;
}

/** nsqlookupd's IDENTIFY reply; nsqd reaches its HTTP API at `broadcast_address:http_port`. */
export interface LookupIdentifyResponse {
  broadcast_address: string;
  hostname: string;
  http_port: number;
  tcp_port: number;
  version: string;
}

/** NSQ's PeerInfo as its json tags write it. */
export interface LookupPeer extends LookupIdentifyBody {
  remote_address: string;
}

export interface LookupNode extends LookupPeer {
  tombstones: boolean[];
  topics: string[];
}

export function encodeLookupResponse(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

export function isLookupError(data: Buffer): boolean {
  return data.length >= 2 && data[0] === 0x45 && data[1] === 0x5f;
}

export class LookupResponseDecodeError extends Error {
  override name = 'LookupResponseDecodeError';
}

/** Responses are views valid during the callback; sizes are checked before buffering. */
export class LookupResponseDecoder {
  private readonly maxResponseBytes: number;
  private pending: Buffer | null = null;

  constructor(options: { maxResponseBytes?: number } = {}) {
    this.maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
  }

  get bufferedBytes(): number {
    return this.pending?.length ?? 0;
  }

  push(chunk: Buffer, onResponse: (data: Buffer) => void): void {
    const buf = this.pending === null ? chunk : Buffer.concat([this.pending, chunk]);
    this.pending = null;
    let pos = 0;
    while (buf.length - pos >= 4) {
      const size = buf.readUInt32BE(pos);
      if (size > this.maxResponseBytes) throw new LookupResponseDecodeError(`invalid response size ${size}`);
      if (buf.length - pos - 4 < size) break;
      onResponse(buf.subarray(pos + 4, pos + 4 + size));
      pos += 4 + size;
    }
    if (pos < buf.length) this.pending = Buffer.from(buf.subarray(pos));
  }
}
