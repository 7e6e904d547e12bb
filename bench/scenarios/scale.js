/**
 * `scale`: how one host uses all its cores. One nsqd is one event loop, so the way past one core
 * is more nsqd processes registered with nsqlookupd (DESIGN.md §2, "Delivery without
 * goroutines"). Per variant of --scale-variants (default `1,2,2:pin`): one nsqlookupd and N nsqds
 * (each `--lookupd-tcp-address` of it, `--broadcast-address=127.0.0.1`, its own `--node-id`, data
 * path and ports; `N:pin` pins nsqd i to CPU i mod cores with taskset), then the bench's usual
 * load split evenly over them — --scale-connections MPUB publishers (200 × 200 B, 4 in flight)
 * pinned round-robin to the nsqds, and as many consumers (RDY 2500, FIN all) placed round-robin
 * over the nsqds that nsqlookupd's `/lookup` returns for the topic (what a lookupd-discovering
 * Consumer does):
 *
 *   publish only   publishers for --duration s into a topic whose channel has no consumer
 *   consume only   that whole backlog, on every nsqd at once (start → last message)
 *   both           publishers and consumers at once for --duration s, on a second topic
 *   client pool    @nsq-ts/client Producers pooled over every nsqd and Consumers that find them
 *                  through nsqlookupd, --duration s, on a third topic (--scale-pool)
 *
 * Each row: the aggregate msgs/s; per nsqd its msgs/s and CPU (% of one core, all its threads);
 * nsqlookupd's CPU; the generators' CPU summed (they run on the same cores, so the nsqds can have
 * at most cores × 100 % minus that); the machine's CPU. It starts and stops its own daemons (no
 * --nsqd-*).
 */
import os from 'node:os';
import { httpRequest, spawnDaemon } from '../lib/broker.js';
import { listProfiles, summarizeProfiles } from '../lib/cpuprofile.js';
import { CLIENT_WORKER, sum, waitReady } from '../lib/generators.js';
import { int, onOff } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { fmt1, fmtInt, log, round, sleep } from '../lib/util.js';
import { bothLine } from './both.js';

/**
 * @import { Bench } from '../lib/bench.js'
 * @import { Generator } from '../lib/generators.js'
 * @import { HostPort, OptionSpec, PhaseRow, RunningResult, Scenario, SpawnedBroker, TickTimeline, WorkerResult } from '../lib/types.js'
 */

/** @typedef {{ nsqds: number, pin: boolean, label: string }} Variant */
/** @typedef {SpawnedBroker & { name: string, cpus: string | null }} Nsqd */
/** @typedef {{ lookupd: SpawnedBroker, nsqds: Nsqd[] }} Daemons */

const LOOKUP_TIMEOUT_MS = 15_000;
/** The pool phase's @nsq-ts/client processes: this many Producers and as many Consumers. */
const POOL_PROCS = 2;

/** @type {OptionSpec<Variant[]>} `1,2,2:pin` → [{ nsqds, pin, label }] */
const scaleVariants = {
  arg: 'LIST',
  default: '1,2,2:pin',
  help: 'nsqd processes per variant, each behind one nsqlookupd; N:pin pins nsqd i to CPU i mod cores with taskset',
  parse(raw) {
    const variants = String(raw)
      .split(',')
      .map((x) => x.trim())
      .filter((x) => x !== '')
      .map((x) => {
        const m = /^(\d+)(:pin)?$/.exec(x);
        const n = m === null ? 0 : Number(m[1]);
        if (m === null || n < 1 || n > 16) throw new Error(`--scale-variants: N or N:pin with N in 1..16, got ${x}`);
        const pin = m[2] !== undefined;
        return { nsqds: n, pin, label: `${n} nsqd${pin ? ' pinned' : ''}` };
      });
    if (variants.length === 0) throw new Error('--scale-variants: at least one variant');
    return variants;
  },
};

