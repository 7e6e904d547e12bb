/**
 * `soak`: --minutes of mixed load on one broker whose data path survives SIGTERM restarts, then an
 * end-to-end count of what was published against what was finished. Generators:
 * lib/soak-worker.js (--connections publishers offering --soak-rate msgs/s in all — MPUB, PUB,
 * DPUB — and --connections consumers that FIN most messages, REQ some with a delay, and never
 * answer others so they time out after --soak-msg-timeout).
 *
 * Every cycle of --restart-every seconds (default: a third of the run, 20–180 s) the consumers
 * pause (RDY 0) from 40 % to 70 % of it, so a backlog builds past --soak-mem-queue-size and
 * spills to disk, and nsqd is restarted with SIGTERM: in even cycles at 55 % (paused, backlog
 * on disk and in memory), in odd ones at 95 % (consuming, messages in flight, requeued and
 * deferred). After the run the publishers stop and the consumers drain until the channel has
 * nothing left (depth, in flight and deferred all 0).
 *
 * PASS: every acknowledged message was finished at least once (nothing lost), no consumer saw a
 * body the publishers did not send, every restart exited 0 on SIGTERM, the drain completed and
 * no generator failed. Duplicates (finished again after a FIN) are reported, not failed: the
 * delivery guarantee is at least once.
 */
import { cpuBetween, systemCpu } from '../lib/broker.js';
import { SOAK_WORKER, sum, waitReady } from '../lib/generators.js';
import { int, seconds } from '../lib/options.js';
import { phase } from '../lib/phase.js';
import { channelStats, downsample } from '../lib/storage.js';
import { fmt1, fmtInt, log, mib, nowMs, round, sleep } from '../lib/util.js';

/**
 * @import { ChannelCounts, Options, RunningResult, Scenario, SoakResult, TickSample, WorkerResult } from '../lib/types.js'
 * @import { Bench } from '../lib/bench.js'
 */

const SOAK_BATCH = 50;
const HOLD_PERMILLE = 10;
const REQ_PERMILLE = 50;
const REQ_MAX_DELAY_MS = 2000;
/** How long a SIGTERM may take before the soak SIGKILLs (and fails). */
const RESTART_STOP_TIMEOUT_MS = 30_000;

export const options = {
  minutes: seconds('length of the mixed load', 30, { arg: 'M' }),
  restartEvery: int('SIGTERM restart cycle (0: a third of the run, 20..180)', 0, { min: 0, arg: 'SECONDS' }),
  soakRate: int('msgs/s offered by all publishers', 10_000),
  soakMemQueueSize: int("the broker's --mem-queue-size", 10_000, { min: 0 }),
  soakMsgTimeout: int("the broker's --msg-timeout", 5_000, { arg: 'MS' }),
  soakRdy: int('RDY per consumer', 1000),
};

/**
 * Seconds between restarts: --restart-every, or a third of the run within 20–180 s.
 * @param {Options} o
 */
function soakCycleSeconds(o) {
  return o.restartEvery > 0 ? o.restartEvery : Math.min(180, Math.max(20, Math.round((o.minutes * 60) / 3)));
}

/**
 * Upper bound of the drain after the run (timeouts and REQ delays must play out).
 * @param {Options} o
 */
function soakDrainLimitMs(o) {
  return o.soakMsgTimeout * 4 + 180_000;
}

/**
 * The pause / resume / restart events of the run (ms from its start), in time order.
 * @param {number} totalMs
 * @param {number} cycleMs
 */
function schedule(totalMs, cycleMs) {
  /** @type {{ at: number, type: 'pause' | 'resume' | 'restart' }[]} */
  const events = [];
  for (let i = 0; i * cycleMs < totalMs; i++) {
    const base = i * cycleMs;
    events.push({ at: base + 0.4 * cycleMs, type: 'pause' });
    events.push({ at: base + 0.7 * cycleMs, type: 'resume' });
    events.push({ at: base + (i % 2 === 0 ? 0.55 : 0.95) * cycleMs, type: 'restart' });
  }
  return events.filter((e) => e.at < totalMs - 2000).sort((a, b) => a.at - b.at);
}

