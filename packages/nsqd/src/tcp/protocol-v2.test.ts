import { connect } from 'node:net';
import {
  decodeMessage,
  encodeCommand,
  encodeErrorFrame,
  encodeMpubBody,
  FrameType,
  HEARTBEAT_FRAME,
  OK_FRAME,
} from '@nsq-ts/protocol';
import { eventually, RawClient, type RawFrame, startNsqd, type TestNsqd } from '@nsq-ts/test-utils';
import { afterEach, describe, expect, it, vi } from 'vitest';
import { ManualClock } from '../clock.test-util.js';
import type { NsqdOptions } from '../options.js';

let daemon: TestNsqd | null = null;
const clients: RawClient[] = [];

async function nsqd(options: Partial<NsqdOptions> = {}, clock?: ManualClock): Promise<TestNsqd> {
  daemon = await startNsqd(options, clock);
  return daemon;
}

async function client(d: TestNsqd, options: { magic?: boolean } = {}): Promise<RawClient> {
  const c = await RawClient.connect(d.tcpAddress, options);
  clients.push(c);
  return c;
}

afterEach(async () => {
  for (const c of clients.splice(0)) c.close();
  await daemon?.close();
  daemon = null;
});

function text(frame: RawFrame): string {
  return frame.data.toString('latin1');
}

/** Sends a command and expects a fatal error frame with exactly this text, then a close. */
async function expectFatal(c: RawClient, bytes: Buffer | string, error: string): Promise<void> {
  c.write(bytes);
  const frame = await c.readFrame();
  expect(frame.type).toBe(FrameType.Error);
  expect(text(frame)).toBe(error);
  await c.waitClosed();
}

async function subscribe(d: TestNsqd, topic: string, channel: string, identify?: object): Promise<RawClient> {
  const c = await client(d);
  if (identify !== undefined) {
    c.write(encodeCommand('IDENTIFY', [], JSON.stringify(identify)));
    await c.readFrame();
  }
  c.write(`SUB ${topic} ${channel}\n`);
  expect(text(await c.readFrame())).toBe('OK');
  return c;
}

async function publish(d: TestNsqd, topic: string, bodies: string[]): Promise<void> {
  const c = await client(d);
  for (const b of bodies) c.write(encodeCommand('PUB', [topic], b));
  for (const _ of bodies) expect(text(await c.readFrame())).toBe('OK');
  c.close();
}

async function readMessage(c: RawClient, timeoutMs?: number) {
  const frame = await c.readFrame(timeoutMs === undefined ? {} : { timeoutMs });
  expect(frame.type).toBe(FrameType.Message);
  return decodeMessage(frame.data);
}

/** Asserts nothing but heartbeats arrives within `ms`. */
async function expectSilence(c: RawClient, ms: number): Promise<void> {
  await expect(c.readFrame({ timeoutMs: ms })).rejects.toThrow(/timed out/);
}

describe('connection start', () => {
  it('answers a bad magic with a bare E_BAD_PROTOCOL error frame and closes', async () => {
    const d = await nsqd();
    const c = await client(d, { magic: false });
    c.write('GET / HTTP/1.1\r\n\r\n');
    const frame = await c.readFrame();
    expect(Buffer.concat(c.received)).toEqual(Buffer.from([0, 0, 0, 18, 0, 0, 0, 1, ...Buffer.from('E_BAD_PROTOCOL')]));
    expect(text(frame)).toBe('E_BAD_PROTOCOL');
    await c.waitClosed();
  });

  it('accepts the magic split across writes and commands in the same packet', async () => {
    const d = await nsqd();
    const c = await client(d, { magic: false });
    c.write(' ');
    c.write(` V2${encodeCommand('PUB', ['t'], 'x').toString('latin1')}`);
    expect((await c.readFrame()).data).toEqual(OK_FRAME.subarray(8));
  });

  it('rejects an unknown command fatally', async () => {
    const d = await nsqd();
    await expectFatal(await client(d), 'BOGUS 1 2\n', 'E_INVALID invalid command BOGUS');
  });

  it('drops a connection whose line exceeds 16 KiB without an error frame', async () => {
    const d = await nsqd();
    const c = await client(d);
    c.write('X'.repeat(17 * 1024));
    await c.waitClosed();
    expect(c.pending()).toEqual([]);
  });

  it('strips a trailing \\r and sends no reply to NOP', async () => {
    const d = await nsqd();
    const c = await client(d);
    c.write('NOP\r\n');
    c.write(encodeCommand('PUB', ['t'], 'x'));
    expect(text(await c.readFrame())).toBe('OK');
    expect(c.pending()).toEqual([]);
  });
});

