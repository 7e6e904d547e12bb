/**
 * `transport`: @nsq-ts/client in each --transport-modes mode on one broker (started with a
 * throwaway certificate): --transport-clients processes of publishMany ingest for
 * --transport-duration s, then as many consumers draining --transport-messages pre-published with
 * raw MPUB (capped at --transport-duration s); several processes, so that the broker is the limit. Each phase
 * checks in the broker's /stats that its connection really is in that mode.
 */
import { execFileSync } from 'node:child_process';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import zlib from 'node:zlib';
import { makeBodies } from '../lib/bodies.js';
import { freePort, httpRequest } from '../lib/broker.js';
import { CLIENT_WORKER, sum } from '../lib/generators.js';
import { checked, choice, choiceList, file, int, seconds } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { fmtInt, log, round, sleep } from '../lib/util.js';

/**
 * @import { Generator } from '../lib/generators.js'
 * @import { HostPort, Scenario, TransportFlags } from '../lib/types.js'
 */

/**
 * What each mode asks for in IDENTIFY (deflate at --deflate-level).
 * @type {Record<string, { tls?: boolean, snappy?: boolean, deflate?: boolean }>}
 */
const TRANSPORT_MODES = {
  plain: {},
  snappy: { snappy: true },
  deflate: { deflate: true },
  tls: { tls: true },
  'tls+snappy': { tls: true, snappy: true },
  'tls+deflate': { tls: true, deflate: true },
};

export const options = {
  transportModes: choiceList('modes', Object.keys(TRANSPORT_MODES), { defaultText: 'all six' }),
  transportDuration: seconds('length of each publish phase and cap of each consume phase', 5),
  transportMessages: int('messages pre-published per consume phase', 1_000_000),
  transportClients: int(
    'client processes per phase (publishers, or consumers sharing the messages): enough that none is the limit',
    3,
  ),
  transportBody: choice("message bodies: json, different compressible records; x, all 'x' (compresses ~100×)", 'json', [
    'json',
    'x',
  ]),
  deflateLevel: checked(
    int('deflate level the client asks for (nsqd caps it at --max-deflate-level)', 6),
    (n) => n <= 9,
    '1..9',
  ),
  transportWorkers: int("the spawned broker's --transport-workers (0: not passed, the broker's default)", 0, {
    min: 0,
  }),
  tlsCa: file('on an external broker: the CA of its certificate (without it the TLS modes are skipped)', null),
};

/** @typedef {{ dir: string, cert: string, key: string }} Certificate */

/** @type {Certificate | null} the spawned broker's certificate, made by setup() */
let certificate = null;

/**
 * A throwaway self-signed certificate for 127.0.0.1 (1 day), in a fresh temp dir.
 * @returns {Certificate}
 */
function makeCertificate() {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'nsq-ts-bench-tls-'));
  const cert = path.join(dir, 'cert.pem');
  const key = path.join(dir, 'key.pem');
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-days',
      '1',
      '-subj',
      '/CN=127.0.0.1',
      '-addext',
      'subjectAltName=IP:127.0.0.1',
      '-keyout',
      key,
      '-out',
      cert,
    ],
    { stdio: ['ignore', 'ignore', 'pipe'], timeout: 30_000 },
  );
  return { dir, cert, key };
}

/**
 * What the broker's /stats says about the clients on `topic` (the producers that published to
 * it, or the channel's consumers): their tls / snappy / deflate flags, so a phase proves it ran
 * in the mode it claims. /stats lists every producer of the node: the previous mode's may still
 * be there, closing.
 * @param {HostPort} http
 * @param {string} topic
 * @param {string} role
 * @returns {Promise<TransportFlags[]>}
 */
