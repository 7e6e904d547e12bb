import { Worker } from 'node:worker_threads';
import type { Logger } from '../../logger.js';
import type { FromWorker, TlsFacts, ToWorker } from './messages.js';
import type { WorkerTlsOptions } from './tls-facts.js';

/** What a worker says about one connection, on the main thread. */
export interface LinkEvents {
  onWire(data: Buffer | null, acked: number): void;
  onPlain(data: Buffer | null, consumed: number): void;
  onSecure(facts: TlsFacts): void;
  /** A layer failed, or the worker died: the connection cannot go on. */
  onLinkError(err: Error): void;
  onEof(): void;
  onEnded(): void;
}

interface Slot {
  worker: Worker;
  links: Map<number, LinkEvents>;
  /** It started (said 'ready'). */
  started: boolean;
  /** It failed before it started (cannot load): not replaced, so a broken install does not loop. */
  failedEarly: boolean;
}

/** A connection's place in the pool: the worker that owns its layers. */
export interface LinkHandle {
  readonly id: number;
  readonly slot: Slot;
}

/** The built worker script; in-process tests run this module from src/, the worker runs from dist/. */
const WORKER_URL = import.meta.url.endsWith('.ts')
  ? new URL('../../../dist/tcp/offload/transport-worker.js', import.meta.url)
  : new URL('./transport-worker.js', import.meta.url);

function view(data: Uint8Array | null): Buffer | null {
  return data === null ? null : Buffer.from(data.buffer, data.byteOffset, data.length);
}

/**
 * `--transport-workers` threads that run the TLS and compression layers of connections
 * (transport-worker.ts); each connection belongs to one worker for its life, the least loaded
 * when it upgrades. A worker that dies closes its connections and is replaced.
 */
export class TransportPool {
  private readonly slots: Slot[] = [];
  private nextId = 1;
  private closing = false;

  constructor(
    size: number,
    private readonly tls: WorkerTlsOptions | null,
    private readonly logger: Logger,
  ) {
    for (let i = 0; i < size; i++) this.slots.push(this.spawn());
  }

  /** The worker threads (tests kill one). */
  get threads(): readonly Worker[] {
    return this.slots.map((s) => s.worker);
  }

  /** False once no worker could start: connections then keep their layers inline. */
  get usable(): boolean {
    return this.slots.length > 0;
  }

  open(
    events: LinkEvents,
    tls: boolean,
    compression: 'snappy' | 'deflate' | null,
    level: number,
    rest: Buffer,
  ): LinkHandle {
    let slot = this.slots[0] as Slot;
    for (const s of this.slots) if (s.links.size < slot.links.size) slot = s;
    const id = this.nextId++;
    slot.links.set(id, events);
    const copy = Uint8Array.from(rest);
    slot.worker.postMessage({ t: 'open', id, tls, compression, level, rest: copy } satisfies ToWorker, [copy.buffer]);
    return { id, slot };
  }

  /** `data` (if any) is transferred: the caller must not touch it again. */
  send(handle: LinkHandle, msg: ToWorker, data: Buffer | null): void {
    if (!handle.slot.links.has(handle.id)) return;
    if (data === null) handle.slot.worker.postMessage(msg);
    else handle.slot.worker.postMessage(msg, [data.buffer as ArrayBuffer]);
  }

  release(handle: LinkHandle): void {
    if (handle.slot.links.delete(handle.id)) handle.slot.worker.postMessage({ t: 'close', id: handle.id });
  }

  async close(): Promise<void> {
    this.closing = true;
    await Promise.all(this.slots.map((s) => s.worker.terminate()));
  }

  private spawn(): Slot {
    const worker = new Worker(WORKER_URL, { workerData: { tls: this.tls } });
    const slot: Slot = { worker, links: new Map(), started: false, failedEarly: false };
    // Connections keep nsqd alive, not its idle workers.
    worker.unref();
    worker.on('message', (msg: FromWorker) => this.dispatch(slot, msg));
    worker.on('error', (err) => {
      if (!slot.started) slot.failedEarly = true;
      this.logger.error(`transport worker failed: ${err.message}`);
    });
    worker.on('exit', (code) => this.exited(slot, code));
    return slot;
  }

  private dispatch(slot: Slot, msg: FromWorker): void {
    if (msg.t === 'ready') {
      slot.started = true;
      return;
    }
    const events = slot.links.get(msg.id);
    if (events === undefined) return;
    switch (msg.t) {
      case 'wire':
        events.onWire(view(msg.data), msg.acked);
        break;
      case 'plain':
        events.onPlain(view(msg.data), msg.consumed);
        break;
      case 'secure':
        events.onSecure(msg);
        break;
      case 'error':
        slot.links.delete(msg.id);
        events.onLinkError(new Error(msg.message));
        break;
      case 'eof':
        events.onEof();
        break;
      case 'ended':
        events.onEnded();
        break;
    }
  }

  private exited(slot: Slot, code: number): void {
    if (this.closing) return;
    this.logger.error(`transport worker exited (code ${code}): closing its ${slot.links.size} connection(s)`);
    const i = this.slots.indexOf(slot);
    if (i >= 0 && !slot.failedEarly) this.slots[i] = this.spawn();
    else if (i >= 0) this.slots.splice(i, 1);
    const links = [...slot.links.values()];
    slot.links.clear();
    for (const events of links) events.onLinkError(new Error('transport worker exited'));
  }
}
