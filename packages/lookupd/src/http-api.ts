import { firstValue, type GoQuery, type Logger } from '@nsq-ts/go-compat';
import { isValidChannelName, isValidTopicName, type LookupNode, type LookupPeer } from '@nsq-ts/protocol';
import {
  type Clock,
  createV1Router,
  EMPTY,
  goJson,
  HttpError,
  JsonText,
  TEXT_TYPE,
  type V1Request,
  type V1Router,
} from '@nsq-ts/server-kit';
import type { LookupdMetrics } from './metrics.js';
import type { LookupdOptions } from './options.js';
import {
  Category,
  filterByActive,
  type PeerInfo,
  type Producer,
  type RegistrationDB,
  WILDCARD,
} from './registration-db.js';
import { VERSION } from './version.js';

/**
 * nsqlookupd's HTTP API (nsq-spec §4.2) with NSQ's V1 conventions (§3.1, server-kit's router).
 * Parameters come from the query string only, parsed as Go's url.ParseQuery.
 */

/** A handler's result: JSON text already encoded (see goJson), or EMPTY for an empty 200. */
type Result = JsonText | typeof EMPTY;
type Handler = (req: V1Request) => Result;

export interface HttpApiHost {
  readonly db: RegistrationDB;
  readonly logger: Logger;
  readonly options: LookupdOptions;
  readonly clock: Clock;
  metrics(): Promise<LookupdMetrics>;
}