export const options = {
  scaleVariants,
  scaleConnections: int('publisher and consumer connections in all, split evenly over the nsqds', 4),
  scalePool: onOff(
    'a fourth phase per variant through @nsq-ts/client (2 Producers pooled over every nsqd, 2 Consumers discovering them via nsqlookupd)',
    'on',
  ),
};

/** The nsqd each generator of a variant was placed on (its index among the variant's nsqds). */
/** @type {WeakMap<Generator, number>} */
const placedOn = new WeakMap();

/**
 * nsqlookupd's producers of `topic` once there are `n` of them.
 * @param {SpawnedBroker} lookupd
 * @param {string} topic
 * @param {number} n
 * @returns {Promise<HostPort[]>}
 */
async function lookupProducers(lookupd, topic, n) {
  const deadline = Date.now() + LOOKUP_TIMEOUT_MS;
  let last = 'no answer';
  while (Date.now() < deadline) {
    try {
      const res = await httpRequest(lookupd.http, 'GET', `/lookup?topic=${encodeURIComponent(topic)}`);
      if (res.status === 200) {
        /** @type {{ broadcast_address: string, tcp_port: number }[]} */
        const producers = JSON.parse(res.body).producers ?? [];
        if (producers.length >= n) {
          return producers.map((p) => ({ host: p.broadcast_address, port: p.tcp_port }));
        }
        last = `${producers.length} of ${n} producers`;
      } else {
        last = `${res.status} ${res.body.slice(0, 100)}`;
      }
    } catch (err) {
      last = /** @type {Error} */ (err).message;
    }
    await sleep(100);
  }
  throw new Error(`nsqlookupd /lookup?topic=${topic}: ${last} after ${LOOKUP_TIMEOUT_MS} ms`);
}

/**
 * POST /topic/create and /channel/create on every nsqd (each registers both with nsqlookupd).
 * @param {Nsqd[]} nsqds
 * @param {string} topic
 * @param {string} channel
 */
async function createEverywhere(nsqds, topic, channel) {
  const q = `topic=${encodeURIComponent(topic)}`;
  for (const d of nsqds) {
    for (const p of [`/topic/create?${q}`, `/channel/create?${q}&channel=${encodeURIComponent(channel)}`]) {
      const res = await httpRequest(d.http, 'POST', p);
      if (res.status !== 200) throw new Error(`${d.name}: POST ${p} → ${res.status} ${res.body.slice(0, 200)}`);
    }
  }
}

/**
 * The CPU and msgs/s split of one phase: `p` (from phase() over all generators) gets `variant`,
 * `nsqds` ([{ name, cpu, msgsPerSec, rssMiB }]), `lookupdCpuPct`, `gensCpuPct`, `brokersCpuPct`
 * and a note. A generator's messages count for the nsqd it was placed on; pooled generators have
 * none, and `split` (messages per nsqd from its /stats) gives each nsqd's share.
 * @param {{ variant: Variant, daemons: Daemons }} ctx
 * @param {PhaseRow} p
 * @param {TickTimeline} timeline
 * @param {Generator[]} gens
 * @param {WorkerResult[]} rs
 * @param {number[] | null} [split]
 */
