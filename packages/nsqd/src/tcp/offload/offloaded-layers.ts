import type { Duplex } from 'node:stream';
import type { OutputSink } from '@nsq-ts/protocol';
import { joinOwned, owned, type TlsFacts } from './messages.js';
import type { LinkEvents, LinkHandle, TransportPool } from './transport-pool.js';

/** Socket bytes handed to the worker and not yet decoded, over which the socket stops being read. */
const MAX_PENDING_INPUT_BYTES = 1024 * 1024;
/** write() returns false past this many unsent bytes (as the inline layers). */
const CONGESTED_BYTES = 1024 * 1024;

/** What the connection hears from its offloaded layers. */
export interface OffloadedEvents {
  onPlain(chunk: Buffer): void;
  onSecure(facts: TlsFacts): void;
  onLinkError(err: Error): void;
  onEof(): void;
  onDrain(): void;
}

/**
 * The main thread's side of a connection whose layers run in a transport worker: an output sink
 * that sends each flush (everything between cork() and uncork()) to the worker as one buffer, and
 * the socket's reads forwarded as they come. Unsent bytes count what the worker holds, so the
 * frame writer's slow-consumer cap and write deadline still see them.
 */
export class OffloadedLayers implements OutputSink, LinkEvents {
  /** The next flush goes over TLS uncompressed (the OK of the TLS upgrade). */
  bare = false;
  private parts: Buffer[] = [];
  private partsBytes = 0;
  private corked = false;
  private pendingOutput = 0;
  private pendingInput = 0;
  private holdingInput = false;
  /** The connection paused its input (congested, or parked input): do not resume it. */
  inputPaused = false;
  private readonly handle: LinkHandle;

  constructor(
    private readonly socket: Duplex,
    private readonly pool: TransportPool,
    private readonly events: OffloadedEvents,
    tls: boolean,
    compression: 'snappy' | 'deflate' | null,
    level: number,
    rest: Buffer,
  ) {
    this.handle = pool.open(this, tls, compression, level, rest);
  }

  write(data: Buffer): boolean {
    this.parts.push(data);
    this.partsBytes += data.length;
    if (!this.corked) this.flushParts();
    return this.writableLength < CONGESTED_BYTES;
  }

  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    this.corked = false;
    this.flushParts();
  }

  get writableLength(): number {
    return this.pendingOutput + this.partsBytes + this.socket.writableLength;
  }

  end(): void {
    this.flushParts();
    this.pool.send(this.handle, { t: 'end', id: this.handle.id }, null);
  }

  /** A socket read, for the worker. */
  input(chunk: Buffer): void {
    const data = owned(chunk);
    this.pendingInput += data.length;
    this.pool.send(this.handle, { t: 'in', id: this.handle.id, data }, data);
    if (this.pendingInput > MAX_PENDING_INPUT_BYTES && !this.holdingInput) {
      this.holdingInput = true;
      this.socket.pause();
    }
  }

  eof(): void {
    this.pool.send(this.handle, { t: 'eof', id: this.handle.id }, null);
  }

  release(): void {
    this.pool.release(this.handle);
  }

  onWire(data: Buffer | null, acked: number): void {
    this.pendingOutput -= acked;
    if (data !== null) this.socket.write(data);
    if (acked > 0) this.events.onDrain();
  }

  onPlain(data: Buffer | null, consumed: number): void {
    this.pendingInput -= consumed;
    if (this.holdingInput && this.pendingInput <= MAX_PENDING_INPUT_BYTES) {
      this.holdingInput = false;
      if (!this.inputPaused) this.socket.resume();
    }
    if (data !== null) this.events.onPlain(data);
  }

  onSecure(facts: TlsFacts): void {
    this.events.onSecure(facts);
  }

  onLinkError(err: Error): void {
    this.events.onLinkError(err);
  }

  onEof(): void {
    this.events.onEof();
  }

  onEnded(): void {
    this.socket.end();
  }

  private flushParts(): void {
    if (this.partsBytes === 0) return;
    const data = joinOwned(this.parts, this.partsBytes);
    this.parts = [];
    this.pendingOutput += this.partsBytes;
    this.partsBytes = 0;
    this.pool.send(this.handle, { t: 'out', id: this.handle.id, data, bare: this.bare }, data);
  }
}