async function brokerTransport(http, topic, role) {
  const q = `/stats?format=json&topic=${encodeURIComponent(topic)}&include_clients=true`;
  const res = await httpRequest(http, 'GET', q, 10_000);
  if (res.status !== 200) throw new Error(`GET ${q} → ${res.status}`);
  /**
   * @typedef {{ tls?: boolean, tls_version?: string, tls_cipher_suite?: string, snappy?: boolean,
   *   deflate?: boolean, pub_counts?: { topic: string, count: number }[] }} StatsClient
   */
  /** @type {{ producers?: StatsClient[], topics?: { channels?: { clients?: StatsClient[] }[] }[] }} */
  const st = JSON.parse(res.body);
  const clients =
    role === 'pub'
      ? (st.producers ?? []).filter((c) => (c.pub_counts ?? []).some((p) => p.topic === topic && p.count > 0))
      : (st.topics ?? []).flatMap((t) => (t.channels ?? []).flatMap((c) => c.clients ?? []));
  return clients.map((c) => ({
    tls: Boolean(c.tls),
    tlsVersion: c.tls_version || null,
    tlsCipherSuite: c.tls_cipher_suite || null,
    snappy: Boolean(c.snappy),
    deflate: Boolean(c.deflate),
  }));
}

/** @param {TransportFlags} t */
function describeTransport(t) {
  const parts = [];
  if (t.tls) parts.push(`TLS (${[t.tlsVersion, t.tlsCipherSuite].filter(Boolean).join(' ') || '?'})`);
  if (t.snappy) parts.push('snappy');
  if (t.deflate) parts.push('deflate');
  return parts.length === 0 ? 'plain' : parts.join(' + ');
}

