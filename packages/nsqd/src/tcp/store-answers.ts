/**
 * Answers of one connection's publishes that wait for the disk (or the replicas), written in command order.
 * nsqd reads the next command while a publish is stored, so a pipelining publisher (go-nsq's Producer,
 * nsqjs's Writer) gets several publishes into one group commit; decoding stops only when this holds
 * `MAX_WAITING_PUBLISHES` answers or `MAX_WAITING_BYTES` of their bodies (the bodies wait in memory).
 */
export const MAX_WAITING_PUBLISHES = 16;
export const MAX_WAITING_BYTES = 16 * 1024 * 1024;

/** Writes one answer; false when the connection is closed after it (nothing later is written). */
export type WriteAnswer = () => boolean;

/** The connection: told when answers were written (to flush them, and to go on decoding if it waited). */
export interface AnswerOwner {
  answersWritten(): void;
}

interface Slot {
  write: WriteAnswer | null;
  bytes: number;
}

export class StoreAnswers {
  private slots: Slot[] = [];
  private head = 0;
  private bytes = 0;
  private stopped = false;

  constructor(private readonly owner: AnswerOwner) {}

  /** Some answer is not written yet. */
  get pending(): boolean {
    return this.head < this.slots.length;
  }

  /** No more publishes may wait: decoding stops until an answer is written. */
  get full(): boolean {
    return this.slots.length - this.head >= MAX_WAITING_PUBLISHES || this.bytes >= MAX_WAITING_BYTES;
  }

  /** An answer known now (the OK of a publish safe in memory, an error): written after those before it. */
  ready(write: WriteAnswer): void {
    if (this.stopped) return;
    if (this.pending) this.slots.push({ write, bytes: 0 });
    else if (!write()) this.stop();
  }

  /** A publish of `bytes` whose answer is `ok` once `stored` resolves, `failed(err)` if it rejects. */
  wait(stored: Promise<void>, bytes: number, ok: WriteAnswer, failed: (err: Error) => boolean): void {
    if (this.stopped) return;
    const slot: Slot = { write: null, bytes };
    this.slots.push(slot);
    this.bytes += bytes;
    stored.then(
      () => this.settle(slot, ok),
      (err: Error) => this.settle(slot, () => failed(err)),
    );
  }

  /** The connection closed: answers settling later are dropped. */
  stop(): void {
    this.stopped = true;
    this.slots = [];
    this.head = 0;
    this.bytes = 0;
  }

  private settle(slot: Slot, write: WriteAnswer): void {
    if (this.stopped) return;
    slot.write = write;
    const slots = this.slots;
    let wrote = false;
    while (this.head < slots.length) {
      const next = slots[this.head] as Slot;
      if (next.write === null) break;
      this.head++;
      this.bytes -= next.bytes;
      wrote = true;
      if (!next.write()) {
        this.stop();
        return;
      }
    }
    // A publisher that keeps the pipeline full never empties it: written slots go in a block.
    if (this.head === slots.length || this.head >= 64) {
      slots.splice(0, this.head);
      this.head = 0;
    }
    if (wrote) this.owner.answersWritten();
  }
}
