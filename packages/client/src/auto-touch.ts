import type { Message } from './message.js';

/**
 * The `autoTouch` option: TOUCHes each message being handled once half its connection's msg
 * timeout has passed since its delivery or last TOUCH. One sweep timer serves all messages, and
 * stops when none is left.
 */
export class AutoTouch<T> {
  /** Messages handed to user code and not yet answered. */
  private readonly active = new Set<Message<T>>();
  private timer: NodeJS.Timeout | null = null;

  track(msg: Message<T>): void {
    this.active.add(msg);
    if (this.timer !== null) return;
    const periodMs = Math.max(100, Math.floor(msg.link.msgTimeoutMs / 4));
    this.timer = setInterval(() => this.sweep(), periodMs);
  }

  forget(msg: Message<T>): void {
    this.active.delete(msg);
  }

  stop(): void {
    if (this.timer !== null) clearInterval(this.timer);
    this.timer = null;
  }

  private sweep(): void {
    const now = Date.now();
    for (const m of this.active) if (now - m.touchedAt >= m.link.msgTimeoutMs / 2) m.touch();
    if (this.active.size === 0) this.stop();
  }
}
