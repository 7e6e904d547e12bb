import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { FaultyFileSystem } from './log/file-system.test-util.js';
import { Nsqd } from './nsqd.js';

let dataPath = '';
let nsqd: Nsqd | null = null;

afterEach(async () => {
  await nsqd?.close();
  nsqd = null;
  await rm(dataPath, { recursive: true, force: true });
});

describe('redrive of a backlog on disk', () => {
  it('reads each of its records from disk about once, however many steps it takes', async () => {
    dataPath = await mkdtemp(join(tmpdir(), 'nsqd-redrive-'));
    const fs = new FaultyFileSystem();
    const options = { tcpAddress: '127.0.0.1:0', httpAddress: '127.0.0.1:0', logLevel: 'warn' as const };
    nsqd = new Nsqd({ ...options, dataPath, memQueueSize: 100 }, undefined, fs);
    await nsqd.start();
    const dead = nsqd.getTopic('dead');
    const n = 20_000;
    const body = Buffer.alloc(200, 0x78);
    for (let i = 0; i < n; i++) dead.publish(body);
    await dead.flushed();
    const onDisk = (dead.log?.segments ?? []).reduce((a, s) => a + s.size, 0);
    expect(dead.tail.start).toBeGreaterThanOrEqual(n / 2);
    const before = fs.bytesRead;
    // Twenty steps of 1,000: each read on from where the last ended, not from the segment's start.
    expect(await dead.redrive(nsqd.getTopic('back'), n)).toBe(n);
    expect(fs.bytesRead - before).toBeLessThan(2 * onDisk);
    expect(nsqd.getTopic('back').depth).toBe(n);
  });
});