describe('IDENTIFY', () => {
  it('replies OK without feature negotiation and overwrites client_id and hostname', async () => {
    const d = await nsqd();
    const c = await client(d);
    c.write(encodeCommand('IDENTIFY', [], JSON.stringify({ client_id: 'a', short_id: 'legacy' })));
    expect(text(await c.readFrame())).toBe('OK');
    const [conn] = [...d.nsqd.clients];
    expect(conn?.clientId).toBe('a');
    expect(conn?.hostname).toBe('');
  });

  it('accepts a JSON null body as all defaults', async () => {
    const d = await nsqd();
    const c = await client(d);
    c.write(encodeCommand('IDENTIFY', [], 'null'));
    expect(text(await c.readFrame())).toBe('OK');
  });

  it('replies with the negotiated settings as JSON, keys in NSQ order', async () => {
    const d = await nsqd({ maxRdyCount: 200 });
    const c = await client(d);
    c.write(
      encodeCommand(
        'IDENTIFY',
        [],
        JSON.stringify({
          feature_negotiation: true,
          msg_timeout: 5000,
          output_buffer_size: 1024,
          output_buffer_timeout: 100,
          sample_rate: 10,
          deflate_level: 9,
          topology_zone: 'z',
        }),
      ),
    );
    const frame = await c.readFrame();
    expect(frame.type).toBe(FrameType.Response);
    const reply = JSON.parse(text(frame));
    expect(Object.keys(reply)).toEqual([
      'max_rdy_count',
      'version',
      'max_msg_timeout',
      'msg_timeout',
      'tls_v1',
      'deflate',
      'deflate_level',
      'max_deflate_level',
      'snappy',
      'sample_rate',
      'auth_required',
      'output_buffer_size',
      'output_buffer_timeout',
      // nsq-ts extensions after NSQ's keys.
      'max_msg_size',
      'max_body_size',
    ]);
    expect(reply).toMatchObject({
      max_rdy_count: 200,
      version: '1.3.0',
      max_msg_timeout: 900000,
      msg_timeout: 5000,
      tls_v1: false,
      deflate: false,
      deflate_level: 6,
      max_deflate_level: 6,
      snappy: false,
      sample_rate: 10,
      auth_required: false,
      output_buffer_size: 1024,
      output_buffer_timeout: 100,
    });
  });

  it("takes the client's deflate_level only when deflate is negotiated (nsqd reports 6 otherwise)", async () => {
    const d = await nsqd({ maxDeflateLevel: 9 });
    // A bare socket: what follows the JSON is compressed, which a RawClient cannot decode.
    const reply = (identify: object) =>
      new Promise<Record<string, unknown>>((resolve, reject) => {
        const [host, port] = [d.tcpAddress.split(':')[0] as string, Number(d.tcpAddress.split(':')[1])];
        const s = connect({ host, port }, () => {
          s.write(
            Buffer.concat([
              Buffer.from('  V2'),
              encodeCommand('IDENTIFY', [], JSON.stringify({ feature_negotiation: true, ...identify })),
            ]),
          );
        });
        let data = Buffer.alloc(0);
        s.on('data', (chunk: Buffer) => {
          data = Buffer.concat([data, chunk]);
          if (data.length < 4 || data.length < 4 + data.readInt32BE(0)) return;
          s.destroy();
          resolve(JSON.parse(data.toString('utf8', 8, 4 + data.readInt32BE(0))));
        });
        s.on('error', reject);
      });
    expect(await reply({ deflate: false, deflate_level: 3 })).toMatchObject({ deflate: false, deflate_level: 6 });
    expect(await reply({ snappy: true, deflate_level: 3 })).toMatchObject({ snappy: true, deflate_level: 6 });
    expect(await reply({ deflate: true, deflate_level: 3 })).toMatchObject({ deflate: true, deflate_level: 3 });
    expect(await reply({ deflate: true, deflate_level: 0 })).toMatchObject({ deflate: true, deflate_level: 6 });
  });

  const invalid: Array<[object, string]> = [
    [{ heartbeat_interval: 999 }, 'E_BAD_BODY IDENTIFY heartbeat interval (999) is invalid'],
    [{ heartbeat_interval: 60001 }, 'E_BAD_BODY IDENTIFY heartbeat interval (60001) is invalid'],
    [{ output_buffer_size: 63 }, 'E_BAD_BODY IDENTIFY output buffer size (63) is invalid'],
    [{ output_buffer_size: 65537 }, 'E_BAD_BODY IDENTIFY output buffer size (65537) is invalid'],
    [{ output_buffer_timeout: 24 }, 'E_BAD_BODY IDENTIFY output buffer timeout (24) is invalid'],
    [{ sample_rate: 100 }, 'E_BAD_BODY IDENTIFY sample rate (100) is invalid'],
    [{ sample_rate: -1 }, 'E_BAD_BODY IDENTIFY sample rate (-1) is invalid'],
    [{ msg_timeout: 999 }, 'E_BAD_BODY IDENTIFY msg timeout (999) is invalid'],
    [{ msg_timeout: 900001 }, 'E_BAD_BODY IDENTIFY msg timeout (900001) is invalid'],
    [{ heartbeat_interval: '1000' }, 'E_BAD_BODY IDENTIFY failed to decode JSON body'],
    [{ msg_timeout: 1000.5 }, 'E_BAD_BODY IDENTIFY failed to decode JSON body'],
  ];
  for (const [body, error] of invalid) {
    it(`refuses ${JSON.stringify(body)}`, async () => {
      const d = await nsqd();
      await expectFatal(await client(d), encodeCommand('IDENTIFY', [], JSON.stringify(body)), error);
    });
  }

  it('refuses bodies that are not JSON, empty or too big', async () => {
    const d = await nsqd({ maxBodySize: 100 });
    await expectFatal(
      await client(d),
      encodeCommand('IDENTIFY', [], '{nope'),
      'E_BAD_BODY IDENTIFY failed to decode JSON body',
    );
    const empty = Buffer.from('IDENTIFY\n\0\0\0\0', 'latin1');
    await expectFatal(await client(d), empty, 'E_BAD_BODY IDENTIFY invalid body size 0');
    await expectFatal(
      await client(d),
      encodeCommand('IDENTIFY', [], JSON.stringify({ client_id: 'x'.repeat(200) })),
      'E_BAD_BODY IDENTIFY body too big 216 > 100',
    );
  });

  it('is refused after SUB', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    await expectFatal(c, encodeCommand('IDENTIFY', [], '{}'), 'E_INVALID cannot IDENTIFY in current state');
  });

  it('AUTH is refused when auth is not configured', async () => {
    const d = await nsqd();
    await expectFatal(await client(d), encodeCommand('AUTH', [], 'secret'), 'E_AUTH_DISABLED AUTH disabled');
    await expectFatal(
      await client(d),
      encodeCommand('AUTH', ['x'], 'secret'),
      'E_INVALID AUTH invalid number of parameters',
    );
  });
});