/** @type {Scenario} */
export default {
  name: 'transport',
  description:
    'per mode of --transport-modes (plain, snappy, deflate, tls, tls+snappy, tls+deflate): @nsq-ts/client publishMany for --transport-duration s, then a consumer draining --transport-messages; the broker gets a throwaway self-signed certificate, and its /stats must report the mode',
  options,
  budgetSeconds: (o) => o.transportModes.length * (o.transportDuration * 9 + 90) + 60,
  setup(o, external) {
    // The spawned broker gets a throwaway self-signed certificate for 127.0.0.1 (its own CA); the
    // TLS clients verify it against that file.
    if (external) return;
    const c = makeCertificate();
    certificate = c;
    o.tlsCa = c.cert;
    process.on('exit', () => fs.rmSync(c.dir, { recursive: true, force: true }));
  },
  // nsqd opens an HTTPS listener too once it has a certificate (0.0.0.0:4152 by default): on a
  // free loopback port instead, so it neither leaves loopback nor collides with another nsqd.
  async broker(o) {
    const workers = o.transportWorkers > 0 ? [`--transport-workers=${o.transportWorkers}`] : [];
    if (certificate === null) return { flags: workers };
    const https = `--https-address=127.0.0.1:${await freePort()}`;
    return { flags: [`--tls-cert=${certificate.cert}`, `--tls-key=${certificate.key}`, https, ...workers] };
  },
  async run(b, result) {
    const o = b.opts;
    const { topic, channel } = result;
    await b.deleteTopic(topic); // the per-mode topics below are used
    const bodies = makeBodies(o.batchSize, o.msgSize, o.transportBody);
    const batch = Buffer.concat(bodies);
    const ratio = batch.length / zlib.deflateRawSync(batch, { level: o.deflateLevel }).length;
    result.body = { kind: o.transportBody, deflateRatioPerBatch: round(ratio, 2) };
    result.prepublish = [];
    log(
      `  bodies: ${o.transportBody === 'json' ? 'JSON-like records' : "all 'x'"}; ` +
        `one batch (${o.batchSize} × ${o.msgSize} B) deflates ${ratio.toFixed(1)}× at level ${o.deflateLevel}`,
    );
    const ms = o.transportDuration * 1000;
    for (const mode of o.transportModes) {
      const want = TRANSPORT_MODES[mode];
      if (want.tls && b.tlsCaFile === null) {
        result.notes.push(`${mode}: skipped (external broker and no --tls-ca)`);
        log(`  ${mode}: skipped (external broker and no --tls-ca)`);
        continue;
      }
      const transport = { ...want, ...(want.deflate ? { deflateLevel: o.deflateLevel } : {}) };
      const extra = { client: 'ours', channel, transport, tlsCaFile: b.tlsCaFile, bodyKind: o.transportBody };
      const slug = mode.replace('+', '_');
      /**
       * Compares what the broker reports with what the mode asked for; a mismatch fails the
       * scenario. Polls from the phase's start until the broker lists the client (a consumer
       * connects only once started, and may be done within a second).
       * @param {string} t
       * @param {string} role
       * @param {string} label
       * @param {Generator} gen
       * @returns {Promise<{ text: string, seen: TransportFlags[] }>}
       */
      const check = async (t, role, label, gen) => {
        try {
          /** @type {TransportFlags[]} */
          let seen = [];
          for (let i = 0; i < 100 && seen.length === 0 && !gen.settled; i++) {
            await sleep(i === 0 ? 20 : 50);
            seen = await brokerTransport(b.nsqd.http, t, role);
          }
          if (seen.length === 0) return { text: 'broker listed no client', seen };
          const bad = seen.filter(
            (c) =>
              c.tls !== Boolean(want.tls) || c.snappy !== Boolean(want.snappy) || c.deflate !== Boolean(want.deflate),
          );
          if (bad.length > 0) {
            result.ok = false;
            result.notes.push(`${label}: broker reports ${describeTransport(bad[0])}, wanted ${mode}`);
          }
          return { text: describeTransport(seen[0]), seen };
        } catch (err) {
          return { text: `no /stats: ${/** @type {Error} */ (err).message}`, seen: [] };
        }
      };

      // Ingest: publishMany batches, --pipeline outstanding, for --transport-duration seconds.
      {
        const label = `${mode} publishMany`;
        const t = `${topic}_${slug}_pub`;
        await b.createTopicChannel(t, channel);
        const gens = Array.from({ length: o.transportClients }, (_, i) =>
          b.worker(CLIENT_WORKER, 'mpub', i, `ours-mpub-${slug}-${i}`, { topic: t, ...extra }),
        );
        await b.startAll(gens);
        const seen = check(t, 'pub', label, gens[0]);
        const timeline = await b.tick(label, [gens], ms);
        for (const g of gens) g.stop();
        const rs = await b.results(gens);
        const p = phase(label, rs, 'pub', timeline, 0, gens);
        const negotiated = await seen;
        Object.assign(p, { client: 'ours', mode, transport, negotiated: negotiated.seen });
        p.note = `${o.transportClients} clients, ${o.pipeline} × ${o.batchSize} outstanding each; broker: ${negotiated.text}`;
        result.phases.push(p);
        await b.deleteTopic(t);
      }

      // Consume: --transport-messages pre-published with raw MPUB (plain), then a consumer in this
      // mode until it has them all or --transport-duration seconds have passed.
      {
        const label = `${mode} consume`;
        const t = `${topic}_${slug}_sub`;
        await b.createTopicChannel(t, channel);
        const prePhase = await b.prepublish(
          t,
          `prepublish for ${mode}`,
          o.transportMessages,
          (o.transportDuration * 6 + 60) * 1000,
          { bodyKind: o.transportBody },
        );
        result.prepublish.push(prePhase);
        // Each consumer stops after its share; what it had in flight goes to the others.
        const share = Math.ceil(o.transportMessages / o.transportClients);
        const gens = Array.from({ length: o.transportClients }, (_, i) =>
          b.worker(CLIENT_WORKER, 'sub', i, `ours-sub-${slug}-${i}`, { topic: t, maxMessages: share, ...extra }),
        );
        await b.startAll(gens);
        const seen = check(t, 'sub', label, gens[0]);
        const timeline = await b.tick(label, [gens], ms, { until: () => gens.every((g) => g.settled) });
        const complete = sum(gens, 'msgs') >= o.transportMessages;
        for (const g of gens) g.stop();
        const rs = await b.results(gens);
        const p = phase(label, rs, 'sub', timeline, 0, gens);
        const negotiated = await seen;
        Object.assign(p, {
          client: 'ours',
          mode,
          transport,
          negotiated: negotiated.seen,
          expected: o.transportMessages,
        });
        p.note =
          `${o.transportClients} consumers, maxInFlight ${o.rdy} each, ${complete ? `all ${fmtInt(o.transportMessages)}` : `${o.transportDuration} s cap`}; ` +
          `broker: ${negotiated.text}`;
        result.phases.push(p);
        await b.deleteTopic(t);
      }
    }
  },
};