function annotate(ctx, p, timeline, gens, rs, split = null) {
  const { variant, daemons } = ctx;
  const byName = new Map(timeline.watched.map((w) => [w.name, w]));
  const splitTotal = split === null ? 0 : split.reduce((a, x) => a + x, 0);
  p.kind = 'throughput';
  p.variant = variant.label;
  p.nsqds = daemons.nsqds.map((d, k) => {
    const w = byName.get(d.name);
    let msgs = 0;
    let msgsPerSec = 0;
    if (split !== null) {
      msgs = split[k];
      msgsPerSec = splitTotal > 0 ? Math.round((p.msgsPerSec * split[k]) / splitTotal) : 0;
    } else {
      const mine = rs.filter((_, i) => placedOn.get(gens[i]) === k);
      const part = mine.length === 0 ? null : phase(p.phase, mine, p.role, timeline, 0);
      msgs = part?.msgs ?? 0;
      msgsPerSec = part?.msgsPerSec ?? 0;
    }
    return {
      name: d.name,
      cpus: d.cpus,
      cpuPct: w?.cpuPct ?? null,
      rssMiB: w?.rssKiB ? round(w.rssKiB / 1024, 0) : null,
      msgs,
      msgsPerSec,
    };
  });
  p.lookupdCpuPct = byName.get('nsqlookupd')?.cpuPct ?? null;
  p.gensCpuPct = timeline.gensCpuPct;
  p.brokersCpuPct = round(
    p.nsqds.reduce((a, d) => a + (d.cpuPct ?? 0), 0),
    1,
  );
  const each = p.nsqds
    .map((d) => `${d.name}${d.cpus === null ? '' : `@cpu${d.cpus}`} ${fmtInt(d.msgsPerSec)} at ${fmt1(d.cpuPct)}%`)
    .join(', ');
  p.note =
    `${each}; gens Σ ${fmt1(p.gensCpuPct)}%, lookupd ${fmt1(p.lookupdCpuPct)}%, ` +
    `machine ${fmt1(p.machineCpuPct)}% of ${os.cpus().length * 100}%`;
  return p;
}

/**
 * Generators of one role, connection i on `targets[i % targets.length]` (index into nsqds).
 * @param {Bench} b
 * @param {string} role
 * @param {number} n
 * @param {number[]} targets
 * @param {Daemons} daemons
 * @param {Record<string, unknown>} extra
 */
function place(b, role, n, targets, daemons, extra) {
  return Array.from({ length: n }, (_, i) => {
    const k = targets[i % targets.length];
    const d = daemons.nsqds[k];
    const g = b.gen(role, i, { host: d.tcp.host, port: d.tcp.port, name: `${role}#${i}@${d.name}`, ...extra });
    placedOn.set(g, k);
    return g;
  });
}

/**
 * Consumers go where nsqlookupd says the topic is: the index of each producer among the nsqds.
 * @param {Daemons} daemons
 * @param {string} topic
 */
async function discoveredTargets(daemons, topic) {
  const producers = await lookupProducers(daemons.lookupd, topic, daemons.nsqds.length);
  return producers.map((p) => {
    const k = daemons.nsqds.findIndex((d) => d.tcp.port === p.port);
    if (k < 0) throw new Error(`nsqlookupd lists ${p.host}:${p.port} for ${topic}, not one of ours`);
    return k;
  });
}

/**
 * What each nsqd took in and handed out of `topic` so far, from its /stats: { in, out } arrays
 * (in: the topic's message_count; out: the channel's messages minus its depth, in flight and
 * deferred, i.e. finished ones).
 * @param {Nsqd[]} nsqds
 * @param {string} topic
 * @param {string} channel
 */
async function perNsqdCounts(nsqds, topic, channel) {
  /** @type {{ in: number[], out: number[] }} */
  const counts = { in: [], out: [] };
  for (const d of nsqds) {
    const q = `/stats?format=json&topic=${encodeURIComponent(topic)}&channel=${encodeURIComponent(channel)}`;
    /** @type {{ topics?: { topic_name: string, message_count?: number, channels?: { channel_name: string, message_count: number, depth: number, in_flight_count: number, deferred_count: number }[] }[] }} */
    const st = JSON.parse((await httpRequest(d.http, 'GET', q, 10_000)).body);
    const t = (st.topics ?? []).find((x) => x.topic_name === topic);
    const c = t?.channels?.find((x) => x.channel_name === channel);
    counts.in.push(t?.message_count ?? 0);
    counts.out.push(c ? c.message_count - c.depth - c.in_flight_count - c.deferred_count : 0);
  }
  return counts;
}

