/**
 * `hostile-memory` (issue 21): what garbage and truncated frames cost the broker's memory, and
 * whether it gives it back. Steps, on one broker:
 *   1. --hostile-idle-connections idle connections (magic + IDENTIFY, then silent) from
 *      --hostile-procs processes: RSS per connection over the fresh broker's, then they close
 *      and --hostile-settle s pass;
 *   2. "start": RSS (and /stats `memory`, where the broker has it);
 *   3. --hostile-connections connection slots, --hostile-rounds attacks each, from --hostile-procs
 *      processes (lib/hostile-worker.js: bad magic, invalid commands, random bytes, PUB / MPUB /
 *      IDENTIFY announcing a big body then stalling --hostile-stall s, endless lines, frames
 *      cut short), RSS sampled every 100 ms: the peak;
 *   4. every connection gone: RSS at once and after --hostile-settle s.
 * No GC is forced (the broker exposes none); /stats `memory` shows what the heap holds.
 */

import { httpRequest, procStats } from '../lib/broker.js';
import { HOSTILE_WORKER, PERF_WORKER, waitReady } from '../lib/generators.js';
import { int, seconds } from '../lib/options.js';
import { manualPhase } from '../lib/phase.js';
import { TARGETS } from '../lib/targets.js';
import { fmtInt, log, mib, round, sleep } from '../lib/util.js';

/**
 * @import { Bench } from '../lib/bench.js'
 * @import { Generator } from '../lib/generators.js'
 * @import { Scenario } from '../lib/types.js'
 */

export const options = {
  hostileConnections: int('hostile connection slots (open at once)', 2_000),
  hostileRounds: int('attacks per slot, one connection each', 3),
  hostileStall: seconds('how long a stalling attack stays silent before it closes', 3),
  hostileIdleConnections: int('idle connections measured first (0: skip)', 5_000, { min: 0 }),
  hostileProcs: int('generator processes', 4),
  hostileSettle: seconds(
    'wait after the connections are gone, before the last reading (V8 collects an idle heap after ~20–30 s)',
    30,
  ),
  hostileMaxMsgSize: int('what a stalling PUB announces (the broker’s --max-msg-size)', 1_048_576),
  hostileMaxBodySize: int('what a stalling MPUB announces (the broker’s --max-body-size)', 5_242_880),
};

/**
 * The broker's /stats `memory` (null when it has none or /stats fails).
 * @param {Bench} b
 * @returns {Promise<Record<string, number> | null>}
 */
async function memStats(b) {
  try {
    const res = await httpRequest(b.nsqd.http, 'GET', '/stats?format=json&include_mem=true', 10_000);
    /** @type {{ memory?: Record<string, number> }} */
    const st = JSON.parse(res.body);
    return st.memory ?? null;
  } catch {
    return null;
  }
}

/**
 * RSS (MiB) with the broker's heap split, at one moment.
 * @param {Bench} b
 */
async function reading(b) {
  const s = b.brokerSample();
  const m = await memStats(b);
  return {
    rssMiB: mib(s?.rssKiB),
    heapInUseMiB: m?.heap_in_use_bytes === undefined ? null : round(m.heap_in_use_bytes / 2 ** 20, 1),
    heapIdleMiB: m?.heap_idle_bytes === undefined ? null : round(m.heap_idle_bytes / 2 ** 20, 1),
  };
}

/**
 * `total` spread over `procs` generators of `script`'s `role`.
 * @param {Bench} b
 * @param {string} script
 * @param {string} role
 * @param {number} total
 * @param {number} procs
 * @param {Record<string, unknown>} extra
 * @returns {Generator[]}
 */
function spread(b, script, role, total, procs, extra) {
  const n = Math.min(procs, total);
  return Array.from({ length: n }, (_, i) =>
    b.worker(script, role, i, `${role}#${i}`, {
      count: Math.floor(total / n) + (i < total % n ? 1 : 0),
      ...extra,
    }),
  );
}

