import { deflateSegment, InflateStream, SnappyFrameDecoder, SnappyFrameEncoder } from '@nsq-ts/protocol';

/**
 * Where a connection's output goes: the socket itself (plain or TLS), or a compression layer in
 * front of it. Writes between cork() and uncork() belong to one flush; compression layers turn
 * each flush into one snappy write or one deflate sync-flushed block run (nsq-spec §2.7).
 */
export interface OutputSink {
  write(data: Buffer): boolean;
  cork(): void;
  uncork(): void;
  /** Bytes accepted but not yet handed to the kernel (for backpressure). */
  readonly writableLength: number;
  /** Sends everything written, then half-closes. */
  end(): void;
}

/** The stream under a compression layer: a net.Socket or a TLSSocket. */
export interface ByteStream {
  write(data: Buffer): boolean;
  end(): unknown;
  readonly writableLength: number;
}

/** Snappy framing: each flush becomes one write of one or more chunks, encoded synchronously. */
export class SnappyOutput implements OutputSink {
  private readonly inner: ByteStream;
  private readonly encoder = new SnappyFrameEncoder();
  private parts: Buffer[] = [];
  private corked = false;

  constructor(inner: ByteStream) {
    this.inner = inner;
  }

  write(data: Buffer): boolean {
    this.parts.push(data);
    if (!this.corked) this.flushParts();
    return true;
  }

  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    this.corked = false;
    this.flushParts();
  }

  private flushParts(): void {
    if (this.parts.length === 0) return;
    const out = this.encoder.encode(this.parts);
    this.parts = [];
    this.inner.write(out);
  }

  get writableLength(): number {
    return this.inner.writableLength;
  }

  end(): void {
    this.flushParts();
    this.inner.end();
  }
}

/** Raw deflate (nsq-spec §2.7): one sync-flushed segment per flush, synchronously (see deflateSegment). */
export class DeflateOutput implements OutputSink {
  private readonly inner: ByteStream;
  private readonly level: number;
  private parts: Buffer[] = [];
  private corked = false;

  constructor(inner: ByteStream, level: number) {
    this.inner = inner;
    this.level = level;
  }

  write(data: Buffer): boolean {
    this.parts.push(data);
    if (!this.corked) this.flushParts();
    return true;
  }

  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    this.corked = false;
    this.flushParts();
  }

  private flushParts(): void {
    if (this.parts.length === 0) return;
    const data = this.parts.length === 1 ? (this.parts[0] as Buffer) : Buffer.concat(this.parts);
    this.parts = [];
    this.inner.write(deflateSegment(data, this.level));
  }

  get writableLength(): number {
    return this.inner.writableLength;
  }

  end(): void {
    this.flushParts();
    this.inner.end();
  }
}

/** The receive side of a compression layer: compressed bytes in, plaintext to `onPlain`. */
export interface InputFilter {
  push(chunk: Buffer): void;
  close(): void;
}

export function snappyInput(onPlain: (data: Buffer) => void, onError: (err: Error) => void): InputFilter {
  const decoder = new SnappyFrameDecoder();
  let failed = false;
  return {
    push(chunk) {
      if (failed) return;
      let out: Buffer[];
      try {
        out = decoder.push(chunk);
      } catch (err) {
        failed = true;
        onError(err as Error);
        return;
      }
      for (const data of out) onPlain(data);
    },
    close() {
      failed = true;
    },
  };
}

export function deflateInput(onPlain: (data: Buffer) => void, onError: (err: Error) => void): InputFilter {
  const inflater = new InflateStream();
  let failed = false;
  return {
    push(chunk) {
      if (failed) return;
      let data: Buffer;
      try {
        data = inflater.push(chunk);
      } catch (err) {
        failed = true;
        onError(err as Error);
        return;
      }
      if (data.length > 0) onPlain(data);
    },
    close() {
      failed = true;
    },
  };
}