/** @param {Uint8Array} bytes */
function popcount(bytes) {
  let n = 0;
  for (let i = 0; i < bytes.length; i++) {
    let v = bytes[i];
    while (v) {
      v &= v - 1;
      n++;
    }
  }
  return n;
}

/**
 * Publishers' results against consumers' bitmaps: lost (acknowledged, never finished),
 * duplicates across consumers, uncertain ones that did arrive, and bits nobody sent.
 * @param {WorkerResult[]} prs
 * @param {WorkerResult[]} srs
 */
function reconcile(prs, srs) {
  const out = {
    acked: 0,
    lost: 0,
    /** @type {string[]} */
    lostSample: [],
    crossDuplicates: 0,
    uncertain: 0,
    uncertainDelivered: 0,
    /** Distinct messages finished (by any consumer). */
    finished: 0,
    failed: 0,
    failedDelivered: 0,
    unexpected: 0,
  };
  const pubs = new Set([...prs.keys(), ...srs.flatMap((r) => Object.keys(r.bitmaps ?? {}).map(Number))]);
  for (const p of pubs) {
    const r = prs[p];
    const nextSeq = r?.nextSeq ?? 0;
    const maps = srs.map((s) => Buffer.from(s.bitmaps?.[p] ?? '', 'base64'));
    const len = Math.max(Math.ceil(nextSeq / 8), ...maps.map((m) => m.length));
    const or = new Uint8Array(len);
    let each = 0;
    for (const m of maps) {
      for (let i = 0; i < m.length; i++) or[i] |= m[i];
      each += popcount(m);
    }
    const union = popcount(or);
    out.crossDuplicates += each - union;
    out.finished += union;
    /** @param {number} seq */
    const has = (seq) => (or[seq >>> 3] & (1 << (seq & 7))) !== 0;
    const excluded = new Uint8Array(len);
    /**
     * @param {[number, number][] | undefined} ranges
     * @param {'uncertain' | 'failed'} key
     * @param {'uncertainDelivered' | 'failedDelivered'} deliveredKey
     */
    const mark = (ranges, key, deliveredKey) => {
      for (const [a, b] of ranges ?? []) {
        for (let s = a; s < b; s++) {
          excluded[s >>> 3] |= 1 << (s & 7);
          out[key]++;
          if (has(s)) out[deliveredKey]++;
        }
      }
    };
    mark(r?.uncertain, 'uncertain', 'uncertainDelivered');
    mark(r?.failed, 'failed', 'failedDelivered');
    for (let s = 0; s < nextSeq; s++) {
      if ((excluded[s >>> 3] & (1 << (s & 7))) !== 0) continue;
      out.acked++;
      if (!has(s)) {
        out.lost++;
        if (out.lostSample.length < 10) out.lostSample.push(`${p}:${s}`);
      }
    }
    for (let s = nextSeq; s < len * 8; s++) if (has(s)) out.unexpected++;
  }
  return out;
}

/**
 * @param {Bench} b
 * @param {RunningResult} result
 */
