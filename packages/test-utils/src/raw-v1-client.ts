import { connect, type Socket } from 'node:net';
import { encodeCommand, LookupResponseDecoder, MAGIC_V1 } from '@nsq-ts/protocol';

/**
 * A raw nsqlookupd TCP V1 connection for protocol tests: send exact bytes, await the
 * size-prefixed replies (`[4-byte BE size][data]`, no frame type), observe the server closing.
 */
export class RawV1Client {
  readonly socket: Socket;
  private readonly decoder = new LookupResponseDecoder();
  private readonly replies: Buffer[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  /** Every byte received, for byte-exact assertions. */
  readonly received: Buffer[] = [];

  private constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.decoder.push(chunk, (data) => this.replies.push(Buffer.from(data)));
      this.wake();
    });
    // The server's FIN is its close: nsqlookupd ends the connection after a fatal error.
    for (const event of ['end', 'close']) {
      socket.on(event, () => {
        this.closed = true;
        this.wake();
      });
    }
    socket.on('error', () => undefined);
  }

  /** Connects and, unless `magic` is false, sends the `  V1` magic. */
  static async connect(address: string, options: { magic?: boolean } = {}): Promise<RawV1Client> {
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    const port = Number(address.slice(colon + 1));
    const socket = connect({ host, port });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    const client = new RawV1Client(socket);
    if (options.magic !== false) client.write(MAGIC_V1);
    return client;
  }

  write(data: Buffer | string): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  /** Sends `IDENTIFY\n` and the size-prefixed body (an object is JSON-encoded). */
  identify(body: Record<string, unknown> | string | Buffer): void {
    const bytes = Buffer.isBuffer(body)
      ? body
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    this.write(encodeCommand('IDENTIFY', [], bytes));
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

  /** The next reply's data. */
  async read(timeoutMs = 5_000): Promise<Buffer> {
    return this.waitFor(
      () => {
        const reply = this.replies.shift();
        if (reply !== undefined) return reply;
        if (this.closed) throw new Error('connection closed while waiting for a reply');
        return undefined;
      },
      timeoutMs,
      'a reply',
    );
  }

  /** The next reply as text. */
  async readText(timeoutMs = 5_000): Promise<string> {
    return (await this.read(timeoutMs)).toString('utf8');
  }

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = 5_000): Promise<void> {
    await this.waitFor(() => (this.closed ? true : undefined), timeoutMs, 'the server to close');
  }

  /** Replies received and not yet read. */
  pending(): Buffer[] {
    return this.replies.slice();
  }

  close(): void {
    this.socket.destroy();
  }
}
