import type { Message } from './message.js';

/** TOUCHes a handled message once half its msg timeout has passed; one sweep timer for all. */
export class AutoTouch<T> {
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