async function soak(b, result) {
  const o = b.opts;
  const { topic, channel } = result;
  const broker = b.nsqd;
  if (broker.external) throw new Error('soak restarts the broker: it needs a spawned one, not --nsqd-*-address');
  const totalMs = o.minutes * 60_000;
  const cycleMs = soakCycleSeconds(o) * 1000;
  const drainLimitMs = soakDrainLimitMs(o);
  const events = schedule(totalMs, cycleMs);
  const n = o.connections;
  const hardDeadlineMs = totalMs + drainLimitMs + 300_000;
  const pubs = Array.from({ length: n }, (_, i) =>
    b.worker(SOAK_WORKER, 'soak-pub', i, `soak-pub#${i}`, {
      topic,
      rate: o.soakRate / n,
      batchSize: SOAK_BATCH,
      hardDeadlineMs,
    }),
  );
  const subs = Array.from({ length: n }, (_, i) =>
    b.worker(SOAK_WORKER, 'soak-sub', i, `soak-sub#${i}`, {
      topic,
      channel,
      rdy: o.soakRdy,
      holdPermille: HOLD_PERMILLE,
      reqPermille: REQ_PERMILLE,
      reqMaxDelayMs: REQ_MAX_DELAY_MS,
      hardDeadlineMs,
    }),
  );
  await waitReady([...pubs, ...subs]);
  log(
    `  ${o.minutes} min at ${fmtInt(o.soakRate)} msgs/s offered (${n} pub + ${n} sub conns); ` +
      `${events.filter((e) => e.type === 'restart').length} SIGTERM restarts, one per ${cycleMs / 1000} s cycle; ` +
      `${HOLD_PERMILLE / 10}% never answered (--msg-timeout ${o.soakMsgTimeout} ms), ${REQ_PERMILLE / 10}% REQ 0–${REQ_MAX_DELAY_MS} ms`,
  );
  for (const g of subs) g.start();
  for (const g of pubs) g.start();

  const t0 = nowMs();
  const sys0 = systemCpu();
  /** @type {TickSample[]} */
  const samples = [];
  /** @type {SoakResult['restarts']} */
  const restarts = [];
  let brokerCpuMs = 0;
  let prevB = b.brokerSample();
  let prevAt = t0;
  let prevTotals = [0, 0];
  let paused = false;
  let ei = 0;
  const gensFailed = () => [...pubs, ...subs].find((g) => g.failed);
  /** @param {string} label */
  const sample = (label) => {
    const t = nowMs();
    const totals = [sum(pubs, 'msgs'), sum(subs, 'msgs')];
    const dt = (t - prevAt) / 1000;
    const rates = totals.map((x, i) => (dt > 0 ? (x - prevTotals[i]) / dt : 0));
    const cur = b.brokerSample();
    const cpu = prevB !== null && cur !== null && broker.pid === prevB.pid ? cpuBetween(prevB, cur) : null;
    if (cpu !== null) brokerCpuMs += cpu.cpuMs;
    /** @type {TickSample} */
    const s = {
      t: round((t - t0) / 1000, 2),
      rates,
      totals,
      brokerCpuPct: cpu === null ? null : round(cpu.pct, 1),
      brokerRssKiB: cur?.rssKiB ?? null,
      pid: broker.pid,
    };
    samples.push(s);
    log(
      `  [${label}] ${s.t.toFixed(0).padStart(5)}s  pub ${fmtInt(rates[0]).padStart(7)}/s  fin ${fmtInt(rates[1]).padStart(7)}/s  ` +
        `acked ${fmtInt(totals[0])}  finished ${fmtInt(totals[1])}  rss ${fmtInt((cur?.rssKiB ?? 0) / 1024)} MiB  ` +
        `cpu ${fmt1(s.brokerCpuPct)}%  restarts ${restarts.length}${paused ? '  (consumers paused)' : ''}`,
    );
    prevTotals = totals;
    prevAt = t;
    prevB = cur === null ? null : { ...cur, pid: broker.pid };
  };
  prevB = prevB === null ? null : { ...prevB, pid: broker.pid };

  let nextPrint = t0 + 1000;
  while (nowMs() - t0 < totalMs) {
    const failed = gensFailed();
    if (failed) throw new Error(`${failed.name} failed: ${(await failed.result).error}`);
    while (ei < events.length && events[ei].at <= nowMs() - t0) {
      const e = events[ei++];
      if (e.type === 'restart') {
        const at = round((nowMs() - t0) / 1000, 1);
        const r = await broker.restart({ timeoutMs: RESTART_STOP_TIMEOUT_MS });
        restarts.push({ at, ...r, pid: broker.pid, consumersPaused: paused });
        const clean = !r.killed && r.exit?.code === 0;
        log(
          `  restart #${restarts.length} at ${at} s (${paused ? 'consumers paused' : 'consuming'}): SIGTERM → ` +
            `${clean ? 'exit 0' : `NOT CLEAN ${JSON.stringify(r.exit)}${r.killed ? ', SIGKILLed' : ''}`} in ${r.stopMs} ms; ` +
            `up again (GET /ping) in ${r.startMs} ms, pid ${broker.pid}`,
        );
        prevB = b.brokerSample();
        if (prevB !== null) prevB.pid = broker.pid;
      } else {
        paused = e.type === 'pause';
        for (const g of subs) g.send({ type: e.type });
      }
    }
    if (nowMs() >= nextPrint) {
      sample('soak');
      // After a restart (which blocks for a while) the next line is a second later, not at once.
      nextPrint = Math.max(nextPrint + 1000, nowMs() + 500);
    }
    await sleep(50);
  }
  for (const g of pubs) g.stop();
  const prs = await b.results(pubs);
  if (paused) for (const g of subs) g.send({ type: 'resume' });
  paused = false;

  // Drain: until the channel holds nothing (twice in a row), or the limit.
  const drainStart = nowMs();
  let zeroes = 0;
  /** @type {ChannelCounts | null} */
  let last = null;
  while (nowMs() - drainStart < drainLimitMs && zeroes < 2) {
    await sleep(1000);
    const failed = gensFailed();
    if (failed) throw new Error(`${failed.name} failed: ${(await failed.result).error}`);
    sample('drain');
    last = await channelStats(broker.http, topic, channel);
    const empty =
      last !== null && last.depth === 0 && last.inFlight === 0 && last.deferred === 0 && last.topicDepth === 0;
    zeroes = empty ? zeroes + 1 : 0;
  }
  const drained = zeroes >= 2;
  const drainSeconds = round((nowMs() - drainStart) / 1000, 1);
  for (const g of subs) g.stop();
  const srs = await b.results(subs);
  const wallMs = nowMs() - t0;
  const sys1 = systemCpu();

  // Rows: acknowledged publishes and unique finishes, over the run and its drain.
  const gensCpuMs = [...prs, ...srs].reduce((a, r) => a + (r.cpu?.userMs ?? 0) + (r.cpu?.systemMs ?? 0), 0);
  const machineMs = sys0 && sys1 ? sys1.busyMs - sys0.busyMs : null;
  const lastRss = samples.at(-1)?.brokerRssKiB ?? null;
  const timeline = {
    samples,
    wallMs,
    broker: { cpuPct: round((brokerCpuMs / wallMs) * 100, 1), cpuMs: round(brokerCpuMs, 0), rssKiB: lastRss },
    machineCpuPct: machineMs === null ? null : round((machineMs / wallMs) * 100, 1),
    otherCpuPct:
      machineMs === null ? null : round(Math.max(0, (machineMs - gensCpuMs - brokerCpuMs) / wallMs) * 100, 1),
  };
  const pubRow = phase('publish (acked)', prs, 'pub', timeline, 0, pubs);
  const finRow = phase('finish (unique)', srs, 'sub', timeline, 1, subs);

  const rec = reconcile(prs, srs);
  // The row counts distinct messages: one finished by two consumers (a FIN lost in a restart,
  // then redelivered elsewhere) is a duplicate, not two.
  if (finRow.msgs > 0) {
    finRow.bytes = Math.round((finRow.bytes * rec.finished) / finRow.msgs);
    finRow.mibPerSec = finRow.seconds > 0 ? round(finRow.bytes / 1048576 / finRow.seconds, 2) : 0;
  }
  finRow.msgs = rec.finished;
  finRow.msgsPerSec = finRow.seconds > 0 ? round(rec.finished / finRow.seconds, 0) : 0;
  /** @type {Record<string, number>} */
  const counts = {};
  for (const r of srs) for (const [k, v] of Object.entries(r.counts ?? {})) counts[k] = (counts[k] ?? 0) + v;
  counts.maxAttempts = Math.max(0, ...srs.map((r) => r.counts?.maxAttempts ?? 0));
  const duplicates = (counts.duplicates ?? 0) + rec.crossDuplicates;
  const skipped = prs.reduce((a, r) => a + (r.skipped ?? 0), 0);
  const commands = { mpub: 0, pub: 0, dpub: 0 };
  for (const r of prs) {
    for (const k of /** @type {(keyof typeof commands)[]} */ (Object.keys(commands)))
      commands[k] += r.commands?.[k] ?? 0;
  }
  const unclean = restarts.filter((r) => r.killed || r.exit?.code !== 0);
  const problems = [];
  if (rec.lost > 0)
    problems.push(`${fmtInt(rec.lost)} acknowledged messages never finished (e.g. ${rec.lostSample.join(', ')})`);
  if (rec.unexpected > 0) problems.push(`${rec.unexpected} finished sequence numbers were never sent`);
  if ((counts.bad ?? 0) > 0) problems.push(`${counts.bad} bodies without the soak marker`);
  if (unclean.length > 0) problems.push(`${unclean.length} restart(s) not clean on SIGTERM`);
  if (!drained) problems.push(`not drained within ${drainLimitMs / 1000} s: ${JSON.stringify(last)}`);
  const verdict = problems.length === 0 ? 'PASS' : 'FAIL';

  const rssPoints = samples
    .filter((s) => s.brokerRssKiB !== null)
    .map((s) => ({ t: s.t, rssMiB: mib(s.brokerRssKiB), pid: s.pid }));
  const rssValues = rssPoints.map((p) => p.rssMiB ?? 0);
  result.soak = {
    verdict,
    problems,
    minutes: o.minutes,
    offeredRate: o.soakRate,
    memQueueSize: o.soakMemQueueSize,
    msgTimeoutMs: o.soakMsgTimeout,
    cycleSeconds: cycleMs / 1000,
    restarts,
    drained,
    drainSeconds,
    finalChannel: last,
    published: {
      acked: rec.acked,
      uncertain: rec.uncertain,
      uncertainDelivered: rec.uncertainDelivered,
      failed: rec.failed,
      failedDelivered: rec.failedDelivered,
      skippedOffer: skipped,
      commands,
      reconnects: prs.reduce((a, r) => a + (r.reconnects ?? 0), 0),
    },
    consumed: {
      ...counts,
      crossDuplicates: rec.crossDuplicates,
      duplicatesTotal: duplicates,
      reconnects: srs.reduce((a, r) => a + (r.reconnects ?? 0), 0),
    },
    lost: rec.lost,
    lostSample: rec.lostSample,
    unexpected: rec.unexpected,
    rss: { min: Math.min(...rssValues), max: Math.max(...rssValues) },
    rssSeries: downsample(rssPoints, 180),
    restartMarks: restarts.map((r) => r.at),
  };
  // The per-second samples are in rssSeries (downsampled); the rows keep a short timeline.
  pubRow.timeline = pubRow.timeline.filter((_, i) => i % 10 === 0);
  finRow.timeline = finRow.timeline.filter((_, i) => i % 10 === 0);
  pubRow.kind = 'throughput';
  finRow.kind = 'throughput';
  pubRow.note =
    `${fmtInt(commands.mpub)} MPUB / ${fmtInt(commands.pub)} PUB / ${fmtInt(commands.dpub)} DPUB; ` +
    `${fmtInt(rec.uncertain)} unanswered at a restart (${fmtInt(rec.uncertainDelivered)} arrived)`;
  finRow.note =
    `${restarts.length} restarts; lost ${fmtInt(rec.lost)}; duplicates ${fmtInt(duplicates)}; ` +
    `REQ ${fmtInt(counts.requeued ?? 0)}, timed out ${fmtInt(counts.heldRedelivered ?? 0)} of ${fmtInt(counts.held ?? 0)} held; ` +
    `RSS ${result.soak.rss.min}–${result.soak.rss.max} MiB; ${verdict}`;
  result.phases.push(pubRow, finRow);
  result.verdict = `${verdict}${problems.length > 0 ? `: ${problems.join('; ')}` : ''}`;
  if (verdict === 'FAIL') result.ok = false;
  log(
    `  soak: acked ${fmtInt(rec.acked)}, finished all but ${fmtInt(rec.lost)}; duplicates ${fmtInt(duplicates)}; ` +
      `drained in ${drainSeconds} s; RSS ${result.soak.rss.min}–${result.soak.rss.max} MiB; ${verdict}`,
  );
}

/** @type {Scenario} */
export default {
  name: 'soak',
  description:
    '--minutes of --soak-rate msgs/s (MPUB, PUB, DPUB) from --connections publishers and as many consumers (1 % never answered so they time out, 5 % REQ with a delay, the rest FIN), consumers paused for part of each --restart-every cycle and nsqd restarted with SIGTERM once per cycle; then a drain and the count of lost and duplicated messages; the last line is soak: PASS or FAIL',
  options,
  group: 'storage',
  slow: true,
  broker: (o) => ({ memQueueSize: o.soakMemQueueSize, flags: [`--msg-timeout=${o.soakMsgTimeout}ms`] }),
  budgetSeconds: (o) => o.minutes * 60 + soakDrainLimitMs(o) / 1000 + 300,
  run: soak,
};