describe('SUB', () => {
  it('checks state, heartbeats, params and names in order', async () => {
    const d = await nsqd();
    await expectFatal(await client(d), 'SUB t\n', 'E_INVALID SUB insufficient number of parameters');
    await expectFatal(await client(d), 'SUB bad! c\n', 'E_BAD_TOPIC SUB topic name "bad!" is not valid');
    await expectFatal(await client(d), 'SUB t c"\\\n', 'E_BAD_CHANNEL SUB channel name "c\\"\\\\" is not valid');
    const c = await subscribe(d, 't', 'c');
    await expectFatal(c, 'SUB t c\n', 'E_INVALID cannot SUB in current state');
    const noHeartbeat = await client(d);
    noHeartbeat.write(encodeCommand('IDENTIFY', [], JSON.stringify({ heartbeat_interval: -1 })));
    expect(text(await noHeartbeat.readFrame())).toBe('OK');
    await expectFatal(noHeartbeat, 'SUB t c\n', 'E_INVALID cannot SUB with heartbeats disabled');
  });

  it('enforces --max-channel-consumers', async () => {
    const d = await nsqd({ maxChannelConsumers: 1 });
    await subscribe(d, 't', 'c');
    await expectFatal(await client(d), 'SUB t c\n', 'E_SUB_FAILED SUB failed consumers for t:c exceeds limit of 1');
    await subscribe(d, 't', 'other');
  });
});

