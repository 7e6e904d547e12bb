/**
 * The performance scenarios of issue 9 that run against today's in-memory broker: channel fan-out,
 * single-message PUB with a window in flight, publish-to-deliver latency at a paced offered load,
 * RSS with 1 M queued messages, 10,000 idle connections, 10,000 idle topics. Each is a method-like
 * function over the Bench of run.js (`b`), with run.js's helpers passed in (`h`), and fills
 * `result.phases` with rows of the same shape as the other scenarios (plus `kind`: 'throughput',
 * 'latency', 'memory' or 'idle', which the SVG chart uses).
 */
import fs from 'node:fs';
import { fileURLToPath } from 'node:url';
import { httpRequest } from './broker.js';
import { HTTP_WORKER, sum, waitReady } from './generators.js';

export const PERF_WORKER = fileURLToPath(new URL('./perf-worker.js', import.meta.url));
export const PERF_SCENARIOS = ['fanout', 'pub-single', 'latency', 'rss-1m', 'idle-conns', 'idle-topics'];

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Open file descriptors and the soft fd limit of a local process (null if unreadable). */
function fdInfo(pid) {
  try {
    const open = fs.readdirSync(`/proc/${pid}/fd`).length;
    const m = fs.readFileSync(`/proc/${pid}/limits`, 'utf8').match(/^Max open files\s+(\d+)/m);
    return { open, limit: m ? Number(m[1]) : null };
  } catch {
    return null;
  }
}

/** A phase row built by hand (idle / memory rows have no message stream). */
function manualPhase(name, kind, { msgs = 0, seconds = null, rate = false, timeline = null, gens = [], rs = [] }, h) {
  if (seconds === null) seconds = (timeline?.wallMs ?? 0) / 1000;
  return {
    phase: name,
    kind,
    role: 'none',
    msgs,
    bytes: 0,
    seconds: h.round(seconds, 3),
    msgsPerSec: rate && seconds > 0 ? h.round(msgs / seconds, 0) : 0,
    mibPerSec: 0,
    generators: rs.map((r, i) => ({
      name: gens[i]?.name ?? `gen#${i}`,
      msgs: r.msgs,
      heartbeats: r.heartbeats,
      softErrors: r.softErrors,
      cpuPct: h.round(r.cpu?.pct ?? 0, 1),
      cpuUserMs: h.round(r.cpu?.userMs ?? 0, 0),
      cpuSystemMs: h.round(r.cpu?.systemMs ?? 0, 0),
    })),
    broker: timeline?.broker ?? null,
    machineCpuPct: timeline?.machineCpuPct ?? null,
    otherCpuPct: timeline?.otherCpuPct ?? null,
    timeline: (timeline?.samples ?? []).map((s) => ({
      t: s.t,
      brokerCpuPct: s.brokerCpuPct,
      brokerRssKiB: s.brokerRssKiB,
    })),
  };
}

const mib = (kib) => (kib === null || kib === undefined ? null : Math.round((kib / 1024) * 10) / 10);

// ---- fanout ---------------------------------------------------------------------------------------

/**
 * One topic, N channels (--fanout-channels, default 1,2,4), one consumer connection per channel
 * (RDY --rdy, FIN everything), --connections MPUB publishers at full speed, --duration s per N.
 * Rows: published msgs/s, and delivered msgs/s per channel (mean; each channel in the note).
 */
