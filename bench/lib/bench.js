/**
 * What every scenario works with: the broker under test, its generators (child processes), the
 * once-a-second progress lines with the CPU accounting behind them, and the phases most scenarios
 * are made of (publish for a while or up to a count, then wait for results).
 */
import { cpuBetween, httpRequest, procStats, systemCpu } from './broker.js';
import { Generator, sum, waitReady } from './generators.js';
import { phase } from './phase.js';
import { fmt1, fmtInt, log, nowMs, round, sleep } from './util.js';

/**
 * @import { Broker, GenConfig, Options, ProcSample, RunningResult, Scenario, ScenarioResult, SpawnedBroker, TickSample, TickTimeline, WorkerResult } from './types.js'
 */

/**
 * @typedef {object} TickOptions
 * @property {() => boolean} [until] ends the window early once true
 * @property {string} [unit] of the default progress line
 * @property {((rates: number[], totals: number[]) => string) | null} [format] the progress line
 *   after the time, from each group's rate over the last second and total
 */

export class Bench {
  /**
   * @param {Options} opts
   * @param {Broker | null} broker
   */
  constructor(opts, broker) {
    this.opts = opts;
    /** The broker of the scenario that runs (null between scenarios and for those with their own daemons). */
    this.broker = broker;
    this.runId = Date.now().toString(36);
    /** @type {Set<Generator>} every generator started and not finished, so an abort can kill them all */
    this.allGens = new Set();
    /** CA of the broker's certificate for the TLS modes (made by the transport scenario, or --tls-ca). */
    this.tlsCaFile = opts.tlsCa;
    /**
     * Daemons besides `broker` whose CPU tick() reports and subtracts from "other CPU", and whose
     * exit fails the phase (the scale scenario's nsqds and nsqlookupd).
     * @type {{ name: string, daemon: SpawnedBroker }[]}
     */
    this.watched = [];
    /** @type {unknown} the IDENTIFY response of the first consumer, for the JSON */
    this.identify = undefined;
    /** @type {Set<string>} HTTP routes that failed once (noted once) */
    this.httpFailures = new Set();
  }

  /** The broker of the running scenario. */
  get nsqd() {
    if (this.broker === null) throw new Error('no broker: this scenario starts its own daemons');
    return this.broker;
  }

  /**
   * A generator process: the raw-protocol load-worker.js unless `extra.worker` names another.
   * @param {string} role
   * @param {number} index
   * @param {Record<string, unknown>} [extra]
   */
  gen(role, index, extra) {
    const o = this.opts;
    /** @type {GenConfig} */
    const config = {
      role,
      index,
      host: this.broker?.tcp.host,
      port: this.broker?.tcp.port,
      msgSize: o.msgSize,
      batchSize: o.batchSize,
      pipeline: o.pipeline,
      rdy: o.rdy,
      heartbeatInterval: o.heartbeatInterval,
      maxMessages: 0,
      hardDeadlineMs: (o.duration * 8 + 120) * 1000,
      ...extra,
    };
    const g = new Generator(config, (text) => log(`  ${text}`));
    this.allGens.add(g);
    g.ready.then(() => {
      if (this.identify === undefined && g.role === 'sub') this.identify = g.identify;
    });
    g.result.then(() => this.allGens.delete(g));
    return g;
  }

  /**
   * `n` generators of one role.
   * @param {string} role
   * @param {number} n
   * @param {Record<string, unknown>} [extra]
   */
  gens(role, n, extra) {
    return Array.from({ length: n }, (_, i) => this.gen(role, i, extra));
  }

  /**
   * A generator forked from another worker script (http-worker.js, client-worker.js, …).
   * @param {string} script
   * @param {string} role
   * @param {number} index
   * @param {string} name
   * @param {Record<string, unknown>} [extra]
   */
  worker(script, role, index, name, extra) {
    return this.gen(role, index, { worker: script, name, http: this.broker?.http, ...extra });
  }

  killAll() {
    for (const g of this.allGens) g.kill();
  }

  /** @returns {ProcSample | null} */
  brokerSample() {
    return this.broker === null || this.broker.external ? null : procStats(this.broker.pid);
  }

  checkBroker() {
    const daemons = [...(this.broker === null ? [] : [this.broker]), ...this.watched.map((w) => w.daemon)];
    for (const d of daemons) {
      if (!d.external && !d.isRunning()) {
        throw new Error(`broker exited: ${JSON.stringify(d.exitInfo())}\n${d.logTail()}`);
      }
    }
  }

  /** Each watched daemon's procStats. */
  watchedSamples() {
    return this.watched.map((w) => procStats(w.daemon.pid));
  }

  /**
   * A best-effort HTTP call; a failure is noted once per endpoint (not every broker has them all).
   * @param {string} method
   * @param {string} p path and query
   */
  async http(method, p) {
    const route = `${method} ${p.split('?')[0]}`;
    /** @param {string} text */
    const note = (text) => {
      if (this.httpFailures.has(route)) return;
      this.httpFailures.add(route);
      log(`  note: ${text} (not repeated)`);
    };
    try {
      const res = await httpRequest(this.nsqd.http, method, p);
      if (res.status !== 200) note(`${method} ${p} → ${res.status} ${res.body.slice(0, 200)}`);
      return res.status === 200;
    } catch (err) {
      note(`${method} ${p} failed: ${/** @type {Error} */ (err).message}`);
      return false;
    }
  }