describe('PUB, MPUB, DPUB', () => {
  it('check params, names and sizes with NSQ texts', async () => {
    const d = await nsqd({ maxMsgSize: 10, maxBodySize: 100 });
    const cases: Array<[Buffer | string, string]> = [
      ['PUB\n', 'E_INVALID PUB insufficient number of parameters'],
      [encodeCommand('PUB', ['bad!'], 'x'), 'E_BAD_TOPIC PUB topic name "bad!" is not valid'],
      ['PUB t\n\0\0\0\0', 'E_BAD_MESSAGE PUB invalid message body size 0'],
      ['PUB t\n\xff\xff\xff\xff', 'E_BAD_MESSAGE PUB invalid message body size -1'],
      [encodeCommand('PUB', ['t'], 'x'.repeat(11)), 'E_BAD_MESSAGE PUB message too big 11 > 10'],
      ['MPUB\n', 'E_INVALID MPUB insufficient number of parameters'],
      [encodeCommand('MPUB', ['bad!'], 'x'), 'E_BAD_TOPIC E_BAD_TOPIC MPUB topic name "bad!" is not valid'],
      ['MPUB t\n\0\0\0\0', 'E_BAD_BODY MPUB invalid body size 0'],
      [encodeCommand('MPUB', ['t'], Buffer.alloc(101)), 'E_BAD_BODY MPUB body too big 101 > 100'],
      [encodeCommand('MPUB', ['t'], Buffer.from([0, 0, 0, 0])), 'E_BAD_BODY MPUB invalid message count 0'],
      [encodeCommand('MPUB', ['t'], Buffer.from([0, 0, 0, 20])), 'E_BAD_BODY MPUB invalid message count 20'],
      [
        encodeCommand('MPUB', ['t'], encodeMpubBody([Buffer.from('ok'), Buffer.alloc(0)])),
        'E_BAD_MESSAGE MPUB invalid message(1) body size 0',
      ],
      [encodeCommand('MPUB', ['t'], encodeMpubBody([Buffer.alloc(11)])), 'E_BAD_MESSAGE MPUB message too big 11 > 10'],
      ['DPUB t\n', 'E_INVALID DPUB insufficient number of parameters'],
      ['DPUB bad! 10\n', 'E_BAD_TOPIC DPUB topic name "bad!" is not valid'],
      ['DPUB t -1\n', 'E_INVALID DPUB could not parse timeout -1'],
      ['DPUB t 3600001\n', 'E_INVALID DPUB timeout 3600001 out of range 0-3600000'],
      ['DPUB t 10\n\0\0\0\0', 'E_BAD_MESSAGE DPUB invalid message body size 0'],
      [encodeCommand('DPUB', ['t', '10'], 'x'.repeat(11)), 'E_BAD_MESSAGE DPUB message too big 11 > 10'],
    ];
    for (const [bytes, error] of cases) {
      await expectFatal(await client(d), bytes, error);
    }
  });

  it('a body command cut short by the end of the stream gets the error nsqd reads at EOF', async () => {
    const d = await nsqd({ maxMsgSize: 10, maxBodySize: 100 });
    const mpub = encodeCommand('MPUB', ['t'], encodeMpubBody([Buffer.from('abc'), Buffer.from('de')]));
    const cases: Array<[Buffer | string, string]> = [
      ['PUB t\n\0\0', 'E_BAD_MESSAGE PUB failed to read message body size'],
      ['PUB t\n\0\0\0\x05ab', 'E_BAD_MESSAGE PUB failed to read message body'],
      ['DPUB t 5\n\0', 'E_BAD_MESSAGE DPUB failed to read message body size'],
      ['DPUB t 5\n\0\0\0\x05ab', 'E_BAD_MESSAGE DPUB failed to read message body'],
      ['IDENTIFY\n\0\0', 'E_BAD_BODY IDENTIFY failed to read body size'],
      ['IDENTIFY\n\0\0\0\x05{}', 'E_BAD_BODY IDENTIFY failed to read body'],
      ['MPUB t\n\0', 'E_BAD_BODY MPUB failed to read body size'],
      [mpub.subarray(0, 'MPUB t\n'.length + 6), 'E_BAD_BODY MPUB failed to read message count'],
      [mpub.subarray(0, 'MPUB t\n'.length + 10), 'E_BAD_MESSAGE MPUB failed to read message(0) body size'],
      [mpub.subarray(0, 'MPUB t\n'.length + 14), 'E_BAD_MESSAGE MPUB failed to read message body'],
      [mpub.subarray(0, 'MPUB t\n'.length + 17), 'E_BAD_MESSAGE MPUB failed to read message(1) body size'],
    ];
    for (const [bytes, error] of cases) {
      const c = await client(d);
      c.socket.end(typeof bytes === 'string' ? Buffer.from(bytes, 'latin1') : bytes);
      const frame = await c.readFrame();
      expect(text(frame), JSON.stringify(bytes.toString('latin1'))).toBe(error);
      await c.waitClosed();
    }
    expect(d.nsqd.topics.get('t')?.messageCount ?? 0).toBe(0);
  });

  it('ends the connection without a frame when the stream ends between commands or in a line', async () => {
    const d = await nsqd();
    for (const bytes of ['NOP\n', 'NOP\nPU']) {
      const c = await client(d);
      c.socket.end(bytes);
      await c.waitClosed();
      expect(c.pending()).toEqual([]);
    }
  });

  it("reads MPUB as nsqd does: nsqjs's size field (the bodies' sum) publishes every message", async () => {
    const d = await nsqd();
    const bodies = ['one', 'two two', 'three three three'].map((b) => Buffer.from(b));
    const body = encodeMpubBody(bodies);
    const size = Buffer.alloc(4);
    size.writeInt32BE(bodies.reduce((n, b) => n + b.length, 0));
    const c = await client(d);
    c.write(Buffer.concat([Buffer.from('MPUB t\n'), size, body, encodeCommand('PUB', ['t'], 'four')]));
    expect((await c.readFrames(2)).map(text)).toEqual(['OK', 'OK']);
    const sub = await subscribe(d, 't', 'c');
    sub.write('RDY 10\n');
    const got: string[] = [];
    for (let i = 0; i < 4; i++) got.push((await readMessage(sub)).body.toString());
    expect(got).toEqual(['one', 'two two', 'three three three', 'four']);
  });

  it("reads the bytes after an MPUB's last message as the next command, whatever its size field said", async () => {
    const d = await nsqd();
    const body = encodeMpubBody([Buffer.from('a')]);
    const size = Buffer.alloc(4);
    size.writeInt32BE(body.length + 4);
    const c = await client(d);
    c.write(
      Buffer.concat([Buffer.from('MPUB t\n'), size, body, Buffer.from('NOP\n'), encodeCommand('PUB', ['t'], 'b')]),
    );
    expect((await c.readFrames(2)).map(text)).toEqual(['OK', 'OK']);
    expect(d.nsqd.topics.get('t')?.messageCount).toBe(2);
  });

  it('refuses a first MPUB message of 1,048,577 bytes at its length field, as nsqd does, and closes', async () => {
    const d = await nsqd();
    const head = Buffer.alloc(12);
    head.writeInt32BE(1_048_577 + 8, 0);
    head.writeInt32BE(1, 4);
    head.writeInt32BE(1_048_577, 8);
    // Nothing of the message itself is sent: nsqd answers without waiting for it.
    await expectFatal(
      await client(d),
      Buffer.concat([Buffer.from('MPUB t\n'), head]),
      'E_BAD_MESSAGE MPUB message too big 1048577 > 1048576',
    );
  });

  it('creates the topic of a refused MPUB, as nsqd gets it before reading the body', async () => {
    const d = await nsqd();
    await expectFatal(await client(d), 'MPUB refused\n\0\0\0\0', 'E_BAD_BODY MPUB invalid body size 0');
    expect(d.nsqd.topics.has('refused')).toBe(true);
  });

  it('publishes nothing from an MPUB with any invalid message', async () => {
    const d = await nsqd({ maxMsgSize: 10 });
    await expectFatal(
      await client(d),
      encodeCommand('MPUB', ['t'], encodeMpubBody([Buffer.from('ok'), Buffer.alloc(11)])),
      'E_BAD_MESSAGE MPUB message too big 11 > 10',
    );
    expect(d.nsqd.topics.get('t')?.messageCount ?? 0).toBe(0);
  });

  it('replies one OK per command, pipelined and in order, on any connection state', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 'other', 'c');
    const batch = Buffer.concat([
      encodeCommand('PUB', ['t'], 'a'),
      encodeCommand('MPUB', ['t'], encodeMpubBody([Buffer.from('b'), Buffer.from('c')])),
      encodeCommand('DPUB', ['t', '0'], 'd'),
    ]);
    c.write(batch);
    const frames = await c.readFrames(3);
    expect(frames.map(text)).toEqual(['OK', 'OK', 'OK']);
    expect(d.nsqd.topics.get('t')?.messageCount).toBe(4);
  });
});