export async function fanout(b, topic, result, h) {
  const o = b.opts;
  await b.deleteTopic(topic);
  for (const n of o.fanoutChannels) {
    const t = `${topic}_${n}ch`;
    await b.http('POST', `/topic/create?topic=${encodeURIComponent(t)}`);
    for (let i = 0; i < n; i++) {
      await b.http('POST', `/channel/create?topic=${encodeURIComponent(t)}&channel=ch${i}`);
    }
    const subs = Array.from({ length: n }, (_, i) => b.gen('sub', i, { topic: t, channel: `ch${i}` }));
    const pubs = b.gens('pub', o.connections, { topic: t });
    await waitReady([...subs, ...pubs]);
    for (const g of subs) g.start();
    for (const g of pubs) g.start();
    const label = `fanout ${n} ch`;
    const timeline = await b.tick(
      label,
      [pubs, ...subs.map((s) => [s])],
      o.duration * 1000,
      undefined,
      'msg/s',
      (r) =>
        `in ${h.fmtInt(r[0]).padStart(9)} msg/s  out/ch ${r
          .slice(1)
          .map((x) => h.fmtInt(x))
          .join(' / ')}`,
    );
    for (const g of pubs) g.stop();
    for (const g of subs) g.stop();
    const [prs, srs] = await Promise.all([b.results(pubs), b.results(subs)]);
    const inPhase = h.phase(`${n} ch: in`, prs, 'pub', timeline, 0, pubs);
    inPhase.kind = 'throughput';
    inPhase.channels = n;
    const perChannel = srs.map((r, i) => h.phase('out', [r], 'sub', timeline, i + 1, [subs[i]]));
    const outMsgs = perChannel.reduce((a, p) => a + p.msgs, 0);
    const outPhase = h.phase('out', srs, 'sub', timeline, 1, subs);
    outPhase.phase = `${n} ch: out/ch`;
    outPhase.kind = 'throughput';
    outPhase.channels = n;
    outPhase.msgs = Math.round(outMsgs / n);
    outPhase.bytes = Math.round(outPhase.bytes / n);
    outPhase.msgsPerSec = h.round(perChannel.reduce((a, p) => a + p.msgsPerSec, 0) / n, 0);
    outPhase.mibPerSec = h.round(perChannel.reduce((a, p) => a + p.mibPerSec, 0) / n, 2);
    outPhase.perChannel = perChannel.map((p, i) => ({ channel: `ch${i}`, msgs: p.msgs, msgsPerSec: p.msgsPerSec }));
    outPhase.totalOutPerSec = h.round(
      perChannel.reduce((a, p) => a + p.msgsPerSec, 0),
      0,
    );
    outPhase.backlogPerChannel = Math.round(inPhase.msgs - outMsgs / n);
    inPhase.note = `${o.connections} MPUB conns, ${n} channel${n > 1 ? 's' : ''}`;
    outPhase.note =
      `mean per channel; ${perChannel.map((p) => h.fmtInt(p.msgsPerSec)).join(' / ')}; ` +
      `total out ${h.fmtInt(outPhase.totalOutPerSec)}/s; backlog/ch ~${h.fmtInt(outPhase.backlogPerChannel)}`;
    result.phases.push(inPhase, outPhase);
    await b.deleteTopic(t);
  }
}

// ---- pub-single -----------------------------------------------------------------------------------

/** Single-message PUB, --pub-window (64) in flight per connection, 1 and 2 (--pub-connections). */
export async function pubSingle(b, topic, channel, result, h) {
  const o = b.opts;
  await b.deleteTopic(topic);
  for (const c of o.pubConnections) {
    const t = `${topic}_${c}`;
    await b.createTopicChannel(t, channel);
    const gens = Array.from({ length: c }, (_, i) =>
      b.worker(PERF_WORKER, 'pub1', i, `pub1#${i}`, { topic: t, window: o.pubWindow }),
    );
    const { rs, timeline } = await b.timed(`PUB ${c} × ${o.pubWindow}`, gens, o.duration * 1000);
    const p = h.phase(`${c} conn × ${o.pubWindow} in flight`, rs, 'pub', timeline, 0, gens);
    p.kind = 'throughput';
    p.connections = c;
    p.window = o.pubWindow;
    p.note = `raw PUB, ${o.msgSize} B, refilled per read chunk`;
    result.phases.push(p);
    await b.deleteTopic(t);
  }
}

// ---- latency --------------------------------------------------------------------------------------

/**
 * Per offered rate (--latency-rates): one consumer (RDY --rdy) on a fresh topic, then one paced
 * publisher (single PUBs, open loop, send time stamped in the body) for --duration s; after it
 * stops, the consumer gets up to 10 s to receive what was acknowledged. Latency = receive − send
 * on CLOCK_MONOTONIC, the first --latency-warmup s excluded.
 */
