import { connect, type Socket } from 'node:net';
import { FrameDecoder, type FrameType, MAGIC_V2 } from '@nsq-ts/protocol';

export interface RawFrame {
  type: FrameType;
  data: Buffer;
}

/**
 * A raw TCP V2 connection for protocol tests: send exact bytes, await decoded frames, observe
 * the server closing the socket. Heartbeat frames are kept (tests may want them).
 */
export class RawClient {
  readonly socket: Socket;
  private readonly decoder = new FrameDecoder();
  private readonly frames: RawFrame[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  /** Every byte received, for byte-exact assertions. */
  readonly received: Buffer[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.decoder.push(chunk, (type, data) => this.frames.push({ type, data: Buffer.from(data) }));
      this.wake();
    });
    socket.on('close', () => {
      this.closed = true;
      this.wake();
    });
    socket.on('error', () => undefined);
  }

  /** Connects and, unless `magic` is false, sends the `  V2` magic. */
  static async connect(address: string, options: { magic?: boolean } = {}): Promise<RawClient> {
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(colon + 1));
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawClient(socket);
    if (options.magic !== false) socket.write(MAGIC_V2);
    return client;
  }

  write(data: Buffer | string): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  private async waitFor<T>(check: () => T | undefined, timeoutMs: number, what: string): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value !== undefined) return value;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, left);
        this.waiters.push(() => {
          clearTimeout(timer);
          resolve();
        });
      });
    }
  }

  /** The next frame that is not a heartbeat (unless `heartbeats` is set). */
  async readFrame(options: { timeoutMs?: number; heartbeats?: boolean } = {}): Promise<RawFrame> {
    return this.waitFor(
      () => {
        while (this.frames.length > 0) {
          const f = this.frames.shift() as RawFrame;
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

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = 5_000): Promise<void> {
    await this.waitFor(() => (this.closed ? true : undefined), timeoutMs, 'the server to close');
  }

  /** Frames received so far and not yet read. */
  pending(): RawFrame[] {
    return this.frames.slice();
  }

  close(): void {
    this.socket.destroy();
  }
}