describe('RDY, FIN, REQ, TOUCH, CLS', () => {
  it('refuse to run before SUB', async () => {
    const d = await nsqd();
    await expectFatal(await client(d), 'RDY 1\n', 'E_INVALID cannot RDY in current state');
    await expectFatal(await client(d), 'FIN 0123456789abcdef\n', 'E_INVALID cannot FIN in current state');
    await expectFatal(await client(d), 'REQ 0123456789abcdef 0\n', 'E_INVALID cannot REQ in current state');
    await expectFatal(await client(d), 'TOUCH 0123456789abcdef\n', 'E_INVALID cannot TOUCH in current state');
    await expectFatal(await client(d), 'CLS\n', 'E_INVALID cannot CLS in current state');
  });

  it('check RDY counts', async () => {
    const d = await nsqd({ maxRdyCount: 100 });
    await expectFatal(await subscribe(d, 't', 'c'), 'RDY x\n', 'E_INVALID RDY could not parse count x');
    await expectFatal(await subscribe(d, 't', 'c'), 'RDY -1\n', 'E_INVALID RDY could not parse count -1');
    await expectFatal(await subscribe(d, 't', 'c'), 'RDY 101\n', 'E_INVALID RDY count 101 out of range 0-100');
    // Go's uint64 accumulator wraps: 2^64-1 becomes int64 -1.
    await expectFatal(
      await subscribe(d, 't', 'c'),
      'RDY 18446744073709551615\n',
      'E_INVALID RDY count -1 out of range 0-100',
    );
  });

  it('check FIN/REQ/TOUCH params and IDs; unknown IDs are not fatal', async () => {
    const d = await nsqd();
    await expectFatal(await subscribe(d, 't', 'c'), 'FIN\n', 'E_INVALID FIN insufficient number of params');
    await expectFatal(
      await subscribe(d, 't', 'c'),
      'REQ 0123456789abcdef\n',
      'E_INVALID REQ insufficient number of params',
    );
    await expectFatal(await subscribe(d, 't', 'c'), 'TOUCH\n', 'E_INVALID TOUCH insufficient number of params');
    await expectFatal(await subscribe(d, 't', 'c'), 'FIN 123\n', 'E_INVALID invalid message ID');
    await expectFatal(
      await subscribe(d, 't', 'c'),
      'REQ 0123456789abcdef x\n',
      'E_INVALID REQ could not parse timeout x',
    );
    const c = await subscribe(d, 't', 'c');
    c.write('FIN 0123456789abcdef\nREQ 0123456789abcdef 0\nTOUCH 0123456789abcdef\n');
    const frames = await c.readFrames(3);
    expect(frames.map(text)).toEqual([
      'E_FIN_FAILED FIN 0123456789abcdef failed ID not in flight',
      'E_REQ_FAILED REQ 0123456789abcdef failed ID not in flight',
      'E_TOUCH_FAILED TOUCH 0123456789abcdef failed ID not in flight',
    ]);
    expect(frames.every((f) => f.type === FrameType.Error)).toBe(true);
    c.write(encodeCommand('PUB', ['t'], 'still open'));
    expect(text(await c.readFrame())).toBe('OK');
  });

  it('refuses to FIN a message owned by another connection', async () => {
    const d = await nsqd();
    const a = await subscribe(d, 't', 'c');
    const b = await subscribe(d, 't', 'c');
    a.write('RDY 1\n');
    await publish(d, 't', ['m']);
    const msg = await readMessage(a);
    b.write(`FIN ${msg.id}\n`);
    expect(text(await b.readFrame())).toBe(`E_FIN_FAILED FIN ${msg.id} failed client does not own message`);
  });

  it('CLS replies CLOSE_WAIT, stops delivery, ignores RDY and still accepts FIN', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    c.write('RDY 1\n');
    await publish(d, 't', ['a', 'b']);
    const msg = await readMessage(c);
    c.write('CLS\n');
    expect(text(await c.readFrame())).toBe('CLOSE_WAIT');
    c.write(`RDY 5\nFIN ${msg.id}\n`);
    await expectSilence(c, 200);
    expect(c.closed).toBe(false);
    expect(d.nsqd.topics.get('t')?.channels.get('c')?.inFlightCount).toBe(0);
  });
});

