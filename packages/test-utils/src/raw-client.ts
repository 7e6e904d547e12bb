import { FrameDecoder, type FrameType, MAGIC_V2 } from '@nsq-ts/protocol';
import { RawConnection } from './raw-connection.js';

export interface RawFrame {
  type: FrameType;
  data: Buffer;
}

/**
 * A raw TCP V2 connection for protocol tests: send exact bytes, await decoded frames, observe
 * the server closing the socket. Heartbeat frames are kept (tests may want them).
 */
export class RawClient extends RawConnection<RawFrame> {
  private readonly decoder = new FrameDecoder();

  protected decode(chunk: Buffer, push: (frame: RawFrame) => void): void {
    this.decoder.push(chunk, (type, data) => push({ type, data: Buffer.from(data) }));
  }

  /** Connects and, unless `magic` is false, sends the `  V2` magic. */
  static async connect(address: string, options: { magic?: boolean } = {}): Promise<RawClient> {
    const client = new RawClient(await RawConnection.open(address));
    if (options.magic !== false) client.write(MAGIC_V2);
    return client;
  }

  /** The next frame that is not a heartbeat (unless `heartbeats` is set). */
  async readFrame(options: { timeoutMs?: number; heartbeats?: boolean } = {}): Promise<RawFrame> {
    return this.waitFor(
      () => {
        while (this.units.length > 0) {
          const f = this.units.shift() as RawFrame;
          if (options.heartbeats || !(f.type === 0 && f.data.toString() === '_heartbeat_')) return f;
        }
        if (this.closed) throw new Error('connection closed while waiting for a frame');
        return undefined;
      },
      options.timeoutMs ?? 5_000,
      'a frame',
    );
  }

  /** Reads frames until `n` have been collected. */
  async readFrames(n: number, options: { timeoutMs?: number } = {}): Promise<RawFrame[]> {
    const out: RawFrame[] = [];
    while (out.length < n) out.push(await this.readFrame(options));
    return out;
  }

  /** Frames received so far and not yet read. */
  pending(): RawFrame[] {
    return this.units.slice();
  }
}
