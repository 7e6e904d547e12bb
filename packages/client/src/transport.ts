import { deflateSegment, InflateStream, SnappyFrameDecoder, SnappyFrameEncoder } from '@nsq-ts/protocol';

/**
 * The client's output layers after IDENTIFY (nsq-spec §2.7): the socket (plain or TLS), or snappy
 * or deflate in front of it. Writes between cork() and uncork() are one flush: one snappy write,
 * or one deflate write ended by a Z_SYNC_FLUSH so nsqd can decode it at once.
 */
export interface OutputSink {
  write(data: Buffer): boolean;
  cork(): void;
  uncork(): void;
  readonly writableLength: number;
  end(): void;
}

interface ByteStream {
  write(data: Buffer): boolean;
  end(): unknown;
  readonly writableLength: number;
}

/** Collects a flush's parts and hands them over as one buffer list on uncork. */
abstract class BatchingOutput implements OutputSink {
  protected readonly inner: ByteStream;
  private parts: Buffer[] = [];
  private corked = false;

  constructor(inner: ByteStream) {
    this.inner = inner;
  }

  write(data: Buffer): boolean {
    this.parts.push(data);
    if (!this.corked) this.flushParts();
    return this.inner.writableLength < 1024 * 1024;
  }

  cork(): void {
    this.corked = true;
  }

  uncork(): void {
    this.corked = false;
    this.flushParts();
  }

  protected flushParts(): void {
    if (this.parts.length === 0) return;
    const parts = this.parts;
    this.parts = [];
    this.emit(parts);
  }

  protected abstract emit(parts: Buffer[]): void;

  get writableLength(): number {
    return this.inner.writableLength;
  }

  end(): void {
    this.flushParts();
    this.inner.end();
  }
}

export class SnappyOutput extends BatchingOutput {
  private readonly encoder = new SnappyFrameEncoder();

  protected emit(parts: Buffer[]): void {
    this.inner.write(this.encoder.encode(parts));
  }
}

export class DeflateOutput extends BatchingOutput {
  private readonly level: number;

  constructor(inner: ByteStream, level: number) {
    super(inner);
    this.level = level;
  }

  /** One sync-flushed segment per flush, synchronously (see deflateSegment). */
  protected emit(parts: Buffer[]): void {
    const data = parts.length === 1 ? (parts[0] as Buffer) : Buffer.concat(parts);
    this.inner.write(deflateSegment(data, this.level));
  }
}

/** Compressed bytes in, plaintext out (in order) to `onPlain`. */
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
      try {
        for (const data of decoder.push(chunk)) onPlain(data);
      } catch (err) {
        failed = true;
        onError(err as Error);
      }
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