describe('delivery', () => {
  it('sends messages with publish timestamp, attempts 1 and 16-hex IDs, byte-exact', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    c.write('RDY 1\n');
    const before = BigInt(Date.now()) * 1_000_000n;
    await publish(d, 't', ['hello']);
    const frame = await c.readFrame();
    expect(frame.data.length).toBe(26 + 5);
    const msg = decodeMessage(frame.data);
    expect(msg.id).toMatch(/^[0-9a-f]{16}$/);
    expect(msg.attempts).toBe(1);
    expect(msg.body.toString()).toBe('hello');
    expect(msg.timestamp >= before && msg.timestamp <= BigInt(Date.now()) * 1_000_000n).toBe(true);
  });

  it('treats RDY as an in-flight window; RDY without a count means 1', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    await publish(d, 't', ['1', '2', '3', '4']);
    c.write('RDY 2\n');
    const first = [await readMessage(c), await readMessage(c)];
    await expectSilence(c, 100);
    c.write(`FIN ${first[0]?.id}\n`);
    const third = await readMessage(c);
    expect(third.body.toString()).toBe('3');
    c.write(`RDY 0\nFIN ${first[1]?.id}\nFIN ${third.id}\n`);
    await expectSilence(c, 100);
    c.write('RDY\n');
    expect((await readMessage(c)).body.toString()).toBe('4');
  });

  it('buffers a topic without channels for its first channel; later channels start at the end', async () => {
    const d = await nsqd();
    await publish(d, 't', ['old1', 'old2']);
    const first = await subscribe(d, 't', 'first');
    first.write('RDY 10\n');
    expect([(await readMessage(first)).body.toString(), (await readMessage(first)).body.toString()]).toEqual([
      'old1',
      'old2',
    ]);
    const second = await subscribe(d, 't', 'second');
    second.write('RDY 10\n');
    await publish(d, 't', ['new']);
    expect((await readMessage(second)).body.toString()).toBe('new');
    expect((await readMessage(first)).body.toString()).toBe('new');
  });

  it('fans out to every channel and splits a channel among its consumers', async () => {
    const d = await nsqd();
    const a1 = await subscribe(d, 't', 'a');
    const a2 = await subscribe(d, 't', 'a');
    const b = await subscribe(d, 't', 'b');
    for (const c of [a1, a2, b]) c.write('RDY 100\n');
    const bodies = Array.from({ length: 20 }, (_, i) => `m${i}`);
    await publish(d, 't', bodies);
    const got = await b.readFrames(20);
    expect(got.map((f) => decodeMessage(f.data).body.toString())).toEqual(bodies);
    await eventually(() => expect(a1.pending().length + a2.pending().length).toBe(20));
    expect(a1.pending().length).toBeGreaterThan(0);
    expect(a2.pending().length).toBeGreaterThan(0);
  });

  it('counts attempts across REQ and delivers a delayed REQ after its delay', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    c.write('RDY 1\n');
    await publish(d, 't', ['m']);
    const first = await readMessage(c);
    c.write(`REQ ${first.id} 0\n`);
    const second = await readMessage(c);
    expect(second.id).toBe(first.id);
    expect(second.attempts).toBe(2);
    const requeuedAt = Date.now();
    c.write(`REQ ${second.id} 300\n`);
    const third = await readMessage(c);
    expect(d.nsqd.topics.get('t')?.channels.get('c')?.requeueCount).toBe(2);
    expect(Date.now() - requeuedAt).toBeGreaterThanOrEqual(290);
    expect(third.attempts).toBe(3);
  });

  it('clamps a REQ timeout above --max-req-timeout instead of refusing it', async () => {
    const d = await nsqd({ maxReqTimeoutMs: 200 });
    const c = await subscribe(d, 't', 'c');
    c.write('RDY 1\n');
    await publish(d, 't', ['m']);
    const msg = await readMessage(c);
    c.write(`REQ ${msg.id} 999999999\n`);
    expect((await readMessage(c, 3_000)).attempts).toBe(2);
  });

  it('redelivers after the in-flight timeout; TOUCH pushes the deadline out', async () => {
    const clock = new ManualClock();
    const d = await nsqd({}, clock);
    const c = await subscribe(d, 't', 'c', { msg_timeout: 1000 });
    c.write('RDY 1\n');
    await publish(d, 't', ['m']);
    const msg = await readMessage(c);
    const channel = d.nsqd.topics.get('t')?.channels.get('c');
    clock.advance(600);
    c.write(`TOUCH ${msg.id}\n`);
    // Commands run in order: the OK of a PUB sent after the TOUCH says the TOUCH was handled.
    c.write(encodeCommand('PUB', ['other'], 'x'));
    expect(text(await c.readFrame())).toBe('OK');
    clock.advance(900);
    // 1.5 s after delivery: past the first deadline, not past the touched one (0.6 s + 1 s).
    expect(channel?.timeoutCount).toBe(0);
    clock.advance(150);
    const again = await readMessage(c, 5_000);
    expect(again.id).toBe(msg.id);
    expect(again.attempts).toBe(2);
    expect(channel?.timeoutCount).toBe(1);
  });

  it('defers DPUB messages by their timeout', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    c.write('RDY 10\n');
    const p = await client(d);
    const sentAt = Date.now();
    p.write(encodeCommand('DPUB', ['t', '400'], 'later'));
    p.write(encodeCommand('PUB', ['t'], 'now'));
    expect((await p.readFrames(2)).map(text)).toEqual(['OK', 'OK']);
    expect((await readMessage(c)).body.toString()).toBe('now');
    expect(d.nsqd.topics.get('t')?.channels.get('c')?.deferredCount).toBe(1);
    expect((await readMessage(c)).body.toString()).toBe('later');
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(390);
  });

  it('keeps DPUB due times for messages buffered before the first channel', async () => {
    const d = await nsqd();
    const p = await client(d);
    const sentAt = Date.now();
    p.write(encodeCommand('DPUB', ['t', '400'], 'later'));
    expect(text(await p.readFrame())).toBe('OK');
    const c = await subscribe(d, 't', 'c');
    c.write('RDY 1\n');
    expect((await readMessage(c)).body.toString()).toBe('later');
    expect(Date.now() - sentAt).toBeGreaterThanOrEqual(390);
  });

  it('holds messages of a paused topic and a paused channel', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    c.write('RDY 10\n');
    const topic = d.nsqd.getTopic('t');
    topic.pause();
    await publish(d, 't', ['held']);
    await expectSilence(c, 100);
    expect(topic.depth).toBe(1);
    topic.empty();
    topic.unpause();
    await publish(d, 't', ['after']);
    expect((await readMessage(c)).body.toString()).toBe('after');
    const channel = topic.getChannel('c');
    channel.pause();
    await publish(d, 't', ['x']);
    await expectSilence(c, 100);
    expect(channel.depth).toBe(1);
    channel.unpause();
    expect((await readMessage(c)).body.toString()).toBe('x');
  });

  it('deletes an ephemeral channel with its last consumer and the ephemeral topic with it', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 'e#ephemeral', 'c#ephemeral');
    expect(d.nsqd.topics.get('e#ephemeral')?.channels.has('c#ephemeral')).toBe(true);
    c.close();
    await eventually(() => expect(d.nsqd.topics.has('e#ephemeral')).toBe(false));
  });

  it('drops the overflow of an ephemeral channel beyond --mem-queue-size', async () => {
    const d = await nsqd({ memQueueSize: 3 });
    const c = await subscribe(d, 't', 'c#ephemeral');
    await publish(d, 't', ['1', '2', '3', '4', '5']);
    const channel = d.nsqd.topics.get('t')?.channels.get('c#ephemeral');
    expect(channel?.depth).toBe(3);
    c.write('RDY 10\n');
    const got = await c.readFrames(3);
    expect(got.map((f) => decodeMessage(f.data).body.toString())).toEqual(['3', '4', '5']);
  });

  it('delivers a 1 MB message intact', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c');
    c.write('RDY 1\n');
    const body = Buffer.alloc(1_048_576, 7);
    body.write('start');
    body.write('end', body.length - 3);
    const p = await client(d);
    p.write(encodeCommand('PUB', ['t'], body));
    expect(text(await p.readFrame())).toBe('OK');
    expect((await readMessage(c)).body.equals(body)).toBe(true);
  });
});