export async function latency(b, topic, channel, result, h) {
  const o = b.opts;
  await b.deleteTopic(topic);
  for (const rate of o.latencyRates) {
    const t = `${topic}_${rate}`;
    await b.createTopicChannel(t, channel);
    const sub = b.worker(PERF_WORKER, 'lat-sub', 0, 'lat-sub', {
      topic: t,
      channel,
      warmupMs: o.latencyWarmup * 1000,
      expected: Math.ceil(rate * o.duration * 1.1),
    });
    const pub = b.worker(PERF_WORKER, 'paced', 0, 'paced-pub', { topic: t, rate });
    await waitReady([sub, pub]);
    sub.start();
    pub.start();
    const label = `latency ${rate / 1000}k/s`;
    const fmt = (r, totals) =>
      `sent-acked ${h.fmtInt(r[0]).padStart(8)} msg/s  delivered ${h.fmtInt(r[1]).padStart(8)} msg/s  lag ${h.fmtInt(totals[0] - totals[1])}`;
    const timeline = await b.tick(label, [[pub], [sub]], o.duration * 1000, undefined, 'msg/s', fmt);
    pub.stop();
    const [prs] = [await b.results([pub])];
    const acked = prs[0].msgs;
    const drainUntil = Date.now() + 10_000;
    while (sub.progress.msgs < acked && Date.now() < drainUntil && !sub.settled) await sleep(20);
    sub.stop();
    const [srs] = [await b.results([sub])];
    const p = h.phase(`${rate / 1000}k/s offered`, prs, 'pub', timeline, 0, [pub]);
    const d = h.phase('out', srs, 'sub', timeline, 1, [sub]);
    p.kind = 'latency';
    p.offeredRate = rate;
    p.generators.push(...d.generators);
    p.delivered = srs[0].msgs;
    p.deliveredPerSec = d.msgsPerSec;
    p.latency = srs[0].latency;
    p.warmupSkipped = srs[0].warmupSkipped;
    p.publisher = { sent: prs[0].sent, maxOutstanding: prs[0].maxOutstanding, maxBurst: prs[0].maxBurst };
    const L = p.latency;
    p.note =
      `p50 ${L.p50Ms} / p99 ${L.p99Ms} / p999 ${L.p999Ms} / max ${L.maxMs} ms ` +
      `(${h.fmtInt(L.n)} msgs); delivered ${h.fmtInt(p.delivered)}`;
    if (p.delivered < acked) {
      result.notes.push(`latency ${rate}: delivered ${p.delivered} of ${acked} acknowledged within 10 s after stop`);
    }
    if (rate === 50_000 && L.p99Ms !== null && L.p99Ms >= 10) {
      result.notes.push(`latency at 50k/s: p99 ${L.p99Ms} ms ≥ 10 ms target`);
    }
    result.phases.push(p);
    await b.deleteTopic(t);
  }
}

// ---- rss-1m ---------------------------------------------------------------------------------------

/**
 * --rss-messages (1,000,000) × --msg-size B published with MPUB into a topic with one channel and
 * no consumer (all in memory: --mem-queue-size is 10 M), then --settle s of nothing. RSS from
 * /proc/<pid>/status before, right after the publish, and after the settle.
 */