export function createHttpApi(lookupd: HttpApiHost): V1Router['handle'] {
  const v1 = createV1Router(lookupd.logger, {
    auth: { tokens: lookupd.options.httpAuthTokens, reads: lookupd.options.httpAuthReads },
  });
  const { plain } = v1;
  const { db } = lookupd;
  const route = (method: 'GET' | 'POST', path: string, handler: Handler): void => v1.route(method, path, handler);

  function json(value: unknown): Result {
    return new JsonText(goJson(value));
  }

  function requireParam(query: GoQuery, name: string): string {
    const value = firstValue(query, name);
    if (value === null) throw new HttpError(400, `MISSING_ARG_${name.toUpperCase()}`);
    return value;
  }

  /** NSQ's http_api.GetTopicChannelArgs: each name checked right after it is read. */
  function topicChannelArgs(query: GoQuery): { topic: string; channel: string } {
    const topic = requireParam(query, 'topic');
    if (!isValidTopicName(topic)) throw new HttpError(400, 'INVALID_ARG_TOPIC');
    const channel = requireParam(query, 'channel');
    if (!isValidChannelName(channel)) throw new HttpError(400, 'INVALID_ARG_CHANNEL');
    return { topic, channel };
  }

  const active = (producers: Producer[], tombstoneLifetimeMs: number) =>
    filterByActive(producers, lookupd.options.inactiveProducerTimeoutMs, tombstoneLifetimeMs, lookupd.clock.wallMs());

  // ---- health and info ----

  plain('GET', '/ping', (_req, res) => {
    res.writeHead(200, { 'Content-Type': TEXT_TYPE });
    res.end('OK');
  });

  route('GET', '/info', () => json({ version: VERSION }));

  plain('GET', '/metrics', async (_req, res) => {
    const { registry } = await lookupd.metrics();
    const text = await registry.metrics();
    res.writeHead(200, { 'Content-Type': registry.contentType });
    res.end(text);
  });

  // ---- discovery ----

  route('GET', '/topics', () => json({ topics: db.findRegistrations(Category.Topic, WILDCARD, '').map((r) => r.key) }));

  route('GET', '/channels', (req) => {
    const query = req.query();
    const topic = requireParam(query, 'topic');
    return json({ channels: db.findRegistrations(Category.Channel, topic, WILDCARD).map((r) => r.subKey) });
  });

  route('GET', '/lookup', (req) => {
    const query = req.query();
    const topic = requireParam(query, 'topic');
    if (db.findRegistrations(Category.Topic, topic, '').length === 0) throw new HttpError(404, 'TOPIC_NOT_FOUND');
    const channels = db.findRegistrations(Category.Channel, topic, WILDCARD).map((r) => r.subKey);
    const producers = active(db.findProducers(Category.Topic, topic, ''), lookupd.options.tombstoneLifetimeMs);
    return json({ channels, producers: producers.map((p) => peerJson(p.peerInfo)) });
  });

  route('GET', '/nodes', () => {
    // Tombstoned producers stay listed here (lifetime 0), flagged per topic in `tombstones`.
    const producers = active(db.findProducers(Category.Client, '', ''), 0);
    const now = lookupd.clock.wallMs();
    const nodes = producers.map((p): LookupNode => {
      const topics = db
        .lookupRegistrations(p.peerInfo.id)
        .filter((r) => r.category === Category.Topic)
        .map((r) => r.key);
      const tombstones = topics.map((topic) =>
        db
          .findProducers(Category.Topic, topic, '')
          .some((tp) => tp.peerInfo === p.peerInfo && tp.isTombstoned(lookupd.options.tombstoneLifetimeMs, now)),
      );
      return { ...peerJson(p.peerInfo), tombstones, topics };
    });
    return json({ producers: nodes });
  });

  // ---- administration ----

  route('POST', '/topic/create', (req) => {
    const query = req.query();
    const topic = requireParam(query, 'topic');
    if (!isValidTopicName(topic)) throw new HttpError(400, 'INVALID_ARG_TOPIC');
    lookupd.logger.info(`DB: adding topic(${topic})`);
    db.addRegistration({ category: Category.Topic, key: topic, subKey: '' });
    return EMPTY;
  });

  route('POST', '/topic/delete', (req) => {
    const query = req.query();
    const topic = requireParam(query, 'topic');
    for (const r of db.findRegistrations(Category.Channel, topic, WILDCARD)) {
      lookupd.logger.info(`DB: removing channel(${r.subKey}) from topic(${topic})`);
      db.removeRegistration(r);
    }
    for (const r of db.findRegistrations(Category.Topic, topic, '')) {
      lookupd.logger.info(`DB: removing topic(${topic})`);
      db.removeRegistration(r);
    }
    return EMPTY;
  });

  route('POST', '/topic/tombstone', (req) => {
    const query = req.query();
    const topic = requireParam(query, 'topic');
    const node = requireParam(query, 'node');
    lookupd.logger.info(`DB: setting tombstone for producer@${node} of topic(${topic})`);
    const now = lookupd.clock.wallMs();
    for (const p of db.findProducers(Category.Topic, topic, '')) {
      if (`${p.peerInfo.broadcastAddress}:${p.peerInfo.httpPort}` === node) p.tombstone(now);
    }
    return EMPTY;
  });

  route('POST', '/channel/create', (req) => {
    const query = req.query();
    const { topic, channel } = topicChannelArgs(query);
    lookupd.logger.info(`DB: adding channel(${channel}) in topic(${topic})`);
    db.addRegistration({ category: Category.Channel, key: topic, subKey: channel });
    lookupd.logger.info(`DB: adding topic(${topic})`);
    db.addRegistration({ category: Category.Topic, key: topic, subKey: '' });
    return EMPTY;
  });

  route('POST', '/channel/delete', (req) => {
    const query = req.query();
    const { topic, channel } = topicChannelArgs(query);
    const registrations = db.findRegistrations(Category.Channel, topic, channel);
    if (registrations.length === 0) throw new HttpError(404, 'CHANNEL_NOT_FOUND');
    lookupd.logger.info(`DB: removing channel(${channel}) from topic(${topic})`);
    for (const r of registrations) db.removeRegistration(r);
    return EMPTY;
  });

  // ---- debug ----

  route('GET', '/debug', () => {
    // Built by hand: the ns timestamps exceed 2^53 and Go writes a zero tombstone time as its
    // (overflowed) UnixNano, so both are printed as exact integers from BigInts. Go sorts map keys.
    const groups = new Map<string, string[]>();
    for (const { registration: r, producers } of db.all()) {
      if (producers.length === 0) continue; // Go appends per producer: empty keys never appear
      const key = `${r.category}:${r.key}:${r.subKey}`;
      const items = groups.get(key) ?? [];
      for (const p of producers) {
        const peer = p.peerInfo;
        const tombstonedAt = p.tombstonedAtMs === null ? GO_ZERO_TIME_UNIX_NANO : msToNs(p.tombstonedAtMs);
        items.push(
          `{"broadcast_address":${goJson(peer.broadcastAddress)},"hostname":${goJson(peer.hostname)},` +
            `"http_port":${peer.httpPort},"id":${goJson(peer.id)},"last_update":${msToNs(peer.lastUpdateMs)},` +
            `"tcp_port":${peer.tcpPort},"tombstoned":${p.tombstoned},"tombstoned_at":${tombstonedAt},` +
            `"version":${goJson(peer.version)}}`,
        );
      }
      groups.set(key, items);
    }
    const keys = [...groups.keys()].sort();
    return new JsonText(`{${keys.map((k) => `${goJson(k)}:[${(groups.get(k) as string[]).join(',')}]`).join(',')}}`);
  });

  return v1.handle;
}

/** Go's `time.Time{}.UnixNano()`: year 1 overflows int64 and wraps to this value. */
const GO_ZERO_TIME_UNIX_NANO = '-6795364578871345152';

function msToNs(ms: number): string {
  return String(BigInt(Math.round(ms * 1000)) * 1000n);
}

/** PeerInfo as NSQ's json tags write it, in struct order. */
function peerJson(peer: PeerInfo): LookupPeer {
  return {
    remote_address: peer.remoteAddress,
    hostname: peer.hostname,
    broadcast_address: peer.broadcastAddress,
    tcp_port: peer.tcpPort,
    http_port: peer.httpPort,
    version: peer.version,
  };
}
