import { decodeMessage, encodeCommand, FrameType } from '@nsq-ts/protocol';
import { eventually, RawClient, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it } from 'vitest';
import type { ClientV2 } from './client-v2.js';

let daemon: TestNsqd | null = null;
const connections: RawClient[] = [];

afterEach(async () => {
  for (const c of connections.splice(0)) c.close();
  await daemon?.close();
});

async function connect(d: TestNsqd): Promise<RawClient> {
  const c = await RawClient.connect(d.tcpAddress);
  connections.push(c);
  return c;
}

async function readIds(c: RawClient, n: number): Promise<string[]> {
  const ids: string[] = [];
  while (ids.length < n) {
    const frame = await c.readFrame();
    if (frame.type === FrameType.Message) ids.push(decodeMessage(frame.data).id);
  }
  return ids;
}

describe('FIN accounting', () => {
  it('counts a FIN the same on the fast path and the general path, and a failed one not at all', async () => {
    daemon = await startNsqd();
    const d = daemon;
    const pub = await connect(d);
    for (let i = 0; i < 3; i++) pub.write(encodeCommand('PUB', ['t'], `m${i}`));
    await eventually(() => expect(d.nsqd.topics.get('t')?.messageCount).toBe(3));

    const c = await connect(d);
    c.write('SUB t ch\n');
    await c.readFrame();
    const server = [...d.nsqd.clients].find((x) => x.channel !== null) as ClientV2;
    c.write('RDY 3\n');
    const [a, b, e] = (await readIds(c, 3)) as [string, string, string];
    const channel = d.nsqd.topics.get('t')?.channels.get('ch');
    expect(server.inFlight).toBe(3);

    // `FIN <id>` alone takes the decoder's fast path (onFin); with a further parameter it is an
    // ordinary command (NSQ ignores extra FIN params) and goes through the FIN handler.
    c.write(`FIN ${a}\nFIN ${b} extra\n`);
    await eventually(() => expect(server.finishCount).toBe(2));
    expect(server.inFlight).toBe(1);
    expect(channel?.inFlightCount).toBe(1);

    // A FIN for an ID no longer in flight fails on either path and changes no counter.
    c.write(`FIN ${a}\nFIN ${b} extra\nNOP\n`);
    for (const id of [a, b]) {
      const frame = await c.readFrame();
      expect(frame.type).toBe(FrameType.Error);
      expect(frame.data.toString()).toBe(`E_FIN_FAILED FIN ${id} failed ID not in flight`);
    }
    expect(server.finishCount).toBe(2);
    expect(server.inFlight).toBe(1);

    c.write(`FIN ${e}\n`);
    await eventually(() => expect(server.finishCount).toBe(3));
    expect(server.inFlight).toBe(0);
    expect(channel?.inFlightCount).toBe(0);
  });
});