describe('clock jumps', () => {
  it('a wall clock stepped an hour forward or back expires nothing early and holds nothing late', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 'clock', 'c', { msg_timeout: 1000 });
    c.write('RDY 10\n');
    await publish(d, 'clock', ['in-flight']);
    const first = await readMessage(c);
    const start = performance.now();
    const realNow = Date.now.bind(Date);
    const p = await client(d);
    try {
      // Step forward: a deadline on the wall clock would expire the message now.
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() + 3_600_000);
      p.write(encodeCommand('DPUB', ['clock', '600'], 'deferred'));
      expect(text(await p.readFrame())).toBe('OK');
      await new Promise((r) => setTimeout(r, 300));
      expect(d.nsqd.topics.get('clock')?.channels.get('c')?.timeoutCount).toBe(0);
      // Step back: a due time on the wall clock would hold the deferred message for an hour.
      vi.spyOn(Date, 'now').mockImplementation(() => realNow() - 3_600_000);
      const next = [await readMessage(c, 5_000), await readMessage(c, 5_000)].map((m) => m.body.toString());
      expect(next.sort()).toEqual(['deferred', 'in-flight']);
      // The timeout fired on the monotonic clock, ~1 s after delivery.
      expect(performance.now() - start).toBeGreaterThanOrEqual(900);
      expect(first.body.toString()).toBe('in-flight');
    } finally {
      vi.restoreAllMocks();
    }
  });
});

