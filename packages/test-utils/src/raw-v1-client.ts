import { encodeCommand, LookupResponseDecoder, MAGIC_V1 } from '@nsq-ts/protocol';
import { RawConnection } from './raw-connection.js';

/**
 * A raw nsqlookupd TCP V1 connection for protocol tests: send exact bytes, await the
 * size-prefixed replies (`[4-byte BE size][data]`, no frame type), observe the server closing.
 */
export class RawV1Client extends RawConnection<Buffer> {
  private readonly decoder = new LookupResponseDecoder();

  protected decode(chunk: Buffer, push: (reply: Buffer) => void): void {
    this.decoder.push(chunk, (data) => push(Buffer.from(data)));
  }

  /** Connects and, unless `magic` is false, sends the `  V1` magic. */
  static async connect(address: string, options: { magic?: boolean } = {}): Promise<RawV1Client> {
    const client = new RawV1Client(await RawConnection.open(address));
    if (options.magic !== false) client.write(MAGIC_V1);
    return client;
  }

  /** Sends `IDENTIFY\n` and the size-prefixed body (an object is JSON-encoded). */
  identify(body: Record<string, unknown> | string | Buffer): void {
    const bytes = Buffer.isBuffer(body)
      ? body
      : Buffer.from(typeof body === 'string' ? body : JSON.stringify(body), 'utf8');
    this.write(encodeCommand('IDENTIFY', [], bytes));
  }

  /** The next reply's data. */
  async read(timeoutMs = 5_000): Promise<Buffer> {
    return this.waitFor(
      () => {
        const reply = this.units.shift();
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

  /** Replies received and not yet read. */
  pending(): Buffer[] {
    return this.units.slice();
  }
}
