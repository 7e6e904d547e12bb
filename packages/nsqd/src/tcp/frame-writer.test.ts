import { decodeMessage, FrameDecoder, FrameType, HEARTBEAT_FRAME, OK_FRAME, type OutputSink } from '@nsq-ts/protocol';
import { describe, expect, it } from 'vitest';
import { ManualClock } from '../clock.test-util.js';
import { MessageRecord } from '../message.js';
import { FrameWriter, type FrameWriterEvents, MAX_PENDING_WRITE_BYTES } from './frame-writer.js';

/** A sink that records every call; `writableLength` is what the test says is unsent. */
class FakeSink implements OutputSink {
  readonly calls: string[] = [];
  readonly writes: Buffer[] = [];
  writableLength = 0;

  write(data: Buffer): boolean {
    this.calls.push(`write ${data.length}`);
    this.writes.push(data);
    return true;
  }

  cork(): void {
    this.calls.push('cork');
  }

  uncork(): void {
    this.calls.push('uncork');
  }

  end(): void {
    this.calls.push('end');
  }

  /** Everything written so far, decoded as frames. */
  frames(): Array<{ type: number; data: Buffer }> {
    const frames: Array<{ type: number; data: Buffer }> = [];
    new FrameDecoder().push(Buffer.concat(this.writes), (type, data) => frames.push({ type, data: Buffer.from(data) }));
    return frames;
  }
}

class Recorder implements FrameWriterEvents {
  readonly log: string[] = [];
  dirty = 0;

  onDirty(): void {
    this.dirty++;
  }

  onCongested(): void {
    this.log.push('congested');
  }

  onDrained(): void {
    this.log.push('drained');
  }

  onWriteDeadline(unsentBytes: number, deadlineMs: number): void {
    this.log.push(`deadline ${unsentBytes} ${deadlineMs}`);
  }
}

let nextId = 1;

/** A record whose body is `body`, placed at an offset inside a larger buffer (as an MPUB's are). */
function record(body: Buffer | string): MessageRecord {
  const bytes = typeof body === 'string' ? Buffer.from(body) : body;
  const data = Buffer.concat([Buffer.from('prefix'), bytes, Buffer.from('suffix')]);
  const id = nextId++;
  return new MessageRecord(id, 0, id, data, 6, bytes.length, 1_700_000_000_000, 0);
}

function setup(deadlineMs = 1_000) {
  const sink = new FakeSink();
  const clock = new ManualClock();
  const events = new Recorder();
  const writer = new FrameWriter(sink, clock, events, deadlineMs);
  return { sink, clock, events, writer };
}

describe('FrameWriter output', () => {
  it('coalesces a pass of small messages and frames into one corked write, in order', () => {
    const { sink, events, writer } = setup();
    writer.writeMessage(record('one'), 1, 16 * 1024);
    writer.writeMessage(record('two'), 3, 16 * 1024);
    writer.writeFrame(OK_FRAME);
    writer.writeMessage(record('three'), 1, 16 * 1024);
    expect(sink.calls.filter((c) => c === 'uncork')).toHaveLength(0);
    expect(events.dirty).toBe(1);
    expect(writer.dirty).toBe(true);
    writer.flush();
    expect(writer.dirty).toBe(false);
    // The slab region before the frame, the frame itself, the region after it; then one uncork.
    expect(sink.calls).toEqual([
      'cork',
      `write ${2 * 34 + 6}`,
      `write ${OK_FRAME.length}`,
      `write ${34 + 5}`,
      'uncork',
    ]);
    const frames = sink.frames();
    expect(frames.map((f) => f.type)).toEqual([
      FrameType.Message,
      FrameType.Message,
      FrameType.Response,
      FrameType.Message,
    ]);
    const first = decodeMessage(frames[0]?.data as Buffer);
    expect(first.body.toString()).toBe('one');
    expect(first.attempts).toBe(1);
    expect(decodeMessage(frames[1]?.data as Buffer)).toMatchObject({ attempts: 3 });
    expect(decodeMessage(frames[3]?.data as Buffer).body.toString()).toBe('three');
    // The next frame after a flush starts a new pass.
    writer.writeFrame(HEARTBEAT_FRAME);
    expect(events.dirty).toBe(2);
  });

  it('hands a large body to the sink as it is, without copying it', () => {
    const { sink, writer } = setup();
    const body = Buffer.alloc(20_000, 7);
    const r = record(body);
    writer.writeMessage(r, 1, 16 * 1024);
    writer.flush();
    expect(sink.writes).toHaveLength(2);
    expect(sink.writes[0]?.length).toBe(34);
    const passed = sink.writes[1] as Buffer;
    expect(passed.buffer).toBe(r.data.buffer);
    expect(passed.byteOffset).toBe(r.data.byteOffset + r.start);
    expect(decodeMessage(sink.frames()[0]?.data as Buffer).body.equals(body)).toBe(true);
  });

  it('hands the slab over before a message would overflow the negotiated output buffer size', () => {
    const { sink, writer } = setup();
    // 34 + 30 = 64 bytes a frame: two fit in a 128-byte buffer, the third starts a new write.
    for (let i = 0; i < 3; i++) writer.writeMessage(record('x'.repeat(30)), 1, 128);
    expect(sink.calls).toEqual(['cork', 'write 128']);
    writer.flush();
    expect(sink.calls).toEqual(['cork', 'write 128', 'write 64', 'uncork']);
    expect(sink.frames()).toHaveLength(3);
  });

  it('goes to a new sink after setSink, and writes nothing once closed', () => {
    const { sink, writer } = setup();
    writer.writeFrame(OK_FRAME);
    writer.flush();
    const next = new FakeSink();
    writer.setSink(next);
    writer.writeFrame(OK_FRAME);
    writer.flush();
    expect(sink.writes).toHaveLength(1);
    expect(next.calls).toEqual(['cork', `write ${OK_FRAME.length}`, 'uncork']);
    writer.close();
    writer.writeFrame(OK_FRAME);
    writer.flush();
    expect(next.writes).toHaveLength(1);
  });
});

