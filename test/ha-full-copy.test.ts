/**
 * A full copy of a leader's data path bigger than a replication frame (256 MiB): it goes in pieces,
 * the leader keeps acknowledging publishes meanwhile, a copy cut short by SIGKILL of the new member
 * leaves nothing behind and starts again, and every message is delivered by the copy after a
 * failover. Real nsqd processes, etcd and nsqlookupd on loopback; skipped without /usr/bin/etcd.
 */
import { existsSync } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { join } from 'node:path';
import { Consumer } from '@nsq-ts/client';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { etcdSupport } from './support/etcd.js';
import { HaLoopback, pub, status } from './support/ha-loopback.js';
import { waitUntil } from './support/processes.js';

const skipReason = etcdSupport();
/** Bodies just under the default --max-msg-size; enough of them to pass a frame's 256 MiB. */
const BODY_BYTES = 1_000_000;
const BIG = 290;
const SEGMENTS = ['--max-bytes-per-file=67108864'];

let ha: HaLoopback;

beforeEach(() => {
  ha = new HaLoopback();
});

afterEach(async (ctx) => {
  await ha.cleanup(ctx.task.result?.state === 'fail');
}, 60_000);

describe.skipIf(skipReason !== null)('a full copy', () => {
  it('bigger than a frame goes in pieces while publishes go on; one cut short by SIGKILL starts again', async () => {
    await ha.start();
    const a = await ha.startMember(await ha.newMember('a'), { extra: SEGMENTS });
    await waitUntil('a leads', async () => (await status(a)).role === 'leader', { timeoutMs: 15_000 });
    for (const path of ['topic/create?topic=big', 'channel/create?topic=big&channel=c']) {
      expect((await fetch(`http://${a.http}/${path}`, { method: 'POST' })).status).toBe(200);
    }
    const expected = new Set<string>();
    for (let i = 0; i < BIG; i++) {
      const tag = `big${i}`;
      expect(await pub(a, 'big', `${tag}:${'x'.repeat(BODY_BYTES - tag.length - 1)}`, 30_000)).toBe(200);
      expected.add(tag);
    }

    const bSpec = await ha.newMember('b');
    const first = await ha.startMember(bSpec, { extra: SEGMENTS });
    await waitUntil('b starts copying', () => /taking a full copy from a/.test(first.proc.logs()), {
      timeoutMs: 30_000,
    });
    await ha.kill(first);

    const b = await ha.startMember(bSpec, { extra: SEGMENTS });
    // The leader acknowledges publishes while b copies (b is not in the in-sync set until it has everything).
    let n = 0;
    while (!(await status(a)).in_sync.includes('b')) {
      const tag = `during${n++}`;
      expect(await pub(a, 'big', tag)).toBe(200);
      expected.add(tag);
      if (n > 100_000) throw new Error('b never caught up');
    }
    expect(b.proc.logs()).toMatch(/taking a full copy from a/);
    const copied = [...a.proc.logs().matchAll(/b \(at seq \d+, epoch \d+\) got a full copy at seq \d+: (\d+) bytes/g)];
    expect(Number(copied[copied.length - 1]?.[1])).toBeGreaterThan(256 * 1024 * 1024);
    for (let i = 0; i < 5; i++) {
      expect(await pub(a, 'big', `after${i}`)).toBe(200);
      expected.add(`after${i}`);
    }
    // Neither side keeps the copy's scaffolding.
    expect(existsSync(join(bSpec.dataPath, 'copy-incoming'))).toBe(false);
    await waitUntil('a dropped its copy links', async () => {
      const dir = join(a.dataPath, 'copy-outgoing');
      return !existsSync(dir) || (await readdir(dir)).length === 0;
    });

    await ha.kill(a);
    await waitUntil('b leads', async () => (await status(b)).role === 'leader', { timeoutMs: 20_000 });
    const got = new Set<string>();
    const consumer = new Consumer({
      topic: 'big',
      channel: 'c',
      lookupdHttpAddresses: [ha.lookupdHttp],
      lookupdPollIntervalMs: 200,
      maxInFlight: 50,
      logger: null,
    });
    consumer.on('message', async (msg) => {
      const body = msg.rawBody.toString('latin1');
      const colon = body.indexOf(':');
      got.add(colon < 0 ? body : body.slice(0, colon));
    });
    try {
      await consumer.connect();
      await waitUntil(`all ${expected.size} delivered by b`, () => got.size >= expected.size, { timeoutMs: 60_000 });
    } finally {
      await consumer.close();
    }
    expect([...got].sort()).toEqual([...expected].sort());
  }, 240_000);
});