export async function rss1m(b, topic, channel, result, h) {
  const o = b.opts;
  await sleep(1000);
  const base = b.brokerSample();
  const pre = await b.publishPhase(topic, 'publish', {
    maxMessagesTotal: o.rssMessages,
    ms: (o.duration * 6 + 60) * 1000,
  });
  const p = h.phase(`publish ${h.fmtInt(o.rssMessages)}`, pre.rs, 'pub', pre.timeline, 0);
  if (p.msgs < o.rssMessages) throw new Error(`published ${p.msgs} of ${o.rssMessages}`);
  const after = b.brokerSample();
  p.kind = 'memory';
  const timeline = await b.tick('settle', [], o.settle * 1000, undefined, 'msg/s');
  const settled = b.brokerSample();
  const s = manualPhase(`after ${o.settle} s settle`, 'memory', { msgs: p.msgs, timeline }, h);
  let depth = null;
  let memory = null;
  try {
    const res = await httpRequest(
      b.broker.http,
      'GET',
      `/stats?format=json&topic=${encodeURIComponent(topic)}`,
      30_000,
    );
    const st = JSON.parse(res.body);
    const tp = (st.topics ?? []).find((x) => x.topic_name === topic);
    depth = { topic: tp?.depth ?? null, channel: tp?.channels?.find((c) => c.channel_name === channel)?.depth ?? null };
    memory = st.memory ?? null;
  } catch (err) {
    result.notes.push(`rss-1m: /stats failed: ${err.message}`);
  }
  const per = (x) => (base && x ? Math.round(((x.rssKiB - base.rssKiB) * 1024) / p.msgs) : null);
  result.memory = {
    messages: p.msgs,
    msgSize: o.msgSize,
    baseRssMiB: mib(base?.rssKiB),
    afterPublishRssMiB: mib(after?.rssKiB),
    afterSettleRssMiB: mib(settled?.rssKiB),
    peakRssMiB: mib(settled?.peakRssKiB),
    bytesPerMessageAfterPublish: per(after),
    bytesPerMessageAfterSettle: per(settled),
    depth,
    brokerMemoryStats: memory,
  };
  const M = result.memory;
  p.note = `RSS ${M.baseRssMiB} → ${M.afterPublishRssMiB} MiB (${M.bytesPerMessageAfterPublish} B/msg over base)`;
  s.note =
    `RSS ${M.afterSettleRssMiB} MiB (peak ${M.peakRssMiB}; ${M.bytesPerMessageAfterSettle} B/msg over base); ` +
    `depth ${depth?.channel ?? '?'} in ch`;
  if (s.broker) s.broker.rssKiB = settled?.rssKiB ?? s.broker.rssKiB;
  result.phases.push(p, s);
  if (M.afterSettleRssMiB !== null && M.afterSettleRssMiB * 1.048576 >= 355) {
    result.notes.push(`rss-1m: ${M.afterSettleRssMiB} MiB after settle ≥ 355 MB target`);
  }
}

// ---- idle-conns -----------------------------------------------------------------------------------

/**
 * --idle-connections (10,000) connections from --idle-procs (4) processes, each IDENTIFY with
 * heartbeat_interval --idle-heartbeat-interval (60000) and then silent except NOP for heartbeats.
 * Rows: the connect phase (connections/s, RSS once all are open), and --idle-seconds (10) of
 * idleness after a 2 s settle (broker CPU, RSS).
 */
export async function idleConns(b, topic, result, h) {
  const o = b.opts;
  await b.deleteTopic(topic);
  const fds = fdInfo(b.broker.pid);
  result.brokerFdLimit = fds?.limit ?? null;
  if (fds?.limit && fds.limit < o.idleConnections + 64) {
    throw new Error(`broker fd limit ${fds.limit} < ${o.idleConnections} connections + 64`);
  }
  const base = b.brokerSample();
  const procs = Math.min(o.idleProcs, o.idleConnections);
  const gens = Array.from({ length: procs }, (_, i) =>
    b.worker(PERF_WORKER, 'idle', i, `idle#${i}`, {
      count: Math.floor(o.idleConnections / procs) + (i < o.idleConnections % procs ? 1 : 0),
      concurrency: 64,
      heartbeatIntervalMs: o.idleHeartbeatInterval,
    }),
  );
  let ready = 0;
  for (const g of gens) g.ready.then(() => ready++);
  const connectTimeline = await b.tick(
    'connect',
    [gens],
    120_000,
    () => ready === procs,
    'conn/s',
    () => `${ready} of ${procs} processes have all their connections`,
  );
  await waitReady(gens, 1000);
  const connected = b.brokerSample();
  const connect = manualPhase(
    `connect ${h.fmtInt(o.idleConnections)}`,
    'idle',
    { msgs: o.idleConnections, rate: true, timeline: connectTimeline },
    h,
  );
  for (const g of gens) g.start();
  await sleep(2000);
  const idleTimeline = await b.tick('idle', [gens], o.idleSeconds * 1000, undefined, 'msg/s');
  const open = fdInfo(b.broker.pid);
  const end = b.brokerSample();
  for (const g of gens) g.stop();
  const rs = await b.results(gens);
  const idle = manualPhase(
    `idle ${o.idleSeconds} s`,
    'idle',
    { msgs: o.idleConnections, timeline: idleTimeline, gens, rs },
    h,
  );
  // The generators' CPU while connecting (reported by them at the end; the tick counted it as
  // "other", since a generator's CPU is otherwise counted from its start).
  const connectWall = connectTimeline.wallMs;
  connect.generators = rs.map((r, i) => ({
    name: gens[i].name,
    connections: r.connections,
    cpuPct: h.round(((r.connect?.cpuMs ?? 0) / connectWall) * 100, 1),
    cpuMs: h.round(r.connect?.cpuMs ?? 0, 0),
    connectMs: h.round(r.connect?.wallMs ?? 0, 0),
  }));
  if (connect.otherCpuPct !== null) {
    const genPct = (rs.reduce((a, r) => a + (r.connect?.cpuMs ?? 0), 0) / connectWall) * 100;
    connect.otherCpuPct = h.round(Math.max(0, connect.otherCpuPct - genPct), 1);
  }
  const perConnKiB = base && end ? ((end.rssKiB - base.rssKiB) * 1024) / o.idleConnections / 1024 : null;
  result.idle = {
    connections: o.idleConnections,
    processes: procs,
    heartbeatIntervalMs: o.idleHeartbeatInterval,
    brokerFds: open,
    baseRssMiB: mib(base?.rssKiB),
    connectedRssMiB: mib(connected?.rssKiB),
    idleEndRssMiB: mib(end?.rssKiB),
    rssPerConnectionKiB: perConnKiB === null ? null : h.round(perConnKiB, 1),
    idleCpuPct: idle.broker?.cpuPct ?? null,
    heartbeats: rs.reduce((a, r) => a + (r.heartbeats ?? 0), 0),
  };
  connect.note = `${procs} procs; RSS ${result.idle.baseRssMiB} → ${result.idle.connectedRssMiB} MiB`;
  idle.note =
    `${open?.open ?? '?'} broker fds (limit ${fds?.limit ?? '?'}); ${result.idle.rssPerConnectionKiB} KiB/conn; ` +
    `${result.idle.heartbeats} heartbeats`;
  result.phases.push(connect, idle);
  if (end && end.rssKiB / 1024 >= 300 / 1.048576) result.notes.push(`idle-conns: RSS ≥ 300 MB target`);
  if ((idle.broker?.cpuPct ?? 0) >= 2) result.notes.push(`idle-conns: broker CPU ${idle.broker.cpuPct}% ≥ 2% target`);
}

