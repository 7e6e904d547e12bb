import { connect, type Socket } from 'node:net';

/**
 * The shared half of the raw protocol clients: a TCP connection that records every byte, queues
 * decoded units (frames or replies) and lets tests await them, or the server's close, with a
 * deadline instead of sleeping.
 */
export abstract class RawConnection<T> {
  readonly socket: Socket;
  protected readonly units: T[] = [];
  private waiters: Array<() => void> = [];
  closed = false;
  /** Every byte received, for byte-exact assertions. */
  readonly received: Buffer[] = [];

  protected constructor(socket: Socket) {
    this.socket = socket;
    socket.on('data', (chunk: Buffer) => {
      this.received.push(chunk);
      this.decode(chunk, (unit) => this.units.push(unit));
      this.wake();
    });
    // The server's FIN is its close: both daemons end the connection after a fatal error.
    for (const event of ['end', 'close']) {
      socket.on(event, () => {
        this.closed = true;
        this.wake();
      });
    }
    socket.on('error', () => undefined);
  }

  /** Decodes a chunk into units (copies: the chunk is not kept). */
  protected abstract decode(chunk: Buffer, push: (unit: T) => void): void;

  /** Opens a TCP connection to `host:port`. */
  protected static async open(address: string): Promise<Socket> {
    const colon = address.lastIndexOf(':');
    const host = address.slice(0, colon).replace(/^\[|\]$/g, '');
    const socket = connect({ host, port: Number(address.slice(colon + 1)) });
    await new Promise<void>((resolve, reject) => {
      socket.once('connect', resolve);
      socket.once('error', reject);
    });
    return socket;
  }

  write(data: Buffer | string): void {
    this.socket.write(typeof data === 'string' ? Buffer.from(data, 'latin1') : data);
  }

  private wake(): void {
    const waiters = this.waiters;
    this.waiters = [];
    for (const w of waiters) w();
  }

  protected async waitFor<R>(check: () => R | undefined, timeoutMs: number, what: string): Promise<R> {
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

  /** Resolves when the server has closed the connection. */
  async waitClosed(timeoutMs = 5_000): Promise<void> {
    await this.waitFor(() => (this.closed ? true : undefined), timeoutMs, 'the server to close');
  }

  close(): void {
    this.socket.destroy();
  }
}