/**
 * nsqlookupd plus `variant.nsqds` nsqds registered with it; `b.watched` follows them all.
 * @param {Bench} b
 * @param {Variant} variant
 * @returns {Promise<Daemons>}
 */
async function startDaemons(b, variant) {
  const o = b.opts;
  const cores = os.cpus().length;
  const lookupd = await spawnDaemon(o, [], { lookupd: true });
  /** @type {Nsqd[]} */
  const nsqds = [];
  try {
    for (let k = 0; k < variant.nsqds; k++) {
      const cpus = variant.pin ? String(k % cores) : null;
      const flags = [
        `--lookupd-tcp-address=${lookupd.tcp.host}:${lookupd.tcp.port}`,
        '--broadcast-address=127.0.0.1',
        // Distinct message-ID spaces: both share a hostname, whose hash is the default node id.
        `--node-id=${k + 1}`,
      ];
      const d = Object.assign(await spawnDaemon(o, flags, { taskset: cpus }), { name: `nsqd-${k + 1}`, cpus });
      nsqds.push(d);
      log(`  ${d.name}: pid ${d.pid}: ${d.command}`);
    }
  } catch (err) {
    for (const d of nsqds) await d.stop();
    await lookupd.stop();
    throw err;
  }
  log(`  nsqlookupd: pid ${lookupd.pid}: ${lookupd.command}`);
  b.watched = [...nsqds.map((d) => ({ name: d.name, daemon: d })), { name: 'nsqlookupd', daemon: lookupd }];
  return { lookupd, nsqds };
}

/**
 * Stops the nsqds (summarising their CPU profiles, if any) and then nsqlookupd.
 * @param {Bench} b
 * @param {Daemons} daemons
 * @param {RunningResult} result
 */
async function stopDaemons(b, daemons, result) {
  b.watched = [];
  const before = listProfiles(b.opts.brokerCpuProf);
  for (const d of daemons.nsqds) await d.stop();
  const profiles = summarizeProfiles(b.opts.brokerCpuProf, before, result.phases);
  if (profiles !== undefined) result.cpuProfiles = [...(result.cpuProfiles ?? []), ...profiles];
  await daemons.lookupd.stop();
}

/**
 * One variant's phases, pushed onto result.phases.
 * @param {Bench} b
 * @param {Variant} variant
 * @param {RunningResult} result
 */