/** @type {Scenario} */
export default {
  name: 'hostile-memory',
  description:
    '--hostile-idle-connections idle connections (KiB each), then --hostile-connections × --hostile-rounds attacks with garbage and truncated frames from --hostile-procs processes; broker RSS at the start, at the peak (100 ms samples), when all are gone and after --hostile-settle s',
  options,
  broker: () => ({ nofile: 65_536 }),
  budgetSeconds: (o) => 3 * o.hostileSettle + o.hostileRounds * o.hostileStall * 4 + 300,
  async run(b, result) {
    const o = b.opts;
    const pid = b.nsqd.pid;
    const fresh = await reading(b);
    /** @type {Record<string, unknown>} */
    const out = { fresh };
    result.hostile = out;

    if (o.hostileIdleConnections > 0) {
      const idle = spread(b, PERF_WORKER, 'idle', o.hostileIdleConnections, o.hostileProcs, {
        concurrency: 64,
        heartbeatIntervalMs: 60_000,
      });
      let ready = 0;
      for (const g of idle) g.ready.then(() => ready++);
      const timeline = await b.tick('idle', [idle], 120_000, {
        until: () => ready === idle.length,
        format: () => `${ready} of ${idle.length} processes have all their connections`,
      });
      await waitReady(idle, 1000);
      for (const g of idle) g.start();
      await sleep(2000);
      const open = await reading(b);
      for (const g of idle) g.stop();
      await b.results(idle);
      const perConnKiB =
        open.rssMiB === null || fresh.rssMiB === null
          ? null
          : round(((open.rssMiB - fresh.rssMiB) * 1024) / o.hostileIdleConnections, 1);
      out.idle = { connections: o.hostileIdleConnections, open, rssPerConnectionKiB: perConnKiB };
      const row = manualPhase(`${fmtInt(o.hostileIdleConnections)} idle connections`, 'idle', {
        msgs: o.hostileIdleConnections,
        timeline,
      });
      row.note = `RSS ${fresh.rssMiB} → ${open.rssMiB} MiB: ${perConnKiB} KiB/connection`;
      result.phases.push(row);
      if (perConnKiB !== null && perConnKiB > TARGETS.hostileIdleConnKiB) {
        result.notes.push(`hostile-memory: ${perConnKiB} KiB per idle connection > ${TARGETS.hostileIdleConnKiB}`);
      }
      await b.tick('settle', [], o.hostileSettle * 1000);
    }

    const start = await reading(b);
    out.start = start;
    const gens = spread(b, HOSTILE_WORKER, 'hostile', o.hostileConnections, o.hostileProcs, {
      topic: result.topic,
      concurrency: 64,
      rounds: o.hostileRounds,
      stallMs: o.hostileStall * 1000,
      maxMsgSize: o.hostileMaxMsgSize,
      maxBodySize: o.hostileMaxBodySize,
      hardDeadlineMs: (o.hostileRounds * o.hostileStall * 4 + 120) * 1000,
    });
    await b.startAll(gens);
    let peakKiB = 0;
    const sampler = setInterval(() => {
      peakKiB = Math.max(peakKiB, procStats(pid)?.rssKiB ?? 0);
    }, 100);
    let timeline;
    try {
      timeline = await b.tick('hostile', [gens], (o.hostileRounds * o.hostileStall * 4 + 60) * 1000, {
        until: () => gens.every((g) => g.settled),
        unit: 'attacks/s',
      });
    } finally {
      clearInterval(sampler);
    }
    for (const g of gens) g.stop();
    const rs = await b.results(gens);
    const gone = await reading(b);
    const attacks = rs.reduce((a, r) => a + r.msgs, 0);
    const sentMiB = round(rs.reduce((a, r) => a + r.bytes, 0) / 2 ** 20, 1);
    // Each process's own maximum, added up: an upper bound of what was held at one time.
    const heldMiB = round(rs.reduce((a, r) => a + (r.maxHeldBytes ?? 0), 0) / 2 ** 20, 1);
    const peakMiB = mib(Math.max(peakKiB, (gone.rssMiB ?? 0) * 1024));
    const row = manualPhase(`${fmtInt(o.hostileConnections)} hostile × ${o.hostileRounds}`, 'hostile', {
      msgs: attacks,
      rate: true,
      timeline,
      gens,
      rs,
    });
    log(`  ${attacks} attacks, ${sentMiB} MiB sent; settling ${o.hostileSettle} s`);
    const settleTimeline = await b.tick('settle', [], o.hostileSettle * 1000);
    const after = await reading(b);
    const settle = manualPhase(`after ${o.hostileSettle} s settle`, 'memory', { timeline: settleTimeline });
    /** @param {number | null} x */
    const over = (x) => (x === null || start.rssMiB === null ? null : round(x - start.rssMiB, 1));
    Object.assign(out, {
      connections: o.hostileConnections,
      rounds: o.hostileRounds,
      stallSeconds: o.hostileStall,
      attacks,
      sentMiB,
      heldMiB,
      peakRssMiB: peakMiB,
      peakOverStartMiB: over(peakMiB),
      gone,
      after,
      afterOverStartMiB: over(after.rssMiB),
      settleSeconds: o.hostileSettle,
    });
    row.note = `${sentMiB} MiB sent, ≤ ${heldMiB} MiB held at once; RSS ${start.rssMiB} → peak ${peakMiB} (+${over(peakMiB)}) MiB`;
    settle.note = `RSS ${gone.rssMiB} MiB when gone → ${after.rssMiB} MiB (+${over(after.rssMiB)} over start); heap in use ${after.heapInUseMiB} MiB`;
    result.phases.push(row, settle);
    const peakOver = over(peakMiB);
    const afterOver = over(after.rssMiB);
    if (peakOver !== null && peakOver > TARGETS.hostilePeakOverStartMiB) {
      result.notes.push(`hostile-memory: peak ${peakOver} MiB over start > ${TARGETS.hostilePeakOverStartMiB}`);
    }
    if (afterOver !== null && afterOver > TARGETS.hostileAfterOverStartMiB) {
      result.notes.push(
        `hostile-memory: ${afterOver} MiB over start after settle > ${TARGETS.hostileAfterOverStartMiB}`,
      );
    }
  },
};