// ---- idle-topics ----------------------------------------------------------------------------------

/** --idle-topics (10,000) topics via POST /topic/create (8 at a time), 2 s, then --idle-seconds. */
export async function idleTopics(b, topic, result, h) {
  const o = b.opts;
  await b.deleteTopic(topic);
  const prefix = `${topic}_`;
  const create = [
    b.worker(HTTP_WORKER, 'create', 0, 'create#0', {
      topicPrefix: prefix,
      topicCount: o.idleTopics,
      channelCount: o.idleTopicChannels,
      msgsPerTopic: 0,
      concurrency: 8,
    }),
  ];
  await b.startAll(create);
  const ct = await b.tick('create', [create], 300_000, () => create[0].settled, 'req/s');
  const crs = await b.results(create);
  const cp = h.phase(`create ${h.fmtInt(o.idleTopics)}`, crs, 'pub', ct, 0, create);
  cp.kind = 'idle';
  cp.bytes = 0;
  cp.mibPerSec = 0;
  cp.note = `HTTP requests, 8 at a time (${o.idleTopicChannels} channels/topic)`;
  await sleep(2000);
  const timeline = await b.tick('idle', [], o.idleSeconds * 1000, undefined, 'msg/s');
  const idle = manualPhase(`idle ${o.idleSeconds} s`, 'idle', { msgs: o.idleTopics, timeline }, h);
  let topics = null;
  try {
    const res = await httpRequest(b.broker.http, 'GET', '/stats?format=json&include_clients=false', 30_000);
    topics = (JSON.parse(res.body).topics ?? []).length;
  } catch (err) {
    result.notes.push(`idle-topics: /stats failed: ${err.message}`);
  }
  result.idle = { topics, idleCpuPct: idle.broker?.cpuPct ?? null, rssMiB: mib(idle.broker?.rssKiB) };
  idle.note = `broker has ${topics === null ? '?' : h.fmtInt(topics)} topics`;
  result.phases.push(cp, idle);
  if (sum(create, 'msgs') < o.idleTopics) result.notes.push('idle-topics: not every topic was created');
}