async function runVariant(b, variant, result) {
  const o = b.opts;
  const { topic, channel } = result;
  const n = o.scaleConnections;
  const tag = variant.label.replace(/\s+/g, '_');
  const daemons = await startDaemons(b, variant);
  const ctx = { variant, daemons };
  try {
    const all = daemons.nsqds.map((_, k) => k);
    /** @param {string} what */
    const label = (what) => `${variant.label}: ${what}`;

    // publish only, into a channel without consumers: the backlog of the next phase.
    const t1 = `${topic}_${tag}`;
    await createEverywhere(daemons.nsqds, t1, channel);
    const targets1 = await discoveredTargets(daemons, t1);
    // Never more than each nsqd keeps in memory (--mem-queue-size), as the consume scenario.
    const cap = Math.floor((o.memQueueSize * variant.nsqds) / n);
    const pubs = place(b, 'pub', n, all, daemons, { topic: t1, maxMessages: cap });
    await b.startAll(pubs);
    const tp = await b.tick(label('publish'), [pubs], o.duration * 1000, { until: () => pubs.every((g) => g.settled) });
    for (const g of pubs) g.stop();
    const prs = await b.results(pubs);
    const pub = annotate(ctx, phase(label('publish only'), prs, 'pub', tp, 0, pubs), tp, pubs, prs);
    result.phases.push(pub);

    // consume only: that backlog, on every nsqd at once, consumers where nsqlookupd says.
    const target = pub.msgs;
    log(`  published ${fmtInt(target)}; consuming them from ${daemons.nsqds.length} nsqd(s)`);
    const subs = place(b, 'sub', n, targets1, daemons, { topic: t1, channel });
    await b.startAll(subs);
    const limitMs = (o.duration * 6 + 30) * 1000;
    const tc = await b.tick(label('consume'), [subs], limitMs, { until: () => sum(subs, 'msgs') >= target });
    const complete = sum(subs, 'msgs') >= target;
    for (const g of subs) g.stop();
    const crs = await b.results(subs);
    const con = annotate(ctx, phase(label('consume only'), crs, 'sub', tc, 0, subs), tc, subs, crs);
    con.expected = target;
    con.complete = complete;
    if (!complete) {
      result.ok = false;
      result.notes.push(`${variant.label}: consumed ${con.msgs} of ${target} within ${limitMs / 1000} s`);
    }
    result.phases.push(con);
    for (const d of daemons.nsqds) {
      await httpRequest(d.http, 'POST', `/topic/delete?topic=${encodeURIComponent(t1)}`).catch(() => null);
    }

    // both at once, on a second topic.
    const t2 = `${topic}_${tag}_both`;
    await createEverywhere(daemons.nsqds, t2, channel);
    const targets2 = await discoveredTargets(daemons, t2);
    const bsubs = place(b, 'sub', n, targets2, daemons, { topic: t2, channel });
    const bpubs = place(b, 'pub', n, all, daemons, { topic: t2 });
    await waitReady([...bsubs, ...bpubs]);
    for (const g of bsubs) g.start();
    for (const g of bpubs) g.start();
    const tb = await b.tick(label('both'), [bpubs, bsubs], o.duration * 1000, { format: bothLine });
    for (const g of bpubs) g.stop();
    for (const g of bsubs) g.stop();
    const [bprs, bsrs] = await Promise.all([b.results(bpubs), b.results(bsubs)]);
    const bin = annotate(ctx, phase('in', bprs, 'pub', tb, 0, bpubs), tb, bpubs, bprs);
    const bout = annotate(ctx, phase('out', bsrs, 'sub', tb, 1, bsubs), tb, bsubs, bsrs);
    bin.phase = label('both: in');
    bout.phase = label('both: out');
    bout.backlog = bin.msgs - bout.msgs;
    result.phases.push(bin, bout);
    for (const d of daemons.nsqds) {
      await httpRequest(d.http, 'POST', `/topic/delete?topic=${encodeURIComponent(t2)}`).catch(() => null);
    }

    // both at once through @nsq-ts/client, as an application would: Producers pooled over every
    // nsqd (the pool picks hosts by latency), Consumers that find the nsqds through nsqlookupd.
    if (o.scalePool) {
      const t3 = `${topic}_${tag}_pool`;
      await createEverywhere(daemons.nsqds, t3, channel);
      await lookupProducers(daemons.lookupd, t3, daemons.nsqds.length);
      const client = { worker: CLIENT_WORKER, client: 'ours' };
      const lookupdAddress = `${daemons.lookupd.http.host}:${daemons.lookupd.http.port}`;
      const nsqdAddresses = daemons.nsqds.map((d) => `${d.tcp.host}:${d.tcp.port}`);
      const csubs = Array.from({ length: POOL_PROCS }, (_, i) =>
        b.gen('sub', i, {
          ...client,
          name: `pool-sub#${i}`,
          topic: t3,
          channel,
          lookupdHttpAddresses: [lookupdAddress],
        }),
      );
      const cpubs = Array.from({ length: POOL_PROCS }, (_, i) =>
        b.gen('mpub', i, { ...client, name: `pool-mpub#${i}`, topic: t3, nsqdAddresses }),
      );
      await waitReady([...csubs, ...cpubs]);
      for (const g of csubs) g.start();
      for (const g of cpubs) g.start();
      const tpool = await b.tick(label('client pool'), [cpubs, csubs], o.duration * 1000, { format: bothLine });
      const counts = await perNsqdCounts(daemons.nsqds, t3, channel);
      for (const g of cpubs) g.stop();
      for (const g of csubs) g.stop();
      const [cprs, csrs] = await Promise.all([b.results(cpubs), b.results(csubs)]);
      const cin = annotate(ctx, phase('in', cprs, 'pub', tpool, 0, cpubs), tpool, cpubs, cprs, counts.in);
      const cout = annotate(ctx, phase('out', csrs, 'sub', tpool, 1, csubs), tpool, csubs, csrs, counts.out);
      cin.phase = label('client pool: in');
      cout.phase = label('client pool: out');
      cin.note = `${POOL_PROCS} Producers (publishMany ${o.batchSize} × ${o.msgSize} B, ${o.pipeline} out) pooled; ${cin.note}`;
      cout.note = `${POOL_PROCS} Consumers (maxInFlight ${o.rdy}) via nsqlookupd; ${cout.note}`;
      result.phases.push(cin, cout);
    }
  } finally {
    await stopDaemons(b, daemons, result);
  }
}