describe('FrameWriter congestion and write deadline', () => {
  it('reports congestion once when unsent bytes pass the cap, and drains only below it', () => {
    const { sink, events, writer } = setup();
    sink.writableLength = MAX_PENDING_WRITE_BYTES;
    writer.writeMessage(record('a'), 1, 16 * 1024);
    expect(writer.congested).toBe(true);
    writer.writeMessage(record('b'), 1, 16 * 1024);
    writer.flush();
    expect(events.log).toEqual(['congested']);
    expect(writer.unsentBytes).toBe(MAX_PENDING_WRITE_BYTES);
    sink.writableLength = MAX_PENDING_WRITE_BYTES + 1;
    writer.drained();
    expect(events.log).toEqual(['congested']);
    sink.writableLength = MAX_PENDING_WRITE_BYTES;
    writer.drained();
    expect(events.log).toEqual(['congested', 'drained']);
    expect(writer.congested).toBe(false);
  });

  it('is congested by a flush that leaves the sink over the cap', () => {
    const { sink, events, writer } = setup();
    writer.writeFrame(OK_FRAME);
    sink.writableLength = MAX_PENDING_WRITE_BYTES + 1;
    writer.flush();
    expect(events.log).toEqual(['congested']);
  });

  it('disconnects a peer still over the cap one write deadline after congestion', () => {
    const { sink, clock, events, writer } = setup(1_000);
    sink.writableLength = MAX_PENDING_WRITE_BYTES + 10;
    writer.flush();
    clock.advance(999);
    expect(events.log).toEqual(['congested']);
    clock.advance(1);
    expect(events.log).toEqual(['congested', `deadline ${MAX_PENDING_WRITE_BYTES + 10} 1000`]);
  });

  it('does not fire after a drain, and counts a new deadline from the next congestion on one timer', () => {
    const { sink, clock, events, writer } = setup(1_000);
    sink.writableLength = MAX_PENDING_WRITE_BYTES + 1;
    writer.flush();
    clock.advance(500);
    sink.writableLength = 0;
    writer.drained();
    clock.advance(400);
    sink.writableLength = MAX_PENDING_WRITE_BYTES + 1;
    writer.flush();
    expect(clock.pendingTimers).toBe(1);
    clock.advance(999);
    expect(events.log).toEqual(['congested', 'drained', 'congested']);
    clock.advance(1);
    expect(events.log.at(-1)).toBe(`deadline ${MAX_PENDING_WRITE_BYTES + 1} 1000`);
  });

  it('does not fire when the sink got below the cap without a drain event yet', () => {
    const { sink, clock, events, writer } = setup(1_000);
    sink.writableLength = MAX_PENDING_WRITE_BYTES + 1;
    writer.flush();
    sink.writableLength = MAX_PENDING_WRITE_BYTES;
    clock.advance(2_000);
    expect(events.log).toEqual(['congested']);
  });

  it('has no deadline when heartbeats are disabled, and none after close', () => {
    const off = setup(1_000);
    off.writer.setWriteDeadline(-1);
    off.sink.writableLength = MAX_PENDING_WRITE_BYTES + 1;
    off.writer.flush();
    off.clock.advance(60_000);
    expect(off.events.log).toEqual(['congested']);
    expect(off.clock.pendingTimers).toBe(0);

    const closed = setup(1_000);
    closed.sink.writableLength = MAX_PENDING_WRITE_BYTES + 1;
    closed.writer.flush();
    closed.writer.close();
    closed.clock.advance(60_000);
    expect(closed.events.log).toEqual(['congested']);
    expect(closed.clock.pendingTimers).toBe(0);
  });

  it('disarms a running deadline when the deadline changes (IDENTIFY)', () => {
    const { sink, clock, events, writer } = setup(1_000);
    sink.writableLength = MAX_PENDING_WRITE_BYTES + 1;
    writer.flush();
    writer.setWriteDeadline(5_000);
    clock.advance(10_000);
    expect(events.log).toEqual(['congested']);
  });
});
