/**
 * Test helpers. Broker state is read from the in-process nsqd's objects (the same numbers nsqd's
 * /stats reports), so assertions do not depend on the HTTP API.
 */
import type { TestNsqd } from '@nsq-ts/test-utils';

export interface ChannelCounts {
  depth: number;
  inFlight: number;
  deferred: number;
  requeued: number;
  timedOut: number;
}

/** Messages published to `topic` on this nsqd (0 if the topic does not exist). */
export function messageCount(d: TestNsqd, topic: string): number {
  return d.nsqd.topics.get(topic)?.messageCount ?? 0;
}

/** A channel's counters, or null if it does not exist. */
export function channelCounts(d: TestNsqd, topic: string, channel: string): ChannelCounts | null {
  const c = d.nsqd.topics.get(topic)?.channels.get(channel);
  if (c === undefined) return null;
  return {
    depth: c.depth,
    inFlight: c.inFlightCount,
    deferred: c.deferredCount,
    requeued: c.requeueCount,
    timedOut: c.timeoutCount,
  };
}

/** The RDY of every subscribed client on this nsqd. */
export function clientRdys(d: TestNsqd): number[] {
  return [...d.nsqd.clients].filter((c) => c.channel !== null).map((c) => c.rdy);
}

let counter = 0;
/** A fresh topic name per test. */
export function uniqueTopic(prefix = 't'): string {
  counter++;
  return `${prefix}-${process.pid}-${counter}`;
}
