import { VERSION } from '../version.js';
import type { ClientStats, E2eLatencyStats, StatsSnapshot, TopicStats } from './types.js';

export interface StatsTextOptions {
  /** nsqd's start, Unix seconds (the `start_time` and `uptime` lines). */
  startTimeS: number;
  /** Print the Memory section (when the snapshot has it). */
  includeMem: boolean;
  /** Wall-clock now in Unix ms (the broker's clock). */
  nowMs: number;
}

/**
 * /stats in its text format (nsq-spec §3.3), laid out like nsqd's printStats with the same
 * fmt paddings. Nothing parses it; it is for people.
 */
export function formatStatsText(snapshot: StatsSnapshot, options: StatsTextOptions): string {
  const nowMs = options.nowMs;
  const lines: string[] = [
    `nsqd v${VERSION} (built w/node${process.versions.node})`,
    `start_time ${rfc3339(options.startTimeS)}`,
    `uptime ${goDuration(Math.max(0, nowMs - options.startTimeS * 1000) * 1e6)}`,
    '',
    `Health: ${snapshot.health}`,
  ];

  const mem = snapshot.memory;
  if (options.includeMem && mem !== undefined) {
    lines.push('', 'Memory:');
    for (const [key, value] of Object.entries(mem)) lines.push(`   ${key.padEnd(25)}\t${value}`);
  }

  const topics = snapshot.topics ?? [];
  if (topics.length === 0) lines.push('', 'Topics: None');
  else lines.push('', 'Topics:');
  for (let i = 0; i < topics.length; i++) {
    const t = topics[i] as TopicStats;
    // nsqd writes "\nTopics:" then "\n<topic line>\n" per topic: a blank line between topics.
    if (i > 0) lines.push('');
    lines.push(
      `${t.paused ? '*P ' : '   '}[${t.topic_name.padEnd(15)}] depth: ${pad(t.depth, 5)} be-depth: ${pad(t.backend_depth, 5)} msgs: ${pad(t.message_count, 8)} e2e%: ${e2eText(t.e2e_processing_latency)}`,
    );
    for (const c of t.channels) {
      lines.push(
        `${c.paused ? '   *P ' : '      '}[${c.channel_name.padEnd(25)}] depth: ${pad(c.depth, 5)} be-depth: ${pad(c.backend_depth, 5)} inflt: ${pad(c.in_flight_count, 4)} def: ${pad(c.deferred_count, 4)} re-q: ${pad(c.requeue_count, 5)} timeout: ${pad(c.timeout_count, 5)} msgs: ${pad(c.message_count, 8)} e2e%: ${e2eText(c.e2e_processing_latency)}`,
      );
      for (const client of c.clients ?? []) lines.push(`        ${clientText(client, nowMs)}`);
    }
  }

  const producers = snapshot.producers ?? [];
  if (producers.length === 0) {
    lines.push('', 'Producers: None');
  } else {
    lines.push('', 'Producers:');
    for (const p of producers) lines.push(`   ${clientText(p, nowMs)}`);
  }
  return `${lines.join('\n')}\n`;
}

/** Go's `%-Nd`. */
function pad(n: number, width: number): string {
  return String(n).padEnd(width);
}

/** quantile.Result.String(): each value through NanoSecondToHuman, joined by ", ". */
function e2eText(e2e: E2eLatencyStats): string {
  if (e2e.percentiles === null) return '';
  return e2e.percentiles.map((p) => nanosecondsToHuman(p.value)).join(', ');
}

/** nsqd's NanoSecondToHuman: one decimal, in s, ms, us or ns. */
export function nanosecondsToHuman(ns: number): string {
  if (ns > 1e9) return `${(ns / 1e9).toFixed(1)}s`;
  if (ns > 1e6) return `${(ns / 1e6).toFixed(1)}ms`;
  if (ns > 1e3) return `${(ns / 1e3).toFixed(1)}us`;
  return `${ns.toFixed(1)}ns`;
}

/** ClientV2Stats.String(): the producer form when it has pub_counts, else the consumer form. */
function clientText(c: ClientStats, nowMs: number): string {
  const connected = goDuration(Math.max(0, Math.floor(nowMs / 1000) - c.connect_ts) * 1e9);
  const colon = c.remote_address.lastIndexOf(':');
  const id = `${c.hostname}:${c.remote_address.slice(colon + 1)} ${c.user_agent}`.padEnd(21);
  const counts = c.pub_counts ?? [];
  if (counts.length > 0) {
    let total = 0;
    for (const p of counts) total += p.count;
    const topics = counts.map((p) => `${p.topic}=${p.count}`).join(',');
    return `[${c.version} ${id}] msgs: ${pad(total, 8)} topics: ${topics} connected: ${connected}`;
  }
  return `[${c.version} ${id}] state: ${c.state} inflt: ${pad(c.in_flight_count, 4)} rdy: ${pad(c.ready_count, 4)} fin: ${pad(c.finish_count, 8)} re-q: ${pad(c.requeue_count, 8)} msgs: ${pad(c.message_count, 8)} connected: ${connected}`;
}

/** Go's time.Format(time.RFC3339) in local time: 2006-01-02T15:04:05-07:00 (or Z). */
export function rfc3339(unixS: number): string {
  const d = new Date(unixS * 1000);
  const two = (n: number) => String(n).padStart(2, '0');
  const offsetMin = -d.getTimezoneOffset();
  const zone =
    offsetMin === 0
      ? 'Z'
      : `${offsetMin > 0 ? '+' : '-'}${two(Math.floor(Math.abs(offsetMin) / 60))}:${two(Math.abs(offsetMin) % 60)}`;
  return `${String(d.getFullYear()).padStart(4, '0')}-${two(d.getMonth() + 1)}-${two(d.getDate())}T${two(d.getHours())}:${two(d.getMinutes())}:${two(d.getSeconds())}${zone}`;
}

/**
 * Go's time.Duration.String() of a non-negative nanosecond count: "0s", "1.5µs", "250ms",
 * "3m0.5s", "26h3m4.000000001s". Whole nanoseconds; exact below 2^53 ns (104 days), past
 * that the sub-second digits are as exact as a double allows.
 */
export function goDuration(ns: number): string {
  const total = Math.round(ns);
  if (total === 0) return '0s';
  if (total < 1e9) {
    if (total < 1e3) return `${total}ns`;
    if (total < 1e6) return `${fraction(total, 1e3)}µs`;
    return `${fraction(total, 1e6)}ms`;
  }
  const secondsTotal = Math.floor(total / 1e9);
  const h = Math.floor(secondsTotal / 3600);
  const m = Math.floor((secondsTotal % 3600) / 60);
  const s = fraction(total - (secondsTotal - (secondsTotal % 60)) * 1e9, 1e9);
  if (h > 0) return `${h}h${m}m${s}s`;
  if (m > 0) return `${m}m${s}s`;
  return `${s}s`;
}

/** `value / unit` with the fraction's trailing zeros trimmed, as Go prints it. */
function fraction(value: number, unit: number): string {
  const whole = Math.floor(value / unit);
  const rest = value - whole * unit;
  if (rest === 0) return String(whole);
  const digits = String(unit).length - 1;
  return `${whole}.${String(rest).padStart(digits, '0').replace(/0+$/, '')}`;
}
