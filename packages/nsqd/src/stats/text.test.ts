import { describe, expect, it } from 'vitest';
import { Nsqd } from '../nsqd.js';
import { collectStats } from './collect.js';
import { formatStatsText, goDuration, nanosecondsToHuman, rfc3339 } from './text.js';
import type { ClientStats, StatsSnapshot } from './types.js';

const NOW_MS = 1_700_000_000_000;
const START_S = NOW_MS / 1000 - 3605;

function client(overrides: Partial<ClientStats>): ClientStats {
  return {
    client_id: 'id',
    hostname: 'host',
    version: 'V2',
    remote_address: '127.0.0.1:1',
    state: 3,
    ready_count: 0,
    in_flight_count: 0,
    message_count: 0,
    finish_count: 0,
    requeue_count: 0,
    connect_ts: NOW_MS / 1000,
    sample_rate: 0,
    deflate: false,
    snappy: false,
    user_agent: '',
    tls: false,
    tls_cipher_suite: '',
    tls_version: '',
    tls_negotiated_protocol: '',
    tls_negotiated_protocol_is_mutual: false,
    ...overrides,
  };
}

const snapshot: StatsSnapshot = {
  version: '1.3.0',
  health: 'OK',
  start_time: START_S,
  topics: [
    {
      topic_name: 'orders',
      channels: [
        {
          channel_name: 'archive',
          depth: 5,
          backend_depth: 0,
          in_flight_count: 1,
          deferred_count: 2,
          message_count: 10,
          requeue_count: 3,
          timeout_count: 4,
          client_count: 1,
          clients: [
            client({
              hostname: 'worker',
              remote_address: '127.0.0.1:5000',
              user_agent: 'ua',
              in_flight_count: 1,
              ready_count: 10,
              finish_count: 2,
              requeue_count: 3,
              message_count: 6,
              connect_ts: NOW_MS / 1000 - 65,
            }),
          ],
          paused: true,
          e2e_processing_latency: {
            count: 2,
            percentiles: [
              { quantile: 0.99, value: 1.5e9 },
              { quantile: 0.5, value: 2500 },
            ],
          },
        },
      ],
      depth: 0,
      backend_depth: 0,
      message_count: 10,
      message_bytes: 100,
      paused: false,
      e2e_processing_latency: { count: 0, percentiles: null },
      corrupt_records: 0,
    },
    {
      topic_name: 'paused',
      channels: [],
      depth: 7,
      backend_depth: 0,
      message_count: 7,
      message_bytes: 70,
      paused: true,
      e2e_processing_latency: { count: 0, percentiles: null },
      corrupt_records: 0,
    },
  ],
  memory: {
    heap_objects: 0,
    heap_idle_bytes: 1,
    heap_in_use_bytes: 2,
    heap_released_bytes: 3,
    gc_pause_usec_100: 4,
    gc_pause_usec_99: 5,
    gc_pause_usec_95: 6,
    next_gc_bytes: 7,
    gc_total_runs: 8,
  },
  producers: [
    client({
      hostname: 'pub',
      remote_address: '::1:6000',
      user_agent: 'pubber/1.0',
      state: 0,
      pub_counts: [
        { topic: 'orders', count: 10 },
        { topic: 'paused', count: 7 },
      ],
      connect_ts: NOW_MS / 1000 - 3700,
    }),
  ],
};

