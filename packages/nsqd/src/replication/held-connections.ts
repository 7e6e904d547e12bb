import type { Socket } from 'node:net';

/**
 * Follower connections that arrive before this member's leader stream exists. etcd tells every
 * member of an election at once, so the others dial the new leader while it is still closing its
 * replica store; refused, they would retry only after their back-off, and with sync acks every
 * publish would wait for them. Held here (unread: what they send stays buffered) until the stream
 * opens and takes them, or for `holdMs`, then closed (the member was not elected after all; the
 * follower retries as it would have).
 */
export class HeldConnections {
  private readonly held = new Map<Socket, NodeJS.Timeout>();

  constructor(private readonly holdMs: number) {}

  get size(): number {
    return this.held.size;
  }

  hold(socket: Socket): void {
    socket.on('error', () => undefined);
    socket.once('close', () => this.forget(socket));
    this.held.set(
      socket,
      setTimeout(() => {
        this.forget(socket);
        socket.destroy();
      }, this.holdMs),
    );
  }

  /** Hands every connection still open to `accept`, oldest first. */
  release(accept: (socket: Socket) => void): void {
    for (const socket of [...this.held.keys()]) {
      this.forget(socket);
      if (!socket.destroyed) accept(socket);
    }
  }

  /** Closes every held connection. */
  close(): void {
    for (const socket of [...this.held.keys()]) {
      this.forget(socket);
      socket.destroy();
    }
  }

  private forget(socket: Socket): void {
    const timer = this.held.get(socket);
    if (timer !== undefined) clearTimeout(timer);
    this.held.delete(socket);
  }
}
