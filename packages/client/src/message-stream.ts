import { Fifo } from './fifo.js';
import type { Message } from './message.js';

type Waiter<T> = {
  resolve: (r: IteratorResult<Message<T>, undefined>) => void;
  reject: (err: Error) => void;
};

/** Messages that arrived before the loop asked wait here; a loop that asks first waits. */
export class MessageStream<T> {
  private readonly buffered = new Fifo<Message<T>>();
  private readonly waiters = new Fifo<Waiter<T>>();
  private ended = false;
  /** The last message handed out: abandoned by a `break`, it is requeued at once. */
  private lastYielded: Message<T> | null = null;
  /** Why the consumer stopped by itself (connect() failed): the loop throws it, once. */
  failure: Error | null = null;

  get isEnded(): boolean {
    return this.ended;
  }

  push(msg: Message<T>): void {
    const waiter = this.waiters.shift();
    if (waiter !== undefined) this.hand(msg, waiter.resolve);
    else this.buffered.push(msg);
  }

  next(): Promise<IteratorResult<Message<T>, undefined>> {
    const msg = this.buffered.shift();
    if (msg !== undefined) return new Promise((resolve) => this.hand(msg, resolve));
    if (this.ended) {
      const err = this.failure;
      this.failure = null; // thrown once; later calls just say done
      return err === null ? Promise.resolve({ value: undefined, done: true }) : Promise.reject(err);
    }
    return new Promise((resolve, reject) => this.waiters.push({ resolve, reject }));
  }

  abandoned(): Message<T> | null {
    const msg = this.lastYielded;
    return msg !== null && !msg.hasResponded ? msg : null;
  }

  takeBuffered(): Message<T>[] {
    return this.buffered.drain();
  }

  end(): void {
    this.ended = true;
    const err = this.failure;
    for (const w of this.waiters.drain()) {
      if (err !== null) {
        this.failure = null;
        w.reject(err);
      } else {
        w.resolve({ value: undefined, done: true });
      }
    }
  }

  private hand(msg: Message<T>, resolve: Waiter<T>['resolve']): void {
    this.lastYielded = msg;
    resolve({ value: msg, done: false });
  }
}
