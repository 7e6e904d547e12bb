/** A phase's row (the table and the JSON) from its generators' results and its timeline. */
import { MiB, round } from './util.js';

/**
 * @import { GeneratorRow, PhaseRow, Timeline, WorkerResult } from './types.js'
 * @import { Generator } from './generators.js'
 */

/**
 * Per-generator numbers of a phase (`role` 'none': rows without a message stream).
 * @param {WorkerResult[]} rs
 * @param {string} role
 * @param {Generator[] | null} gens
 * @param {string} fallback name prefix of a generator not in `gens`
 * @returns {GeneratorRow[]}
 */
function generatorRows(rs, role, gens, fallback) {
  return rs.map((r, i) => ({
    name: gens?.[i]?.name ?? `${fallback}#${i}`,
    msgs: r.msgs,
    batches: role === 'pub' ? r.batches : undefined,
    redeliveries: role === 'sub' ? r.redeliveries : undefined,
    closeWait: role === 'sub' ? r.closeWait : undefined,
    heartbeats: r.heartbeats,
    softErrors: r.softErrors,
    cpuPct: round(r.cpu?.pct ?? 0, 1),
    cpuUserMs: round(r.cpu?.userMs ?? 0, 0),
    cpuSystemMs: round(r.cpu?.systemMs ?? 0, 0),
  }));
}

/**
 * One phase's numbers from its generators' results. Publishers: acknowledged messages over
 * start → last OK. Consumers: first deliveries over start → last message, or start → stop for
 * the phase named `out` (consumers that run for the whole window while publishers publish).
 * `column`: which of the timeline's rate columns is this phase's.
 * @param {string} name
 * @param {WorkerResult[]} rs
 * @param {string} role 'pub' or 'sub'
 * @param {Timeline} timeline
 * @param {number} column
 * @param {Generator[] | null} [gens]
 * @returns {PhaseRow}
 */
export function phase(name, rs, role, timeline, column, gens = null) {
  const msgs = rs.reduce((a, r) => a + r.msgs, 0);
  const bytes = rs.reduce((a, r) => a + r.bytes, 0);
  const start = Math.min(...rs.map((r) => r.startAt));
  const end =
    name === 'out'
      ? Math.max(...rs.map((r) => r.stopAt))
      : Math.max(...rs.map((r) => r.lastAt || r.stopAt || r.startAt));
  const seconds = Math.max(0, (end - start) / 1000);
  return {
    phase: name,
    role,
    msgs,
    bytes,
    seconds: round(seconds, 3),
    /** The window the rate is over, process.hrtime ms (CLOCK_MONOTONIC, as a CPU profile's clock). */
    startAtMs: round(start, 1),
    endAtMs: round(end, 1),
    msgsPerSec: seconds > 0 ? round(msgs / seconds, 0) : 0,
    mibPerSec: seconds > 0 ? round(bytes / MiB / seconds, 2) : 0,
    redeliveries: rs.reduce((a, r) => a + (r.redeliveries ?? 0), 0),
    generators: generatorRows(rs, role, gens, role),
    /** The spawned broker over the timed window (not the setup around it). */
    broker: timeline.broker,
    /** Every process on the machine over the window, % of one core. */
    machineCpuPct: timeline.machineCpuPct,
    /** Machine minus broker minus generators: other load that competed for the CPU. */
    otherCpuPct: timeline.otherCpuPct,
    timeline: timeline.samples.map((s) => ({
      t: s.t,
      msgsPerSec: Math.round(s.rates[column]),
      total: s.totals[column],
      brokerCpuPct: s.brokerCpuPct,
      brokerRssKiB: s.brokerRssKiB,
    })),
  };
}

/**
 * A row built by hand, for phases without a message stream (idle, memory): `msgs` is what the
 * row counts (connections, topics, messages held), a rate only with `rate`.
 * @param {string} name
 * @param {string} kind
 * @param {{ msgs?: number, seconds?: number | null, rate?: boolean, timeline?: Timeline | null, gens?: Generator[], rs?: WorkerResult[] }} what
 * @returns {PhaseRow}
 */
export function manualPhase(
  name,
  kind,
  { msgs = 0, seconds = null, rate = false, timeline = null, gens = [], rs = [] },
) {
  const secs = seconds ?? (timeline?.wallMs ?? 0) / 1000;
  return {
    phase: name,
    kind,
    role: 'none',
    msgs,
    bytes: 0,
    seconds: round(secs, 3),
    msgsPerSec: rate && secs > 0 ? round(msgs / secs, 0) : 0,
    mibPerSec: 0,
    generators: generatorRows(rs, 'none', gens, 'gen'),
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
