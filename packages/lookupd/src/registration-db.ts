/**
 * NSQ's registration_db.go: `client::`, `topic:<t>:` and `channel:<t>:<c>` to producers keyed by TCP
 * peer address. Keys without producers stay until deleted, so /topics lists topics whose nsqds left.
 */

export const Category = {
  Client: 'client',
  Topic: 'topic',
  Channel: 'channel',
} as const;
export type Category = (typeof Category)[keyof typeof Category];

export interface Registration {
  readonly category: Category;
  readonly key: string;
  /** The channel of a channel registration; '' otherwise. */
  readonly subKey: string;
}

/** What an nsqd told us in IDENTIFY, plus its connection's identity and liveness. */
export interface PeerInfo {
  /** The TCP peer address `ip:port`: the producer's identity. */
  readonly id: string;
  readonly remoteAddress: string;
  readonly hostname: string;
  readonly broadcastAddress: string;
  readonly tcpPort: number;
  readonly httpPort: number;
  readonly version: string;
  /** Wall-clock ms of the last IDENTIFY or PING. */
  lastUpdateMs: number;
}

/** One peer under one registration; tombstones are per registration (per topic), as in NSQ. */
export class Producer {
  tombstoned = false;
  /** Wall-clock ms of the tombstone; null for Go's zero time. */
  tombstonedAtMs: number | null = null;

  constructor(readonly peerInfo: PeerInfo) {}

  tombstone(nowMs: number): void {
    this.tombstoned = true;
    this.tombstonedAtMs = nowMs;
  }

  isTombstoned(lifetimeMs: number, nowMs: number): boolean {
    return this.tombstoned && nowMs - (this.tombstonedAtMs as number) < lifetimeMs;
  }
}

/** `*` matches any key or sub-key, as in NSQ (so `/channels?topic=*` lists every channel). */
export const WILDCARD = '*';

interface Entry {
  readonly registration: Registration;
  readonly producers: Map<string, Producer>;
}

export class RegistrationDB {
  private readonly entries = new Map<string, Entry>();

  addRegistration(registration: Registration): void {
    this.entry(registration);
  }

  /** Adds the producer unless one with its id is there; true when added. */
  addProducer(registration: Registration, producer: Producer): boolean {
    const { producers } = this.entry(registration);
    if (producers.has(producer.peerInfo.id)) return false;
    producers.set(producer.peerInfo.id, producer);
    return true;
  }

  /** Removes the producer `id`; the registration stays even when emptied. */
  removeProducer(registration: Registration, id: string): { removed: boolean; left: number } {
    const entry = this.entries.get(keyOf(registration));
    if (entry === undefined) return { removed: false, left: 0 };
    const removed = entry.producers.delete(id);
    return { removed, left: entry.producers.size };
  }

  removeRegistration(registration: Registration): void {
    this.entries.delete(keyOf(registration));
  }

  findRegistrations(category: Category, key: string, subKey: string): Registration[] {
    if (key !== WILDCARD && subKey !== WILDCARD) {
      const entry = this.entries.get(keyOf({ category, key, subKey }));
      return entry === undefined ? [] : [entry.registration];
    }
    const out: Registration[] = [];
    for (const { registration } of this.entries.values()) {
      if (isMatch(registration, category, key, subKey)) out.push(registration);
    }
    return out;
  }

  /** Producers under every matching registration, each peer once. */
  findProducers(category: Category, key: string, subKey: string): Producer[] {
    if (key !== WILDCARD && subKey !== WILDCARD) {
      const entry = this.entries.get(keyOf({ category, key, subKey }));
      return entry === undefined ? [] : [...entry.producers.values()];
    }
    const seen = new Set<string>();
    const out: Producer[] = [];
    for (const { registration, producers } of this.entries.values()) {
      if (!isMatch(registration, category, key, subKey)) continue;
      for (const producer of producers.values()) {
        if (seen.has(producer.peerInfo.id)) continue;
        seen.add(producer.peerInfo.id);
        out.push(producer);
      }
    }
    return out;
  }

  lookupRegistrations(id: string): Registration[] {
    const out: Registration[] = [];
    for (const { registration, producers } of this.entries.values()) {
      if (producers.has(id)) out.push(registration);
    }
    return out;
  }

  *all(): IterableIterator<{ registration: Registration; producers: Producer[] }> {
    for (const { registration, producers } of this.entries.values()) {
      yield { registration, producers: [...producers.values()] };
    }
  }

  count(category: Category): number {
    let n = 0;
    for (const { registration } of this.entries.values()) if (registration.category === category) n++;
    return n;
  }

  private entry(registration: Registration): Entry {
    const key = keyOf(registration);
    let entry = this.entries.get(key);
    if (entry === undefined) {
      entry = { registration: { ...registration }, producers: new Map() };
      this.entries.set(key, entry);
    }
    return entry;
  }
}

function keyOf(r: Registration): string {
  // HTTP lookups pass arbitrary strings (they are not validated), so the key must be unambiguous.
  return JSON.stringify([r.category, r.key, r.subKey]);
}

function isMatch(r: Registration, category: Category, key: string, subKey: string): boolean {
  return r.category === category && (key === WILDCARD || r.key === key) && (subKey === WILDCARD || r.subKey === subKey);
}

/** NSQ's FilterByActive: drops producers silent for longer than the timeout or tombstoned. */
export function filterByActive(
  producers: readonly Producer[],
  inactiveTimeoutMs: number,
  tombstoneLifetimeMs: number,
  nowMs: number,
): Producer[] {
  return producers.filter(
    (p) => !(nowMs - p.peerInfo.lastUpdateMs > inactiveTimeoutMs || p.isTombstoned(tombstoneLifetimeMs, nowMs)),
  );
}
