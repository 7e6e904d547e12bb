import { FRAME_HEADER_BYTES, type FrameType } from './frames.js';

export class FrameDecodeError extends Error {
  override name = 'FrameDecodeError';
}

/** Frames split across chunks are assembled once into a buffer of their announced size: one copy. */
export class FrameDecoder {
  private readonly maxFrameBytes: number;
  /** Up to 8 header bytes of a frame split inside its header. */
  private header: Buffer | null = null;
  /** A frame being assembled: the whole frame including its header. */
  private partial: Buffer | null = null;
  private partialFilled = 0;

  constructor(options: { maxFrameBytes?: number } = {}) {
    this.maxFrameBytes = options.maxFrameBytes ?? 64 * 1024 * 1024;
  }

  get bufferedBytes(): number {
    return (this.header?.length ?? 0) + (this.partial?.length ?? 0);
  }

  push(chunk: Buffer, onFrame: (type: FrameType, data: Buffer) => void): void {
    let buf = chunk;
    if (this.header !== null) {
      buf = Buffer.concat([this.header, chunk]);
      this.header = null;
    }
    let pos = 0;
    if (this.partial !== null) {
      const frame = this.partial;
      const n = Math.min(frame.length - this.partialFilled, buf.length);
      buf.copy(frame, this.partialFilled, 0, n);
      this.partialFilled += n;
      pos = n;
      if (this.partialFilled < frame.length) return;
      this.partial = null;
      this.partialFilled = 0;
      onFrame(frame.readInt32BE(4) as FrameType, frame.subarray(FRAME_HEADER_BYTES));
    }
    while (buf.length - pos >= FRAME_HEADER_BYTES) {
      const size = buf.readInt32BE(pos);
      if (size < 4 || size > this.maxFrameBytes) throw new FrameDecodeError(`invalid frame size ${size}`);
      const type = buf.readInt32BE(pos + 4);
      if (type < 0 || type > 2) throw new FrameDecodeError(`invalid frame type ${type}`);
      const end = pos + 4 + size;
      if (end > buf.length) {
        this.partial = Buffer.allocUnsafe(4 + size);
        this.partialFilled = buf.copy(this.partial, 0, pos);
        return;
      }
      onFrame(type as FrameType, buf.subarray(pos + FRAME_HEADER_BYTES, end));
      pos = end;
    }
    if (pos < buf.length) this.header = Buffer.from(buf.subarray(pos));
  }
}