  /**
   * As nsq's bench does: topic and channel exist before the first message.
   * @param {string} topic
   * @param {string} channel
   */
  async createTopicChannel(topic, channel) {
    const q = `topic=${encodeURIComponent(topic)}`;
    await this.http('POST', `/topic/create?${q}`);
    await this.http('POST', `/channel/create?${q}&channel=${encodeURIComponent(channel)}`);
  }

  /** @param {string} topic */
  async deleteTopic(topic) {
    await this.http('POST', `/topic/delete?topic=${encodeURIComponent(topic)}`);
  }

  /**
   * Prints one progress line per second until `until()` is true, `ms` have passed or a generator
   * failed. Returns the per-second samples and the CPU use over the whole window: the spawned
   * broker's, the watched daemons', the generators' of `groups`, the machine's and the rest.
   * @param {string} label
   * @param {Generator[][]} groups one rate column each
   * @param {number} ms
   * @param {TickOptions} [options]
   * @returns {Promise<TickTimeline>}
   */
  async tick(label, groups, ms, { until = () => false, unit = 'msg/s', format = null } = {}) {
    const start = nowMs();
    const brokerStart = this.brokerSample();
    const watchedStart = this.watchedSamples();
    let watchedPrev = watchedStart;
    const sysStart = systemCpu();
    const gensCpuStart = groups.reduce((a, g) => a + sum(g, 'cpuMs'), 0);
    /** @type {TickSample[]} */
    const samples = [];
    let prev = groups.map((g) => sum(g, 'msgs'));
    let prevAt = start;
    let prevBroker = brokerStart;
    let nextPrint = start + 1000;
    for (;;) {
      const t = nowMs();
      const done = until() || t - start >= ms || groups.some((g) => g.some((x) => x.failed));
      if (t >= nextPrint || done) {
        const totals = groups.map((g) => sum(g, 'msgs'));
        const dt = (t - prevAt) / 1000;
        const rates = totals.map((n, i) => (dt > 0 ? (n - prev[i]) / dt : 0));
        const b = this.brokerSample();
        const cpu = cpuBetween(prevBroker, b);
        /** @type {TickSample} */
        const sample = {
          t: Number(((t - start) / 1000).toFixed(2)),
          rates,
          totals,
          brokerCpuPct: cpu === null ? null : round(cpu.pct, 1),
          brokerRssKiB: b?.rssKiB ?? null,
        };
        samples.push(sample);
        const rate =
          format !== null
            ? format(rates, totals)
            : groups.length === 0
              ? 'idle'
              : `${fmtInt(rates[0]).padStart(10)} ${unit}  total ${fmtInt(totals[0])}`;
        const broker =
          b === null ? '' : `  broker cpu ${fmt1(cpu?.pct).padStart(5)}% rss ${fmtInt((b.rssKiB ?? 0) / 1024)} MiB`;
        const ws = this.watchedSamples();
        const watchedCpu = ws.map((w, i) => cpuBetween(watchedPrev[i], w)?.pct ?? null);
        if (ws.length > 0) sample.watchedCpuPct = watchedCpu.map((x) => (x === null ? null : round(x, 1)));
        const watched =
          ws.length === 0 ? '' : `  cpu ${this.watched.map((w, i) => `${w.name} ${fmt1(watchedCpu[i])}%`).join(' ')}`;
        watchedPrev = ws;
        log(`  [${label}] ${sample.t.toFixed(1).padStart(5)}s  ${rate}${broker}${watched}`);
        prev = totals;
        prevAt = t;
        prevBroker = b;
        nextPrint += 1000;
        this.checkBroker();
      }
      if (done) {
        const end = this.brokerSample();
        const cpu = cpuBetween(brokerStart, end);
        const sysEnd = systemCpu();
        const wallMs = nowMs() - start;
        const machineCpuMs = sysStart && sysEnd ? sysEnd.busyMs - sysStart.busyMs : null;
        const gensCpuMs = groups.reduce((a, g) => a + sum(g, 'cpuMs'), 0) - gensCpuStart;
        const watchedEnd = this.watchedSamples();
        const watched = this.watched.map((w, i) => {
          const c = cpuBetween(watchedStart[i], watchedEnd[i]);
          return {
            name: w.name,
            cpuPct: c === null ? null : round(c.pct, 1),
            cpuMs: c === null ? null : round(c.cpuMs, 0),
            rssKiB: watchedEnd[i]?.rssKiB ?? null,
          };
        });
        const watchedMs = watched.reduce((a, w) => a + (w.cpuMs ?? 0), 0);
        const otherMs = machineCpuMs === null ? null : machineCpuMs - gensCpuMs - (cpu?.cpuMs ?? 0) - watchedMs;
        const external = this.broker?.external === true;
        return {
          samples,
          wallMs,
          broker:
            end === null || cpu === null
              ? null
              : { cpuPct: round(cpu.pct, 1), cpuMs: round(cpu.cpuMs, 0), rssKiB: end.rssKiB },
          watched,
          /** Every generator of `groups` together over the window, % of one core. */
          gensCpuPct: round((gensCpuMs / wallMs) * 100, 1),
          // Every process on the machine, to tell whether something else competed for the CPU.
          machineCpuPct: machineCpuMs === null ? null : round((machineCpuMs / wallMs) * 100, 1),
          // What neither the broker nor the generators used (only meaningful for a spawned broker).
          otherCpuPct: otherMs === null || external ? null : round(Math.max(0, otherMs / wallMs) * 100, 1),
        };
      }
      await sleep(50);
    }
  }