describe('formatStatsText', () => {
  it("lays out topics, channels, clients and producers like nsqd's printStats", () => {
    const text = formatStatsText(snapshot, { startTimeS: START_S, includeMem: true, nowMs: NOW_MS });
    expect(text).toBe(
      [
        `nsqd v1.3.0 (built w/node${process.versions.node})`,
        `start_time ${rfc3339(START_S)}`,
        'uptime 1h0m5s',
        '',
        'Health: OK',
        '',
        'Memory:',
        '   heap_objects             \t0',
        '   heap_idle_bytes          \t1',
        '   heap_in_use_bytes        \t2',
        '   heap_released_bytes      \t3',
        '   gc_pause_usec_100        \t4',
        '   gc_pause_usec_99         \t5',
        '   gc_pause_usec_95         \t6',
        '   next_gc_bytes            \t7',
        '   gc_total_runs            \t8',
        '',
        'Topics:',
        '   [orders         ] depth: 0     be-depth: 0     msgs: 10       e2e%: ',
        '   *P [archive                  ] depth: 5     be-depth: 0     inflt: 1    def: 2    re-q: 3     timeout: 4     msgs: 10       e2e%: 1.5s, 2.5us',
        '        [V2 worker:5000 ua       ] state: 3 inflt: 1    rdy: 10   fin: 2        re-q: 3        msgs: 6        connected: 1m5s',
        '',
        '*P [paused         ] depth: 7     be-depth: 0     msgs: 7        e2e%: ',
        '',
        'Producers:',
        '   [V2 pub:6000 pubber/1.0  ] msgs: 17       topics: orders=10,paused=7 connected: 1h1m40s',
        '',
      ].join('\n'),
    );
  });

  it('says None for no topics and no producers, and leaves Memory out when asked', () => {
    const text = formatStatsText(
      { ...snapshot, topics: null, producers: null },
      { startTimeS: START_S, includeMem: false, nowMs: NOW_MS },
    );
    expect(text.split('\n').slice(3)).toEqual(['', 'Health: OK', '', 'Topics: None', '', 'Producers: None', '']);
  });

  it('formats a live broker', () => {
    const broker = new Nsqd({ logLevel: 'error' });
    broker.getTopic('t').getChannel('c');
    const snap = collectStats(broker, { includeClients: true, includeMem: true });
    const text = formatStatsText(snap, {
      startTimeS: Math.floor(Date.now() / 1000),
      includeMem: true,
      nowMs: Date.now(),
    });
    expect(text).toContain('\nMemory:\n   heap_objects');
    expect(text).toContain('\n   [t              ] depth: 0     be-depth: 0     msgs: 0        e2e%: \n');
    expect(text).toContain('\n      [c                        ] depth: 0 ');
    expect(text).toMatch(/\nuptime \d+(\.\d+)?m?s\n/);
  });
});

describe('Go formatting helpers', () => {
  it('goDuration prints like time.Duration.String()', () => {
    const cases: Array<[number, string]> = [
      [0, '0s'],
      [1, '1ns'],
      [999, '999ns'],
      [1500, '1.5µs'],
      [2_500_000, '2.5ms'],
      [100_000_000, '100ms'],
      [1e9, '1s'],
      [1_500_000_000, '1.5s'],
      [61e9, '1m1s'],
      [60e9, '1m0s'],
      [3600e9, '1h0m0s'],
      [3723.5e9, '1h2m3.5s'],
      [3723e9 + 1, '1h2m3.000000001s'],
      [100 * 3600e9, '100h0m0s'],
    ];
    for (const [ns, want] of cases) expect(goDuration(ns), String(ns)).toBe(want);
  });

  it('nanosecondsToHuman matches nsqd (strictly greater than each unit)', () => {
    expect(nanosecondsToHuman(0)).toBe('0.0ns');
    expect(nanosecondsToHuman(1000)).toBe('1000.0ns');
    expect(nanosecondsToHuman(1001)).toBe('1.0us');
    expect(nanosecondsToHuman(2_500_000)).toBe('2.5ms');
    expect(nanosecondsToHuman(1e9)).toBe('1000.0ms');
    expect(nanosecondsToHuman(12.34e9)).toBe('12.3s');
  });

  it('rfc3339 is RFC 3339 in local time and round-trips', () => {
    const s = rfc3339(1_700_000_000);
    expect(s).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d)$/);
    expect(Date.parse(s)).toBe(1_700_000_000_000);
  });
});
