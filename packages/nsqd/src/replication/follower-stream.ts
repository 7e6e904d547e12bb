import { connect, type Socket } from 'node:net';
import { parseHostPort } from '@nsq-ts/go-compat';
import { monotonicMs } from '../clock.js';
import type { Logger } from '../logger.js';
import type { HaCounters } from './ha-counters.js';
import type { ReplicaStore } from './replica-store.js';
import {
  decodeBatch,
  decodeCopyEnd,
  decodeCopyFile,
  decodeCopyState,
  FrameReader,
  FrameType,
  frame,
  type GroupSettings,
  type Hello,
  type Position,
} from './wire.js';

const RETRY_MS = 500;

export interface FollowerStreamOptions {
  readonly memberId: string;
  readonly leaderId: string;
  readonly address: string;
  /** The highest epoch this member has seen (etcd's): a batch from an older one is refused. */
  readonly epoch: () => number;
  readonly maxFrameBytes: number;
  readonly settings: GroupSettings;
  readonly counters: HaCounters;
}

/** A follower's connection to the leader: hello, then every batch applied in order and acknowledged. */
export class FollowerStream {
  private socket: Socket | null = null;
  private retry: NodeJS.Timeout | null = null;
  private closed = false;
  /** The leader's seq as of its latest frame, for the lag this member reports. */
  leaderSeq = 0;
  lastBatchAtMs = 0;
  connected = false;
  lastRefusal = '';

  constructor(
    private readonly options: FollowerStreamOptions,
    private readonly store: ReplicaStore,
    private readonly logger: Logger,
  ) {
    this.dial();
  }

  get leaderId(): string {
    return this.options.leaderId;
  }

  private dial(): void {
    if (this.closed) return;
    const { host, port } = parseHostPort(this.options.address);
    const socket = connect({ host, port });
    this.socket = socket;
    socket.setNoDelay(true);
    let failed = false;
    const fail = (why: string) => {
      if (failed) return;
      failed = true;
      this.connected = false;
      this.store.abandonCopy(new Error(`the stream ended - ${why}`));
      if (!this.closed) this.logger.debug(`REPLICATION: stream from ${this.options.leaderId} ended - ${why}`);
      socket.destroy();
      this.scheduleRetry();
    };
    const reader = new FrameReader((type, header, payload) => {
      if (type === FrameType.welcome) {
        this.connected = true;
        this.lastRefusal = '';
        this.leaderSeq = (header as { seq: number }).seq;
        this.logger.info(`REPLICATION: following ${this.options.leaderId} from seq ${this.store.position.seq}`);
      } else if (type === FrameType.refuse) {
        const reason = (header as { reason: string }).reason;
        this.options.counters.streamRefusalsReceived++;
        // Retried every RETRY_MS: said once per reason, not at every retry.
        if (reason !== this.lastRefusal) {
          this.logger.error(`REPLICATION: ${this.options.leaderId} refused to stream - ${reason}`);
        }
        this.lastRefusal = reason;
        fail('refused');
      } else if (type === FrameType.copyBegin) {
        const { position } = header as { position: Position };
        this.logger.info(
          `REPLICATION: taking a full copy from ${this.options.leaderId} at seq ${position.seq} (this member was at ${this.store.position.seq})`,
        );
        this.copyStep(this.store.beginCopy(position), fail);
      } else if (type === FrameType.copyFile) {
        this.copyStep(this.store.copyFile(decodeCopyFile(header, payload)), fail);
      } else if (type === FrameType.copyState) {
        this.copyStep(this.store.copyState(decodeCopyState(header, payload)), fail);
      } else if (type === FrameType.copyEnd) {
        const end = decodeCopyEnd(header);
        const replaced = this.store.endCopy(end).then(() => {
          this.options.counters.fullCopiesReceived++;
        });
        this.stored(socket, end.position.seq, replaced, fail);
      } else if (type === FrameType.batch) {
        const batch = decodeBatch(header, payload);
        if (batch.epoch < this.options.epoch()) {
          fail(`a batch of epoch ${batch.epoch}, older than ${this.options.epoch()}`);
          return;
        }
        this.leaderSeq = batch.seq;
        this.lastBatchAtMs = monotonicMs();
        this.stored(socket, batch.seq, this.store.apply(batch, payload.length), fail);
      }
    }, this.options.maxFrameBytes);
    socket.on('connect', () => {
      const hello: Hello = {
        member_id: this.options.memberId,
        epoch: this.options.epoch(),
        position: this.store.position,
        settings: this.options.settings,
      };
      socket.write(frame(FrameType.hello, hello));
    });
    socket.on('data', (chunk: Buffer) => {
      try {
        reader.push(chunk);
      } catch (err) {
        fail((err as Error).message);
      }
    });
    socket.on('error', (err) => fail(err.message));
    socket.on('close', () => fail('closed'));
  }

  /** Acknowledges `seq` once `done` stored it; a failed write ends the connection (the next one starts over). */
  private stored(socket: Socket, seq: number, done: Promise<void>, fail: (why: string) => void): void {
    done.then(
      () => {
        if (!socket.destroyed) socket.write(frame(FrameType.ack, { seq }));
      },
      (err: Error) => {
        this.logger.error(`REPLICATION: storing seq ${seq} failed - ${err.message}`);
        fail('store failed');
      },
    );
  }

  /** A step of a full copy: a failed one ends the connection, and the next one asks for a copy again. */
  private copyStep(done: Promise<void>, fail: (why: string) => void): void {
    done.catch((err: Error) => {
      this.logger.error(`REPLICATION: storing the full copy failed - ${err.message}`);
      fail('copy failed');
    });
  }

  private scheduleRetry(): void {
    if (this.closed || this.retry !== null) return;
    this.retry = setTimeout(() => {
      this.retry = null;
      this.dial();
    }, RETRY_MS);
  }

  /** Stops following (what was received is still applied: ReplicaStore.close waits for it). */
  close(): void {
    this.closed = true;
    if (this.retry !== null) clearTimeout(this.retry);
    this.retry = null;
    this.socket?.destroy();
    this.connected = false;
  }
}
