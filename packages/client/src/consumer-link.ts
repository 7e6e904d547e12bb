import { encodeCommand } from '@nsq-ts/protocol';
import type { Connection } from './connection.js';
import type { Message, MessageLink } from './message.js';
import type { RdyConnection } from './rdy-policy.js';

/** Where a link hands the answers that need the consumer's bookkeeping (attempts, counters, backoff). */
export interface LinkOwner<T> {
  finish(link: Link<T>, msg: Message<T>): void;
  requeue(link: Link<T>, msg: Message<T>, delayMs: number | undefined, backoff: boolean): void;
}

export class Node<T> {
  readonly address: string;
  /** Found through lookupd (dropped when it cannot be reconnected) rather than configured. */
  readonly discovered: boolean;
  link: Link<T> | null = null;
  failures = 0;
  retryTimer: NodeJS.Timeout | null = null;

  constructor(address: string, discovered: boolean) {
    this.address = address;
    this.discovered = discovered;
  }
}

/** A new Link per reconnect, so a message from a lost connection can never answer on its successor. */
export class Link<T> implements MessageLink<T>, RdyConnection {
  readonly node: Node<T>;
  readonly conn: Connection;
  private readonly owner: LinkOwner<T>;
  subscribed = false;
  rdy = 0;
  /** When `rdy` last changed, for rotation fairness. */
  rdyChangedAtMs = 0;
  inFlight = 0;
  closeWait: (() => void) | null = null;
  closeWaitReceived = false;

  constructor(node: Node<T>, conn: Connection, owner: LinkOwner<T>) {
    this.node = node;
    this.conn = conn;
    this.owner = owner;
  }

  get address(): string {
    return this.node.address;
  }

  get msgTimeoutMs(): number {
    return this.conn.negotiated.msgTimeoutMs;
  }

  get maxRdyCount(): number {
    return this.conn.negotiated.maxRdyCount;
  }

  finish(msg: Message<T>): void {
    this.owner.finish(this, msg);
  }

  requeue(msg: Message<T>, delayMs: number | undefined, backoff: boolean): void {
    this.owner.requeue(this, msg, delayMs, backoff);
  }

  touch(msg: Message<T>): void {
    this.send(encodeCommand('TOUCH', [msg.id]));
  }

  /** Sends `command` if the connection is still up (else nsqd redelivers); false when it was not. */
  send(command: Buffer): boolean {
    if (this.conn.isClosed) return false;
    this.conn.write(command);
    return true;
  }

  setRdy(count: number, nowMs: number): void {
    this.rdy = count;
    this.rdyChangedAtMs = nowMs;
    this.conn.write(encodeCommand('RDY', [String(count)]));
  }
}
