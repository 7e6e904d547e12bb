import { deflateSegment, InflateError, InflateStream } from './deflate.js';
import { SnappyFrameDecoder, SnappyFrameEncoder } from './snappy.js';

/** nsq-spec §2.7, shared by nsqd and the client: writes between cork() and uncork() are one flush. */
export interface OutputSink {
  write(data: Buffer): boolean;
  cork(): void;
  uncork(): void;
  /** For backpressure. */
  readonly writableLength: number;
  end(): void;
}

export interface ByteStream {
  write(data: Buffer): boolean;
  end(): unknown;
  readonly writableLength: number;
}

/** write() returns false past this many unsent bytes below the layer. */
const CONGESTED_BYTES = 1024 * 1024;

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
    return this.inner.writableLength < CONGESTED_BYTES;
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
      try {
        // Piece by piece: a deflate bomb reaches onPlain a few MiB at a time, never whole.
        inflater.pushEach(chunk, (data) => {
          if (!failed) onPlain(data);
        });
      } catch (err) {
        if (!(err instanceof InflateError)) throw err;
        failed = true;
        onError(err);
      }
    },
    close() {
      failed = true;
    },
  };
}

/** A compression layer's two directions: output over `under`, input to `onPlain`. */
export function compressionLayer(
  kind: 'snappy' | 'deflate',
  level: number,
  under: ByteStream,
  onPlain: (data: Buffer) => void,
  onError: (err: Error) => void,
): { output: OutputSink; input: InputFilter } {
  return kind === 'snappy'
    ? { output: new SnappyOutput(under), input: snappyInput(onPlain, onError) }
    : { output: new DeflateOutput(under, level), input: deflateInput(onPlain, onError) };
}
