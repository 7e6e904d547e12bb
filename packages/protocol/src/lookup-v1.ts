/**
 * nsqlookupd's TCP protocol V1 (nsq-spec §4.1), the parts both ends share. nsqd (the client)
 * sends the magic, then commands built with encodeCommand:
 *
 *   "  V1"
 *   "IDENTIFY\n" [int32 BE size][JSON LookupIdentifyBody]
 *   "REGISTER <topic> [<channel>]\n"   "UNREGISTER <topic> [<channel>]\n"   "PING\n"
 *
 * and nsqlookupd answers each with one response, `[uint32 BE size][data]` — no frame type, unlike
 * nsqd's frames (nsq-spec §7.1). Data is `OK`, IDENTIFY's JSON, or an error `E_CODE text`, after
 * which nsqlookupd closes the connection: every V1 error is fatal.
 */
export const MAGIC_V1: Buffer = Buffer.from('  V1', 'latin1');

/** The IDENTIFY body nsqd sends (all four of broadcast_address and the ports and version required). */
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

/**
 * A producer in nsqlookupd's HTTP answers (/lookup, /nodes): NSQ's PeerInfo as its json tags
 * write it, `remote_address` first (the address the nsqd connected from).
 */
export interface LookupPeer extends LookupIdentifyBody {
  remote_address: string;
}

/** One producer of nsqlookupd's /nodes: its topics, each flagged when tombstoned there. */
export interface LookupNode extends LookupPeer {
  tombstones: boolean[];
  topics: string[];
}

/** `[size][data]`: one nsqlookupd response. A string is written as its bytes (latin1). */
export function encodeLookupResponse(data: Buffer | string): Buffer {
  const body = typeof data === 'string' ? Buffer.from(data, 'latin1') : data;
  const out = Buffer.allocUnsafe(4 + body.length);
  out.writeUInt32BE(body.length, 0);
  body.copy(out, 4);
  return out;
}

/** True when a response is an error (`E_...`), which the server follows by closing. */
export function isLookupError(data: Buffer): boolean {
  return data.length >= 2 && data[0] === 0x45 && data[1] === 0x5f;
}

/** Raised for a response size beyond the decoder's limit; drop the connection. */
export class LookupResponseDecodeError extends Error {
  override name = 'LookupResponseDecodeError';
}

/**
 * Client-side streaming decoder of `[size][data]` responses. Each response is handed out as a
 * view valid during the callback; sizes are checked against `maxResponseBytes` before buffering.
 */
export class LookupResponseDecoder {
  private readonly maxResponseBytes: number;
  private pending: Buffer | null = null;

  constructor(options: { maxResponseBytes?: number } = {}) {
    this.maxResponseBytes = options.maxResponseBytes ?? 1024 * 1024;
  }

  /** Bytes held for a response split across chunks (less than 4 + maxResponseBytes). */
  get bufferedBytes(): number {
    return this.pending?.length ?? 0;
  }

  /** Decodes every complete response in order. Throws LookupResponseDecodeError. */
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