/** @type {Scenario} */
export default {
  name: 'scale',
  description:
    'per variant of --scale-variants: one nsqlookupd and N nsqds behind it on this host under the same total load (publish only, consume only, both, and through @nsq-ts/client pooled over all nsqds); aggregate and per-nsqd msgs/s and CPU, each variant against the first',
  options,
  slow: true,
  ownDaemons: true,
  check(o) {
    for (const v of o.scaleVariants) {
      if (o.scaleConnections % v.nsqds !== 0) {
        throw new Error(`--scale-connections ${o.scaleConnections} does not split evenly over ${v.nsqds} nsqds`);
      }
    }
  },
  budgetSeconds: (o) => o.scaleVariants.length * (o.duration * 10 + 150) + 60,
  async run(b, result) {
    const o = b.opts;
    if (o.nsqdTcpAddress || o.nsqdHttpAddress) {
      throw new Error('scale starts its own nsqds and nsqlookupd: run it without --nsqd-*-address');
    }
    result.scale = {
      cores: os.cpus().length,
      connections: o.scaleConnections,
      variants: o.scaleVariants.map((v) => v.label),
    };
    log(
      `  load: ${o.scaleConnections} MPUB publishers (${o.batchSize} × ${o.msgSize} B, ${o.pipeline} outstanding) and ` +
        `${o.scaleConnections} consumers (RDY ${o.rdy}) in all, split evenly over the nsqds`,
    );
    for (const variant of o.scaleVariants) {
      log(`  -- ${variant.label} (nsqlookupd + ${variant.nsqds} nsqd${variant.pin ? ', pinned with taskset' : ''})`);
      await runVariant(b, variant, result);
    }
    // Each variant against the first, per phase kind (publish only, consume only, both: in/out).
    const first = o.scaleVariants[0].label;
    const kinds = ['publish only', 'consume only', 'both: in', 'both: out', 'client pool: in', 'client pool: out'];
    /** @type {Record<string, Record<string, number>>} */
    const speedup = {};
    result.scale.speedup = speedup;
    for (const v of o.scaleVariants.slice(1)) {
      /** @type {Record<string, number>} */
      const ratios = {};
      for (const k of kinds) {
        const base = result.phases.find((p) => p.phase === `${first}: ${k}`);
        const mine = result.phases.find((p) => p.phase === `${v.label}: ${k}`);
        if (base && mine && base.msgsPerSec > 0) ratios[k] = round(mine.msgsPerSec / base.msgsPerSec, 2);
      }
      speedup[v.label] = ratios;
      result.notes.push(
        `${v.label} vs ${first}: ${Object.entries(ratios)
          .map(([k, r]) => `${k} ×${r}`)
          .join(', ')}`,
      );
    }
  },
};