describe('bad input', () => {
  it('answers random bytes with an error or a close and keeps serving others', async () => {
    const d = await nsqd({ maxBodySize: 64 * 1024, maxMsgSize: 16 * 1024 });
    let seed = 42;
    const random = () => {
      seed = (seed * 1103515245 + 12345) & 0x7fffffff;
      return seed / 0x7fffffff;
    };
    const fragments = [
      'PUB t\n',
      'MPUB t\n',
      'IDENTIFY\n',
      'SUB t c\n',
      'RDY 9\n',
      'FIN ',
      '\n',
      ' ',
      '\xff\xff\xff\x7f',
    ];
    for (let round = 0; round < 40; round++) {
      const c = await client(d);
      let junk = '';
      for (let i = 0; i < 20; i++) {
        junk +=
          random() < 0.5
            ? (fragments[Math.floor(random() * fragments.length)] as string)
            : String.fromCharCode(Math.floor(random() * 256));
      }
      c.write(junk);
      c.socket.end();
      await c.waitClosed();
      for (const f of c.pending())
        expect(f.type === FrameType.Error ? text(f) : 'ok').toMatch(/^(E_[A-Z_]+ |ok|E_BAD_PROTOCOL)/);
    }
    await publish(d, 't2', ['after the junk']);
    const c = await subscribe(d, 't2', 'c');
    c.write('RDY 1\n');
    expect((await readMessage(c)).body.toString()).toBe('after the junk');
    expect(d.nsqd.clients.size).toBe(1);
  });

  it('samples messages with sample_rate: a channel copy is dropped, not requeued', async () => {
    const d = await nsqd();
    const c = await subscribe(d, 't', 'c', { sample_rate: 30 });
    c.write('RDY 2500\n');
    const p = await client(d);
    p.write(encodeCommand('MPUB', ['t'], encodeMpubBody(Array.from({ length: 1000 }, () => Buffer.from('m')))));
    expect(text(await p.readFrame())).toBe('OK');
    const channel = d.nsqd.topics.get('t')?.channels.get('c');
    await eventually(() => expect(channel?.depth).toBe(0));
    const delivered = channel?.inFlightCount ?? 0;
    // nsqd keeps a message when rand(0..99) <= rate: 31 % expected.
    expect(delivered).toBeGreaterThan(200);
    expect(delivered).toBeLessThan(420);
  });
});

describe('heartbeats and deadlines', () => {
  it('sends heartbeats at the negotiated interval and closes after two silent intervals', async () => {
    const d = await nsqd();
    const c = await client(d);
    c.write(encodeCommand('IDENTIFY', [], JSON.stringify({ heartbeat_interval: 1000 })));
    expect(text(await c.readFrame())).toBe('OK');
    const hb = await c.readFrame({ heartbeats: true, timeoutMs: 3_000 });
    expect(hb.data).toEqual(HEARTBEAT_FRAME.subarray(8));
    await c.waitClosed(4_000);
  });

  it('keeps a connection that answers heartbeats with NOP', async () => {
    const d = await nsqd();
    const c = await client(d);
    c.write(encodeCommand('IDENTIFY', [], JSON.stringify({ heartbeat_interval: 1000 })));
    await c.readFrame();
    for (let i = 0; i < 3; i++) {
      await c.readFrame({ heartbeats: true, timeoutMs: 3_000 });
      c.write('NOP\n');
    }
    expect(c.closed).toBe(false);
  });

  it('error frames for non-fatal errors are byte-exact', () => {
    expect(encodeErrorFrame('E_FIN_FAILED', 'x').subarray(0, 8)).toEqual(Buffer.from([0, 0, 0, 18, 0, 0, 0, 1]));
  });
});
