/** What the storage scenarios (overflow, soak, policy-memory) read off a broker: disk use, topic and channel counts, RSS series. */
import { execFileSync } from 'node:child_process';
import { httpRequest } from './broker.js';

/**
 * @import { ChannelCounts, HostPort, RssPoint, TopicStats } from './types.js'
 */

/**
 * Bytes under `dir` (`du -sb`), null if it cannot be read.
 * @param {string | null} dir
 */
export function diskBytes(dir) {
  if (dir === null) return null;
  try {
    return Number(execFileSync('du', ['-sb', dir], { encoding: 'utf8', timeout: 30_000 }).split('\t')[0]);
  } catch {
    return null;
  }
}

/**
 * One topic of the broker's /stats (its channels with it, as the broker reports them; null when
 * absent or on failure). `channel` narrows the channels to that one.
 * @param {HostPort} http
 * @param {string} topic
 * @param {string} [channel]
 * @returns {Promise<TopicStats | null>}
 */
export async function topicStats(http, topic, channel) {
  try {
    const only = channel === undefined ? '' : `&channel=${encodeURIComponent(channel)}`;
    const q = `/stats?format=json&include_mem=false&topic=${encodeURIComponent(topic)}${only}`;
    const res = await httpRequest(http, 'GET', q, 30_000);
    /** @type {{ topics?: TopicStats[] }} */
    const st = JSON.parse(res.body);
    return (st.topics ?? []).find((x) => x.topic_name === topic) ?? null;
  } catch {
    return null;
  }
}

/**
 * The broker's /stats for one topic's channel: depths, in flight, deferred (null on failure).
 * @param {HostPort} http
 * @param {string} topic
 * @param {string} channel
 * @returns {Promise<ChannelCounts | null>}
 */
export async function channelStats(http, topic, channel) {
  const t = await topicStats(http, topic, channel);
  const c = t?.channels?.find((x) => x.channel_name === channel);
  if (t === null || c === undefined) return null;
  return {
    topicDepth: t.depth,
    depth: c.depth,
    backendDepth: c.backend_depth,
    inFlight: c.in_flight_count,
    deferred: c.deferred_count,
    messageCount: t.message_count,
  };
}

/**
 * At most `max` points of a per-second RSS series (the largest value of each bucket).
 * @param {RssPoint[]} points
 * @param {number} max
 */
export function downsample(points, max) {
  if (points.length <= max) return points;
  const per = Math.ceil(points.length / max);
  const out = [];
  for (let i = 0; i < points.length; i += per) {
    const bucket = points.slice(i, i + per);
    out.push(bucket.reduce((a, p) => ((p.rssMiB ?? 0) > (a.rssMiB ?? 0) ? p : a)));
  }
  return out;
}