  /**
   * Runs one scenario on the current broker: its topic and channel `ch` made first (unless it
   * starts its own daemons), a failure recorded rather than thrown, the broker's use over the
   * whole scenario, and the topic deleted again on an external broker.
   * @param {Scenario} scenario
   * @returns {Promise<ScenarioResult>}
   */
  async runScenario(scenario) {
    const { name } = scenario;
    const topic = `bench_${name}_${this.runId}`;
    const channel = 'ch';
    const before = this.brokerSample();
    /** @type {RunningResult} */
    const result = { name, topic, channel, ok: true, phases: [], notes: [] };
    log(`topic ${topic}, channel ${channel}`);
    try {
      if (!scenario.ownDaemons) await this.createTopicChannel(topic, channel);
      await scenario.run(this, result);
    } catch (err) {
      const message = /** @type {Error} */ (err).message;
      result.ok = false;
      result.error = message;
      log(`  FAILED: ${message}`);
      this.killAll();
    }
    const after = this.brokerSample();
    if (after !== null) {
      result.broker = {
        rssKiB: after.rssKiB,
        peakRssKiB: after.peakRssKiB,
        threads: after.threads,
        cpu: cpuBetween(before, after),
      };
    }
    if (this.broker !== null && !this.broker.external && !this.broker.isRunning()) {
      result.ok = false;
      if (!result.error?.includes('broker exited')) {
        result.error = `${result.error ?? ''} broker exited: ${JSON.stringify(this.broker.exitInfo())}`.trim();
      }
      return result;
    }
    // A spawned broker is stopped after each scenario; an external one keeps running.
    if (this.broker?.external) await this.deleteTopic(topic);
    return result;
  }

  /**
   * Waits for every generator's final result; throws if any failed.
   * @param {Generator[]} gens
   * @returns {Promise<WorkerResult[]>}
   */
  async results(gens) {
    const rs = await Promise.all(gens.map((g) => g.result));
    const bad = rs.map((r, i) => (r.ok ? null : `${gens[i].name}: ${r.error}`)).filter(Boolean);
    if (bad.length > 0) throw new Error(bad.join('; '));
    return rs;
  }

  /** @param {Generator[]} gens */
  async startAll(gens) {
    await waitReady(gens);
    for (const g of gens) g.start();
  }

  /**
   * Starts `gens`, shows progress for `ms`, stops them.
   * @param {string} label
   * @param {Generator[]} gens
   * @param {number} ms
   */
  async timed(label, gens, ms) {
    await this.startAll(gens);
    const timeline = await this.tick(label, [gens], ms);
    for (const g of gens) g.stop();
    return { rs: await this.results(gens), timeline };
  }

  /**
   * --connections MPUB publishers for `ms`, or until they have published `maxMessagesTotal`
   * between them (0: no limit).
   * @param {string} topic
   * @param {string} label
   * @param {{ maxMessagesTotal?: number, ms: number, extra?: Record<string, unknown> }} what
   */
  async publishPhase(topic, label, { maxMessagesTotal = 0, ms, extra = {} }) {
    const n = this.opts.connections;
    /** @param {number} i */
    const per = (i) =>
      maxMessagesTotal > 0 ? Math.floor(maxMessagesTotal / n) + (i < maxMessagesTotal % n ? 1 : 0) : 0;
    const pubs = Array.from({ length: n }, (_, i) => this.gen('pub', i, { topic, maxMessages: per(i), ...extra }));
    await this.startAll(pubs);
    const finished = () => pubs.every((g) => g.settled);
    const timeline = await this.tick(label, [pubs], ms, { until: finished });
    for (const g of pubs) g.stop();
    const rs = await this.results(pubs);
    return { rs, timeline };
  }

  /**
   * publishPhase() of exactly `n` messages within `ms`, as the row `label`; fewer is an error.
   * @param {string} topic
   * @param {string} label
   * @param {number} n
   * @param {number} ms
   * @param {Record<string, unknown>} [extra]
   */
  async prepublish(topic, label, n, ms, extra = {}) {
    const pre = await this.publishPhase(topic, label, { maxMessagesTotal: n, ms, extra });
    const row = phase(label, pre.rs, 'pub', pre.timeline, 0);
    if (row.msgs < n) throw new Error(`pre-published ${row.msgs} of ${n}`);
    return row;
  }
}
